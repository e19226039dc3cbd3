// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <elf.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/kcmp.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "rasm_native.h"

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

#define SECCOMP_STOP (SIGTRAP | (PTRACE_EVENT_SECCOMP << 8))

long rasm_ptrace(long request, int pid, unsigned long addr, unsigned long data)
{
	long r;

	errno = 0;
	r = ptrace(request, pid, addr, data);
	return r == -1 && errno ? -errno : r;
}

/*
 * EINTR goes back to Python so that its signal handlers (Ctrl-C) run; the
 * caller simply waits again.
 */
int rasm_wait(int pid, int *status, int flags)
{
	int r = waitpid(pid, status, flags | __WALL);

	return r < 0 ? -errno : r;
}

/* For the controller itself (e.g. PR_SET_CHILD_SUBREAPER). */
int rasm_prctl(int option, unsigned long arg)
{
	return prctl(option, arg, 0, 0, 0) ? -errno : 0;
}

/*
 * Queue @sig on process @pid as SI_QUEUE carrying @token in si_value: how
 * the process backend forwards a signal to a holder and recognises it at
 * delivery (rt_sigqueueinfo accepts a negative si_code from another
 * process, and never rewrites si_pid or si_value).
 */
int rasm_sigqueue(int pid, int sig, uint64_t token)
{
	siginfo_t info;

	memset(&info, 0, sizeof(info));
	info.si_signo = sig;
	info.si_code = SI_QUEUE;
	info.si_pid = getpid();
	info.si_uid = getuid();
	info.si_value.sival_ptr = (void *)(uintptr_t)token;
	return syscall(SYS_rt_sigqueueinfo, pid, sig, &info) ? -errno : 0;
}

/* 1 when both processes use one mm, 0 when not, negative errno if unknown. */
int rasm_same_mm(int a, int b)
{
	long r = syscall(SYS_kcmp, a, b, KCMP_VM, 0, 0);

	return r < 0 ? -errno : r == 0;
}

int rasm_getregs(int pid, struct user_regs_struct *regs)
{
	return ptrace(PTRACE_GETREGS, pid, 0, regs) ? -errno : 0;
}

int rasm_setregs(int pid, const struct user_regs_struct *regs)
{
	return ptrace(PTRACE_SETREGS, pid, 0, regs) ? -errno : 0;
}

int rasm_save_ctx(int pid, struct rasm_ctx *ctx)
{
	struct iovec iov = { ctx->xstate, sizeof(ctx->xstate) };

	if (ptrace(PTRACE_GETREGS, pid, 0, &ctx->regs) ||
	    ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, &iov) ||
	    ptrace(PTRACE_GETSIGMASK, pid, sizeof(ctx->sigmask), &ctx->sigmask))
		return -errno;
	ctx->xlen = iov.iov_len;
	return 0;
}

int rasm_load_ctx(int pid, const struct rasm_ctx *ctx)
{
	struct iovec iov = { (void *)ctx->xstate, ctx->xlen };

	if (ptrace(PTRACE_SETREGS, pid, 0, &ctx->regs) ||
	    ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, &iov) ||
	    ptrace(PTRACE_SETSIGMASK, pid, sizeof(ctx->sigmask), &ctx->sigmask))
		return -errno;
	return 0;
}

/* Stages reported by a child that failed before execve completed. */
enum { STAGE_SYNC = 1, STAGE_NNP, STAGE_SECCOMP, STAGE_EXEC };

static void child_fail(int fd, int stage)
{
	int msg[2] = { stage, errno };

	if (write(fd, msg, sizeof(msg)) < 0)
		_exit(126);
	_exit(127);
}

/*
 * The child waits on @go until the parent has seized it, so that the
 * seccomp filter (which returns SECCOMP_RET_TRACE) is only installed once a
 * tracer with PTRACE_O_TRACESECCOMP exists.  Everything here is
 * async-signal-safe: the parent may be a threaded Python process.
 */
static void spawn_child(int go, int err, const char *path, char *const argv[],
			char *const envp[], const void *filter, int filter_len)
{
	struct sock_fprog prog = {
		.len = (unsigned short)(filter_len / sizeof(struct sock_filter)),
		.filter = (struct sock_filter *)filter,
	};
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (read(go, &c, 1) != 0)
		child_fail(err, STAGE_SYNC);
	close(go);
	/* Seized now: PTRACE_O_EXITKILL covers the controller's death. */
	prctl(PR_SET_PDEATHSIG, 0);
	if (filter_len > 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
			child_fail(err, STAGE_NNP);
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
			child_fail(err, STAGE_SECCOMP);
	}
	execve(path, argv, envp);
	child_fail(err, STAGE_EXEC);
}

int rasm_spawn(const char *path, char *const argv[], char *const envp[],
	       const void *filter, int filter_len, long options,
	       int *child_err, int *child_stage)
{
	int go[2], err[2], msg[2], status, saved;
	ssize_t n;
	pid_t pid;

	*child_err = *child_stage = 0;
	if (pipe2(go, O_CLOEXEC))
		return -errno;
	if (pipe2(err, O_CLOEXEC)) {
		saved = errno;
		goto close_go;
	}
	pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(err[0]);
		spawn_child(go[0], err[1], path, argv, envp, filter, filter_len);
	}
	saved = errno;
	close(go[0]);
	close(err[1]);
	if (pid < 0)
		goto close_rest;
	if (ptrace(PTRACE_SEIZE, pid, 0, options)) {
		saved = errno;
		kill(pid, SIGKILL);
		waitpid(pid, &status, __WALL);
		goto close_rest;
	}
	close(go[1]);
	go[1] = -1;
	do
		n = read(err[0], msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	close(err[0]);
	if (n == sizeof(msg)) {
		/* Exec failed: the child exits by itself; reap it. */
		*child_stage = msg[0];
		*child_err = msg[1];
		while (waitpid(pid, &status, __WALL) == pid && !WIFEXITED(status) &&
		       !WIFSIGNALED(status))
			ptrace(PTRACE_CONT, pid, 0, 0);
		return -msg[1];
	}
	/* Exec succeeded: wait for its PTRACE_EVENT_EXEC stop. */
	while (waitpid(pid, &status, __WALL) < 0)
		if (errno != EINTR)
			return -errno;
	if (status >> 8 != (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, __WALL);
		return -ECHILD;
	}
	return pid;

close_rest:
	close(err[0]);
close_go:
	if (go[1] >= 0)
		close(go[1]);
	if (saved == 0)
		saved = EIO;
	return -saved;
}

