#!/usr/bin/env bash
# ci.sh -- the kernel side of `make test`.
#
# Builds the normal and the debug (lockdep, KASAN, DEBUG_VM, DEBUG_LIST)
# multias kernels (cached by build.sh), builds the selftests and
# examples/seed_demo.c (when present), and runs them in the VM (vm.sh) on
# both kernels; on the normal kernel also rasm's pytest suite on the kernel
# backend (rasm-suite.sh, needs `make install`).  Every TAP result counts;
# a kernel splat, oops or timeout in a VM run fails that run.  Last line:
# "N passed, M failed".  Exit status 0 only when nothing failed.
#
# Environment: MULTIAS_CYCLES_DEBUG (default 5000) create/drop cycles of the
# leak test on the debug kernel (100000 on the normal one).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
pass=0
fail=0
work=$(mktemp -d /var/tmp/rasm-ci.XXXXXX)
trap 'rm -rf "$work"' EXIT

check() {
	local name=$1
	shift
	if "$@"; then
		echo "ok - $name"
		pass=$((pass + 1))
	else
		echo "not ok - $name"
		fail=$((fail + 1))
		return 1
	fi
}

t0=$(date +%s)
kernels=()
check "build normal kernel" "$here/build.sh" && kernels+=(normal)
check "build debug kernel" "$here/build.sh" --debug && kernels+=(debug)
selftests=0
check "build selftests" make -s -C "$here/selftest" && selftests=1

extra=()
if [ -f "$repo/examples/seed_demo.c" ]; then
	check "compile examples/seed_demo.c" \
		gcc -O2 -o "$work/seed_demo" "$repo/examples/seed_demo.c" &&
		extra+=("$work/seed_demo")
fi

if [ $selftests = 1 ]; then
	for k in "${kernels[@]}"; do
		# The normal kernel's run includes rasm's suite (two passes):
		# about 15 min on an idle 2-core host, twice that when it is busy.
		opt=(--timeout 3600)
		cycles=100000
		if [ "$k" = debug ]; then
			opt=(--debug)
			cycles=${MULTIAS_CYCLES_DEBUG:-5000}
		fi
		echo "# ==== selftests on the $k kernel"
		out="$work/$k.out"
		suite=()
		# rasm's own suite on the kernel backend (both mechanisms): once,
		# on the normal kernel (under TCG the debug kernel is ~5x slower).
		if [ "$k" = normal ] && [ -x "$repo/.venv/bin/python" ]; then
			suite=("$here/rasm-suite.sh")
		fi
		(cd "$repo" && "$here/vm.sh" "${opt[@]}" -- env MULTIAS_CYCLES="$cycles" \
			"$here/selftest/run_all.sh" "${extra[@]}" "${suite[@]}") 2>&1 | tee "$out"
		vrc=${PIPESTATUS[0]}
		ok=$(grep -E -c '^ok ' "$out")
		nok=$(grep -E -c '^not ok ' "$out")
		pass=$((pass + ok))
		fail=$((fail + nok))
		check "VM run on the $k kernel: exit status 0, no kernel splat" [ "$vrc" = 0 ]
	done
fi

echo "# ci.sh took $(( $(date +%s) - t0 ))s"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
