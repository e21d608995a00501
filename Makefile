# The two commands of the README:
#   make run    builds, then serves the demo on http://127.0.0.1:8888
#   make test   builds, then runs every test (unit tests under ASan + UBSan,
#               then the integration tests with real clients)
# Missing Debian packages are installed with apt-get when run as root;
# otherwise the exact command to run is printed.

BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX     ?= /usr/local
PORT       ?= 8888
# Seconds each fuzz target runs during `make test` (a smoke run, not a campaign).
FUZZ_SECONDS ?= 20

# What building and testing need, by Debian package name.
BUILD_PKGS := cmake make gcc clang pkg-config libpcre2-dev libjansson-dev libcmocka-dev \
              libssl-dev zlib1g-dev liburing-dev libxxhash-dev libnghttp2-dev
TEST_PKGS  := python3 python3-pytest python3-requests python3-tornado python3-websockets curl strace \
              openssl nginx-light python3-prometheus-client systemd haproxy
# The chat's --redis (examples/chat): optional when building, tested.
TEST_PKGS  += redis-server libhiredis-dev
FUZZ_PKGS  := clang libclang-rt-14-dev
BENCH_PKGS := wrk nginx-light h2o libevent-dev python3-tornado curl \
              libcurl4-openssl-dev liburing-dev
# WebSockets (issue 12): Chromium for the browser test, the
# libwebsockets and websockets peers for bench/ws_compare.sh.
TEST_PKGS  += chromium
# HTTP/2 (issue 15): the web suite over HTTP/2 through httpx (python3-h2
# below), h2load for bench/h2_compare.sh.
TEST_PKGS  += python3-httpx
BENCH_PKGS += nghttp2-client
# bench/h2_idle.py --request encodes its request with python3-hpack.
BENCH_PKGS += python3-hpack
BENCH_PKGS += libwebsockets-dev python3-websockets
# HTTP/2 (issue 15): nghttp and h2load, Python h2 (raw frames, and the
# client tests' own server), nghttpd and h2o as servers for the client.
TEST_PKGS  += nghttp2-client nghttp2-server python3-h2 h2o

.PHONY: all build run test test-unit test-integration deps deps-test \
        deps-bench deps-fuzz install bench fuzz clean help

all: build

help:
	@echo "make run       build, then serve the chat room on http://127.0.0.1:$(PORT)"
	@echo "make test      build, then run every test (sanitizers on)"
	@echo "make bench     run the benchmarks in bench/ (see bench/RESULTS.md)"
	@echo "make fuzz      build the libFuzzer targets in fuzz/ with clang"
	@echo "make install   install headers, libraries and gust.pc under PREFIX=$(PREFIX)"

# ensure-packages PKGS: install the missing ones (root) or say how (not root).
define ensure-packages
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing missing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "Missing Debian packages. Run:"; \
	    echo "    sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi
endef

deps:
	$(call ensure-packages,$(BUILD_PKGS))
deps-test: deps
	$(call ensure-packages,$(TEST_PKGS))
deps-bench: deps
	$(call ensure-packages,$(BENCH_PKGS))
deps-fuzz: deps
	$(call ensure-packages,$(FUZZ_PKGS))

# Node's ws and playwright-core (which drives Debian's /usr/bin/chromium; it
# never downloads a browser), pinned by tests/integration/js/package-lock.json
# and installed by `npm ci` into $(BUILD)/npm/node_modules, where the tests and
# bench/ws_compare.sh look. Node.js and npm are the machine's own, or Debian's
# nodejs and npm when missing.
NPM_DIR := $(BUILD)/npm
NPM_LOCK := tests/integration/js/package.json tests/integration/js/package-lock.json
deps-npm: $(NPM_DIR)/node_modules/.package-lock.json
$(NPM_DIR)/node_modules/.package-lock.json: $(NPM_LOCK)
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing missing Debian packages: nodejs npm"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null || exit 1; \
	  else \
	    echo "npm is missing. Run:"; echo "    sudo apt-get install -y nodejs npm"; exit 1; \
	  fi; }
	@mkdir -p $(NPM_DIR) && cp $(NPM_LOCK) $(NPM_DIR)/
	@echo "Installing npm packages into $(NPM_DIR) (npm ci)"
	@cd $(NPM_DIR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
deps-test deps-bench: deps-npm
.PHONY: deps-npm

# Release build: what `make run`, `make install` and the benchmarks use.
build: deps
	@cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DGUST_BUILD_TESTS=OFF >/dev/null
	@cmake --build $(BUILD)/release -j $(JOBS)

run: build
	@echo "Serving the chat room (examples/chat) on http://127.0.0.1:$(PORT)/: open it in a browser. Ctrl-C stops it."
	@$(BUILD)/release/examples/chat/chat --port=$(PORT) --address=127.0.0.1 \
	  --upload_dir=$(BUILD)/chat-uploads

# Tests: gcc with ASan + UBSan (leaks fail) runs everything; clang builds the
# same tree with the same warnings so that both compilers stay clean.
test: deps-test deps-fuzz
	@cmake -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=gcc \
	  -DGUST_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD)/asan -j $(JOBS)
	@cmake -S . -B $(BUILD)/clang -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	  -DGUST_BUILD_BENCH=ON >/dev/null
	@cmake --build $(BUILD)/clang -j $(JOBS)
	@if [ -f fuzz/smoke.sh ]; then $(MAKE) --no-print-directory fuzz && \
	  bash fuzz/smoke.sh $(BUILD)/fuzz $(FUZZ_SECONDS); fi
	@cd $(BUILD)/asan && ctest --output-on-failure -j $(JOBS)

test-unit: deps-test
	@cmake -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=gcc -DGUST_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD)/asan -j $(JOBS)
	@cd $(BUILD)/asan && ctest --output-on-failure -L unit -j $(JOBS)

test-integration: deps-test
	@cmake -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=gcc -DGUST_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD)/asan -j $(JOBS)
	@cd $(BUILD)/asan && ctest --output-on-failure -L integration

install: build
	@cmake --install $(BUILD)/release

bench: deps-bench
	@cmake -S . -B $(BUILD)/bench -DCMAKE_BUILD_TYPE=Release -DGUST_BUILD_TESTS=OFF \
	  -DGUST_BUILD_BENCH=ON >/dev/null
	@cmake --build $(BUILD)/bench -j $(JOBS)
	@BUILD_DIR=$(BUILD)/bench bash bench/run_all.sh

fuzz: deps-fuzz
	@cmake -S . -B $(BUILD)/fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	  -DGUST_BUILD_TESTS=OFF -DGUST_BUILD_EXAMPLES=OFF -DGUST_BUILD_FUZZ=ON >/dev/null
	@cmake --build $(BUILD)/fuzz -j $(JOBS)

clean:
	rm -rf $(BUILD)
