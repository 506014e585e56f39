# Portcullis: `make run` serves the whole chain on https://localhost:8443; `make test` runs every
# test level. Everything either needs is set up here, idempotently, on first use.

SHELL := /bin/bash
.DEFAULT_GOAL := help

FILTERS   := auth ratelimit sanitizer cache audit
WASM      := wasm32-wasip1
VENV      := .venv
DEV       := .dev
ENVOY     := $(VENV)/bin/envoy
DEVKIT    := target/debug/portcullis-devkit
UPSTREAM  := target/debug/portcullis-demo-upstream
ROLE      ?= viewer
# The core tests run a second time as wasm, inside Wasmtime.
WASM_TESTED := common $(FILTERS) suite
WASM_TEST_RUNNER := $(CURDIR)/$(VENV)/bin/python $(CURDIR)/scripts/wasi-run.py

.PHONY: help setup build tools render run token test fmt-check clippy fuzz-check unit-test wasm-test \
        validate integration-test docker-prep bench load fuzz soak faults clean

help:
	@echo "make run     build, set up and start upstream + Envoy on https://localhost:8443"
	@echo "make test    fmt, clippy (host + wasm), unit, wasm, config validation, integration"
	@echo "make build   dist/portcullis.wasm, holding the filters: $(FILTERS)"
	@echo "make token ROLE=admin   a DEMO-ONLY signed JWT for the demo config"
	@echo "make render  write the rendered Envoy config to $(DEV)/envoy.yaml"
	@echo "make load    k6 load scenarios against the chain (k6/README.md); not part of make test"
	@echo "make soak    saturation ramp, then SOAK_MINUTES (10) at 70 % of it; make faults; make fuzz"

# --- set-up ---------------------------------------------------------------------------------

setup: $(DEV)/toolchain.stamp $(VENV)/installed.stamp $(DEV)/certs/server.crt $(DEV)/demo-jwt-secret \
       $(DEV)/demo-audit-key

$(DEV)/toolchain.stamp:
	rustup target add $(WASM)
	rustup component add rustfmt clippy
	@mkdir -p $(DEV) && touch $@

$(VENV)/installed.stamp: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	@touch $@

$(DEV)/certs/server.crt: scripts/dev-certs.sh
	bash scripts/dev-certs.sh $(DEV)/certs

# DEMO ONLY: the HMAC secret that signs `make token` JWTs; generated here, never committed.
$(DEV)/demo-jwt-secret:
	@mkdir -p $(DEV)
	@umask 077 && openssl rand -hex 32 | tr -d '\n' > $@
	@echo "demo JWT secret written to $@"

# DEMO ONLY: the key that seals audit records (HMAC-SHA-256, docs/audit.md); generated here,
# never committed. Verify a log with it: portcullis-audit-verify --key-env PORTCULLIS_AUDIT_KEY.
$(DEV)/demo-audit-key:
	@mkdir -p $(DEV)
	@umask 077 && openssl rand -hex 32 | tr -d '\n' > $@
	@echo "demo audit key written to $@"

# --- build ----------------------------------------------------------------------------------

