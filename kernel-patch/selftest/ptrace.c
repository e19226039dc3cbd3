// SPDX-License-Identifier: GPL-2.0
/*
 * PTRACE_{NEW,SWITCH,DROP,GET}_AS: on a ptrace-stopped tracee in each kind
 * of stop, and refused on a running or untraced task.  One property each.
 */
#include "multias_test.h"
#include <pthread.h>
#include <stddef.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>

static volatile long g_var = 7;	/* private: one copy per AS */

static long preq(long req, pid_t pid, long data)
{
	errno = 0;
	return ptrace(req, pid, 0L, data);
}

static void wait_stop(pid_t pid, int *status)
{
	ASSERT_EQ(waitpid(pid, status, __WALL), pid);
	ASSERT_TRUE(WIFSTOPPED(*status));
}

/* fork a child that is traced and stopped at its raise(SIGSTOP) */
static pid_t spawn_stopped(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, 0, 0))
			_exit(90);
		raise(SIGSTOP);
		_exit(fn ? fn() : 0);
	}
	wait_stop(pid, &status);
	ASSERT_EQ(WSTOPSIG(status), SIGSTOP);
	return pid;
}

static void cont_and_expect_exit(pid_t pid, int code)
{
	int status;

	ASSERT_EQ(ptrace(PTRACE_CONT, pid, 0, 0), 0);
	for (;;) {
		ASSERT_EQ(waitpid(pid, &status, __WALL), pid);
		if (!WIFSTOPPED(status))
			break;
		ASSERT_EQ(ptrace(PTRACE_CONT, pid, 0, 0), 0);
	}
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), code);
}

/* set @option and run the tracee to its @event stop */
static void cont_to_event(pid_t pid, long option, int event)
{
	int status;

	ASSERT_EQ(ptrace(PTRACE_SETOPTIONS, pid, 0, option), 0);
	ASSERT_EQ(ptrace(PTRACE_CONT, pid, 0, 0), 0);
	wait_stop(pid, &status);
	ASSERT_EQ(status >> 8, SIGTRAP | (event << 8));
}

/* NEW, SWITCH there and back, DROP: allowed and leaves the tracee as it was */
static void requests_work(pid_t pid)
{
	long cur = preq(PTRACE_GET_AS, pid, 0), n;

	ASSERT_TRUE(cur >= 0);
	n = preq(PTRACE_NEW_AS, pid, 0);
	ASSERT_TRUE(n > 0 || (n == 0 && cur != 0));
	ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, n), 0);
	ASSERT_EQ(preq(PTRACE_GET_AS, pid, 0), n);
	ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, cur), 0);
	ASSERT_EQ(preq(PTRACE_DROP_AS, pid, n), 0);
	ASSERT_EQ(preq(PTRACE_GET_AS, pid, 0), cur);
}

/* a vfork parent: no NEW (its mm is shared), but SWITCH and DROP work */
static void requests_work_no_new(pid_t pid)
{
	ASSERT_ERR(preq(PTRACE_SWITCH_AS, pid, 1), ENOENT);
	ASSERT_ERR(preq(PTRACE_DROP_AS, pid, 1), ENOENT);
}

TEST(get_as_without_table_is_0)
{
	pid_t pid = spawn_stopped(NULL);

	ASSERT_EQ(preq(PTRACE_GET_AS, pid, 0), 0);
	ASSERT_EQ(as_slots(pid, NULL), 1);
	cont_and_expect_exit(pid, 0);
}

TEST(new_as_on_stopped_tracee_fills_slots)
{
	pid_t pid = spawn_stopped(NULL);
	int cur;

	ASSERT_EQ(preq(PTRACE_NEW_AS, pid, 0), 1);
	ASSERT_EQ(preq(PTRACE_NEW_AS, pid, 0), 2);
	ASSERT_EQ(as_slots(pid, &cur), 7);
	ASSERT_EQ(cur, 0);
	ASSERT_EQ(preq(PTRACE_GET_AS, pid, 0), 0);
	cont_and_expect_exit(pid, 0);
}

