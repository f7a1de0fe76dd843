# dtls-proxyd — build, run and test.
#
#   make run    install what is missing, build (release), create a development
#               certificate, start udp-echo on 127.0.0.1:5683 and the daemon on
#               127.0.0.1:5684 in front of it
#   make test   install what is missing, build, run the unit tests and the
#               integration tests (the real binary against OpenSSL, GnuTLS, socat)
#   make bench  release build, then dtls-proxy-bench: direct UDP, a plaintext
#               relay, the daemon and socat side by side (about 2 minutes);
#               writes bench-results/latest.json, docs/bench/latest.png, BENCHMARKS.md
#   make install  release build, then binary, systemd units and example
#               configuration under DESTDIR/PREFIX (see install-files)

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
DEB_PACKAGES := libssl-dev libsystemd-dev pkg-config openssl gnutls-bin socat libcoap3-bin systemd

# Where `make install` puts things; DESTDIR is prepended to each.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
DOCDIR      ?= $(PREFIX)/share/doc/dtls-proxyd
SYSCONFDIR  ?= /etc
INSTALL_BIN ?= $(RELEASE_BIN)/dtls-proxyd

.PHONY: all deps build release cert run test bench unit-test integration-test check-config install install-files clean

all: build

## deps: install the missing Debian packages (apt-get update only when something is missing)
deps:
	@set -e; \
	command -v $(SWIFT) >/dev/null || { echo "make deps: no Swift toolchain ($(SWIFT)) on PATH; install Swift 6 first" >&2; exit 1; }; \
	installed() { dpkg-query -W -f='$${Status}' "$$1" 2>/dev/null | grep -q 'install ok installed'; }; \
	if ! command -v dpkg-query >/dev/null; then \
	  echo "make deps: not a Debian system; install by hand: $(DEB_PACKAGES) pytest" >&2; exit 0; \
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
	fi

## build: debug build of every product (dtls-proxyd, udp-echo)
build:
	$(SWIFT) build

## release: optimised build
release:
	$(SWIFT) build -c release

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

## test: unit tests, then integration tests; fails if either fails
test: deps build
	@rc=0; \
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
## for BINDIR and SYSCONFDIR), the README and example configuration to DOCDIR, and
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
	rm -rf .pytest_cache Tests/IntegrationTests/__pycache__ Tests/IntegrationTests/.pytest_cache
