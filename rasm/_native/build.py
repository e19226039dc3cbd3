"""cffi API-mode build of rasm's native layer (run by setuptools at install)."""


from pathlib import Path

from cffi import FFI

HEADER = Path(__file__).with_name("rasm_native.h")
MARKER = "/* Functions (build.py"

# The structs as cffi should see them ("..." = let the compiler size it);
# the function prototypes are read from the header itself.
STRUCTS = """
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
    int32_t nr_switch;
};
"""


def prototypes() -> str:
    text = HEADER.read_text()
    body = text[text.index(MARKER):].split("\n", 1)[1]
    return body.replace("#endif", "")


ffibuilder = FFI()
ffibuilder.cdef(STRUCTS + prototypes())
ffibuilder.set_source(
    "rasm._native._rasm_native",
    '#include "rasm_native.h"',
    sources=["rasm/_native/rasm_native.c"],
    include_dirs=["rasm/_native"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
