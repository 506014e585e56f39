#!/usr/bin/env python3
"""Cargo runner for wasm32-wasip1: runs a test binary in Wasmtime (the real wasm runtime, from the
`wasmtime` wheel in the project virtualenv), so the core tests run as wasm as well as natively.

Usage (set by the Makefile): CARGO_TARGET_WASM32_WASIP1_RUNNER="python scripts/wasi-run.py"
A filter crate links proxy-wasm, whose host functions (`env.proxy_*`) exist only inside Envoy:
they are defined as traps, so a test that reached one would fail loudly instead of passing.
"""
import sys

import wasmtime


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: wasi-run.py MODULE.wasm [ARGS...]", file=sys.stderr)
        return 2
    path, args = sys.argv[1], sys.argv[1:]
    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, path)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.define_unknown_imports_as_traps(module)
    wasi = wasmtime.WasiConfig()
    wasi.argv = args
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    wasi.inherit_env()
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    instance = linker.instantiate(store, module)
    start = instance.exports(store)["_start"]
    try:
        start(store)
    except wasmtime.ExitTrap as exit_trap:
        return exit_trap.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
