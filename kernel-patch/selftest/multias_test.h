/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tiny TAP harness for the multias selftests, in the spirit of
 * tools/testing/selftests/kselftest_harness.h: every TEST() is one property
 * and runs in its own forked child with a time limit, so a crash or a hang
 * fails that test only.
 *
 * Code that switches address spaces must not rely on private memory across
 * the switch: after switch_as() the stack, heap and globals are those of the
 * other AS.  run_shared() runs a function on a MAP_SHARED stack (the seed's
 * recipe), and shared_alloc() gives memory every AS sees.
 */
#ifndef MULTIAS_TEST_H
#define MULTIAS_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define __NR_new_as	600
#define __NR_switch_as	601
#define __NR_drop_as	602
#define PTRACE_NEW_AS		0x4280
#define PTRACE_SWITCH_AS	0x4281
#define PTRACE_DROP_AS		0x4282
#define PTRACE_GET_AS		0x4283

#ifndef N_MM
#define N_MM 16		/* CONFIG_VMMHOST_NR_AS */
#endif

static inline long new_as(void) { return syscall(__NR_new_as); }
static inline long switch_as(long n) { return syscall(__NR_switch_as, n); }
static inline long drop_as(long n) { return syscall(__NR_drop_as, n); }

/* ---- the harness ---- */

struct mt_case {
	const char *name;
	void (*fn)(void);
	int timeout;
};
static struct mt_case mt_cases[64];
static int mt_ncases;

#define TEST_T(tname, secs)						\
	static void tname(void);					\
	__attribute__((constructor)) static void mt_reg_##tname(void)	\
	{								\
		mt_cases[mt_ncases].name = #tname;			\
		mt_cases[mt_ncases].timeout = secs;			\
		mt_cases[mt_ncases++].fn = tname;			\
	}								\
	static void tname(void)
#define TEST(name) TEST_T(name, 120)

static void mt_fail(const char *file, int line, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "#   %s:%d: ", file, line);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(2, buf, n) < 0)
		_exit(3);
	_exit(1);
}

#define ASSERT_TRUE(c) do {						\
	if (!(c))							\
		mt_fail(__FILE__, __LINE__, "%s (errno %d: %s)", #c,	\
			errno, strerror(errno));			\
} while (0)
#define ASSERT_EQ(a, b) do {						\
	long long _a = (long long)(a), _b = (long long)(b);		\
	if (_a != _b)							\
		mt_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld (errno %d: %s)", \
			#a, #b, _a, _b, errno, strerror(errno));	\
} while (0)
/* a raw syscall result: expect -1 with errno e */
#define ASSERT_ERR(call, e) do {					\
	errno = 0;							\
	long _r = (long)(call);						\
	if (_r != -1 || errno != (e))					\
		mt_fail(__FILE__, __LINE__, "%s: got %ld errno %d (%s), want errno %d (%s)", \
			#call, _r, errno, strerror(errno), e, strerror(e)); \
} while (0)

static void mt_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("# ", stdout);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static int mt_patched(void)
{
	errno = 0;
	return !(syscall(__NR_drop_as, -1) == -1 && errno == ENOSYS);
}

int main(int argc, char **argv);
static int mt_main(int argc, char **argv)
{
	int i, failed = 0;
	const char *only = argc > 1 ? argv[1] : NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	if (!mt_patched()) {
		printf("1..0 # SKIP kernel without multias (syscall 602 -> ENOSYS)\n");
		return 4;
	}
	printf("1..%d\n", mt_ncases);
	for (i = 0; i < mt_ncases; i++) {
		struct mt_case *c = &mt_cases[i];
		struct timespec t0, t1;
		int status;
		pid_t pid;

		if (only && strcmp(only, c->name)) {
			printf("ok %d %s # SKIP not selected\n", i + 1, c->name);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			setpgid(0, 0);
			alarm(c->timeout);
			c->fn();
			fflush(stdout);
			_exit(0);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid) {
			printf("not ok %d %s # fork/wait failed\n", i + 1, c->name);
			failed++;
			continue;
		}
		kill(-pid, SIGKILL);	/* whatever the test left behind */
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			printf("ok %d %s # %.2fs\n", i + 1, c->name,
			       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
		} else {
			if (WIFSIGNALED(status))
				printf("#   killed by signal %d%s\n", WTERMSIG(status),
				       WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
			printf("not ok %d %s\n", i + 1, c->name);
			failed++;
		}
	}
	printf("# %d passed, %d failed\n", mt_ncases - failed, failed);
	return failed ? 1 : 0;
}
#define TEST_MAIN int main(int argc, char **argv) { return mt_main(argc, argv); }

/* ---- helpers ---- */

static __attribute__((noinline)) void *shared_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ASSERT_TRUE(p != MAP_FAILED);
	return p;
}

static void *private_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_TRUE(p != MAP_FAILED);
	return p;
}

/*
 * Run fn on a MAP_SHARED stack, so that it survives switch_as().  fn must
 * return in the AS that called run_shared() or in one created after that
 * call: the context it returns to lives in private memory.  The stack is
 * mapped once, by the first call, which must come before the first new_as()
 * so that every AS has it.
 */
static ucontext_t mt_uc_main, mt_uc_fn;
static char *mt_stack;
static void run_shared(void (*fn)(void))
{
	size_t sz = 1 << 20;
	char *stack = mt_stack ? mt_stack : (mt_stack = shared_alloc(sz));

	ASSERT_EQ(getcontext(&mt_uc_fn), 0);
	mt_uc_fn.uc_stack.ss_sp = stack;
	mt_uc_fn.uc_stack.ss_size = sz;
	mt_uc_fn.uc_link = &mt_uc_main;
	makecontext(&mt_uc_fn, fn, 0);
	ASSERT_EQ(swapcontext(&mt_uc_main, &mt_uc_fn), 0);
}

/* /proc/<pid>/address_spaces as text */
static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY), n, got = 0;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf + got, len - 1 - got)) > 0)
		got += n;
	close(fd);
	buf[got] = 0;
	return n < 0 ? -1 : got;
}

/* Filled slots as a bitmask, *cur = the starred one. */
static unsigned long as_slots(pid_t pid, int *cur)
{
	char path[64], buf[4096], *l, *save = NULL;
	unsigned long mask = 0;

	snprintf(path, sizeof(path), "/proc/%d/address_spaces", pid);
	ASSERT_TRUE(read_file(path, buf, sizeof(buf)) >= 0);
	if (cur)
		*cur = -1;
	for (l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *end;
		long n = strtol(l, &end, 10);

		ASSERT_TRUE(end != l && n >= 0 && n < 64);
		if (*end == '*') {
			if (cur)
				*cur = n;
			end++;
		}
		ASSERT_TRUE(*end == '\t' && strstr(end, " kB"));
		mask |= 1UL << n;
	}
	return mask;
}

static long mem_available_kb(void)
{
	char buf[8192], *p;

	ASSERT_TRUE(read_file("/proc/meminfo", buf, sizeof(buf)) > 0);
	p = strstr(buf, "MemAvailable:");
	ASSERT_TRUE(p);
	return atol(p + strlen("MemAvailable:"));
}

#endif
