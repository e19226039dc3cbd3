// SPDX-License-Identifier: GPL-2.0
/*
 * floor_hop.c - the C floor for a register hop between two holder processes.
 *
 * This is what rasm's process backend does on switch_as(), minus everything
 * else: the guest traps syscall 601 with a seccomp filter (SECCOMP_RET_TRACE),
 * and at each stop we move general registers, extended state and the signal
 * mask from the stopped holder into the other one and resume that one,
 * leaving the first parked in its stop.  Both holders are one fork apart, so
 * code and data sit at the same addresses.
 *
 * usage: floor_hop [--cpu K] [--pages N] [SWITCHES]
 * prints: hop_ns <mean ns per switch>
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define __NR_switch_as	601
#define STOP_SECCOMP	(SIGTRAP | (PTRACE_EVENT_SECCOMP << 8))
#define STOP_FORK	(SIGTRAP | (PTRACE_EVENT_FORK << 8))

static pid_t holder[2];
static unsigned char xstate[16384] __attribute__((aligned(64)));	/* AMX fits */

/*
 * Holder 1 is holder 0's child: once holder 0 is gone it is re-parented to
 * us (we are a subreaper), so we can reap it until it is really gone.
 */
static void reap(void)
{
	for (int i = 0; i < 2; i++)
		if (holder[i] > 0)
			kill(holder[i], SIGKILL);
	for (int i = 0; i < 2; i++)
		while (holder[i] > 0 && waitpid(holder[i], NULL, __WALL) == holder[i])
			;
}

static void die(const char *what)
{
	fprintf(stderr, "floor_hop: %s: %s\n", what, strerror(errno));
	reap();
	exit(1);
}

static void wait_for(pid_t pid, int want)
{
	int status;

	if (waitpid(pid, &status, __WALL) != pid)
		die("waitpid");
	if (!WIFSTOPPED(status) || (status >> 8) != want) {
		fprintf(stderr, "floor_hop: pid %d: status %#x, wanted stop %#x\n",
			pid, status, want);
		reap();
		exit(1);
	}
}

/* The guest: alternate switch_as(1), switch_as(0) forever, touching no
 * memory, so whichever holder runs it finds the same state. */
static void __attribute__((noreturn)) guest_loop(void)
{
	for (;;)
		asm volatile("mov %0, %%eax\n\tmov $1, %%edi\n\tsyscall\n\t"
			     "mov %0, %%eax\n\txor %%edi, %%edi\n\tsyscall"
			     : : "i"(__NR_switch_as) : "rax", "rdi", "rcx", "r11", "memory");
}

static void __attribute__((noreturn)) guest(long pages)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_switch_as, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	char *p;

	ptrace(PTRACE_TRACEME, 0, 0, 0);
	raise(SIGSTOP);
	/* Private memory that makes the AS big; the hop must not care. */
	p = pages ? mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : NULL;
	if (p == MAP_FAILED)
		_exit(2);
	for (long i = 0; i < pages; i++)
		p[i * 4096] = 1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		_exit(3);
	/* The second holder; the tracer catches it before it runs (TRACEFORK). */
	if (fork() < 0)
		_exit(4);
	guest_loop();
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long i, n = 100000, warm = 1000, pages = 0;
	struct user_regs_struct r;
	unsigned long msg;
	uint64_t mask;
	int cpu = -1, cur = 0;
	double t0 = 0, t1;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--cpu") && i + 1 < argc)
			cpu = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--pages") && i + 1 < argc)
			pages = atol(argv[++i]);
		else if (argv[i][0] != '-' && atol(argv[i]) > 0)
			n = atol(argv[i]);
		else {
			fprintf(stderr, "usage: floor_hop [--cpu K] [--pages N] [SWITCHES]\n");
			return 2;
		}
	}
	if (cpu >= 0) {		/* inherited by both holders */
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			die("sched_setaffinity");
	}

	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
		die("PR_SET_CHILD_SUBREAPER");
	holder[0] = fork();
	if (holder[0] < 0)
		die("fork");
	if (holder[0] == 0)
		guest(pages);
	wait_for(holder[0], SIGSTOP);
	if (ptrace(PTRACE_SETOPTIONS, holder[0], 0, PTRACE_O_TRACESECCOMP |
		   PTRACE_O_EXITKILL | PTRACE_O_TRACEFORK) ||
	    ptrace(PTRACE_CONT, holder[0], 0, 0))
		die("SETOPTIONS/CONT");
	wait_for(holder[0], STOP_FORK);
	if (ptrace(PTRACE_GETEVENTMSG, holder[0], 0, &msg))
		die("GETEVENTMSG");
	holder[1] = msg;
	wait_for(holder[1], SIGSTOP);	/* parked before its first instruction */
	if (ptrace(PTRACE_CONT, holder[0], 0, 0))
		die("CONT");

	for (i = -warm; i < n; i++) {
		pid_t from = holder[cur], to = holder[!cur];
		struct iovec iov = { xstate, sizeof(xstate) };

		if (i == 0)
			t0 = now_ns();
		wait_for(from, STOP_SECCOMP);
		if (ptrace(PTRACE_GETREGS, from, 0, &r) ||
		    ptrace(PTRACE_GETREGSET, from, NT_X86_XSTATE, &iov) ||
		    ptrace(PTRACE_GETSIGMASK, from, sizeof(mask), &mask))
			die("read state");
		/* Proof that the state really moves: the argument alternates. */
		if (r.orig_rax != __NR_switch_as || r.rdi != (unsigned long)((i + warm + 1) & 1)) {
			fprintf(stderr, "floor_hop: hop %ld: nr %lld arg %lld\n",
				i, (long long)r.orig_rax, (long long)r.rdi);
			reap();
			return 1;
		}
		r.orig_rax = -1;	/* skip the syscall in the holder we resume */
		r.rax = 0;		/* switch_as() returns 0 */
		if (ptrace(PTRACE_SETREGS, to, 0, &r) ||
		    ptrace(PTRACE_SETREGSET, to, NT_X86_XSTATE, &iov) ||
		    ptrace(PTRACE_SETSIGMASK, to, sizeof(mask), &mask) ||
		    ptrace(PTRACE_CONT, to, 0, 0))
			die("write state");
		cur = !cur;
	}
	wait_for(holder[cur], STOP_SECCOMP);	/* the last hop has landed */
	t1 = now_ns();
	printf("hop_ns %.0f\n", (t1 - t0) / n);
	reap();
	return 0;
}
