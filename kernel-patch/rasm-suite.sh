#!/bin/bash
# rasm-suite.sh -- run inside the vm.sh guest: rasm's own pytest suite on the
# kernel backend, once per mechanism.  The contract, fault and semantics
# tests run unchanged (-m kernel selects their kernel parameters, and
# tests/test_kernel_backend.py); RASM_MECHANISM picks the default mechanism.
set -u
cd "$(dirname "$0")/.." || exit 2
export PYTHONDONTWRITEBYTECODE=1
rc=0
for m in ptrace inject; do
	echo "# rasm suite: kernel backend, mechanism $m"
	RASM_MECHANISM=$m .venv/bin/python -m pytest -q -p no:cacheprovider -m kernel tests || rc=1
done
exit $rc
