// SPDX-License-Identifier: GPL-2.0
/*
 * guest_getppid.c - a guest that only makes cheap syscalls.
 *
 * Run natively and under `rasm run` to show that syscalls the seccomp filter
 * lets through cost the same with rasm attached.  getppid is chosen because
 * glibc does not cache it.
 *
 * usage: guest_getppid [N [time]]	(default 1000000; exits 0; with "time",
 *	prints "getppid_ns <mean ns per call>" measured inside the guest)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long i, n = argc > 1 ? atol(argv[1]) : 1000000;
	double start = now_ns();

	for (i = 0; i < n; i++)
		syscall(SYS_getppid);
	if (argc > 2 && strcmp(argv[2], "time") == 0)
		printf("getppid_ns %.1f\n", (now_ns() - start) / n);
	return 0;
}
