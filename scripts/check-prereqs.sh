#!/bin/sh
# check-prereqs.sh [PYTHON] -- what `make install` (and so `make demo`)
# needs before pip runs: x86_64, Python >= 3.11 with venv/ensurepip and its
# headers (cffi compiles rasm/_native), gcc and the libc/Linux headers.
# Silent when all is there; otherwise one message naming the Debian/Ubuntu
# packages to install, and exit status 1.
py=${1:-python3}
missing=""   # what is missing, one "  - ..." line each
pkgs=""      # the apt packages that provide it

need() { # need DESCRIPTION PACKAGE
	missing="$missing  - $1
"
	case " $pkgs " in *" $2 "*) ;; *) pkgs="${pkgs:+$pkgs }$2" ;; esac
}

arch=$(uname -m)
if [ "$arch" != x86_64 ]; then
	echo "rasm runs on x86_64 Linux only (this machine: $arch)." >&2
	exit 1
fi

if ! command -v "$py" >/dev/null 2>&1; then
	need "Python 3.11 or newer ($py not found)" python3
	need "venv support for it" python3-venv
	need "its C headers" python3-dev
	ver=""
else
	ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
	if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
		echo "rasm needs Python >= 3.11; $py is ${ver:-unusable}." >&2
		echo "Install a newer one and run make with PYTHON=python3.X (e.g. make demo PYTHON=python3.12)." >&2
		exit 1
	fi
	# Debian splits ensurepip (which `python3 -m venv` needs) into python3.X-venv.
	"$py" -c 'import venv, ensurepip' >/dev/null 2>&1 ||
		need "venv support for $py (the ensurepip module)" "python$ver-venv"
	"$py" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
		2>/dev/null || need "C headers for $py (Python.h)" "python$ver-dev"
fi

if ! command -v gcc >/dev/null 2>&1; then
	need "a C compiler (gcc)" gcc
elif ! printf '#include <stdio.h>\n#include <sys/ptrace.h>\n#include <linux/seccomp.h>\n' |
	gcc -fsyntax-only -x c - >/dev/null 2>&1; then
	need "the C library and Linux headers (stdio.h, sys/ptrace.h, linux/seccomp.h)" libc6-dev
fi

[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo "; fi
{
	echo "rasm: cannot build yet, missing:"
	printf '%s' "$missing"
	echo "On Debian/Ubuntu install them with:"
	echo "  ${sudo}apt-get install $pkgs"
} >&2
exit 1
