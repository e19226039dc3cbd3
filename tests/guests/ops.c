// SPDX-License-Identifier: MIT
/*
 * ops.c - a test guest that performs the operations named on its command
 * line, one by one, and prints one line per operation on stdout.
 *
 * It runs on a stack inside a MAP_SHARED region (like seed_demo), so it may
 * switch address spaces between any two operations.  Its global data stays
 * private per AS; `shared` lives in the shared region.  Output goes through
 * write(2): stdio buffers are per-AS memory.
 *
 *   new            new_as()                 -> "new <ret>"
 *   sw:N drop:N    switch_as(N), drop_as(N) -> "sw <ret>", "drop <ret>"
 *   set:V get      private value of this AS -> "get <v>"
 *   ids            "ids <getpid> <gettid> <getppid>"
 *   handler:S      count signal S in the shared counter
 *   raise:S        raise(S)                 -> "raised <count>"
 *   killself:S     kill(getpid(), S)        -> "killed <count>"
 *   killgroup:S    kill(0, S)               -> "killgroup <count>"
 *   sender         si_pid of the last counted signal -> "sender <pid>"
 *   session        "session <getpgrp> <getsid(0)> <getpgid(0)>"
 *   alarm:MS       one-shot ITIMER_REAL
 *   waitsig:MS     wait up to MS for the counter to move -> "count <n>"
 *   block:S mask   sigprocmask; "mask <hex>"
 *   umask:OCT getumask cd:PATH cwd nofile:N getnofile
 *   fork           child (on its own stack): "child <ppid> <switch_as(1)> <new_as()>";
 *                  parent "reaped <status>"
 *   exec:PATH      execl(PATH) -> "exec <errno>" if it returns
 *   exit:N         exit_group(N)
 *   thread         pthread_create and join -> "thread <ret>"
 *   bgthread:MS    start a thread that sleeps MS ms; jointhread joins it
 *   fpu:N          ymm0 holds a pattern across switch_as(N) -> "fpu <ok|bad> <ret>"
 *   hop:N          switch_as(1), switch_as(0), ... N times -> "hop <failures>"
 *   ptimer:MS      one-shot POSIX timer (timer_create, SIGALRM)
 *   setgid:G gid   setresgid(G, G, G); "gid <getgid>"
 *   altstack getaltstack   sigaltstack on a static buffer; "altstack <ss_sp>"
 *   pgrp           setpgid(0, 0) -> "pgrp <pgid>"
 *   segv           write to address 0
 *   line           read a line from stdin -> "line <text>"
 *   sleep:MS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <sched.h>
#include <ucontext.h>
#include <unistd.h>

#define STACK_SIZE (256 * 1024)

static inline long sys1(long nr, long a)
{
	long ret;

	asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a) : "rcx", "r11", "memory");
	return ret;
}

struct shared {
	volatile long count;
	volatile long sender;
	char stack[STACK_SIZE];
};

static struct shared *shared;
static long private_value;	/* .bss: one copy per AS */
static int g_argc;
static char **g_argv;
static ucontext_t main_ctx, work_ctx;

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	if (write(1, buf, n) < 0)
		_exit(3);
}

static void on_signal(int sig, siginfo_t *info, void *uc)
{
	(void)sig;
	(void)uc;
	shared->sender = info->si_pid;
	shared->count++;
}

static pthread_t background;

static void *thread_main(void *arg)
{
	long ms = (long)arg;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
	return NULL;
}