/*
 * Wait for the injected syscall's int3.  Returns 0 with the result in *ret,
 * 1 when the tracee reported some other stop first (left in *status for the
 * caller to handle before calling this again), or a negative errno.
 */
int rasm_inject_finish(int pid, uint64_t stub, int64_t *ret, int *status)
{
	struct user_regs_struct out;
	int r = rasm_wait(pid, status, 0);

	if (r < 0)
		return r;
	if (!WIFSTOPPED(*status) || *status >> 8 != SIGTRAP)
		return 1;
	/* One GETREGS reads both the result and where the tracee stopped. */
	if (ptrace(PTRACE_GETREGS, pid, 0, &out))
		return -errno;
	/* A SIGTRAP from elsewhere (kill -TRAP) is not our int3. */
	if (out.rip != stub + 3)
		return 1;
	*ret = (int64_t)out.rax;
	return 0;
}

int rasm_inject(int pid, const struct user_regs_struct *base, uint64_t stub,
		int64_t nr, const int64_t args[6], int64_t *ret, int *status)
{
	struct user_regs_struct r = *base;

	r.rip = stub;
	r.rax = nr;
	/* No syscall restart may apply to the injected context. */
	r.orig_rax = -1;
	r.rdi = args[0];
	r.rsi = args[1];
	r.rdx = args[2];
	r.r10 = args[3];
	r.r8 = args[4];
	r.r9 = args[5];
	if (ptrace(PTRACE_SETREGS, pid, 0, &r) || ptrace(PTRACE_CONT, pid, 0, 0))
		return -errno;
	return rasm_inject_finish(pid, stub, ret, status);
}

/*
 * The same again, from the stub's int3: the stub jumps back to its syscall
 * instruction and the argument registers survived the last call, so only
 * the syscall number needs writing.  This is the hottest path from Python,
 * hence the lean signature: the result comes back directly, and anything
 * unusual returns RASM_AGAIN_SLOW with the details in rasm_again_status
 * (the wait status, or a negative errno).
 */
int rasm_again_status;

int64_t rasm_inject_again(int pid, uint64_t stub, int64_t nr)
{
	int64_t ret;
	int r;

	if (ptrace(PTRACE_POKEUSER, pid, offsetof(struct user_regs_struct, rax), nr) ||
	    ptrace(PTRACE_CONT, pid, 0, 0)) {
		rasm_again_status = -errno;
		return RASM_AGAIN_SLOW;
	}
	r = rasm_inject_finish(pid, stub, &ret, &rasm_again_status);
	if (r == 0)
		return ret;
	if (r < 0)
		rasm_again_status = r;
	return RASM_AGAIN_SLOW;
}

/*
 * Move the guest from the holder stopped in switch_as to holder @to.  The
 * source stays parked in its seccomp stop; its registers are rewritten
 * whenever it becomes current again.
 */
static int hop(int from, int to, struct rasm_ctx *c)
{
	struct iovec iov = { c->xstate, sizeof(c->xstate) };

	if (ptrace(PTRACE_GETREGSET, from, NT_X86_XSTATE, &iov) ||
	    ptrace(PTRACE_GETSIGMASK, from, sizeof(c->sigmask), &c->sigmask))
		return -errno;
	c->xlen = iov.iov_len;
	if (rasm_load_ctx(to, c) || ptrace(PTRACE_CONT, to, 0, 0))
		return -errno;
	return 0;
}

/*
 * Wait for the next stop of any tracee.  A guest's switch_as(n) between two
 * filled slots is served here without returning to Python; every other stop
 * (and any switch that fails or must be reported) is returned as its pid
 * with *status, for the Python side to handle.
 */
int rasm_serve(struct rasm_table *t, struct rasm_ctx *c, int *status, int flags)
{
	unsigned long msg;
	long n;
	int pid, from;

	for (;;) {
		pid = rasm_wait(-1, status, flags);
		if (pid <= 0 || t->current < 0 ||
		    *status >> 8 != SECCOMP_STOP || pid != t->pids[t->current])
			return pid;
		if (ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg) ||
		    msg != (unsigned long)t->nr_switch ||
		    ptrace(PTRACE_GETREGS, pid, 0, &c->regs))
			return pid;
		n = (int)c->regs.rdi;
		if (n < 0 || n >= t->nslots || !t->pids[n])
			return pid;
		c->regs.rax = 0;
		c->regs.orig_rax = -1;
		from = pid;
		if (n == t->current) {
			if (ptrace(PTRACE_SETREGS, pid, 0, &c->regs) ||
			    ptrace(PTRACE_CONT, pid, 0, 0))
				return pid;
			continue;
		}
		if (hop(from, t->pids[n], c))
			return pid;
		t->current = n;
	}
}