build: $(DEV)/toolchain.stamp
	cargo build --release --target $(WASM) -p portcullis-suite
	@$(MAKE) --no-print-directory dist/portcullis.wasm
	@ls -l dist/*.wasm | awk '{ printf "  %-22s %7d bytes\n", $$9, $$5 }'

# The release build, shrunk by binaryen's wasm-opt (from npm, run by the machine's Node.js).
# binaryen does not read the module's features, so they are named: those rustc's wasm32-wasip1
# target emits, all supported by Envoy's V8.
BINARYEN      := 132.0.0
WASM_OPT      := $(DEV)/binaryen-$(BINARYEN)/node_modules/.bin/wasm-opt
WASM_FEATURES := --enable-bulk-memory --enable-bulk-memory-opt --enable-sign-ext \
                 --enable-mutable-globals --enable-nontrapping-float-to-int \
                 --enable-multivalue --enable-reference-types

$(WASM_OPT):
	npm install --prefix $(DEV)/binaryen-$(BINARYEN) --no-save --no-audit --no-fund \
	  binaryen@$(BINARYEN)

dist/portcullis.wasm: target/$(WASM)/release/portcullis.wasm $(WASM_OPT)
	@mkdir -p dist && rm -f dist/*.wasm
	$(WASM_OPT) -Oz $(WASM_FEATURES) --strip-debug --strip-producers $< -o $@

tools:
	cargo build -p portcullis-devkit -p portcullis-demo-upstream

# LAYOUT=chain runs every instance as a stage of one `chain` filter (README, "Layouts").
LAYOUT ?= filters

render: tools
	$(DEVKIT) render --set LAYOUT=$(LAYOUT) --out $(DEV)/envoy.yaml
	@echo "rendered $(DEV)/envoy.yaml"

run: setup build render
	@bash scripts/run.sh $(ENVOY) $(UPSTREAM) $(DEV)/envoy.yaml

token: tools $(DEV)/demo-jwt-secret
	@$(DEVKIT) token --role $(ROLE)

# For docker-compose.yaml: the same template, rendered for the containers.
docker-prep: setup build tools
	$(DEVKIT) render --profile docker --out $(DEV)/envoy-docker.yaml
	@echo "now: docker compose up --build"

# --- tests, in order ------------------------------------------------------------------------

test: setup fmt-check clippy fuzz-check unit-test wasm-test build validate integration-test
	@echo "make test: all levels passed"

# A clean build gains nothing from incremental compilation's bookkeeping (`make test` runs from a
# clean clone in CI); exported to every prerequisite of `test`.
test: export CARGO_INCREMENTAL := 0

fmt-check:
	cargo fmt --all -- --check

clippy: $(DEV)/toolchain.stamp
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --target $(WASM) $(addprefix -p portcullis-,$(WASM_TESTED) bench-floor) -- -D warnings

# Every crate's fuzz targets compile, warnings denied. They are not workspace members (each
# fuzz crate is its own workspace), so nothing else builds them: three had stopped compiling
# unnoticed. Their lock files are committed (pinned versions; a new dependency is added to them
# by cargo as usual). `make fuzz` runs them.
fuzz-check:
	@set -e; for d in filters/*/fuzz; do echo "clippy $$d"; \
	  cargo clippy --quiet --manifest-path $$d/Cargo.toml --target-dir target/fuzz-check \
	    --all-targets -- -D warnings; done

unit-test:
	cargo test --workspace --exclude portcullis-tests

wasm-test: $(DEV)/toolchain.stamp $(VENV)/installed.stamp
	CARGO_TARGET_WASM32_WASIP1_RUNNER="$(WASM_TEST_RUNNER)" \
	  cargo test --target $(WASM) $(addprefix -p portcullis-,$(WASM_TESTED))

# `envoy --mode validate` on every Envoy config we ship, as rendered for each place it runs
# (tests/tests/validate.rs); the integration tests run after it.
validate: build
	cargo test -p portcullis-tests --test validate

# Every real-Envoy test in the default layout (each instance its own Envoy filter), then, with all
# of them as stages of one `chain` filter, the files whose behaviour the layout changes: the
# attacker suite, stage ordering and held bodies (chain, sanitizer), what stages publish for each
# other (cooperation, cache_identity, audit) and the layout's own wiring (filters, upstream_down).
# The rest (auth's key fetches, cache RFC 9111 rules, rate-limit tables, TLS) exercise one stage
# the same way in both layouts; leaving them out keeps `make test` under 25 minutes on 2 cores.
# Run all of them in the chain layout when changing how a stage talks to the host:
# `PORTCULLIS_TEST_LAYOUT=chain cargo test -p portcullis-tests -- --test-threads 2`.
CHAIN_LAYOUT_TESTS := attacker chain sanitizer cooperation cache_identity audit filters upstream_down
integration-test: build
	cargo test -p portcullis-tests --no-fail-fast -- --test-threads 2
	PORTCULLIS_TEST_LAYOUT=chain cargo test -p portcullis-tests --no-fail-fast \
	  $(addprefix --test ,$(CHAIN_LAYOUT_TESTS)) -- --test-threads 2

# --- performance (reports figures; not part of `make test`) -----------------------------------

# Side by side: Envoy alone, Envoy's native filters, Portcullis filters; e.g.
#   make bench BENCH_ARGS="--duration 10 --rounds 3"
BENCH_ARGS ?=
bench: setup build
	@command -v wrk >/dev/null || apt-get install -y wrk || sudo apt-get install -y wrk
	cargo build --release -p portcullis-demo-upstream
	cargo build --release --target $(WASM) -p portcullis-bench-floor
	cargo run -p portcullis-tests --bin portcullis-bench -- $(BENCH_ARGS)

