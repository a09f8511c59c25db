# The two commands of the README: `make run` and `make test`. Both install what is missing.
.PHONY: run test tsan asan fuzz setup build release

setup:
	@scripts/setup.sh

# Runs the server (release build) on 127.0.0.1:38580 with the default data folder, ~/exar-db/data,
# and the console, HTTP API and /metrics on http://127.0.0.1:38581/ (it prints the address).
# Pass a config file with: make run CONFIG=path/to/exar-db.toml
run: setup
	swift build -c release --product exar-db
	.build/release/exar-db $(if $(CONFIG),--config=$(CONFIG),)

# The Swift suites (scripts/install-peers.sh first installs redis-server and nats-server, which
# the exar-bench side-by-side tests start), then the console in a real browser (headless Chromium through Selenium) and
# /metrics through prometheus-client against the real exar-db (scripts/browser-tests.sh installs
# chromium, chromium-driver, selenium and prometheus-client when missing).
test: setup
	@scripts/install-peers.sh
	swift test --disable-xctest
	scripts/browser-tests.sh

# The engine and server suites under the thread sanitizer (a separate build folder).
tsan: setup
	TSAN_OPTIONS=suppressions=$(CURDIR)/scripts/tsan.supp \
		swift test --disable-xctest --sanitize=thread --scratch-path .build-tsan

# The same suites under the address (and leak) sanitizer.
# scripts/lsan.supp and asan.supp name the third-party faults it tolerates; child processes inherit them.
# Linked with lld: gold warns about every ASan check symbol it cannot export.
asan: setup
	LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp ASAN_OPTIONS=suppressions=$(CURDIR)/scripts/asan.supp \
		swift test --disable-xctest --sanitize=address --scratch-path .build-asan -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld

# The libFuzzer targets (Fuzz/), built with the fuzzer and address sanitizers, each run for
# FUZZ_SECONDS from the committed corpus; a finding fails and is left in .fuzz-findings/.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS = -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DFUZZING \
	-Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
fuzz: setup
	swift build --scratch-path .build-fuzz $(FUZZ_FLAGS) --product exar-fuzz-protocol
	swift build --scratch-path .build-fuzz $(FUZZ_FLAGS) --product exar-fuzz-segment
	scripts/fuzz.sh $(FUZZ_SECONDS)

build: setup
	swift build

release: setup
	swift build -c release
