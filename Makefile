# director: build, test and demo entry points. `make test` is what CI (.ci/run) runs.
#
# Extending `make test`: append a target name to TEST_STEPS (they run in order, after setup),
# e.g. in this file:   TEST_STEPS += container-check
# End-to-end shell tests go in scripts/test-*.sh; scripts/run-e2e.sh, when present, runs them
# (otherwise each is run directly with bash).

CARGO ?= cargo
SHELL := /bin/bash

TEST_STEPS := test-unit test-e2e

.PHONY: all setup build test test-unit test-e2e demo clippy fmt fmt-check clean

all: build

setup:
	scripts/setup.sh

build:
	$(CARGO) build --release --workspace

test: setup
	@set -e; for step in $(TEST_STEPS); do \
		echo "== make $$step"; \
		$(MAKE) --no-print-directory $$step; \
	done

test-unit:
	$(CARGO) test --workspace

# Release binaries first (the e2e scripts run them), only when there are e2e scripts.
test-e2e:
	@set -e; shopt -s nullglob; tests=(scripts/test-*.sh); \
	if [ -x scripts/run-e2e.sh ]; then \
		$(MAKE) --no-print-directory build; scripts/run-e2e.sh; \
	elif [ $${#tests[@]} -gt 0 ]; then \
		$(MAKE) --no-print-directory build; \
		for t in "$${tests[@]}"; do echo "== $$t"; bash "$$t"; done; \
	else \
		echo "no e2e tests (scripts/test-*.sh)"; \
	fi

demo: setup build
	@test -x scripts/demo.sh || { echo "scripts/demo.sh is missing" >&2; exit 1; }
	scripts/demo.sh

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clean:
	$(CARGO) clean

# Container path (issue 10): builds docker/Dockerfile with podman (a debian:bookworm base is
# made with debootstrap when there is none), checks the image size, runs the binaries and the
# daemon on DPDK virtual devices inside it; removes all it built. Root; ~5-10 min (release
# build inside the image). Not in TEST_STEPS by default: add `TEST_STEPS += container-check`.
.PHONY: container-check
container-check:
	scripts/setup.sh --containers
	scripts/container-check.sh
