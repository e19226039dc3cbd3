// SPDX-License-Identifier: GPL-2.0
/*
 * multias under concurrency and at scale: /proc readers during a switch
 * loop, SIGKILL during a switch loop, and no mm leaked after many
 * create/drop cycles or exits.  One property each.
 *
 * MULTIAS_CYCLES (default 100000) sets the create/drop cycle count.
 */
#include <dirent.h>

#include "multias_test.h"
#include <sys/klog.h>
#include <sys/uio.h>

#define NAS 4

static volatile long *shared_flag;
static char *pages;		/* one private page per AS, same address */

static void switch_loop_body(void)
{
	long i, n;

	for (n = 1; n < NAS; n++)
		ASSERT_EQ(new_as(), n);
	for (i = 0; !*shared_flag; i++) {
		n = i % NAS;
		ASSERT_EQ(switch_as(n), 0);
		if (pages[0] != 0 && pages[0] != n + 1)
			mt_fail(__FILE__, __LINE__, "AS %ld sees %d", n, pages[0]);
		pages[0] = n + 1;
	}
	ASSERT_EQ(switch_as(0), 0);
}

static pid_t start_switcher(void)
{
	pid_t pid;

	shared_flag = shared_alloc(4096);
	pages = private_alloc(4096);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		run_shared(switch_loop_body);
		_exit(0);
	}
	return pid;
}

/* readers 0-3 read these files whole; the others read mem and vm_readv */
static const char *const proc_files[] = { "maps", "smaps", "address_spaces", "status" };

static void reader(pid_t pid, int kind)
{
	char path[64], buf[65536];
	struct iovec local = { buf, 4096 }, remote = { pages, 4096 };
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid,
		 kind < 4 ? proc_files[kind] : "mem");
	for (;;) {
		fd = open(path, O_RDONLY);
		if (fd < 0)
			_exit(0);	/* the switcher is gone */
		if (kind >= 4) {
			/* new mm_access() every time: races with the switch */
			if (pread(fd, buf, 4096, (long)pages) < 0 && errno != EIO)
				_exit(1);
			process_vm_readv(pid, &local, 1, &remote, 1, 0);
		} else {
			while (read(fd, buf, sizeof(buf)) > 0)
				;
		}
		close(fd);
	}
}

TEST_T(proc_readers_during_switch_loop, 300)
{
	pid_t sw, rd[6];
	int i, status;

	sw = start_switcher();
	for (i = 0; i < 6; i++) {
		rd[i] = fork();
		ASSERT_TRUE(rd[i] >= 0);
		if (rd[i] == 0)
			reader(sw, i);
	}
	sleep(5);
	*shared_flag = 1;
	ASSERT_EQ(waitpid(sw, &status, 0), sw);
	ASSERT_EQ(status, 0);
	for (i = 0; i < 6; i++) {
		ASSERT_EQ(waitpid(rd[i], &status, 0), rd[i]);
		ASSERT_EQ(status, 0);
	}
}

/* The same readers while a tracer switches, drops and re-creates ASes. */
TEST_T(proc_readers_during_remote_switch_loop, 300)
{
	struct timespec t0, t;
	pid_t tr, rd[6];
	int i, status;
	long n, iter = 0;

	pages = private_alloc(4096);
	tr = fork();
	ASSERT_TRUE(tr >= 0);
	if (tr == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		_exit(0);
	}
	ASSERT_EQ(waitpid(tr, &status, 0), tr);
	ASSERT_TRUE(WIFSTOPPED(status));
	for (n = 1; n < NAS; n++)
		ASSERT_EQ(ptrace(PTRACE_NEW_AS, tr, 0, 0), n);
	for (i = 0; i < 6; i++) {
		rd[i] = fork();
		ASSERT_TRUE(rd[i] >= 0);
		if (rd[i] == 0)
			reader(tr, i);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		n = iter % NAS;
		ASSERT_EQ(ptrace(PTRACE_SWITCH_AS, tr, 0, n), 0);
		if (iter % 16 == 0 && n != NAS - 1) {
			ASSERT_EQ(ptrace(PTRACE_DROP_AS, tr, 0, NAS - 1), 0);
			ASSERT_EQ(ptrace(PTRACE_NEW_AS, tr, 0, 0), NAS - 1);
		}
		iter++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 5);
	mt_note("%ld remote switches\n", iter);
	ASSERT_EQ(ptrace(PTRACE_SWITCH_AS, tr, 0, 0), 0);
	ASSERT_EQ(kill(tr, SIGKILL), 0);
	ASSERT_EQ(waitpid(tr, &status, 0), tr);
	for (i = 0; i < 6; i++) {
		ASSERT_EQ(waitpid(rd[i], &status, 0), rd[i]);
		ASSERT_EQ(status, 0);
	}
}

