// SPDX-License-Identifier: GPL-2.0
/*
 * floor_inject.c - the C floor for one injected syscall round trip.
 *
 * A traced child stops itself; we map a stub page "syscall; int3; jmp back"
 * at a fixed address in it, then time the loop a careful C programmer would
 * write: SETREGS (rip = stub, rax = getppid), CONT, waitpid (SIGTRAP),
 * GETREGS.  With --again, the loop rasm uses for a repeated call from the
 * stub: POKEUSER rax, CONT, waitpid, GETREGS (the argument registers are
 * still in place and the stub jumps back to its syscall).
 *
 * usage: floor_inject [--cpu K] [--addr HEX] [--again] [N]
 * prints: inject_roundtrip_ns <mean ns per iteration>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t child;

static void die(const char *what)
{
	fprintf(stderr, "floor_inject: %s: %s\n", what, strerror(errno));
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	exit(1);
}

/* Wait for the child's next stop, which must be a SIGTRAP. */
static void wait_trap(void)
{
	int status;

	if (waitpid(child, &status, 0) != child)
		die("waitpid");
	if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP) {
		errno = EPROTO;
		die("expected a SIGTRAP stop");
	}
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/*
 * The child stopped itself with raise() -> tgkill, so rip - 2 is a "syscall"
 * instruction in libc: use it once to mmap the stub page.  Single-stepping
 * over it stops right after the syscall returns, no int3 needed.
 */
static void map_stub(uintptr_t addr, struct user_regs_struct *saved)
{
	/* syscall; int3; jmp back to the syscall (as rasm's stub) */
	static const unsigned char stub[8] = { 0x0f, 0x05, 0xcc, 0xeb, 0xfb };
	struct user_regs_struct r;
	long word;

	if (ptrace(PTRACE_GETREGS, child, 0, saved))
		die("PTRACE_GETREGS");
	errno = 0;
	word = ptrace(PTRACE_PEEKTEXT, child, saved->rip - 2, 0);
	if (errno || (word & 0xffff) != 0x050f) {
		errno = ENOEXEC;
		die("no syscall instruction before the stop address");
	}
	r = *saved;
	r.rip -= 2;
	r.orig_rax = -1;	/* no syscall restart on the way out of this stop */
	r.rax = SYS_mmap;
	r.rdi = addr;
	r.rsi = 4096;
	r.rdx = PROT_READ | PROT_EXEC;
	r.r10 = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
	r.r8 = -1;
	r.r9 = 0;
	if (ptrace(PTRACE_SETREGS, child, 0, &r) ||
	    ptrace(PTRACE_SINGLESTEP, child, 0, 0))
		die("inject mmap");
	wait_trap();
	if (ptrace(PTRACE_GETREGS, child, 0, &r))
		die("PTRACE_GETREGS");
	if (r.rax != addr) {
		errno = -(long)r.rax;
		die("remote mmap of the stub page");
	}
	/* POKETEXT writes through the read-only mapping (FOLL_FORCE). */
	memcpy(&word, stub, sizeof(word));
	if (ptrace(PTRACE_POKETEXT, child, addr, word))
		die("PTRACE_POKETEXT");
}

int main(int argc, char **argv)
{
	uintptr_t addr = 0x3a5d00000000UL;
	long i, n = 100000, warm = 1000;
	struct user_regs_struct saved, r, out;
	pid_t self = getpid();
	int cpu = -1, again = 0, status;
	double t0, t1;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--cpu") && i + 1 < argc)
			cpu = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--addr") && i + 1 < argc)
			addr = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--again"))
			again = 1;
		else if (argv[i][0] != '-' && atol(argv[i]) > 0)
			n = atol(argv[i]);
		else {
			fprintf(stderr, "usage: floor_inject [--cpu K] [--addr HEX] [--again] [N]\n");
			return 2;
		}
	}
	if (cpu >= 0) {		/* the child inherits the mask across fork */
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			die("sched_setaffinity");
	}

	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		for (;;)
			pause();
	}
	if (waitpid(child, &status, 0) != child || !WIFSTOPPED(status))
		die("initial stop");
	map_stub(addr, &saved);

	r = saved;
	r.rip = addr;
	r.orig_rax = -1;
	r.rax = SYS_getppid;
	for (i = -warm, t0 = 0; i < n; i++) {
		if (i == 0)
			t0 = now_ns();
		if (again && i > -warm) {
			if (ptrace(PTRACE_POKEUSER, child,
				   offsetof(struct user_regs_struct, rax), SYS_getppid))
				die("POKEUSER");
		} else if (ptrace(PTRACE_SETREGS, child, 0, &r)) {
			die("SETREGS");
		}
		if (ptrace(PTRACE_CONT, child, 0, 0))
			die("CONT");
		wait_trap();
		if (ptrace(PTRACE_GETREGS, child, 0, &out))
			die("GETREGS");
		if ((pid_t)out.rax != self) {
			errno = EPROTO;
			die("getppid in the child returned something else");
		}
	}
	t1 = now_ns();
	printf("inject_roundtrip_ns %.0f\n", (t1 - t0) / n);

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}
