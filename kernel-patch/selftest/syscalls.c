// SPDX-License-Identifier: GPL-2.0
/*
 * new_as / switch_as / drop_as: slots, errors, reuse, memory isolation,
 * fork, exec, threads and /proc/<pid>/address_spaces.  One property each.
 */
#include "multias_test.h"
#include <pthread.h>
#include <sched.h>

static int *priv;	/* private page: one copy per AS */
static int *shr;	/* MAP_SHARED page: seen by every AS */

TEST(first_new_as_returns_slot_1)
{
	ASSERT_EQ(new_as(), 1);
}

TEST(slots_fill_lowest_first_then_enoent)
{
	long i;

	for (i = 1; i < N_MM; i++)
		ASSERT_EQ(new_as(), i);
	ASSERT_ERR(new_as(), ENOENT);
	ASSERT_EQ(as_slots(getpid(), NULL), (1UL << N_MM) - 1);
}

TEST(switch_bad_index_is_enoent)
{
	ASSERT_ERR(switch_as(1), ENOENT);	/* no table yet */
	ASSERT_ERR(switch_as(0), ENOENT);	/* slot 0 is filled by new_as */
	ASSERT_EQ(new_as(), 1);
	ASSERT_ERR(switch_as(-1), ENOENT);
	ASSERT_ERR(switch_as(2), ENOENT);	/* empty */
	ASSERT_ERR(switch_as(N_MM), ENOENT);	/* out of range */
	ASSERT_ERR(switch_as(1L << 32), ENOENT);	/* no truncation to int */
	ASSERT_EQ(switch_as(0), 0);		/* current: no-op */
}

TEST(drop_errors)
{
	ASSERT_ERR(drop_as(0), ENOENT);		/* no table */
	ASSERT_EQ(new_as(), 1);
	ASSERT_ERR(drop_as(0), EBUSY);		/* current */
	ASSERT_ERR(drop_as(2), ENOENT);		/* empty */
	ASSERT_ERR(drop_as(-1), ENOENT);
	ASSERT_ERR(drop_as(N_MM), ENOENT);
	ASSERT_ERR(drop_as(1L << 32), ENOENT);
	ASSERT_EQ(drop_as(1), 0);
	ASSERT_ERR(drop_as(1), ENOENT);		/* already dropped */
}

TEST(dropped_slot_is_reused)
{
	ASSERT_EQ(new_as(), 1);
	ASSERT_EQ(new_as(), 2);
	ASSERT_EQ(new_as(), 3);
	ASSERT_EQ(drop_as(2), 0);
	ASSERT_EQ(as_slots(getpid(), NULL), 0xbUL);
	ASSERT_EQ(new_as(), 2);
	ASSERT_EQ(new_as(), 4);
}

static void isolation_body(void)
{
	*priv = 100;
	*shr = 0;
	ASSERT_EQ(new_as(), 1);			/* copy sees 100 */
	ASSERT_EQ(new_as(), 2);
	ASSERT_EQ(switch_as(1), 0);
	ASSERT_EQ(*priv, 100);
	*priv = 101;
	*shr += 1;
	ASSERT_EQ(switch_as(2), 0);
	ASSERT_EQ(*priv, 100);			/* slot 1's write is not here */
	*priv = 102;
	*shr += 1;
	ASSERT_EQ(switch_as(0), 0);
	ASSERT_EQ(*priv, 100);
	ASSERT_EQ(switch_as(1), 0);
	ASSERT_EQ(*priv, 101);
	ASSERT_EQ(switch_as(2), 0);
	ASSERT_EQ(*priv, 102);
	ASSERT_EQ(*shr, 2);			/* MAP_SHARED is common */
	ASSERT_EQ(switch_as(0), 0);
}

TEST(private_memory_is_per_as_shared_is_common)
{
	priv = private_alloc(4096);
	shr = shared_alloc(4096);
	run_shared(isolation_body);
}

static void cur_body(void)
{
	int cur;

	ASSERT_EQ(as_slots(getpid(), &cur), 1);	/* no table: "0*" */
	ASSERT_EQ(cur, 0);
	ASSERT_EQ(new_as(), 1);
	ASSERT_EQ(new_as(), 2);
	ASSERT_EQ(switch_as(2), 0);
	ASSERT_EQ(as_slots(getpid(), &cur), 7);
	ASSERT_EQ(cur, 2);
	ASSERT_EQ(drop_as(1), 0);
	ASSERT_EQ(as_slots(getpid(), &cur), 5);
	ASSERT_EQ(cur, 2);
	ASSERT_EQ(drop_as(0), 0);		/* slot 0 may go when not current */
	ASSERT_EQ(as_slots(getpid(), &cur), 4);
	ASSERT_EQ(new_as(), 0);			/* and is reused first */
}

TEST(proc_address_spaces_lists_slots_and_current)
{
	run_shared(cur_body);
}

static void rss_body(void)
{
	char path[64], buf[1024], *l;
	long rss[2] = { -1, -1 };
	char *big = private_alloc(64 << 20);

	ASSERT_EQ(new_as(), 1);
	ASSERT_EQ(switch_as(1), 0);
	memset(big, 1, 64 << 20);		/* 64 MiB only in slot 1 */
	snprintf(path, sizeof(path), "/proc/%d/address_spaces", getpid());
	ASSERT_TRUE(read_file(path, buf, sizeof(buf)) > 0);
	for (l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : l) {
		int n = atoi(l);

		if (n < 2)
			rss[n] = atol(strchr(l, '\t') + 1);
	}
	ASSERT_TRUE(rss[1] >= rss[0] + 60 * 1024);
	ASSERT_EQ(switch_as(0), 0);
}

