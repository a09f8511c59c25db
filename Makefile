# The two commands of the README: `make run` and `make test`. Both install what is missing.
.PHONY: run test tsan setup build release

setup:
	@scripts/setup.sh

# Runs the server (release build) on 127.0.0.1:38580 with the default data folder, ~/exar-db/data.
# Pass a config file with: make run CONFIG=path/to/exar-db.toml
run: setup
	swift build -c release --product exar-db
	.build/release/exar-db $(if $(CONFIG),--config=$(CONFIG),)

test: setup
	swift test --disable-xctest

# The engine and server suites under the thread sanitizer (a separate build folder).
tsan: setup
	swift test --disable-xctest --sanitize=thread --scratch-path .build-tsan

build: setup
	swift build

release: setup
	swift build -c release