# k6 scenarios against the `make run` chain, rendered with the load rate limits of k6/config/
# (see k6/README.md); exits non-zero when a threshold fails. E.g.
#   make load LOAD_SCENARIOS="smoke burst"
#   RAMP_DURATION=2m RAMP_VUS=40 make load
LOAD_SCENARIOS ?= smoke ramp auth cache hostile burst
load: setup build tools
	@mkdir -p $(DEV)/load
	$(DEVKIT) render --out $(DEV)/load/envoy.yaml \
	  --filter-config ratelimit-client=k6/config/ratelimit-client.json \
	  --filter-config ratelimit-identity=k6/config/ratelimit-identity.json
	LOAD_SCENARIOS="$(LOAD_SCENARIOS)" bash scripts/load.sh $(VENV)/bin/k6 $(ENVOY) $(UPSTREAM) \
	  $(DEV)/load/envoy.yaml $(DEVKIT)

# Every crate's cargo-fuzz targets (libFuzzer), each for FUZZ_RUNS executions; not part of
# `make test`. Crates and targets are discovered: every filters/*/fuzz, every `cargo fuzz list`
# (docs/reliability.md lists what each covers). The stable toolchain accepts cargo-fuzz's
# nightly flags with RUSTC_BOOTSTRAP=1. Built with debug assertions (integer overflow panics)
# and without ASan by default (FUZZ_SANITIZER=address for it): the code is safe Rust, and the
# runs are what finds panics. New inputs go to each crate's corpus/<target> (the sanitizer's is
# committed; the others' are git-ignored, seeded from seeds/<target>). A crash fails the target
# and stops `make fuzz`; libFuzzer leaves the input in <crate>/fuzz/artifacts/<target>/. E.g.
#   make fuzz FUZZ_RUNS=100000 FUZZ_CRATES="auth cache"
FUZZ_RUNS      ?= 1000000
FUZZ_CRATES    ?= $(patsubst filters/%/fuzz,%,$(wildcard filters/*/fuzz))
FUZZ_SANITIZER ?= none
FUZZ_MAX_LEN   ?= 65536
# One target directory for every fuzz crate: their dependencies are built once.
FUZZ_BUILD     ?= --sanitizer $(FUZZ_SANITIZER) --debug-assertions --codegen-units 16 \
                  --target-dir $(CURDIR)/target/fuzz
fuzz: $(DEV)/toolchain.stamp
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	@set -e; for c in $(FUZZ_CRATES); do \
	  cd $(CURDIR)/filters/$$c/fuzz; \
	  for t in $$(RUSTC_BOOTSTRAP=1 cargo fuzz list); do \
	    mkdir -p corpus/$$t; seeds=; [ -d seeds/$$t ] && seeds=seeds/$$t; \
	    echo "=== fuzz $$c/$$t: $(FUZZ_RUNS) runs ==="; \
	    RUSTC_BOOTSTRAP=1 cargo fuzz run $(FUZZ_BUILD) $$t \
	      corpus/$$t $$seeds -- -runs=$(FUZZ_RUNS) -max_len=$(FUZZ_MAX_LEN) -print_final_stats=1 \
	      2>&1 | tee $(CURDIR)/target/fuzz-$$c-$$t.log | { grep -E '^(Done|stat::number_of_executed_units|==|SUMMARY|thread)' || true; }; \
	    [ $${PIPESTATUS[0]} -eq 0 ] || { echo "fuzz $$c/$$t FAILED (target/fuzz-$$c-$$t.log)"; exit 1; }; \
	  done; \
	done; echo "make fuzz: every target ran $(FUZZ_RUNS) times without a crash"

# --- reliability (docs/reliability.md; not part of `make test`: minutes each) -----------------

# The demo chain under load: a k6 ramp finds the highest rate it sustains (p99 < 250 ms, no
# errors), then SOAK_MINUTES (10) at 70 % of it with the audit HTTP sink to a collector the
# harness runs; fails on any unintended 5xx, Envoy RSS growth over 5 % after the first minute,
# or an audit record missing (records == requests, shipped + dropped == records, dropped == 0).
# SOAK_FAULTS=1 runs the faults below afterwards. Loopback only, its own ports (28xxx).
SOAK_MINUTES ?= 10
soak: setup build tools
	cargo build -p portcullis-audit --bin portcullis-audit-verify
	SOAK_MINUTES=$(SOAK_MINUTES) $(VENV)/bin/python scripts/soak_harness.py soak

# Faults during a lighter load: upstream killed and restarted, audit collector down 30 s
# (within and beyond the queue bound), JWKS endpoint down, slow clients, 10 000 distinct
# clients twice. About 6 minutes.
faults: setup build tools
	cargo build -p portcullis-audit --bin portcullis-audit-verify
	$(VENV)/bin/python scripts/soak_harness.py faults

clean:
	cargo clean
	rm -rf dist $(DEV) $(VENV)
