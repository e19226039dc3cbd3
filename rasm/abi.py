"""The multias ABI fixed by DESIGN.md: syscall and ptrace request numbers."""

N_MM = 16  # address-space slots per task (slot 0 = the original AS)

NR_NEW_AS = 600
NR_SWITCH_AS = 601
NR_DROP_AS = 602
MULTIAS_SYSCALLS = (NR_NEW_AS, NR_SWITCH_AS, NR_DROP_AS)

PTRACE_NEW_AS = 0x4280
PTRACE_SWITCH_AS = 0x4281
PTRACE_DROP_AS = 0x4282
PTRACE_GET_AS = 0x4283

PROC_ADDRESS_SPACES = "/proc/{pid}/address_spaces"