TEST_T(sigkill_during_switch_loop, 300)
{
	int i, status;

	srand(getpid());
	for (i = 0; i < 40; i++) {
		pid_t sw = start_switcher();

		usleep(1000 + rand() % 30000);
		ASSERT_EQ(kill(sw, SIGKILL), 0);
		ASSERT_EQ(waitpid(sw, &status, 0), sw);
		ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	}
}

static long slab_objs(const char *name)
{
	char buf[1 << 16], *p;

	if (read_file("/proc/slabinfo", buf, sizeof(buf)) < 0)
		return -1;
	p = strstr(buf, name);
	return p ? atol(p + strlen(name)) : -1;
}

/* KASAN's quarantine keeps freed objects counted in /proc/slabinfo */
static int kasan_enabled(void)
{
	static char log[1 << 20];
	int n = klogctl(3, log, sizeof(log) - 1);	/* SYSLOG_ACTION_READ_ALL */

	if (n <= 0)
		return 0;
	log[n] = 0;
	return strstr(log, "KernelAddressSanitizer initialized") != NULL;
}

/*
 * Shrink every slab cache.  Under KASAN this also empties the quarantine
 * (kmem_cache_shrink() -> kasan_cache_shrink()), which otherwise keeps up
 * to 1/32 of RAM of freed objects allocated and would read as a leak.
 */
static void shrink_slabs(void)
{
	DIR *dir = opendir("/sys/kernel/slab");
	struct dirent *e;
	char path[512];
	int fd;

	if (!dir)
		return;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink", e->d_name);
		fd = open(path, O_WRONLY);
		if (fd >= 0) {
			if (write(fd, "1", 1) < 0)
				mt_note("%s: %s\n", path, strerror(errno));
			close(fd);
		}
	}
	closedir(dir);
}

static void settle(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	sync();
	if (fd >= 0) {
		if (write(fd, "3", 1) < 0)
			mt_note("drop_caches: %s\n", strerror(errno));
		close(fd);
	}
	usleep(200000);
	shrink_slabs();
}

TEST_T(create_drop_cycles_leak_no_mm, 1800)
{
	long cycles = getenv("MULTIAS_CYCLES") ? atol(getenv("MULTIAS_CYCLES")) : 100000;
	long before, after, mm0, mm1, i;
	int status;
	pid_t pid;

	settle();
	before = mem_available_kb();
	mm0 = slab_objs("mm_struct ");
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		char *p = private_alloc(1 << 20);

		memset(p, 1, 1 << 20);
		for (i = 0; i < cycles; i++) {
			long n = new_as();

			ASSERT_TRUE(n == 1 || (i == 0 && n == 1));
			ASSERT_EQ(drop_as(n), 0);
		}
		/* and a full table, dropped slot by slot */
		while (new_as() > 0)
			;
		for (i = 1; i < N_MM; i++)
			ASSERT_EQ(drop_as(i), 0);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(status, 0);
	settle();
	after = mem_available_kb();
	mm1 = slab_objs("mm_struct ");
	mt_note("%ld cycles: MemAvailable %ld -> %ld kB, mm_struct objs %ld -> %ld\n",
		cycles, before, after, mm0, mm1);
	/* a leaked mm costs at least its pgd page: 4 kB per cycle */
	ASSERT_TRUE(after > before - 16384 - cycles / 64);
	if (mm0 >= 0 && mm1 >= 0 && !kasan_enabled())
		ASSERT_TRUE(mm1 < mm0 + 64);
}

TEST_T(exit_and_exec_release_every_slot, 900)
{
	long before, after;
	int i, status;
	pid_t pid;

	settle();
	before = mem_available_kb();
	for (i = 0; i < 200; i++) {
		pid = fork();
		ASSERT_TRUE(pid >= 0);
		if (pid == 0) {
			char *p = private_alloc(256 << 10);
			long n;

			while ((n = new_as()) > 0) {
				ASSERT_EQ(switch_as(n), 0);
				memset(p, n, 256 << 10);	/* private copy per AS */
			}
			drop_as(2);			/* a hole */
			if (i % 2)
				execl("/bin/true", "true", NULL);
			_exit(0);
		}
		ASSERT_EQ(waitpid(pid, &status, 0), pid);
		ASSERT_EQ(status, 0);
	}
	settle();
	after = mem_available_kb();
	mt_note("200 exits/execs: MemAvailable %ld -> %ld kB\n", before, after);
	/* a leak would be 200 * 14 * 256 kB = 700 MB */
	ASSERT_TRUE(after > before - 32768);
}

TEST_MAIN