TEST(new_as_until_full_is_enoent)
{
	pid_t pid = spawn_stopped(NULL);
	long i;

	for (i = 1; i < N_MM; i++)
		ASSERT_EQ(preq(PTRACE_NEW_AS, pid, 0), i);
	ASSERT_ERR(preq(PTRACE_NEW_AS, pid, 0), ENOENT);
	cont_and_expect_exit(pid, 0);
}

static int check_g_is_42(void)
{
	return g_var == 42 ? 0 : 1;
}

TEST(switch_as_makes_peek_poke_and_tracee_use_that_as)
{
	pid_t pid = spawn_stopped(check_g_is_42);

	ASSERT_EQ(preq(PTRACE_NEW_AS, pid, 0), 1);
	ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, 1), 0);
	ASSERT_EQ(ptrace(PTRACE_POKEDATA, pid, &g_var, 42L), 0);
	ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, 0), 0);
	ASSERT_EQ(ptrace(PTRACE_PEEKDATA, pid, &g_var, 0), 7);
	ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, 1), 0);
	ASSERT_EQ(ptrace(PTRACE_PEEKDATA, pid, &g_var, 0), 42);
	ASSERT_EQ(preq(PTRACE_GET_AS, pid, 0), 1);
	cont_and_expect_exit(pid, 0);	/* the tracee runs on slot 1 */
}

static int open_mem(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	return open(path, O_RDWR);
}

TEST(proc_mem_fd_keeps_the_as_it_was_opened_on)
{
	pid_t pid = spawn_stopped(check_g_is_42);
	long v = 42, r = 0;
	int fd;

	ASSERT_EQ(preq(PTRACE_NEW_AS, pid, 0), 1);
	ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, 1), 0);
	fd = open_mem(pid);			/* pins slot 1's mm */
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, 0), 0);
	ASSERT_EQ(pwrite(fd, &v, sizeof(v), (long)&g_var), sizeof(v));
	ASSERT_EQ(ptrace(PTRACE_PEEKDATA, pid, &g_var, 0), 7);	/* slot 0 */
	ASSERT_EQ(pread(fd, &r, sizeof(r), (long)&g_var), sizeof(r));
	ASSERT_EQ(r, 42);
	ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, 1), 0);
	close(fd);
	cont_and_expect_exit(pid, 0);		/* slot 1 has 42 */
}

TEST(proc_mem_fd_of_dropped_as_reads_eof)
{
	pid_t pid = spawn_stopped(NULL);
	long r = 0;
	int fd;

	ASSERT_EQ(preq(PTRACE_NEW_AS, pid, 0), 1);
	ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, 1), 0);
	fd = open_mem(pid);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, 0), 0);
	ASSERT_EQ(preq(PTRACE_DROP_AS, pid, 1), 0);
	ASSERT_EQ(pread(fd, &r, sizeof(r), (long)&g_var), 0);	/* mm gone */
	close(fd);
	cont_and_expect_exit(pid, 0);
}

TEST(switch_as_bad_slot_is_enoent)
{
	pid_t pid = spawn_stopped(NULL);

	ASSERT_ERR(preq(PTRACE_SWITCH_AS, pid, 1), ENOENT);	/* no table */
	ASSERT_EQ(preq(PTRACE_NEW_AS, pid, 0), 1);
	ASSERT_ERR(preq(PTRACE_SWITCH_AS, pid, 2), ENOENT);
	ASSERT_ERR(preq(PTRACE_SWITCH_AS, pid, N_MM), ENOENT);
	ASSERT_ERR(preq(PTRACE_SWITCH_AS, pid, -1L), ENOENT);
	cont_and_expect_exit(pid, 0);
}

