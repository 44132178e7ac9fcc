# husk — see README.md. `make demo` and `make test` set up everything they need.
CARGO ?= cargo
RUNC ?= /usr/sbin/runc
PREFIX ?= /usr/local

.PHONY: all deps build release demo test test-unit test-integration test-runc test-vm bench e2e lint install clean

all: build

deps:
	@sh hack/deps.sh

build: deps
	$(CARGO) build

release: deps
	$(CARGO) build --release

# Runs a real busybox container (needs root).
demo: release
	sh hack/demo.sh target/release/husk

# Unit tests, then the integration suite against husk, then the same suite against runc
# (proving the tests encode runc's behaviour). Needs root.
test: build test-unit test-integration test-runc

test-unit:
	$(CARGO) test --bin husk -- --test-threads=2

test-integration:
	$(CARGO) test -p integration-tests -- --test-threads=2

test-runc:
	HUSK=$(RUNC) $(CARGO) test -p integration-tests -- --test-threads=2

# The cgroup tests (and the lifecycle and bad-input ones) inside a qemu VM (Debian's 6.1 kernel,
# TCG) on a pure cgroup v1 and a pure cgroup v2 host — layouts this machine cannot switch to.
# Under TCG the whole suite takes over 10 minutes a layout: VM_TESTS= (empty) runs all of it.
# See hack/vm/README.md.
VM_TESTS ?= cgroups lifecycle errors fixtures
test-vm: build
	hack/vm/run-tests.sh v1 $(VM_TESTS)
	hack/vm/run-tests.sh v2 $(VM_TESTS)

# husk, crun and runc interleaved on the same bundle (needs root; not part of the tests).
# BENCH_ARGS="--rounds 20 --scenarios 1,2" to narrow it. Results: docs/performance.md.
bench: release
	hack/bench $(BENCH_ARGS)

# End to end: Podman (through conmon) and containerd (through its runc shim) with husk, and with
# runc beside it so a host problem shows in both columns. Needs root; installs podman, conmon,
# containerd, ... with apt-get when missing; private storage and daemon. E2E_RUNTIMES=husk for husk only.
E2E_RUNTIMES ?= husk $(RUNC)
e2e: build
	bash hack/e2e-podman.sh $(E2E_RUNTIMES); p=$$?; bash hack/e2e-containerd.sh $(E2E_RUNTIMES); c=$$?; \
		[ $$p = 0 ] && [ $$c = 0 ]

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

install: release
	install -D -m 0755 target/release/husk $(DESTDIR)$(PREFIX)/bin/husk

clean:
	$(CARGO) clean