TEST(proc_address_spaces_rss_is_per_slot)
{
	run_shared(rss_body);
}

static void fork_setup(void)
{
	*priv = 1;
	ASSERT_EQ(new_as(), 1);
	ASSERT_EQ(switch_as(1), 0);
	*priv = 2;
}

static void fork_check_parent(void)
{
	int cur;

	ASSERT_EQ(as_slots(getpid(), &cur), 3);	/* parent's table intact */
	ASSERT_EQ(cur, 1);
	ASSERT_EQ(switch_as(0), 0);
	ASSERT_EQ(*priv, 1);
	/* return to the private stack in the AS that called run_shared() */
	ASSERT_EQ(switch_as(1), 0);
}

TEST(fork_child_gets_current_as_only)
{
	int status, cur;
	pid_t pid;

	priv = private_alloc(4096);
	run_shared(fork_setup);
	/* back on the private stack (slot 1's copy): fork from here */
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		/* only the current AS, and no table */
		if (*priv != 2)
			_exit(10);
		if (as_slots(getpid(), &cur) != 1 || cur != 0)
			_exit(11);
		if (switch_as(1) != -1 || errno != ENOENT)
			_exit(12);
		if (new_as() != 1)		/* a table of its own */
			_exit(13);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(status, 0);
	run_shared(fork_check_parent);
}

TEST(exec_drops_table)
{
	int status;
	pid_t pid;

	ASSERT_EQ(new_as(), 1);
	ASSERT_EQ(new_as(), 2);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		ASSERT_EQ(new_as(), 1);
		ASSERT_EQ(new_as(), 2);
		execl("/proc/self/exe", "syscalls", "--exec-child", NULL);
		_exit(20);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(status, 0);
}

TEST(failed_exec_keeps_table)
{
	char *argv[] = { "nonexistent", NULL };

	ASSERT_EQ(new_as(), 1);
	ASSERT_ERR(execve("/nonexistent/multias", argv, NULL), ENOENT);
	ASSERT_EQ(as_slots(getpid(), NULL), 3);
	ASSERT_ERR(drop_as(0), EBUSY);		/* still the table's slot 0 */
	ASSERT_EQ(drop_as(1), 0);
}

static int exec_child(void)
{
	int cur;

	if (as_slots(getpid(), &cur) != 1 || cur != 0)
		return 21;
	if (switch_as(1) != -1 || errno != ENOENT)
		return 22;
	if (new_as() != 1)
		return 23;
	return 0;
}

TEST(exit_with_full_table_and_holes)
{
	int i, status;
	pid_t pid;

	/* exit releases every slot, also after a hole (2007 bug) */
	for (i = 0; i < 20; i++) {
		pid = fork();
		ASSERT_TRUE(pid >= 0);
		if (pid == 0) {
			while (new_as() > 0)
				;
			drop_as(3);
			drop_as(7);
			_exit(0);
		}
		ASSERT_EQ(waitpid(pid, &status, 0), pid);
		ASSERT_EQ(status, 0);
	}
}

static void *idle_thread(void *arg)
{
	pause();
	return arg;
}

static int clone_vm_child(void *arg)
{
	(void)arg;
	pause();
	return 0;
}

TEST(new_as_with_threads_is_ebusy)
{
	pthread_t t;

	ASSERT_EQ(pthread_create(&t, NULL, idle_thread, NULL), 0);
	ASSERT_ERR(new_as(), EBUSY);
}

TEST(clone_thread_with_table_is_ebusy)
{
	char *stack = private_alloc(1 << 16);
	pthread_t t;

	ASSERT_EQ(new_as(), 1);
	ASSERT_ERR(clone(clone_vm_child, stack + (1 << 16),
			 CLONE_VM | CLONE_THREAD | CLONE_SIGHAND, NULL), EBUSY);
	ASSERT_TRUE(pthread_create(&t, NULL, idle_thread, NULL) != 0);
}

TEST(new_as_with_clone_vm_sharer_is_ebusy)
{
	char *stack = private_alloc(1 << 16);
	pid_t pid;

	pid = clone(clone_vm_child, stack + (1 << 16), CLONE_VM | SIGCHLD, NULL);
	ASSERT_TRUE(pid > 0);
	ASSERT_ERR(new_as(), EBUSY);
	kill(pid, SIGKILL);
	ASSERT_EQ(waitpid(pid, NULL, 0), pid);
	ASSERT_EQ(new_as(), 1);		/* no sharer any more */
}

static void vfork_body(void)
{
	int status;
	pid_t pid;

	ASSERT_EQ(new_as(), 1);
	ASSERT_EQ(switch_as(1), 0);
	pid = vfork();			/* CLONE_VM | CLONE_VFORK is allowed */
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		if (syscall(__NR_switch_as, 1) == -1 && errno == ENOENT)
			_exit(0);	/* the child has no table */
		_exit(30);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(status, 0);
	ASSERT_EQ(switch_as(0), 0);
}

TEST(vfork_child_has_no_table)
{
	run_shared(vfork_body);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--exec-child"))
		return exec_child();
	return mt_main(argc, argv);
}
