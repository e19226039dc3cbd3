"""cffi API-mode build of rasm's native layer (run by setuptools at install)."""


from cffi import FFI

CDEF = """
struct user_regs_struct {
    unsigned long long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
    unsigned long long rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags;
    unsigned long long rsp, ss, fs_base, gs_base, ds, es, fs, gs;
};
struct rasm_ctx {
    struct user_regs_struct regs;
    uint64_t sigmask;
    uint64_t xlen;
    unsigned char xstate[...];
};
struct rasm_table {
    int32_t pids[...];
    int32_t nslots;
    int32_t current;
    int32_t report_switches;
    int32_t nr_switch;
    uint64_t switches;
    uint64_t stub;
};
long rasm_ptrace(long request, int pid, unsigned long addr, unsigned long data);
int rasm_peekuser(int pid, unsigned long offset, uint64_t *out);
int rasm_wait(int pid, int *status, int flags);
int rasm_same_mm(int a, int b);
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
int rasm_inject_again(int pid, uint64_t stub, int64_t nr, int64_t *ret, int *status);
int rasm_serve(struct rasm_table *table, struct rasm_ctx *scratch, int *status, int flags);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "rasm._native._rasm_native",
    '#include "rasm_native.h"',
    sources=["rasm/_native/rasm_native.c"],
    include_dirs=["rasm/_native"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
