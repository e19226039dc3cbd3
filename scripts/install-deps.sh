#!/usr/bin/env bash
# Installs the Debian packages the tests need (kernel build, QEMU, kernel
# source).  Idempotent: does nothing when every package is already there.
set -euo pipefail
pkgs=(build-essential flex bison bc libelf-dev libssl-dev cpio
      qemu-system-x86 linux-source-6.12)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
