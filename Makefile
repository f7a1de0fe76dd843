# dtls-proxyd — build, run and test.
#
#   make run    install what is missing, build (release), create a development
#               certificate, start udp-echo on 127.0.0.1:5683 and the daemon on
#               127.0.0.1:5684 in front of it
#   make test   install what is missing, build, run the unit tests and the
#               integration tests (the real binary against OpenSSL, GnuTLS, socat)
#   make bench  release build, then dtls-proxy-bench: direct UDP, a plaintext
#               relay, the daemon and socat side by side (about 3 minutes);
#               writes bench-results/latest.json, docs/bench/latest.png, BENCHMARKS.md
#   make bench-compare BASE=<git rev>  the daemon of this tree and that of BASE
#               (built in a temporary git worktree) in alternating rounds of one
#               run; writes bench-results/compare.json and compare.md
#   make install  release build, then binary, systemd units and example
#               configuration under DESTDIR/PREFIX (see install-files)
#   make fuzz   build the libFuzzer targets and run each for FUZZ_SECONDS
#   make sanitize  the unit tests under AddressSanitizer, then ThreadSanitizer,
#               then the integration tests against an AddressSanitizer daemon

SHELL  := /bin/bash
SWIFT  ?= swift
PYTHON ?= python3

CONFIG       ?= config/dtls-proxy.toml
ECHO_LISTEN  ?= 127.0.0.1:5683
CERT         := config/server.pem
KEY          := config/server.key
DEBUG_BIN    := .build/debug
RELEASE_BIN  := .build/release

# Debian packages the build and the tests need (systemd: systemd-analyze and
# systemd-socket-activate for the unit and socket-activation tests; it need not run as init).
DEB_PACKAGES := libssl-dev libsystemd-dev pkg-config openssl gnutls-bin socat libcoap3-bin systemd iproute2 iptables conntrack

# Where `make install` puts things; DESTDIR is prepended to each.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
DOCDIR      ?= $(PREFIX)/share/doc/dtls-proxyd
SYSCONFDIR  ?= /etc
INSTALL_BIN ?= $(RELEASE_BIN)/dtls-proxyd

.PHONY: all help lint format deps build release cert run test unit-test integration-test check-config bench bench-compare \
        install install-files clean \
        fuzz fuzz-build sanitize sanitize-address sanitize-thread sanitize-integration

all: build

## help: list the targets and what each does
help:
	@awk '/^## [a-z-]+:/ { sub(/^## /, ""); split($$0, part, ": "); printf "  %-22s %s\n", part[1], substr($$0, length(part[1]) + 3) }' $(MAKEFILE_LIST)

## deps: install the missing Debian packages (apt-get update only when something is missing)
deps:
	@set -e; \
	command -v $(SWIFT) >/dev/null || { echo "make deps: no Swift toolchain ($(SWIFT)) on PATH; install Swift 6 first" >&2; exit 1; }; \
	installed() { dpkg-query -W -f='$${Status}' "$$1" 2>/dev/null | grep -q 'install ok installed'; }; \
	if ! command -v dpkg-query >/dev/null; then \
	  echo "make deps: not a Debian system; install by hand: $(DEB_PACKAGES) pytest pyyaml" >&2; exit 0; \
	fi; \
	missing=""; \
	for p in $(DEB_PACKAGES); do installed "$$p" || missing="$$missing $$p"; done; \
	want_pip=""; \
	if ! $(PYTHON) -m pytest --version >/dev/null 2>&1; then \
	  if [ "$$(command -v $(PYTHON))" = /usr/bin/python3 ]; then \
	    installed python3-pytest || missing="$$missing python3-pytest"; \
	  else \
	    want_pip=yes; \
	  fi; \
	fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -ne 0 ]; then echo "make deps: missing:$$missing — run as root (or apt-get install them)" >&2; exit 1; fi; \
	  echo "make deps: installing$$missing"; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi; \
	if ! $(PYTHON) -m pytest --version >/dev/null 2>&1; then \
	  echo "make deps: installing pytest with pip"; \
	  $(PYTHON) -m pip install --quiet pytest; \
	fi; \
	if ! $(PYTHON) -c 'import yaml' >/dev/null 2>&1; then \
	  echo "make deps: installing pyyaml with pip (test_deploy_manifests.py reads the Kubernetes manifests)"; \
	  $(PYTHON) -m pip install --quiet pyyaml; \
	fi

