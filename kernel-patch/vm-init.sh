#!/bin/bash
# PID 1 of the vm.sh guest.  The root is the host's, read-only over 9p; the
# kernel passes rasm_job=<dir> in the environment.  Runs <dir>/cmd with its
# output on ttyS1 (streamed by vm.sh), stores its status in <dir>/rc and the
# kernel log in <dir>/dmesg, then reboots (qemu -no-reboot exits).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp TERM=dumb LANG=C.UTF-8

die() {
	echo "vm-init: $*" >/dev/console
	echo b >/proc/sysrq-trigger
	sleep 60
}

mount -t proc proc /proc || die "mount /proc"
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
[ -d /sys/kernel/debug ] && mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
ln -sf /proc/self/fd /dev/fd 2>/dev/null
[ -n "$rasm_job" ] || die "no rasm_job"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 rasmjob "$rasm_job" ||
	die "mount $rasm_job"
# The tmpfs mounts above hide the host's /tmp: a working directory there
# (a CI clone, say) comes in through its own read-only share.
if [ -n "$rasm_cwd" ] && [ ! -d "$rasm_cwd" ]; then
	mkdir -p "$rasm_cwd" &&
		mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro hostcwd "$rasm_cwd" ||
		die "mount $rasm_cwd"
fi
hostname rasm-vm 2>/dev/null

stty -F /dev/ttyS1 raw -echo 2>/dev/null
echo "vm-init: running $(tail -1 "$rasm_job/cmd")" >/dev/console
setsid bash "$rasm_job/cmd" </dev/null >/dev/ttyS1 2>&1
rc=$?
echo "vm-init: exit status $rc" >/dev/console
dmesg >"$rasm_job/dmesg" 2>/dev/null
echo "$rc" >"$rasm_job/rc"
sync
echo b >/proc/sysrq-trigger
sleep 60
