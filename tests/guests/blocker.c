// SPDX-License-Identifier: MIT
/*
 * blocker.c - says "ready", then blocks in one syscall so that a test can
 * attach and inject while it waits; prints how the syscall ended.
 *
 *   read        read(0): "read <text>"
 *   sleep:MS    nanosleep: "slept <ok|short>" (ok when at least MS passed)
 *   futex:MS    FUTEX_WAIT with a timeout: "futex <errno> <ok|short>"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "read";
	const char *arg = strchr(mode, ':');
	long ms = arg ? atol(arg + 1) : 0;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	static int word;
	char buf[256];
	long start;

	printf("ready\n");
	fflush(stdout);
	start = now_ms();
	if (strncmp(mode, "read", 4) == 0) {
		ssize_t n = read(0, buf, sizeof(buf) - 1);

		buf[n > 0 ? n : 0] = 0;
		printf("read %s\n", n > 0 ? buf : strerror(errno));
	} else if (strncmp(mode, "sleep", 5) == 0) {
		int r = nanosleep(&ts, NULL);

		printf("slept %d %s\n", r, now_ms() - start >= ms ? "ok" : "short");
	} else if (strncmp(mode, "futex", 5) == 0) {
		long r = syscall(SYS_futex, &word, FUTEX_WAIT, 0, &ts, NULL, 0);

		printf("futex %d %s\n", r ? errno : 0, now_ms() - start >= ms ? "ok" : "short");
	}
	return 0;
}