## build: debug build of every product (dtls-proxyd, udp-echo)
build:
	$(SWIFT) build

## release: optimised build (RELEASE_FLAGS adds options, e.g. --static-swift-stdlib for a container image)
RELEASE_FLAGS ?=
# What the release build adds for speed, for every module (SwiftNIO's too):
# no run-time exclusivity checks, and cross-module optimisation, so that
# SwiftNIO's and the standard library's generics are specialised into the data
# path. The debug build, which the unit and integration tests run, keeps the
# checks: an overlapping access still fails a test. BENCHMARKS.md has what
# they are worth per round trip.
OPTIMIZE_FLAGS ?= -Xswiftc -enforce-exclusivity=unchecked -Xswiftc -cross-module-optimization
release:
	$(SWIFT) build -c release $(OPTIMIZE_FLAGS) $(RELEASE_FLAGS)

## cert: a development certificate for localhost (ECDSA P-256), only when missing
cert:
	@if [ -f $(CERT) ] && [ -f $(KEY) ]; then \
	  echo "cert: $(CERT) and $(KEY) exist"; \
	else \
	  echo "cert: creating $(CERT) and $(KEY) (self-signed, CN=localhost)"; \
	  (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout $(KEY) -out $(CERT) -days 825 -subj /CN=localhost \
	    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" 2>/dev/null) && \
	  chmod 0600 $(KEY) && chmod 0644 $(CERT); \
	fi

## run: udp-echo in the background, the daemon in the foreground; Ctrl-C stops both
run: deps release cert
	@$(RELEASE_BIN)/udp-echo --listen $(ECHO_LISTEN) & echo_pid=$$!; \
	trap 'kill $$echo_pid 2>/dev/null; wait $$echo_pid 2>/dev/null' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	sleep 0.3; \
	echo; \
	echo "Talk to it from another terminal (each line you type is echoed back):"; \
	echo "    openssl s_client -dtls1_2 -connect 127.0.0.1:5684"; \
	echo "    gnutls-cli --udp --insecure -p 5684 127.0.0.1"; \
	echo "Stop with Ctrl-C."; \
	echo; \
	$(RELEASE_BIN)/dtls-proxyd --config $(CONFIG)

## lint: swift-format's check of every Swift file (.swift-format: 4 spaces, 120 columns)
lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Fuzz Package.swift

## format: rewrite every Swift file as swift-format lays it out
format:
	$(SWIFT) format --in-place --recursive Sources Tests Fuzz Package.swift

## test: lint, unit tests, then integration tests; fails if any fails
test: deps build
	@rc=0; \
	$(MAKE) --no-print-directory lint || rc=1; \
	$(SWIFT) test || rc=1; \
	$(PYTHON) -m pytest -q -ra Tests/IntegrationTests || rc=1; \
	exit $$rc

## bench: release build, the benchmark run, then the chart and BENCHMARKS.md.
## Loopback only; every process it starts is stopped. BENCH_ARGS passes options
## (e.g. BENCH_ARGS="--seconds 5 --skip-memory"; see dtls-proxy-bench run --help).
BENCH_ARGS  ?=
BENCH_CHART := docs/bench/latest.png
bench: deps release
	@mkdir -p bench-results $(dir $(BENCH_CHART))
	$(RELEASE_BIN)/dtls-proxy-bench run --binaries $(RELEASE_BIN) --output bench-results $(BENCH_ARGS)
	@$(PYTHON) -c 'import matplotlib' 2>/dev/null || { echo "make bench: installing matplotlib with pip"; $(PYTHON) -m pip install --quiet matplotlib; }
	$(PYTHON) scripts/bench-report.py bench-results/latest.json $(BENCH_CHART) BENCHMARKS.md

## bench-compare: BASE=<git rev>: release builds of this tree and of BASE (in a temporary
## git worktree, removed afterwards; its build folder $(BENCH_BASE_SCRATCH) is kept for the
## next comparison), then their daemons in alternating rounds of one run: medians and spread
## per figure in bench-results/compare.json and compare.md (also printed). BENCH_ARGS as for
## bench, e.g. BENCH_ARGS="--rounds 5 --seconds 2 --skip-memory".
BASE ?=
BENCH_BASE_SCRATCH := .build-bench-base
bench-compare: deps release
	@test -n "$(BASE)" || { echo "make bench-compare: name the build to compare with, e.g. BASE=HEAD~5" >&2; exit 1; }
	@set -e; \
	rev=$$(git rev-parse --verify --quiet "$(BASE)^{commit}") || { echo "make bench-compare: $(BASE) is not a commit" >&2; exit 1; }; \
	short=$$(git rev-parse --short $$rev); \
	here="$$(git rev-parse --short HEAD)$$(git diff --quiet HEAD -- Sources Package.swift || echo +changes)"; \
	tree=$$(mktemp -d /tmp/dtls-proxyd-base.XXXXXX); \
	trap 'git worktree remove --force "$$tree" 2>/dev/null || rm -rf "$$tree"; git worktree prune' EXIT; \
	git worktree add --detach --quiet "$$tree" $$rev; \
	if [ -f Package.resolved ]; then cp Package.resolved "$$tree/"; fi; \
	echo "bench-compare: release build of $(BASE) ($$short) in $$tree"; \
	$(SWIFT) build -c release $(OPTIMIZE_FLAGS) --package-path "$$tree" --scratch-path "$(CURDIR)/$(BENCH_BASE_SCRATCH)" --product dtls-proxyd; \
	mkdir -p bench-results; \
	$(RELEASE_BIN)/dtls-proxy-bench run --binaries $(RELEASE_BIN) --baseline-binaries $(BENCH_BASE_SCRATCH)/release \
	  --label "this tree ($$here)" --baseline-label "$(BASE) ($$short)" --output bench-results $(BENCH_ARGS)

## unit-test: the Swift unit tests only
unit-test:
	$(SWIFT) test

## integration-test: the real binary against real peers (debug build)
integration-test: build
	$(PYTHON) -m pytest -q -ra Tests/IntegrationTests

## check-config: validate $(CONFIG) and every file it names
check-config: build cert
	$(DEBUG_BIN)/dtls-proxyd --check-config --config $(CONFIG)

## install: release build, then install-files
install: release install-files

## install-files: $(INSTALL_BIN) to BINDIR, the units to UNITDIR (paths rewritten
## for BINDIR and SYSCONFDIR), the README, docs/ and example configuration to DOCDIR, and
## SYSCONFDIR/dtls-proxy/dtls-proxy.toml unless one exists (the private key read
## as credential:server.key, as the unit's LoadCredential= passes it). The unit
## uses DynamicUser=, so no sysusers.d or tmpfiles.d file is needed.
install-files:
	@test -x $(INSTALL_BIN) || { echo "install: $(INSTALL_BIN) is missing; run make release (or make install)" >&2; exit 1; }
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/dtls-proxy
	install -m 0755 $(INSTALL_BIN) $(DESTDIR)$(BINDIR)/dtls-proxyd
	for unit in dtls-proxyd.service dtls-proxyd.socket; do \
	  sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/usr/local/share/doc/dtls-proxyd/|$(DOCDIR)/|g' -e 's|/etc/dtls-proxy/|$(SYSCONFDIR)/dtls-proxy/|g' systemd/$$unit > $(DESTDIR)$(UNITDIR)/$$unit.tmp && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit.tmp && mv $(DESTDIR)$(UNITDIR)/$$unit.tmp $(DESTDIR)$(UNITDIR)/$$unit || exit 1; \
	done
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -d $(DESTDIR)$(DOCDIR)/docs
	install -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/docs/
	install -m 0644 config/dtls-proxy.toml $(DESTDIR)$(DOCDIR)/dtls-proxy.toml.example
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/dtls-proxy/dtls-proxy.toml ]; then \
	  echo "install: keeping the existing $(DESTDIR)$(SYSCONFDIR)/dtls-proxy/dtls-proxy.toml"; \
	else \
	  sed -e 's|^private_key = "server.key"|private_key = "credential:server.key"|' config/dtls-proxy.toml > $(DESTDIR)$(SYSCONFDIR)/dtls-proxy/dtls-proxy.toml && \
	  chmod 0644 $(DESTDIR)$(SYSCONFDIR)/dtls-proxy/dtls-proxy.toml && \
	  echo "install: wrote $(DESTDIR)$(SYSCONFDIR)/dtls-proxy/dtls-proxy.toml; put server.pem and server.key next to it"; \
	fi

