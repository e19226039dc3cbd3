// SPDX-License-Identifier: GPL-2.0
/*
 * guest_getppid.c - a guest that only makes cheap syscalls.
 *
 * Run natively and under `rasm run` to show that syscalls the seccomp filter
 * lets through cost the same with rasm attached.  getppid is chosen because
 * glibc does not cache it.
 *
 * usage: guest_getppid [N]	(default 1000000; prints nothing, exits 0)
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long i, n = argc > 1 ? atol(argv[1]) : 1000000;

	for (i = 0; i < n; i++)
		syscall(SYS_getppid);
	return 0;
}
