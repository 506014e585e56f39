#!/usr/bin/env python3
"""Counts the wasm instructions a wasm32-wasip1 program executes, with Wasmtime's fuel: an exact,
noise-free figure for a cost example, where wall-clock timings on a shared machine are not.

Usage: .venv/bin/python scripts/wasm-fuel.py MODULE.wasm [ARGS...]
Prints the program's output, then `fuel: N` on stderr. Per iteration of an example that takes a
count: (fuel with count N - fuel with count 0) / N. Fuel is about one unit per wasm instruction;
V8's machine code differs, but what costs fewer wasm instructions costs less time in Envoy.
"""
import sys

import wasmtime

FUEL = 1 << 62


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: wasm-fuel.py MODULE.wasm [ARGS...]", file=sys.stderr)
        return 2
    path, args = sys.argv[1], sys.argv[1:]
    config = wasmtime.Config()
    config.consume_fuel = True
    engine = wasmtime.Engine(config)
    module = wasmtime.Module.from_file(engine, path)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.define_unknown_imports_as_traps(module)
    wasi = wasmtime.WasiConfig()
    wasi.argv = args
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    store.set_fuel(FUEL)
    instance = linker.instantiate(store, module)
    code = 0
    try:
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as exit_trap:
        code = exit_trap.code
    print(f"fuel: {FUEL - store.get_fuel()}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