## clean: build products and test caches (keeps the development certificate)
clean:
	$(SWIFT) package clean
	rm -rf $(FUZZ_SCRATCH) $(ASAN_SCRATCH) $(TSAN_SCRATCH) $(BENCH_BASE_SCRATCH)
	rm -rf .pytest_cache Tests/IntegrationTests/__pycache__ Tests/IntegrationTests/.pytest_cache

# --- Fuzzing and sanitizers (not part of `make test`; see docs/testing.md)

# The fuzz targets exist only when DTLS_PROXYD_FUZZ is set (see Package.swift);
# they and every module they use are built with libFuzzer's coverage and
# AddressSanitizer, in a scratch folder of their own. SwiftPM passes the two
# --sanitize options to the Swift compiler as separate flags, of which it keeps
# only the last (Swift code would get no coverage), hence the combined flag.
FUZZ_SANITIZE := --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=address,fuzzer
FUZZ_SECONDS ?= 600
FUZZ_RSS_LIMIT_MB ?= 2048
FUZZ_TARGETS ?= fuzz-records fuzz-config
FUZZ_SCRATCH := .build-fuzz
FUZZ_RESULTS := fuzz-results
ASAN_SCRATCH := .build-asan
TSAN_SCRATCH := .build-tsan
LSAN_SUPPRESSIONS := $(CURDIR)/Fuzz/lsan.supp
# Let the sanitizers, not Swift's backtracer, handle a crash, so that libFuzzer
# writes the input that caused it.
SANITIZER_ENV := SWIFT_BACKTRACE=enable=no LSAN_OPTIONS=suppressions=$(LSAN_SUPPRESSIONS)
# The linker warns about every ASan helper it cannot export; nothing to act on.
QUIET_LINKER := grep -v --line-buffered "Cannot export local symbol '__asan" || true

