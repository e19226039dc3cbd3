// SPDX-License-Identifier: GPL-2.0
/*
 * seed_demo.c - the multias seed's usage recipe as a real program.
 *
 * 1. Make our own data+bss MAP_SHARED (mmap, memcpy, mremap onto the old
 *    address), so every address space (AS) made later sees it.
 * 2. Put the signal altstack and a worker stack in that shared region: code
 *    running there may call switch_as() anywhere, because its stack is the
 *    same memory in every AS.  The ordinary main stack is private per AS.
 * 3. new_as() until -ENOENT (16 slots), give each AS a private value, then
 *    hop between ASes from SIGALRM and check that privacy and sharing hold.
 * 4. drop_as() everything but slot 0 and print what each AS saw.
 *
 * Needs a kernel with the multias patch or `rasm run -- seed_demo`.
 * Exit: 0 ok, 1 mismatch, 77 multias unavailable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define __NR_new_as	600
#define __NR_switch_as	601
#define __NR_drop_as	602
#define N_MM		16
#define ROUNDS		10		/* visits per AS */
#define TICK_US		500		/* SIGALRM period */
#define STACK_SIZE	(64 * 1024)
#define MAGIC(n)	(0x5eed0000L + (n) * 0x1111L)

/* Raw syscall: no errno, and "memory" because switch_as changes what memory holds. */
static inline long sys1(long nr, long a)
{
	long ret;

	asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a) : "rcx", "r11", "memory");
	return ret;
}
#define new_as()	sys1(__NR_new_as, 0)
#define switch_as(n)	sys1(__NR_switch_as, (n))
#define drop_as(n)	sys1(__NR_drop_as, (n))

/* Lives in a MAP_PRIVATE page: each AS has its own copy after new_as(). */
struct priv {
	long slot, magic, visits;
};

/* Everything static below is in .data/.bss, hence shared by all ASes. */
static volatile struct {
	int nas, cur, off_stack;
	long want, hops, err, bad_slot, bad_val;
	long seen[N_MM], visits[N_MM];
} sh;
static volatile struct priv *priv;	/* same address everywhere, private contents */
static char altstack[STACK_SIZE] __attribute__((aligned(4096)));
static char workstack[STACK_SIZE] __attribute__((aligned(4096)));
static ucontext_t main_ctx, work_ctx;
static uintptr_t shared_lo;
static size_t shared_len;

static void die(const char *msg)
{
	fprintf(stderr, "seed_demo: %s\n", msg);
	exit(1);
}

/*
 * Step 1, as in the seed: replace data..bss by a shared copy at the same
 * address.  Unlike the seed we stop at `end`, not sbrk(0): the heap (malloc,
 * stdio buffers) stays private, so libc in each AS keeps a consistent view.
 */
static void share_data(void)
{
	extern char __data_start[], end[];	/* from crt1 and the linker */
	uintptr_t pg = sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)__data_start & ~(pg - 1);
	size_t len = (((uintptr_t)end + pg - 1) & ~(pg - 1)) - lo;
	char line[256], *p;
	FILE *f;
	int ok = 0;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap shared");
	/* Nothing may write data/bss between the copy and the remap. */
	memcpy(p, (char *)lo, len);
	p = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (char *)lo);
	if (p != (char *)lo)
		die("mremap onto data segment");

	/* Trust but verify: the kernel must now call our data shared ("rw-s"). */
	f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) == 3 &&
		    s <= (uintptr_t)&sh && (uintptr_t)&sh < e)
			ok = !strcmp(perms, "rw-s") && s <= lo && lo + len <= e;
	}
	if (f)
		fclose(f);
	if (!ok)
		die("data segment is not one rw-s mapping after the remap");
	shared_lo = lo;
	shared_len = len;
}

/* One-shot timer, re-armed after each hop: that also works when each AS is a
 * separate host process (rasm's process backend), as itimers are per process. */
static void arm_timer(long us)
{
	struct itimerval it = { .it_value = { .tv_usec = us } };

	setitimer(ITIMER_REAL, &it, NULL);
}

/* Step 3: runs on the shared altstack, so switching AS under our feet is fine. */
static void on_alarm(int sig)
{
	uintptr_t sp = (uintptr_t)&sig;
	int next;
	long r;

	if (sh.err || sh.hops >= sh.want)
		return;
	if (sp < (uintptr_t)altstack || sp >= (uintptr_t)altstack + STACK_SIZE)
		sh.off_stack = 1;
	next = (sh.cur + 1) % sh.nas;
	r = switch_as(next);
	if (r) {
		sh.err = r;
		return;
	}
	sh.cur = next;
	if (priv->slot != next || priv->magic != MAGIC(next)) {
		sh.bad_slot = next;
		sh.bad_val = priv->slot;
		sh.err = -EFAULT;
		return;
	}
	priv->visits++;		/* private: counts only this AS's visits */
	sh.seen[next]++;	/* shared: the same tally, seen from everywhere */
	if (++sh.hops < sh.want)
		arm_timer(TICK_US);
}

