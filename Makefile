# The two commands: `make demo` and `make test` (each installs what is missing
# with apt, builds, and runs), and `make bench` (every benchmark against its
# peers and this machine's floor; BENCH=part[,part] runs some). The rest are
# the steps they are made of.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
# ctest runs twice as many tests at once as there are cores: most of them
# spend their time waiting (handshakes, timeouts, namespaces, subprocesses).
TEST_JOBS ?= $(shell echo $$((2 * $$(nproc))))
# The benchmark programs are built in $(BUILD) only for `make bench` and
# `make bench-compare` (the tests do not need them).
BUILD_BENCH ?= OFF
# The sanitizer tree: clang, ASan+UBSan, libFuzzer coverage; `make fuzz` (in
# `make test`) and `make asan-test` share it (scripts/configure-sanitized.sh).
# 22 fuzzers at 5 s each in `make test`, as many at once as there are cores
# (CI's budget is 30 minutes on 2 cores);
# the long runs are local: `nice -n 19 bash scripts/fuzz-long.sh` (one CPU-hour
# per target, counted in fuzz/long-runs.tsv).
FUZZ_SECONDS ?= 5
# ccache (installed by deps) for the two gcc trees, with the clone as
# CCACHE_BASEDIR and the build directory left out of the hash: the OpenSSL
# tree then reuses the BoringSSL tree's objects for every file that does not
# touch the TLS library (about half of them; the cost is that those objects'
# debug info names the other tree as their compile directory). The cache
# lives in the clone (.ccache/) unless CCACHE_DIR says otherwise.
CCACHE := $(shell command -v ccache 2>/dev/null)
ifneq ($(CCACHE),)
LAUNCHER := -DCMAKE_C_COMPILER_LAUNCHER=$(CCACHE) -DCMAKE_CXX_COMPILER_LAUNCHER=$(CCACHE)
export CCACHE_DIR ?= $(CURDIR)/.ccache
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
endif
# Privileged tests fail rather than skip when we run as root.
REQUIRE_PRIVILEGED := $(shell [ "$$(id -u)" = 0 ] && echo 1 || echo 0)
export PATH := $(PATH):$(HOME)/.cargo/bin
# Before the tests: namespaces left by a test that was killed (a ctest timeout
# is SIGKILL, too late for its own clean-up) go (scripts/reap-test-netns.sh).
REAP_NETNS = @[ "$(REQUIRE_PRIVILEGED)" != 1 ] || bash scripts/reap-test-netns.sh

.PHONY: all deps configure build test unit-test bindings-test openssl-configure openssl-build openssl-bench-build openssl-test asan-test tsan-test fuzz bench bench-compare soak demo demo-xds install format clean

all: build

deps:
	@bash scripts/install-deps.sh

# -O2 with line tables only (-g1): backtraces, perf and sanitizer reports keep
# file:line, and the build takes about a fifth less CPU than with full -g
# (configure with plain -DCMAKE_BUILD_TYPE=RelWithDebInfo to step through
# variables in a debugger).
configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(LAUNCHER) -DAMBIENT_BUILD_BENCH=$(BUILD_BENCH) \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"

build: configure
	cmake --build $(BUILD) -j$(JOBS)

# Everything: unit, C ABI, install, privileged (netns/iptables/nft) tests,
# bindings, all of it again on the OpenSSL 3 build, and a short fuzzing run of
# every parser.
test: unit-test bindings-test openssl-test fuzz

unit-test: build
	$(REAP_NETNS)
	cd $(BUILD) && AMBIENT_REQUIRE_PRIVILEGED=$(REQUIRE_PRIVILEGED) ctest --output-on-failure -j$(TEST_JOBS)

bindings-test: build
	@bash scripts/test-bindings.sh $(BUILD)

# The other TLS library: libambient built with OpenSSL 3 (-DAMBIENT_TLS=openssl)
# in $(OPENSSL_BUILD), its whole ctest suite and the bindings, then ambient
# against ambient across the two libraries (scripts/test-tls-backends.sh).
# The benchmarks are not built there for the tests; `make bench` turns them
# on in the same tree and builds the two programs it runs beside $(BUILD)'s.
OPENSSL_BUILD ?= build-openssl
OPENSSL_CMAKE = cmake -S . -B $(OPENSSL_BUILD) -DAMBIENT_TLS=openssl $(LAUNCHER) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
openssl-configure: deps
	$(OPENSSL_CMAKE) -DAMBIENT_BUILD_BENCH=OFF