## fuzz-build: build the libFuzzer targets into $(FUZZ_SCRATCH)
fuzz-build:
	@set -o pipefail; for target in $(FUZZ_TARGETS); do \
	  DTLS_PROXYD_FUZZ=1 $(SWIFT) build --scratch-path $(FUZZ_SCRATCH) \
	    $(FUZZ_SANITIZE) --product $$target 2>&1 | { $(QUIET_LINKER); } || exit 1; \
	done

## fuzz: run each fuzz target for FUZZ_SECONDS (default 600) on its seed corpus
##       (Fuzz/corpus/<name>, with Fuzz/<name>.dict and the flags in Fuzz/<name>.options
##       when present); new inputs and crashes go to $(FUZZ_RESULTS)/<target>/
fuzz: fuzz-build
	@set -o pipefail; rc=0; bin=$(FUZZ_SCRATCH)/debug; \
	for target in $(FUZZ_TARGETS); do \
	  name=$${target#fuzz-}; out=$(FUZZ_RESULTS)/$$target; \
	  mkdir -p $$out/corpus $$out/crashes; \
	  extra=""; [ -f Fuzz/$$name.dict ] && extra="-dict=Fuzz/$$name.dict"; \
	  [ -f Fuzz/$$name.options ] && extra="$$extra $$(cat Fuzz/$$name.options)"; \
	  echo "fuzz: $$target for $(FUZZ_SECONDS)s (log: $$out/fuzz.log)"; \
	  $(SANITIZER_ENV) $$bin/$$target $$out/corpus Fuzz/corpus/$$name $$extra \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=$(FUZZ_RSS_LIMIT_MB) \
	    -artifact_prefix=$$out/crashes/ -print_final_stats=1 >$$out/fuzz.log 2>&1; \
	  status=$$?; \
	  grep -E '^(stat::|Done|INFO: -max_total_time)|^#[0-9]+.*DONE|SUMMARY|ERROR' $$out/fuzz.log | sed "s/^/  /"; \
	  if [ $$status -ne 0 ]; then \
	    echo "fuzz: $$target FAILED (exit $$status); inputs in $$out/crashes/:"; ls $$out/crashes | sed "s/^/  /"; rc=1; \
	  fi; \
	done; \
	exit $$rc

## sanitize: unit tests under AddressSanitizer and under ThreadSanitizer, then the
##           integration tests against a daemon built with AddressSanitizer
sanitize: sanitize-address sanitize-thread sanitize-integration

## sanitize-address: the unit tests under AddressSanitizer (and LeakSanitizer)
sanitize-address:
	@set -o pipefail; $(SANITIZER_ENV) $(SWIFT) test --scratch-path $(ASAN_SCRATCH) --sanitize=address 2>&1 | { $(QUIET_LINKER); }

## sanitize-thread: the unit tests under ThreadSanitizer
sanitize-thread:
	@set -o pipefail; SWIFT_BACKTRACE=enable=no TSAN_OPTIONS=halt_on_error=1 \
	  $(SWIFT) test --scratch-path $(TSAN_SCRATCH) --sanitize=thread 2>&1 | { $(QUIET_LINKER); }

## sanitize-integration: the integration tests against an AddressSanitizer daemon;
##   any sanitizer report the daemon writes (in $(FUZZ_RESULTS)/asan-daemon/) fails the run.
##   Leak checking at exit is off here (the unit tests and test_leaks.py cover leaks;
##   a daemon that fails to start leaves SwiftNIO objects in a cycle, see docs/testing.md),
##   and the flood test, which times a handshake and measures RSS, is left out: under
##   AddressSanitizer neither number means anything.
SANITIZE_PYTEST_ARGS ?= -k "not cookie_flood_spends_nothing"
sanitize-integration: deps
	@set -o pipefail; $(SWIFT) build --scratch-path $(ASAN_SCRATCH) --sanitize=address --product dtls-proxyd 2>&1 | { $(QUIET_LINKER); }
	@set -o pipefail; $(SWIFT) build --scratch-path $(ASAN_SCRATCH) --sanitize=address --product udp-echo 2>&1 | { $(QUIET_LINKER); }
	@reports=$(CURDIR)/$(FUZZ_RESULTS)/asan-daemon; rm -rf $$reports; mkdir -p $$reports; \
	bin=$(CURDIR)/$(ASAN_SCRATCH)/debug; rc=0; \
	SWIFT_BACKTRACE=enable=no LSAN_OPTIONS=suppressions=$(LSAN_SUPPRESSIONS):print_suppressions=0 \
	  ASAN_OPTIONS=log_path=$$reports/asan:detect_leaks=0 \
	  DTLS_PROXYD_BIN=$$bin/dtls-proxyd UDP_ECHO_BIN=$$bin/udp-echo \
	  $(PYTHON) -m pytest -q -ra $(SANITIZE_PYTEST_ARGS) Tests/IntegrationTests || rc=1; \
	if ls $$reports/asan.* >/dev/null 2>&1; then \
	  echo "sanitize-integration: sanitizer reports from the daemon:"; ls $$reports | sed "s/^/  /"; \
	  grep -h -E '^SUMMARY' $$reports/asan.* | sort | uniq -c; rc=1; \
	fi; \
	exit $$rc
