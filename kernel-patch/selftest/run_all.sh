#!/bin/bash
# run_all.sh [EXTRA_PROGRAM...] -- run inside the vm.sh guest.
# Runs every selftest binary here (TAP), then each EXTRA_PROGRAM as one test
# ("ok - name" / "not ok - name").  Exits 1 if anything failed.
cd "$(dirname "$0")" || exit 2
echo "# kernel: $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
rc=0
for t in syscalls ptrace stress; do
	echo "# ---- $t"
	./"$t" || rc=1
done
for p in "$@"; do
	name=$(basename "$p")
	echo "# ---- $name"
	if "$p"; then
		echo "ok - $name"
	else
		echo "not ok - $name (exit status $?)"
		rc=1
	fi
done
exit $rc
