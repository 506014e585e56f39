// Runs a wasm32-wasip1 program (a cost example) in Node's V8, the engine Envoy runs the filters
// in, so its timings are closer to Envoy's than Wasmtime's. Needs Node 20 or later (not set up by
// the Makefile). Usage:
//   cargo build --release --target wasm32-wasip1 -p portcullis-audit --example record_cost
//   node --no-warnings scripts/wasm-v8.mjs target/wasm32-wasip1/release/examples/record_cost.wasm [ARGS...]
import { readFile } from 'node:fs/promises';
import { argv } from 'node:process';
import { WASI } from 'node:wasi';

const wasi = new WASI({ version: 'preview1', args: argv.slice(2), env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(argv[2]));
const imports = wasi.getImportObject();
// proxy-wasm's host functions exist only inside Envoy: a call to one fails loudly.
for (const imp of WebAssembly.Module.imports(module)) {
  if (imp.module !== 'wasi_snapshot_preview1') {
    imports[imp.module] ??= {};
    imports[imp.module][imp.name] ??= () => {
      throw new Error(`host function ${imp.module}.${imp.name} called outside Envoy`);
    };
  }
}
const instance = await WebAssembly.instantiate(module, imports);
// Built with proxy-wasm, the module also exports _initialize, which WASI.start refuses.
const { _initialize, ...exports } = instance.exports;
process.exitCode = wasi.start({ exports });