TEST(drop_as_current_is_ebusy_empty_is_enoent)
{
	pid_t pid = spawn_stopped(NULL);

	ASSERT_EQ(preq(PTRACE_NEW_AS, pid, 0), 1);
	ASSERT_ERR(preq(PTRACE_DROP_AS, pid, 0), EBUSY);
	ASSERT_ERR(preq(PTRACE_DROP_AS, pid, 2), ENOENT);
	ASSERT_EQ(preq(PTRACE_DROP_AS, pid, 1), 0);
	ASSERT_ERR(preq(PTRACE_DROP_AS, pid, 1), ENOENT);
	ASSERT_EQ(as_slots(pid, NULL), 1);
	cont_and_expect_exit(pid, 0);
}

static void busy_loop(void)
{
	for (;;)
		;
}

TEST(refused_on_running_tracee)
{
	pid_t pid = fork();

	ASSERT_TRUE(pid >= 0);
	if (pid == 0)
		busy_loop();
	ASSERT_EQ(ptrace(PTRACE_SEIZE, pid, 0, 0), 0);
	ASSERT_ERR(preq(PTRACE_NEW_AS, pid, 0), ESRCH);
	ASSERT_ERR(preq(PTRACE_GET_AS, pid, 0), ESRCH);
	ASSERT_ERR(preq(PTRACE_SWITCH_AS, pid, 0), ESRCH);
	ASSERT_ERR(preq(PTRACE_DROP_AS, pid, 1), ESRCH);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

TEST(refused_on_untraced_task)
{
	pid_t pid = fork();

	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		raise(SIGSTOP);		/* stopped, but not traced */
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, NULL, WUNTRACED), pid);
	ASSERT_ERR(preq(PTRACE_NEW_AS, pid, 0), ESRCH);
	ASSERT_ERR(preq(PTRACE_GET_AS, pid, 0), ESRCH);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

TEST(refused_in_ptrace_listen)
{
	int status, go[2];
	pid_t pid;
	char c = 0;

	ASSERT_EQ(pipe(go), 0);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		if (read(go[0], &c, 1) != 1)
			_exit(93);
		raise(SIGSTOP);
		_exit(0);
	}
	ASSERT_EQ(ptrace(PTRACE_SEIZE, pid, 0, 0), 0);
	ASSERT_EQ(write(go[1], &c, 1), 1);
	wait_stop(pid, &status);		/* signal-delivery stop */
	ASSERT_EQ(ptrace(PTRACE_CONT, pid, 0, SIGSTOP), 0);
	wait_stop(pid, &status);		/* group stop */
	ASSERT_EQ(status >> 16, PTRACE_EVENT_STOP);
	requests_work(pid);
	ASSERT_EQ(ptrace(PTRACE_LISTEN, pid, 0, 0), 0);
	ASSERT_ERR(preq(PTRACE_NEW_AS, pid, 0), ESRCH);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void *idle_thread(void *arg)
{
	pause();
	return arg;
}

static int with_thread(void)
{
	return 0;
}

TEST(new_as_on_threaded_tracee_is_ebusy)
{
	int status;
	pid_t pid = fork();

	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		pthread_t t;

		if (pthread_create(&t, NULL, idle_thread, NULL))
			_exit(91);
		if (ptrace(PTRACE_TRACEME, 0, 0, 0))
			_exit(90);
		raise(SIGSTOP);
		_exit(with_thread());
	}
	wait_stop(pid, &status);
	ASSERT_ERR(preq(PTRACE_NEW_AS, pid, 0), EBUSY);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int do_getppid(void)
{
	return getppid() > 0 && getppid() > 0 ? 0 : 1;
}

TEST(allowed_in_syscall_entry_and_exit_stops)
{
	int status, i;
	pid_t pid = spawn_stopped(do_getppid);

	ASSERT_EQ(ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD), 0);
	for (i = 0; i < 4; i++) {	/* entry, exit, entry, exit */
		ASSERT_EQ(ptrace(PTRACE_SYSCALL, pid, 0, 0), 0);
		wait_stop(pid, &status);
		ASSERT_EQ(WSTOPSIG(status), SIGTRAP | 0x80);
		requests_work(pid);
	}
	cont_and_expect_exit(pid, 0);
}

