#!/usr/bin/env bash
# vm.sh [--debug] [--timeout SECONDS] [--smp N] -- CMD [ARGS...]
#
# Boots the multias kernel (build.sh, cached) under qemu-system-x86_64 with
# TCG, the host root read-only over virtio-9p (mount tag hostroot) and tmpfs
# on /tmp, /run and /dev/shm, runs CMD in the current directory as root (a
# directory those tmpfs mounts hide, such as a clone under /tmp, is shared
# separately, tag hostcwd) and
# streams its output.  Exits with CMD's exit status, or non-zero with the
# kernel's last lines when the kernel oopses, panics, reports a lockdep
# splat, a KASAN/UBSAN report, a BUG or WARNING, or the run times out
# (default ${RASM_VM_TIMEOUT:-1800} s).  Status 125: the VM itself failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
debug=()
timeout=${RASM_VM_TIMEOUT:-1800}
smp=${RASM_VM_SMP:-2}
mem=${RASM_VM_MEM:-4G}
while [ $# -gt 0 ]; do
	case "$1" in
	--debug) debug=(--debug); shift ;;
	--timeout) timeout=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--) shift; break ;;
	-h|--help) sed -n '2,11p' "$0"; exit 0 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: vm.sh [--debug] -- CMD [ARGS...]" >&2; exit 2; }

# RASM_VM_KERNEL: use that bzImage instead of build.sh's (kernel development)
if [ -n "${RASM_VM_KERNEL:-}" ]; then
	kernel=$RASM_VM_KERNEL
else
	kernel=$("$here/build.sh" "${debug[@]}" | tail -1)
fi

# The job directory lives under /var/tmp: the guest sees it read-only through
# the host root and mounts it writable (tag rasmjob) over the same path.
job=$(mktemp -d /var/tmp/rasm-vm.XXXXXX)
cleanup() { rm -rf "$job"; }
trap cleanup EXIT
{
	printf 'cd %q || exit 126\n' "$PWD"
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} >"$job/cmd"

cmdline=(
	console=ttyS0 loglevel=7 printk.devkmsg=on
	root=hostroot rootfstype=9p ro
	rootflags=trans=virtio,version=9p2000.L,msize=262144,cache=loose
	init="$here/vm-init.sh" rasm_job="$job" rasm_cwd="$PWD"
	acpi=off panic=-1 oops=panic softlockup_panic=1 nmi_watchdog=0
	tsc=reliable no_timer_check
	# TCG's "max" CPU has LA57; KASAN then reports a wild access when an
	# interrupt lands in identify_cpu() early in boot (rcu_is_watching()
	# on a 5-level direct-map address, 6.12.118, now and then).  Nothing
	# here needs 5-level paging.
	no5lvl
)

set +e
timeout --foreground -k 10 "$timeout" \
qemu-system-x86_64 -accel tcg,thread=multi -cpu "${RASM_VM_CPU:-max}" -smp "$smp,sockets=$smp" -m "$mem" \
	-nodefaults -display none -no-reboot \
	-kernel "$kernel" -append "${cmdline[*]}" \
	-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
	-fsdev local,id=hostcwd,path="$PWD",security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=hostcwd,mount_tag=hostcwd \
	-fsdev local,id=rasmjob,path="$job",security_model=none \
	-device virtio-9p-pci,fsdev=rasmjob,mount_tag=rasmjob \
	-serial file:"$job/console.log" \
	-chardev stdio,id=out,signal=off -serial chardev:out \
	</dev/null
qrc=$?
set -e

# Kernel trouble in the console log (and in dmesg, saved by the guest).
bad_re='BUG:|WARNING:|Oops|Kernel panic|KASAN|UBSAN|general protection fault|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|lock held when returning|blocked for more than|rcu_.*stall|list_(add|del) corruption|kernel BUG|Call Trace:'
splat=$(cat "$job/console.log" "$job/dmesg" 2>/dev/null | grep -E -m1 "$bad_re" || true)

status=
if [ -s "$job/rc" ]; then
	status=$(cat "$job/rc")
fi
fail=
if [ $qrc = 124 ] || [ $qrc = 137 ]; then
	fail="timed out after ${timeout}s"
elif [ -n "$splat" ]; then
	fail="kernel reported: $splat"
elif [ -z "$status" ]; then
	fail="no exit status from the guest (qemu status $qrc)"
fi
if [ -n "$fail" ]; then
	echo "vm.sh: FAIL: $fail" >&2
	echo "vm.sh: ---- kernel log (last lines) ----" >&2
	if [ -n "$splat" ]; then
		grep -E -A40 -m1 "$bad_re" "$job/console.log" 2>/dev/null | head -60 >&2 || true
	fi
	tail -40 "$job/console.log" >&2 || true
	echo "vm.sh: ----" >&2
	[ -n "$status" ] && [ "$status" != 0 ] && exit "$status"
	exit 125
fi
exit "$status"
