#!/usr/bin/env bash
# build.sh [--debug] [--print-path]
#
# Builds the multias test kernel: unpacks Debian's linux-source-6.12, applies
# kernel-patch/patches/*.patch, configures tinyconfig + config/base.config
# (+ config/debug.config with --debug), builds bzImage with make -j2 and
# caches it outside the repository in
#   ${RASM_KERNEL_CACHE:-/var/cache/rasm-kernel}/<key>/bzImage
# where <key> hashes the series, the config fragments, this script and the
# source tarball.  A cached kernel is reused at once.  The path of the
# bzImage is the last line on stdout; the build log goes to stderr and to
# <cache>/<key>/build.log.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
debug=0
for a in "$@"; do
	case "$a" in
	--debug) debug=1 ;;
	--print-path) ;;	# the path is always printed
	-h|--help) sed -n '2,12p' "$0"; exit 0 ;;
	*) echo "build.sh: unknown argument $a" >&2; exit 2 ;;
	esac
done

tarball=/usr/src/linux-source-6.12.tar.xz
cache_root=${RASM_KERNEL_CACHE:-/var/cache/rasm-kernel}
jobs=${RASM_KERNEL_JOBS:-2}

log() { echo "build.sh: $*" >&2; }

# Build dependencies come from scripts/install-deps.sh; wait for a dpkg or
# apt run that may still be installing them.
need_deps() {
	[ -f "$tarball" ] || return 0
	local t
	for t in gcc make flex bison bc xz qemu-system-x86_64; do
		command -v "$t" >/dev/null || return 0
	done
	[ -e /usr/include/libelf.h ] && [ -e /usr/include/openssl/ssl.h ] || return 0
	return 1
}
if need_deps; then
	for _ in $(seq 120); do
		pgrep -x dpkg >/dev/null || pgrep -x apt-get >/dev/null || break
		sleep 5
	done
	bash "$repo/scripts/install-deps.sh" >&2
fi
[ -f "$tarball" ] || { log "$tarball missing"; exit 1; }

patches=("$here"/patches/*.patch)
[ -e "${patches[0]}" ] || { log "no patches in $here/patches"; exit 1; }
frags=("$here/config/base.config")
[ $debug = 1 ] && frags+=("$here/config/debug.config")

key=$( {
	echo "debug=$debug"
	stat -c '%s %Y' "$tarball"
	cat "${patches[@]}" "${frags[@]}" "$here/build.sh"
} | sha256sum | cut -c1-16)
name=$([ $debug = 1 ] && echo debug || echo normal)
out="$cache_root/$name-$key"
if [ -s "$out/bzImage" ]; then
	log "cached $name kernel $out/bzImage"
	echo "$out/bzImage"
	exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock-$name-$key"
flock 9
if [ -s "$out/bzImage" ]; then	# built by a concurrent run
	echo "$out/bzImage"
	exit 0
fi

work=${RASM_KERNEL_WORK:-/var/tmp/rasm-kernel-build}/$name-$key
rm -rf "$work"
mkdir -p "$work" "$out"
blog="$out/build.log"
: >"$blog"
start=$(date +%s)
log "building $name kernel in $work (log $blog)"
{
	tar -C "$work" -xf "$tarball"
	src="$work/linux-source-6.12"
	for p in "${patches[@]}"; do
		echo "applying $(basename "$p")"
		patch -d "$src" -p1 --batch --quiet --no-backup-if-mismatch <"$p"
	done
	make -C "$src" O="$work/out" tinyconfig
	"$src/scripts/kconfig/merge_config.sh" -m -O "$work/out" \
		"$work/out/.config" "${frags[@]}"
	make -C "$src" O="$work/out" olddefconfig
} >>"$blog" 2>&1 || { tail -30 "$blog" >&2; log "prepare failed"; exit 1; }

# Every option of the fragments must have survived olddefconfig.
bad=0
while IFS= read -r line; do
	case "$line" in CONFIG_*=*) ;; *) continue ;; esac
	k=${line%%=*} v=${line#*=}
	if [ "$v" = n ]; then
		grep -q "^# $k is not set" "$work/out/.config" && continue
		grep -q "^$k=" "$work/out/.config" || continue
	else
		grep -qx "$k=$v" "$work/out/.config" && continue
	fi
	log "config: wanted $line, got $(grep "^$k=" "$work/out/.config" || echo unset)"
	bad=1
done < <(cat "${frags[@]}")
[ $bad = 0 ] || exit 1

if ! make -C "$work/linux-source-6.12" O="$work/out" -j"$jobs" bzImage >>"$blog" 2>&1; then
	grep -E 'error|Error' "$blog" | head -20 >&2
	tail -20 "$blog" >&2
	log "kernel build failed"
	exit 1
fi
cp "$work/out/arch/x86/boot/bzImage" "$out/bzImage.tmp"
cp "$work/out/.config" "$out/config"
mv "$out/bzImage.tmp" "$out/bzImage"
rm -rf "$work"
log "built $name kernel in $(( $(date +%s) - start ))s: $out/bzImage"
echo "$out/bzImage"