static int exit_5(void)
{
	return 5;
}

TEST(allowed_in_exit_event_stop)
{
	int status;
	pid_t pid = spawn_stopped(exit_5);

	cont_to_event(pid, PTRACE_O_TRACEEXIT, PTRACE_EVENT_EXIT);
	requests_work(pid);
	ASSERT_EQ(preq(PTRACE_NEW_AS, pid, 0), 1);
	ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, 1), 0);	/* exits on slot 1 */
	ASSERT_EQ(ptrace(PTRACE_CONT, pid, 0, 0), 0);
	ASSERT_EQ(waitpid(pid, &status, __WALL), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 5);
}

static int exec_true(void)
{
	execl("/bin/true", "true", NULL);
	return 92;
}

TEST(exec_event_stop_sees_table_dropped)
{
	int status;
	pid_t pid = spawn_stopped(exec_true);

	ASSERT_EQ(ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEEXEC), 0);
	ASSERT_EQ(preq(PTRACE_NEW_AS, pid, 0), 1);
	ASSERT_EQ(preq(PTRACE_NEW_AS, pid, 0), 2);
	ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, 2), 0);
	ASSERT_EQ(ptrace(PTRACE_CONT, pid, 0, 0), 0);
	wait_stop(pid, &status);
	ASSERT_EQ(status >> 8, SIGTRAP | (PTRACE_EVENT_EXEC << 8));
	ASSERT_EQ(preq(PTRACE_GET_AS, pid, 0), 0);
	ASSERT_EQ(as_slots(pid, NULL), 1);
	requests_work(pid);
	cont_and_expect_exit(pid, 0);
}

/* 0 when child @c exits with status 3, else 1 */
static int reap_3(pid_t c)
{
	int status;

	if (waitpid(c, &status, 0) != c || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 3)
		return 1;
	return 0;
}

static int do_fork(void)
{
	pid_t c = fork();

	if (c == 0)
		_exit(3);
	return reap_3(c);
}

TEST(allowed_in_fork_event_stop)
{
	int status;
	pid_t pid = spawn_stopped(do_fork), child;
	unsigned long msg;

	cont_to_event(pid, PTRACE_O_TRACEFORK, PTRACE_EVENT_FORK);
	ASSERT_EQ(ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg), 0);
	child = msg;
	requests_work(pid);
	/* the new child starts traced, in a stop of its own */
	wait_stop(child, &status);
	requests_work(child);
	ASSERT_EQ(ptrace(PTRACE_DETACH, child, 0, 0), 0);
	cont_and_expect_exit(pid, 0);
}

static int do_vfork(void)
{
	pid_t c = vfork();

	if (c == 0)
		_exit(3);
	return reap_3(c);
}

TEST(vfork_event_stop_new_as_is_ebusy)
{
	unsigned long msg;
	int status;
	pid_t pid = spawn_stopped(do_vfork);

	cont_to_event(pid, PTRACE_O_TRACEVFORK, PTRACE_EVENT_VFORK);
	/* the vfork child shares the tracee's mm */
	ASSERT_ERR(preq(PTRACE_NEW_AS, pid, 0), EBUSY);
	ASSERT_EQ(preq(PTRACE_GET_AS, pid, 0), 0);
	requests_work_no_new(pid);
	/* the vfork child starts traced and stopped; let it go */
	ASSERT_EQ(ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg), 0);
	wait_stop((pid_t)msg, &status);
	ASSERT_EQ(ptrace(PTRACE_DETACH, (pid_t)msg, 0, 0), 0);
	cont_and_expect_exit(pid, 0);
}