openssl-build: openssl-configure
	cmake --build $(OPENSSL_BUILD) -j$(JOBS)

openssl-test: build openssl-build
	$(REAP_NETNS)
	cd $(OPENSSL_BUILD) && AMBIENT_REQUIRE_PRIVILEGED=$(REQUIRE_PRIVILEGED) ctest --output-on-failure -j$(TEST_JOBS)
	@bash scripts/test-bindings.sh $(OPENSSL_BUILD)
	@bash scripts/test-tls-backends.sh $(BUILD) $(OPENSSL_BUILD)

# The unit tests and the Go and Rust binding tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer (the clang sanitizer tree,
# which `make fuzz` has usually built most of already).
asan-test: deps
	bash scripts/configure-sanitized.sh $(ASAN_BUILD)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	$(REAP_NETNS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  AMBIENT_REQUIRE_PRIVILEGED=$(REQUIRE_PRIVILEGED) \
	  ctest --output-on-failure -j$(TEST_JOBS) -LE no-sanitizer
	AMBIENT_REQUIRE_PRIVILEGED=$(REQUIRE_PRIVILEGED) bash scripts/test-bindings-asan.sh $(ASAN_BUILD)

# The tests whose code runs on several threads (runtime, ZDS, the C ABI's loop
# thread, node proxy, DNS, attack) under ThreadSanitizer, with clang
# (scripts/tsan-test.sh says why not g++). Not part of CI: it takes ~8 minutes.
tsan-test: deps
	$(REAP_NETNS)
	AMBIENT_REQUIRE_PRIVILEGED=$(REQUIRE_PRIVILEGED) bash scripts/tsan-test.sh build-tsan

# The attack suite's long form: every case SOAK_ROUNDS times in one process,
# so descriptors or memory kept from one round show up in the next (its short
# form, one round, runs in `make test` under the ctest label "attack").
SOAK_ROUNDS ?= 200
soak: build
	$(BUILD)/tests/attack/attack_hbone_server_test --gtest_repeat=$(SOAK_ROUNDS) --gtest_brief=1
	AMBIENT_ATTACK_TUNNELS=5000 $(BUILD)/tests/attack/attack_peer_test --gtest_repeat=3

# Builds the libFuzzer targets with clang and runs each for FUZZ_SECONDS.
fuzz: deps
	@bash scripts/run-fuzzers.sh $(ASAN_BUILD) $(FUZZ_SECONDS)

# Every benchmark, each next to its peer in the same run (about 10 minutes on
# 2 cores; root for the netns parts): bench/results/<UTC time>.json, charts,
# and a regenerated bench/RESULTS.md. BENCH=pair (or a comma list) runs some
# parts; `python3 scripts/bench.py --list` names them. See bench/README.md.
# The floors, pair and tls parts also measure the OpenSSL 3 build
# ($(OPENSSL_BUILD)) in the same rounds.
BENCH ?=
comma := ,
bench bench-compare: BUILD_BENCH = ON
bench: build $(if $(or $(if $(BENCH),,all),$(filter floors pair tls,$(subst $(comma), ,$(BENCH)))),openssl-bench-build)
	@/usr/bin/python3 scripts/bench.py --build $(BUILD) --tls-build $(OPENSSL_BUILD) $(if $(BENCH),--parts $(BENCH))

openssl-bench-build: deps
	$(OPENSSL_CMAKE) -DAMBIENT_BUILD_BENCH=ON
	cmake --build $(OPENSSL_BUILD) -j$(JOBS) --target hbone_bench ambientctl

# Same-run before/after of a change: builds BASE (a commit, default the
# parent of HEAD) in a temporary worktree, then runs the BENCH parts (default
# hbone,e2e) on BASE's and this build's programs alternately; writes
# bench/results/compare-<UTC time>.json and bench/BEFORE-AFTER.md.
BASE ?= HEAD~1
bench-compare: build
	@BENCH_PARTS="$(if $(BENCH),$(BENCH),hbone,e2e)" bash scripts/bench-compare.sh "$(BASE)" $(BUILD)

demo: build
	@bash scripts/demo.sh $(BUILD)

# The same story with a (fake) istiod: xDS and the Istio CA instead of files.
demo-xds: build
	@bash scripts/demo-xds.sh $(BUILD)

install: build
	cmake --install $(BUILD)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h' '*.c')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(OPENSSL_BUILD)