static void fpu(long n)
{
	static const uint32_t pattern[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	uint32_t after[8] = { 0 };
	long ret;

	asm volatile("vmovdqu (%2), %%ymm0\n\t"
		     "syscall\n\t"
		     "vmovdqu %%ymm0, (%3)\n\t"
		     : "=a"(ret)
		     : "a"(601L), "r"(pattern), "r"(after), "D"(n)
		     : "rcx", "r11", "memory", "xmm0");
	say("fpu %s %ld", memcmp(pattern, after, sizeof(after)) ? "bad" : "ok", ret);
}

/* Switches in a loop that keeps its state in registers only. */
static void hop(long n)
{
	long failures = 0;

	for (long i = 0; i < n; i++)
		failures += sys1(601, (i + 1) & 1) != 0;
	say("hop %ld", failures);
}

static void wait_signal(long ms)
{
	long start = shared->count;
	struct timespec tick = { 0, 1000000 };

	while (shared->count == start && ms-- > 0)
		nanosleep(&tick, NULL);
	say("count %ld", shared->count);
}

static int child_main(void *arg)
{
	long ppid = getppid(), sw = sys1(601, 1), na = sys1(600, 0);

	(void)arg;
	say("child %ld %ld %ld", ppid, sw, na);
	syscall(SYS_exit_group, 0);
	return 0;
}

/*
 * fork, but the child runs on a private stack: the shared stack we run on
 * would be shared with the child too.
 */
static void do_fork(void)
{
	static char child_stack[64 * 1024] __attribute__((aligned(16)));
	int status;
	pid_t pid = clone(child_main, child_stack + sizeof(child_stack), SIGCHLD, NULL);

	if (pid < 0) {
		say("fork %d", -errno);
		return;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	say("reaped %d", status);
}

static void run_op(const char *op)
{
	const char *arg = strchr(op, ':');
	long v = arg ? strtol(arg + 1, NULL, 0) : 0;
	char buf[PATH_MAX];
	sigset_t set;
	struct rlimit rl;
	struct timespec ts;
	pthread_t th;

#define IS(name) (strncmp(op, name, strlen(name)) == 0 && \
		  (op[strlen(name)] == 0 || op[strlen(name)] == ':'))
	if (IS("new")) {
		say("new %ld", sys1(600, 0));
	} else if (IS("sw")) {
		say("sw %ld", sys1(601, v));
	} else if (IS("drop")) {
		say("drop %ld", sys1(602, v));
	} else if (IS("set")) {
		private_value = v;
	} else if (IS("get")) {
		say("get %ld", private_value);
	} else if (IS("ids")) {
		say("ids %ld %ld %ld", syscall(SYS_getpid), syscall(SYS_gettid),
		    syscall(SYS_getppid));
	} else if (IS("handler")) {
		struct sigaction sa = { .sa_sigaction = on_signal, .sa_flags = SA_SIGINFO };

		sigaction(v, &sa, NULL);
	} else if (IS("raise")) {
		raise(v);
		say("raised %ld", shared->count);
	} else if (IS("killself")) {
		kill(getpid(), v);
		say("killed %ld", shared->count);
	} else if (IS("killgroup")) {
		kill(0, v);
		say("killgroup %ld", shared->count);
	} else if (IS("sender")) {
		say("sender %ld", shared->sender);
	} else if (IS("session")) {
		say("session %ld %ld %ld", (long)getpgrp(), (long)getsid(0), (long)getpgid(0));
	} else if (IS("alarm")) {
		struct itimerval it = { { 0, 0 }, { v / 1000, (v % 1000) * 1000 } };

		setitimer(ITIMER_REAL, &it, NULL);
	} else if (IS("waitsig")) {
		wait_signal(v);
	} else if (IS("block")) {
		sigemptyset(&set);
		sigaddset(&set, v);
		sigprocmask(SIG_BLOCK, &set, NULL);
	} else if (IS("mask")) {
		sigprocmask(SIG_BLOCK, NULL, &set);
		say("mask %lx", *(unsigned long *)&set);
	} else if (IS("umask")) {
		umask(v);
	} else if (IS("getumask")) {
		mode_t old = umask(0);

		umask(old);
		say("umask %o", old);
	} else if (IS("cd")) {
		say("cd %d", chdir(arg + 1));
	} else if (IS("cwd")) {
		say("cwd %s", getcwd(buf, sizeof(buf)) ? buf : "?");
	} else if (IS("nofile")) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = v;
		say("nofile %d", setrlimit(RLIMIT_NOFILE, &rl));
	} else if (IS("getnofile")) {
		getrlimit(RLIMIT_NOFILE, &rl);
		say("getnofile %ld", (long)rl.rlim_cur);
	} else if (IS("fork")) {
		do_fork();
	} else if (IS("exec")) {
		execl(arg + 1, arg + 1, (char *)NULL);
		say("exec %d", errno);
	} else if (IS("exit")) {
		syscall(SYS_exit_group, v);
	} else if (IS("thread")) {
		int r = pthread_create(&th, NULL, thread_main, NULL);

		if (r == 0)
			pthread_join(th, NULL);
		say("thread %d", r);
	} else if (IS("bgthread")) {
		say("bgthread %d", pthread_create(&background, NULL, thread_main, (void *)v));
	} else if (IS("jointhread")) {
		say("jointhread %d", pthread_join(background, NULL));
	} else if (IS("fpu")) {
		fpu(v);
	} else if (IS("ptimer")) {
		struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGALRM };
		struct itimerspec its = { { 0, 0 }, { v / 1000, (v % 1000) * 1000000 } };
		timer_t timer;

		if (timer_create(CLOCK_MONOTONIC, &sev, &timer) ||
		    timer_settime(timer, 0, &its, NULL))
			say("ptimer %d", -errno);
	} else if (IS("setgid")) {
		say("setgid %d", setresgid(v, v, v));
	} else if (IS("gid")) {
		say("gid %ld", (long)getgid());
	} else if (IS("altstack")) {
		static char alt[64 * 1024];
		stack_t ss = { .ss_sp = alt, .ss_size = sizeof(alt) };

		say("altstack %d", sigaltstack(&ss, NULL));
	} else if (IS("getaltstack")) {
		stack_t old;

		sigaltstack(NULL, &old);
		say("altstack %p", old.ss_sp);
	} else if (IS("hop")) {
		hop(v);
	} else if (IS("pgrp")) {
		setpgid(0, 0);
		say("pgrp %ld", (long)getpgrp());
	} else if (IS("segv")) {
		*(volatile int *)0 = 1;
	} else if (IS("line")) {
		ssize_t n = read(0, buf, sizeof(buf) - 1);

		buf[n > 0 ? n : 0] = 0;
		buf[strcspn(buf, "\n")] = 0;
		say("line %s", buf);
	} else if (IS("sleep")) {
		ts.tv_sec = v / 1000;
		ts.tv_nsec = (v % 1000) * 1000000;
		nanosleep(&ts, NULL);
	} else {
		say("unknown %s", op);
		_exit(2);
	}
}

static void worker(void)
{
	for (int i = 1; i < g_argc; i++)
		run_op(g_argv[i]);
	/* The main stack is per AS: end here rather than return to it. */
	syscall(SYS_exit_group, 0);
}

int main(int argc, char **argv)
{
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return 4;
	g_argc = argc;
	g_argv = argv;
	getcontext(&work_ctx);
	work_ctx.uc_stack.ss_sp = shared->stack;
	work_ctx.uc_stack.ss_size = sizeof(shared->stack);
	work_ctx.uc_link = &main_ctx;
	makecontext(&work_ctx, worker, 0);
	swapcontext(&main_ctx, &work_ctx);
	return 5;
}