TEST(allowed_in_vfork_done_stop)
{
	pid_t pid = spawn_stopped(do_vfork);

	cont_to_event(pid, PTRACE_O_TRACEVFORKDONE, PTRACE_EVENT_VFORK_DONE);
	requests_work(pid);		/* the mm is no longer shared */
	cont_and_expect_exit(pid, 0);
}

static int seccomp_getppid(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return 94;
	return syscall(SYS_getppid) > 0 ? 0 : 95;
}

TEST(allowed_in_seccomp_event_stop)
{
	pid_t pid = spawn_stopped(seccomp_getppid);

	cont_to_event(pid, PTRACE_O_TRACESECCOMP, PTRACE_EVENT_SECCOMP);
	requests_work(pid);
	ASSERT_EQ(preq(PTRACE_NEW_AS, pid, 0), 1);
	ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, 1), 0);	/* getppid runs in slot 1 */
	cont_and_expect_exit(pid, 0);
}

TEST(sigkill_of_stopped_tracee_with_table)
{
	int status, i;

	for (i = 0; i < 20; i++) {
		pid_t pid = spawn_stopped(NULL);

		while (preq(PTRACE_NEW_AS, pid, 0) > 0)
			;
		ASSERT_EQ(preq(PTRACE_SWITCH_AS, pid, 1 + i % (N_MM - 1)), 0);
		ASSERT_EQ(preq(PTRACE_DROP_AS, pid, 0), 0);
		ASSERT_EQ(kill(pid, SIGKILL), 0);
		ASSERT_EQ(waitpid(pid, &status, 0), pid);
		ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	}
}

/*
 * A thread that has been joined no longer shares the mm, even while its
 * zombie waits for a tracer to reap it (the kernel still counts it in
 * nr_threads): new_as right after pthread_join() must not be EBUSY.  The
 * tracer holds the zombie for as long as the test needs, so the old check
 * fails every time, not only when the exit is slow.
 */
static int tid_pipe[2], go_pipe[2], held_pipe[2], done_pipe[2];

static void *report_tid_then_exit(void *arg)
{
	pid_t tid = gettid();
	char c;

	if (write(tid_pipe[1], &tid, sizeof(tid)) != sizeof(tid) ||
	    read(go_pipe[0], &c, 1) != 1)
		return arg;
	return NULL;
}

TEST(new_as_right_after_join_while_a_tracer_holds_the_zombie)
{
	pthread_t t;
	pid_t tid, reaper;
	int status;
	char c;

	ASSERT_EQ(pipe(tid_pipe) | pipe(go_pipe) | pipe(held_pipe) | pipe(done_pipe), 0);
	ASSERT_EQ(pthread_create(&t, NULL, report_tid_then_exit, NULL), 0);
	ASSERT_EQ(read(tid_pipe[0], &tid, sizeof(tid)), sizeof(tid));
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY);	/* for Yama, if present */
	reaper = fork();
	ASSERT_TRUE(reaper >= 0);
	if (reaper == 0) {
		/*
		 * Trace the thread; reap its zombie only when told to.  If the
		 * test dies first, done_pipe reads EOF and our exit releases
		 * the zombie (a group leader is not reaped before its threads).
		 */
		close(done_pipe[1]);
		if (ptrace(PTRACE_SEIZE, tid, 0, 0) || write(held_pipe[1], "h", 1) != 1)
			_exit(2);
		if (read(done_pipe[0], &c, 1) != 1 || waitpid(tid, &status, __WALL) != tid)
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(read(held_pipe[0], &c, 1), 1);
	ASSERT_EQ(write(go_pipe[1], "g", 1), 1);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	ASSERT_EQ(new_as(), 1);
	ASSERT_EQ(write(done_pipe[1], "d", 1), 1);
	ASSERT_EQ(waitpid(reaper, &status, 0), reaper);
	ASSERT_EQ(status, 0);
}

TEST_MAIN