/* Runs on the shared workstack: may call switch_as() directly, too. */
static void worker(void)
{
	struct timespec t0, t;
	int n;

	for (n = 0; n < sh.nas; n++) {	/* give each AS its private value */
		if (switch_as(n))
			die("switch_as during setup");
		priv->slot = n;
		priv->magic = MAGIC(n);
		priv->visits = 0;
	}
	if (switch_as(0))
		die("switch_as(0)");
	sh.cur = 0;
	sh.want = (long)sh.nas * ROUNDS;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	arm_timer(TICK_US);
	/* Spin without syscalls: the signal may hit any user instruction. */
	while (!sh.err && sh.hops < sh.want) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 10) {
			sh.err = -ETIMEDOUT;
			break;
		}
	}
	arm_timer(0);
	for (n = 0; n < sh.nas && !sh.err; n++) {	/* read back each private page */
		if (switch_as(n) || priv->slot != n || priv->magic != MAGIC(n)) {
			sh.bad_slot = n;
			sh.bad_val = priv->slot;
			sh.err = -EFAULT;
		}
		sh.visits[n] = priv->visits;
	}
	if (switch_as(0))
		die("switch_as(0) at the end");
	sh.cur = 0;
}	/* returns to main() through uc_link, in AS 0 */

/* Back on the private main stack, in AS 0: check, drop, summarise. */
static int report(void)
{
	long total = 0;
	int n;

	if (sh.err == -EFAULT) {
		fprintf(stderr, "seed_demo: AS %ld sees private slot %ld: privacy broken\n",
			sh.bad_slot, sh.bad_val);
		return 1;
	}
	if (sh.err) {
		fprintf(stderr, "seed_demo: hopping failed: %s\n", strerror((int)-sh.err));
		return 1;
	}
	if (sh.off_stack)
		die("SIGALRM handler did not run on the shared altstack");
	for (n = 0; n < sh.nas; n++)
		if (sh.visits[n] != sh.seen[n] || sh.seen[n] != ROUNDS)
			die("private visit count differs from shared tally");

	/* Step 4: the drop_as() contract, then free every slot but ours. */
	if (drop_as(0) != -EBUSY)
		die("drop_as(current) should be -EBUSY");
	if (drop_as(N_MM) != -ENOENT || drop_as(-1) != -ENOENT)
		die("drop_as(out of range) should be -ENOENT");
	for (n = 1; n < sh.nas; n++)
		if (drop_as(n))
			die("drop_as of a filled slot failed");
	if (drop_as(1) != -ENOENT || switch_as(1) != -ENOENT)
		die("dropped slot still usable");

	printf("shared data+bss: %#lx-%#lx (%zu pages), altstack and worker stack inside\n",
	       (unsigned long)shared_lo, (unsigned long)(shared_lo + shared_len),
	       shared_len / sysconf(_SC_PAGESIZE));
	printf("address spaces: %d (new_as -> ENOENT after %d extra)\n", sh.nas, sh.nas - 1);
	printf("  as  private value  private visits  shared tally\n");
	for (n = 0; n < sh.nas; n++) {
		printf("  %2d  %#13lx  %14ld  %12ld\n", n, MAGIC(n), sh.visits[n], sh.seen[n]);
		total += sh.visits[n];
	}
	printf("drop_as: current -> EBUSY, empty/out of range -> ENOENT, %d dropped\n",
	       sh.nas - 1);
	printf("ok: %ld hops from SIGALRM, each AS kept its private page and saw the shared tally\n",
	       total);
	return 0;
}

int main(void)
{
	stack_t ss = { .ss_sp = altstack, .ss_size = STACK_SIZE };
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_ONSTACK };
	long r;

	share_data();
	priv = mmap(NULL, sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (priv == MAP_FAILED)
		die("mmap private page");
	if (sigaltstack(&ss, NULL) || sigaction(SIGALRM, &sa, NULL))
		die("sigaltstack/sigaction");

	/* Step 2: as many ASes as the kernel gives; slot 0 is this one. */
	r = new_as();
	if (r == -ENOSYS) {
		printf("multias unavailable (new_as: ENOSYS)\n");
		return 77;
	}
	for (sh.nas = 1; r >= 0; r = new_as()) {
		if (r != sh.nas) {
			fprintf(stderr, "seed_demo: new_as gave %ld, expected %d\n", r, sh.nas);
			return 1;
		}
		sh.nas++;
	}
	if (r != -ENOENT || sh.nas != N_MM) {
		fprintf(stderr, "seed_demo: new_as failed with %ld after %d slots, expected %d then -ENOENT\n",
			r, sh.nas, N_MM);
		return 1;
	}

	/* Step 3 happens in worker(), on the shared stack. */
	getcontext(&work_ctx);
	work_ctx.uc_stack.ss_sp = workstack;
	work_ctx.uc_stack.ss_size = STACK_SIZE;
	work_ctx.uc_link = &main_ctx;
	makecontext(&work_ctx, worker, 0);
	if (swapcontext(&main_ctx, &work_ctx))
		die("swapcontext");
	return report();
}
