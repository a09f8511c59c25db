# The two commands of the README: `make run` and `make test`. Both install what is missing.
.PHONY: run test setup build release

setup:
	@scripts/setup.sh

# Runs the server on the default data folder. (The server arrives with the exar-db issue.)
run: setup
	@echo "exar-db: the server is not built yet (the engine, ExarCore, is); see README.md" >&2
	@exit 1

test: setup
	swift test --disable-xctest

build: setup
	swift build

release: setup
	swift build -c release
