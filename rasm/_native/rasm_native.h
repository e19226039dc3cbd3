/*
 * rasm native layer: the only code that issues ptrace(2) and waitpid(2).
 *
 * Every function returns a negative errno on failure and never raises: the
 * Python side (rasm/_native/__init__.py) turns errors into exceptions in one
 * place.  Hot paths (injection round trip, address-space hop) run entirely
 * here so that one Python call costs one kernel round trip.
 */
#ifndef RASM_NATIVE_H
#define RASM_NATIVE_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#define RASM_XSTATE_MAX 16384
#define RASM_MAX_SLOTS 64
#define RASM_AGAIN_SLOW INT64_MIN	/* rasm_inject_again: see rasm_again_status */

/* Everything a switch carries from one holder to another. */
struct rasm_ctx {
	struct user_regs_struct regs;
	uint64_t sigmask;
	uint64_t xlen;
	unsigned char xstate[RASM_XSTATE_MAX];
};

/* Slot table shared between Python and the serve loop. */
struct rasm_table {
	int32_t pids[RASM_MAX_SLOTS];	/* holder pid per slot, 0 = empty */
	int32_t nslots;
	int32_t current;		/* running slot; -1: serve no switch */
	int32_t nr_switch;		/* syscall number of switch_as */
};

/* Functions (build.py hands everything below this line to cffi's cdef). */

long rasm_ptrace(long request, int pid, unsigned long addr, unsigned long data);
int rasm_wait(int pid, int *status, int flags);
int rasm_same_mm(int a, int b);
int rasm_sigqueue(int pid, int sig, uint64_t token);
int rasm_prctl(int option, unsigned long arg);
int rasm_getregs(int pid, struct user_regs_struct *regs);
int rasm_setregs(int pid, const struct user_regs_struct *regs);
int rasm_save_ctx(int pid, struct rasm_ctx *ctx);
int rasm_load_ctx(int pid, const struct rasm_ctx *ctx);
int rasm_spawn(const char *path, char *const argv[], char *const envp[],
	       const void *filter, int filter_len, long options,
	       int *child_err, int *child_stage);
int rasm_inject(int pid, const struct user_regs_struct *base, uint64_t stub,
		int64_t nr, const int64_t args[6], int64_t *ret, int *status);
int rasm_inject_finish(int pid, uint64_t stub, int64_t *ret, int *status);
int64_t rasm_inject_again(int pid, uint64_t stub, int64_t nr);
extern int rasm_again_status;
int rasm_serve(struct rasm_table *table, struct rasm_ctx *scratch,
	       int *status, int flags);

#endif
