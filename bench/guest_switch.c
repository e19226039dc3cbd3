// SPDX-License-Identifier: GPL-2.0
/*
 * guest_switch.c - the guest for the switch_as benchmark.
 *
 * Optionally dirties N private pages (to show the switch cost does not
 * depend on AS size), makes one extra AS with new_as(), then alternates
 * switch_as(1) / switch_as(0) M times and times it from inside.
 *
 * The timed loop is one asm block that touches no memory: AS 1's stack is a
 * snapshot taken at new_as(), so nothing may rely on stack contents while AS
 * 1 is current.  The loop always ends in AS 0, where the stack is ours.
 *
 * usage: guest_switch [M [N]]	(default M = 100000 switches, N = 0 pages)
 * prints: switches <M> ns_per_switch <x>;  exit 77 if new_as is ENOSYS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define __NR_new_as	600
#define __NR_switch_as	601
#define __NR_drop_as	602

static inline long sys1(long nr, long a)
{
	long ret;

	asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a) : "rcx", "r11", "memory");
	return ret;
}

/*
 * pairs x (switch_as(1), switch_as(0)).  Returns 0, or switch_as(1)'s error
 * (still in AS 0).  If switch_as(0) fails we are stranded in AS 1 with a
 * stale stack, so exit_group(3) right there.
 */
static long switch_loop(long pairs)
{
	long ret;

	asm volatile("1:	mov $601, %%eax\n\t"
		     "	mov $1, %%edi\n\t"
		     "	syscall\n\t"
		     "	test %%rax, %%rax\n\t"
		     "	jnz 2f\n\t"
		     "	mov $601, %%eax\n\t"
		     "	xor %%edi, %%edi\n\t"
		     "	syscall\n\t"
		     "	test %%rax, %%rax\n\t"
		     "	jnz 3f\n\t"
		     "	dec %[n]\n\t"
		     "	jnz 1b\n\t"
		     "	jmp 2f\n"
		     "3:	mov $231, %%eax\n\t"
		     "	mov $3, %%edi\n\t"
		     "	syscall\n"
		     "2:"
		     : "=&a"(ret), [n] "+r"(pairs)
		     :
		     : "rdi", "rcx", "r11", "memory", "cc");
	return ret;
}

int main(int argc, char **argv)
{
	long m = argc > 1 ? atol(argv[1]) : 100000;
	long pages = argc > 2 ? atol(argv[2]) : 0;
	long pairs = m > 1 ? (m + 1) / 2 : 1;	/* even, so we end in AS 0 */
	struct timespec t0, t1;
	long r, i;
	char *p;
	double ns;

	if (pages > 0) {
		p = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			perror("guest_switch: mmap");
			return 1;
		}
		for (i = 0; i < pages; i++)
			p[i * 4096] = 1;
	}

	r = sys1(__NR_new_as, 0);
	if (r == -ENOSYS) {
		printf("multias unavailable (new_as: ENOSYS)\n");
		return 77;
	}
	if (r != 1) {
		fprintf(stderr, "guest_switch: new_as returned %ld, expected 1\n", r);
		return 1;
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = switch_loop(pairs);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r) {
		fprintf(stderr, "guest_switch: switch_as(1): %s\n", strerror((int)-r));
		return 1;
	}
	ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	printf("switches %ld ns_per_switch %.0f\n", 2 * pairs, ns / (2 * pairs));

	r = sys1(__NR_drop_as, 1);
	if (r)
		fprintf(stderr, "guest_switch: warning: drop_as(1): %s\n", strerror((int)-r));
	return 0;
}
