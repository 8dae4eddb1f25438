# A thin wrapper over CMake: the two commands SREs need, and a few for
# developers. Every target installs missing Debian packages first (as root).
#
#   make demo    install, build, run a real (small) demonstration
#   make test    install, build, run every test; then again under ASan/UBSan
#   make build   build into build/
#   make crash-trials N=1000   the long crash-trial series (0 leftovers expected)
#   make clean   remove the build directories

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60

# What building and testing need. The base toolchain (gcc, make, cmake,
# pkg-config) is part of any Debian build machine; we still name it. HAProxy,
# nginx and curl are the system under test of the game-day bed
# (tests/beds/gameday.sh), for `make demo` and the end-to-end tests.
# libpq and hiredis are the write probes' clients; PostgreSQL 15 with repmgr,
# Redis and its Sentinel are the failover beds of their tests (issue 15).
PACKAGES = build-essential cmake pkg-config \
	libuv1-dev libprotobuf-c-dev protobuf-c-compiler libssl-dev libcmocka-dev \
	libjansson-dev libnftables-dev libyaml-dev libcurl4-openssl-dev \
	libsqlite3-dev sqlite3 libmicrohttpd-dev prometheus \
	libpq-dev libhiredis-dev postgresql-15 postgresql-15-repmgr redis-server redis-sentinel \
	nftables iproute2 procps mount util-linux e2fsprogs \
	libssh2-1-dev openssh-server openssh-client \
	haproxy nginx-light curl \
	chromium-headless-shell libpng-dev prometheus-blackbox-exporter \
	clang-format

.PHONY: all deps build test test-asan test-asan-all demo fuzz crash-trials clean

all: build

deps:
	@scripts/deps.sh $(PACKAGES)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# ctest keeps a passing test's output to itself: the game-day known answers
# (measured against HAProxy's log, several runs each) and the CPU workers'
# duty cycles (against a burner beside them) are printed after it.
# (in braces: a failing ctest must fail the recipe, never be masked by || true)
SPREADS = { grep -h '^\[ \(spread\|measured\) *\] ' Testing/Temporary/LastTest.log || true; }

test: build
	@cd $(BUILD) && ctest -j $(JOBS) --output-on-failure && $(SPREADS)
	$(MAKE) --no-print-directory test-asan

# The ASan/UBSan pass leaves a test out only when the sanitizers have nothing
# to find in it that the pass does not already run under them: the tests
# labelled `bed` (the failover and game-day known answers, the browser and
# Prometheus checks, deploy over SSH) measure real systems for minutes, and
# the code they drive runs under the sanitizers in the smaller tests; the
# tests labelled `style` (clang-format, banned functions) run no code of this
# build and give the same answer in both. `make test-asan-all` runs them too.
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFL_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ctest -j $(JOBS) -LE 'bed|style' --output-on-failure && $(SPREADS)

test-asan-all: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFL_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ctest -j $(JOBS) --output-on-failure && $(SPREADS)

demo: build
	scripts/demo.sh $(BUILD)

# The long series of crash trials (make test runs 60): N=1000 by default,
# SEED=... to replay one.
N ?= 1000
crash-trials: build
	scripts/crash-trials.sh $(N) $(or $(SEED),$$(date +%s)) $(BUILD)

# libFuzzer needs clang and its runtime. Builds every fuzz target
# (tests/fuzz/README.md) over instrumented libraries, then runs each for
# FUZZ_SECONDS in turn and prints executions, edges covered and crashes.
fuzz:
	@scripts/deps.sh clang libclang-rt-14-dev $(PACKAGES)
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFL_FUZZ=ON -DFL_SANITIZE=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_all
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
