# What README.md promises: `make demo`, `make test-core` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD := build
STAMP := $(VENV)/.installed-stamp
NATIVE := rasm/_native/rasm_native.c rasm/_native/rasm_native.h rasm/_native/build.py

.PHONY: demo test test-core test-kernel install lint bench clean

install: $(STAMP)

# Editable install (setuptools' default mode): `import rasm` finds this tree,
# so new modules need no reinstall; the native module is rebuilt when its C
# changes.  First check what pip cannot install (scripts/check-prereqs.sh).
# PYTHONWARNINGS hides only setuptools' "Editable installation." notice that
# pip relays; pip's errors and other warnings still show.
$(STAMP): setup.cfg setup.py pyproject.toml $(NATIVE)
	@sh scripts/check-prereqs.sh $(PYTHON)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel cffi
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install -q -e '.[test]'
	touch $@

$(BUILD)/seed_demo: examples/seed_demo.c
	mkdir -p $(BUILD)
	gcc -O2 -Wall -Wextra -o $@ $<

demo: install $(BUILD)/seed_demo
	@echo "--- natively (stock kernel: multias unavailable, exit 77) ---"
	-$(BUILD)/seed_demo; echo "exit status $$?"
	@echo "--- under rasm run (process backend) ---"
	$(VENV)/bin/rasm run --backend process -- $(BUILD)/seed_demo

lint: install
	$(VENV)/bin/ruff check rasm tests examples bench

test-core: install
	$(VENV)/bin/ruff check rasm tests examples bench
	$(PY) -m pytest -q tests

# The kernel patch's own suite (build, VM, selftests), when it is present.
test-kernel:
	@if [ -x kernel-patch/ci.sh ]; then bash kernel-patch/ci.sh; \
	else echo "kernel-patch/ci.sh not present: kernel suite skipped"; fi

test: test-core test-kernel

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(BUILD) $(VENV) rasm/_native/*.so rasm/_native/_rasm_native.c *.egg-info
