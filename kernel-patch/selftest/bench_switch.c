// SPDX-License-Identifier: GPL-2.0
/*
 * bench_switch [ITERS]: multias costs, every figure from this one run.
 *
 *  1. native switch_as() vs getppid(), called by the process itself, with 1
 *     and with 65,536 touched private pages in each AS (the switch must not
 *     depend on the size of the AS);
 *  2. PTRACE_SWITCH_AS round trip from a tracer vs switch_as() injected
 *     into the stopped tracee (set registers, PTRACE_CONT onto a
 *     "syscall; int3" stub, wait for the SIGTRAP, restore registers), with
 *     tracer and tracee pinned to one CPU.
 */
#include "multias_test.h"
#include <sched.h>
#include <sys/user.h>

#define STUB_ADDR 0x10000000UL

static long iters = 20000;
static double res_ns[3];
static long touched;
static char *region;

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static double *result;		/* shared: [0] getppid, [1] switch */

static void native_body(void)
{
	double t;
	long i;

	for (i = 0; i < touched; i++)
		region[i * 4096] = 1;
	ASSERT_EQ(new_as(), 1);
	for (i = 0; i < 1000; i++)	/* warm up */
		syscall(SYS_getppid);
	t = now_ns();
	for (i = 0; i < iters; i++)
		syscall(SYS_getppid);
	result[0] = (now_ns() - t) / iters;
	for (i = 0; i < 100; i++)
		switch_as(i & 1);
	t = now_ns();
	for (i = 0; i < iters; i++)
		switch_as(i & 1);
	result[1] = (now_ns() - t) / iters;
	ASSERT_EQ(switch_as(0), 0);
	t = now_ns();
	for (i = 0; i < iters; i++)
		switch_as(0);		/* already current: syscall, no mm switch */
	result[2] = (now_ns() - t) / iters;
	ASSERT_EQ(drop_as(1), 0);
}

static void native(long pages)
{
	int status;
	pid_t pid;

	result = shared_alloc(4096);
	touched = pages;
	region = private_alloc(pages * 4096);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		run_shared(native_body);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(status, 0);
	munmap(region, pages * 4096);
	res_ns[0] = result[0];
	res_ns[1] = result[1];
	res_ns[2] = result[2];
}

static void pin_cpu0(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void ptrace_bench(double *req_ns, double *inj_ns)
{
	struct user_regs_struct saved, r;
	int status;
	double t;
	pid_t pid;
	long i;

	pin_cpu0();
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		unsigned char *stub = mmap((void *)STUB_ADDR, 4096,
					   PROT_READ | PROT_WRITE | PROT_EXEC,
					   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

		if (stub == MAP_FAILED)
			_exit(90);
		stub[0] = 0x0f;		/* syscall */
		stub[1] = 0x05;
		stub[2] = 0xcc;		/* int3 */
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFSTOPPED(status));
	ASSERT_EQ(ptrace(PTRACE_NEW_AS, pid, 0, 0), 1);

	t = now_ns();
	for (i = 0; i < iters; i++)
		ptrace(PTRACE_SWITCH_AS, pid, 0, (i + 1) & 1);
	*req_ns = (now_ns() - t) / iters;
	ASSERT_EQ(ptrace(PTRACE_GET_AS, pid, 0, 0), 0);

	ASSERT_EQ(ptrace(PTRACE_GETREGS, pid, 0, &saved), 0);
	t = now_ns();
	for (i = 0; i < iters / 4; i++) {
		r = saved;
		r.rax = __NR_switch_as;
		r.orig_rax = -1;
		r.rdi = (i + 1) & 1;
		r.rip = STUB_ADDR;
		ptrace(PTRACE_SETREGS, pid, 0, &r);
		ptrace(PTRACE_CONT, pid, 0, 0);
		waitpid(pid, &status, 0);
		if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP)
			mt_fail(__FILE__, __LINE__, "injection: status %x", status);
		ptrace(PTRACE_GETREGS, pid, 0, &r);
		if (r.rax != 0)
			mt_fail(__FILE__, __LINE__, "injected switch_as: %ld", (long)r.rax);
	}
	ASSERT_EQ(ptrace(PTRACE_SETREGS, pid, 0, &saved), 0);
	*inj_ns = (now_ns() - t) / (iters / 4);
	ASSERT_EQ(ptrace(PTRACE_GET_AS, pid, 0, 0), 0);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

int main(int argc, char **argv)
{
	double g1, s1, g64, s64, req, inj, noop;

	if (argc > 1)
		iters = atol(argv[1]);
	if (!mt_patched()) {
		printf("bench_switch: kernel without multias\n");
		return 4;
	}
	/* interleaved rounds, best of each: the host is shared and noisy */
	g1 = s1 = g64 = s64 = req = inj = noop = 1e30;
	for (int round = 0; round < 5; round++) {
		double a, b;

		native(1);
		g1 = res_ns[0] < g1 ? res_ns[0] : g1;
		s1 = res_ns[1] < s1 ? res_ns[1] : s1;
		noop = res_ns[2] < noop ? res_ns[2] : noop;
		native(65536);
		g64 = res_ns[0] < g64 ? res_ns[0] : g64;
		s64 = res_ns[1] < s64 ? res_ns[1] : s64;
		ptrace_bench(&a, &b);
		req = a < req ? a : req;
		inj = b < inj ? b : inj;
	}

	printf("best of 5 interleaved rounds, %ld calls each (injections: %ld)\n",
	       iters, iters / 4);
	printf("native (the process calls switch_as itself):\n");
	printf("  1 page:      getppid %8.0f ns  switch_as %8.0f ns  ratio %.2f\n",
	       g1, s1, s1 / g1);
	printf("  65536 pages: getppid %8.0f ns  switch_as %8.0f ns  ratio %.2f\n",
	       g64, s64, s64 / g64);
	printf("  switch_as(65536 pages) / switch_as(1 page) = %.2f\n", s64 / s1);
	printf("  switch_as to the current slot (no mm switch): %.0f ns, ratio to getppid %.2f\n",
	       noop, noop / g1);
	printf("tracer (pinned to CPU 0 with the tracee):\n");
	printf("  PTRACE_SWITCH_AS %8.0f ns  injected switch_as %8.0f ns  ratio injected/request %.2f\n",
	       req, inj, inj / req);
	return 0;
}
