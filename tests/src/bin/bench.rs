//! `make bench`: the side-by-side benchmark. In one run, on the same origin and with the same
//! load generator (wrk), it drives Envoy with no filters, Envoy with its native filters doing the
//! nearest equivalent job, and Portcullis filters alone and as a chain; it interleaves the
//! variants over several rounds and reports throughput, p50/p99 latency and Envoy's memory, each
//! against the no-filter baseline of the same request. It reports; it asserts nothing about speed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use portcullis_devkit::render::{render_template, Layout, Settings};
use portcullis_tests::server::{Response, TestServer};
use portcullis_tests::{
    auth, free_ports, kill_with_parent, repo, spawn_envoy, wait_ready, wasm_dir, ScratchDir,
};

const USAGE: &str = "\
usage: portcullis-bench [--duration SECS] [--rounds N] [--connections N] [--only NAME,NAME..]
                        [--set NAME=VALUE].. [--out FILE]
  Runs every variant (or only those named) through wrk, interleaved over N rounds, and prints
  a markdown table of medians. --set applies a render setting to every variant (as
  `portcullis-devkit render --set`). Needs wrk (make bench installs it) and dist/*.wasm.";

/// What a variant sends: each workload has its own no-filter baseline.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Workload {
    /// `GET /api/orders/1` with a viewer's bearer token: not cacheable, so every filter runs
    /// its full path (the demo upstream echoes the request, about 0.5 KiB of JSON).
    Api,
    /// `GET /api/products` (4.6 KiB JSON, `Cache-Control: public, max-age=60`).
    Cacheable,
    /// `POST /echo` with a 4 KiB JSON body.
    Post4k,
}

impl Workload {
    fn describe(self) -> &'static str {
        match self {
            Workload::Api => "GET /api/orders/1 with a bearer token (not cacheable)",
            Workload::Cacheable => "GET /api/products (cacheable, 4.6 KiB)",
            Workload::Post4k => "POST /echo with a 4 KiB JSON body",
        }
    }
}

struct Variant {
    name: &'static str,
    workload: Workload,
    /// Lines for the `{{filters}}` slot of envoy/bench/bench.yaml.
    filters: &'static [&'static str],
    /// Filter instances configured from another file of envoy/bench/filters/ than their own.
    configs: &'static [(&'static str, &'static str)],
    /// Runs the do-nothing module (`tests/floor`) in place of the suite: what the instances cost
    /// before any policy runs.
    floor: bool,
    /// Each instance its own Envoy filter, or all of them stages of one `chain` filter.
    layout: Layout,
}

/// Instances whose benchmark configuration differs from the demo's (envoy/bench/filters/README.md).
const BENCH_CONFIGS: &[&str] = &["auth", "ratelimit-client", "ratelimit-identity"];

const FULL_CHAIN: &[&str] = &[
    "{{wasm:audit}}",
    "{{wasm:ratelimit-client}}",
    "{{wasm:auth}}",
    "{{wasm:ratelimit-identity}}",
    "{{wasm:sanitizer:body}}",
    "{{wasm:cache}}",
];

/// The chain issue #8 names (auth + RBAC + rate limit + sanitizer + audit, cache miss), with one
/// rate limit like the native chain it is compared with; FULL_CHAIN adds the demo's second,
/// identity-keyed one.
const TARGET_CHAIN: &[&str] = &[
    "{{wasm:audit}}",
    "{{wasm:ratelimit-client}}",
    "{{wasm:auth}}",
    "{{wasm:sanitizer:body}}",
    "{{wasm:cache}}",
];

const VARIANTS: &[Variant] = &[
    variant("baseline", Workload::Api, &[]),
    variant(
        "native-jwt-rbac",
        Workload::Api,
        &["{{include:bench/native-jwt-rbac.yaml}}"],
    ),
    variant(
        "native-ratelimit",
        Workload::Api,
        &["{{include:bench/native-ratelimit.yaml}}"],
    ),
    variant(
        "native-jwt-rbac-ratelimit",
        Workload::Api,
        &[
            "{{include:bench/native-jwt-rbac.yaml}}",
            "{{include:bench/native-ratelimit.yaml}}",
        ],
    ),
    variant("portcullis-auth", Workload::Api, &["{{wasm:auth}}"]),
    variant(
        "portcullis-ratelimit",
        Workload::Api,
        &["{{wasm:ratelimit-client}}"],
    ),
    variant("portcullis-audit", Workload::Api, &["{{wasm:audit}}"]),
    Variant {
        name: "portcullis-audit-http-sink",
        workload: Workload::Api,
        filters: &["{{wasm:audit}}"],
        configs: &[("audit", "audit-http")],
        floor: false,
        layout: Layout::Filters,
    },
    // Where audit's cost goes: an excluded path (two host calls), a sampled-out request (every
    // fact read from Envoy, no record), and the whole record written to the log.
    Variant {
        name: "portcullis-audit-excluded",
        workload: Workload::Api,
        filters: &["{{wasm:audit}}"],
        configs: &[("audit", "audit-excluded")],
        floor: false,
        layout: Layout::Filters,
    },
    Variant {
        name: "portcullis-audit-sampled-out",
        workload: Workload::Api,
        filters: &["{{wasm:audit}}"],
        configs: &[("audit", "audit-sampled-out")],
        floor: false,
        layout: Layout::Filters,
    },
    variant(
        "portcullis-sanitizer",
        Workload::Api,
        &["{{wasm:sanitizer:body}}"],
    ),
    variant(
        "portcullis-cache-uncacheable",
        Workload::Api,
        &["{{wasm:cache}}"],
    ),
    variant("portcullis-target-chain", Workload::Api, TARGET_CHAIN),
    variant("portcullis-full-chain", Workload::Api, FULL_CHAIN),
    // The same two chains as stages of one Envoy filter (LAYOUT=chain).
    Variant {
        name: "portcullis-target-chain-as-one",
        workload: Workload::Api,
        filters: TARGET_CHAIN,
        configs: &[],
        floor: false,
        layout: Layout::Chain,
    },
    Variant {
        name: "portcullis-full-chain-as-one",
        workload: Workload::Api,
        filters: FULL_CHAIN,
        configs: &[],
        floor: false,
        layout: Layout::Chain,
    },
    Variant {
        name: "wasm-floor-1",
        workload: Workload::Api,
        filters: &["{{wasm:cache}}"],
        configs: &[],
        floor: true,
        layout: Layout::Filters,
    },
    Variant {
        name: "wasm-floor-6",
        workload: Workload::Api,
        filters: FULL_CHAIN,
        configs: &[],
        floor: true,
        layout: Layout::Filters,
    },
    variant("baseline-cacheable", Workload::Cacheable, &[]),
    variant(
        "native-cache",
        Workload::Cacheable,
        &["{{include:bench/native-cache.yaml}}"],
    ),
    variant("portcullis-cache", Workload::Cacheable, &["{{wasm:cache}}"]),
    variant("baseline-post4k", Workload::Post4k, &[]),
    variant(
        "portcullis-sanitizer-post4k",
        Workload::Post4k,
        &["{{wasm:sanitizer:body}}"],
    ),
];

const fn variant(
    name: &'static str,
    workload: Workload,
    filters: &'static [&'static str],
) -> Variant {
    Variant {
        name,
        workload,
        filters,
        configs: &[],
        floor: false,
        layout: Layout::Filters,
    }
}

struct Options {
    duration: u64,
    rounds: usize,
    connections: u32,
    only: Option<Vec<String>>,
    settings: Vec<String>,
    out: PathBuf,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        duration: 10,
        rounds: 3,
        connections: 32,
        only: None,
        settings: Vec::new(),
        out: repo().join("target/bench/results.md"),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            return Err(USAGE.into());
        };
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: `{v}` is not a number"))
        };
        match flag.as_str() {
            "--duration" => o.duration = number(value)?.max(1),
            "--rounds" => o.rounds = number(value)?.max(1) as usize,
            "--connections" => o.connections = number(value)?.max(1) as u32,
            "--only" => o.only = Some(value.split(',').map(String::from).collect()),
            "--set" => o.settings.push(value.clone()),
            "--out" => o.out = PathBuf::from(value),
            _ => return Err(USAGE.into()),
        }
    }
    Ok(o)
}

/// One measured run of wrk.
#[derive(Clone, Copy, Default)]
struct Sample {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    memory_mib: f64,
    /// Envoy's resident set, which also counts what V8 maps outside the heap Envoy reports:
    /// compiled code and the filters' wasm linear memory.
    rss_mib: f64,
    /// Requests wrk completed.
    requests: f64,
    /// Envoy's CPU time (all threads) per request, in µs: what the filters cost, read from the
    /// kernel's accounting, so less sensitive than req/s to whatever else the machine runs.
    cpu_us: f64,
}

struct Running {
    variant: &'static Variant,
    envoy: Child,
    port: u16,
    admin_port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.envoy.kill();
        let _ = self.envoy.wait();
    }
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk not found: `make bench` installs it (apt-get install wrk)");
        std::process::exit(2);
    }
    let scratch = ScratchDir::new("bench");
    // Envoy gets the harness's per-process secret (portcullis_tests::auth); the native
    // jwt_authn variant is given the same key, so both verify the same token.
    let secret = auth::demo_secret();
    let jwt = auth::demo_token("viewer");

    let (_upstream, upstream_port) = start_upstream();
    // The audit HTTP sink's collector: acknowledges every batch, as a healthy one would.
    let collector = TestServer::start(|_| Response::status(204));
    let selected: Vec<&'static Variant> = VARIANTS
        .iter()
        .filter(|v| {
            options
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|n| n == v.name))
        })
        .collect();
    let floor_dir = floor_module(&scratch.0);
    let running: Vec<Running> = selected
        .iter()
        .map(|v| {
            start_variant(
                v,
                &scratch.0,
                upstream_port,
                collector.port(),
                secret,
                &options.settings,
                &floor_dir,
            )
        })
        .collect();

    let scripts = write_wrk_scripts(&scratch.0, &jwt);
    let mut samples: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    for round in 0..options.rounds {
        // Rotate the order every round so no variant always runs first (or hot).
        let n = running.len();
        for i in 0..n {
            let r = &running[(i + round) % n];
            let script = &scripts[&r.variant.workload];
            let path = match r.variant.workload {
                Workload::Api => "/api/orders/1",
                Workload::Cacheable => "/api/products",
                Workload::Post4k => "/echo",
            };
            let url = format!("http://127.0.0.1:{}{path}", r.port);
            wrk(&url, script, 2, options.connections); // warm-up, discarded
            let cpu_before = cpu_time_ns(r.envoy.id());
            let mut sample = wrk(&url, script, options.duration, options.connections);
            let cpu_ns = cpu_time_ns(r.envoy.id()).saturating_sub(cpu_before);
            sample.cpu_us = cpu_ns as f64 / 1000.0 / sample.requests;
            sample.memory_mib = envoy_memory_mib(r.admin_port);
            sample.rss_mib = rss_mib(r.envoy.id());
            eprintln!(
                "round {}/{} {:<30} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  cpu {:>6.1} µs/req  errors {}",
                round + 1,
                options.rounds,
                r.variant.name,
                sample.rps,
                sample.p50_ms,
                sample.p99_ms,
                sample.cpu_us,
                sample.errors
            );
            samples.entry(r.variant.name).or_default().push(sample);
        }
    }
    // A variant that answered errors measured its error path, not the work it names: the figures
    // would be false, so the run fails loudly instead of printing them as if they were good.
    let failing: Vec<String> = samples
        .iter()
        .filter_map(|(name, runs)| {
            let errors: u64 = runs.iter().map(|s| s.errors).sum();
            let requests: f64 = runs.iter().map(|s| s.requests).sum();
            (errors as f64 > MAX_ERROR_SHARE * requests || requests.is_nan())
                .then(|| format!("{name}: {errors} errors in {requests} requests"))
        })
        .collect();
    let mut table = report(&selected, &samples, &options);
    for r in running.iter().filter(|r| r.variant.name.contains("audit")) {
        let counters: Vec<String> = ["records", "queued", "shipped", "dropped", "ship_failures"]
            .iter()
            .map(|what| format!("{what} {}", audit_counter(r.admin_port, what)))
            .collect();
        let _ = writeln!(table, "- {}: audit {}", r.variant.name, counters.join(", "));
    }
    println!("{table}");
    if let Some(dir) = options.out.parent() {
        let _ = fs::create_dir_all(dir);
    }
    match fs::write(&options.out, &table) {
        Ok(()) => eprintln!("written to {}", options.out.display()),
        Err(e) => eprintln!("{}: {e}", options.out.display()),
    }
    if !failing.is_empty() {
        eprintln!(
            "FAILED: variants answered non-2xx/socket errors above {} %: {}",
            MAX_ERROR_SHARE * 100.0,
            failing.join("; ")
        );
        std::process::exit(1);
    }
}

/// The share of non-2xx answers or socket errors above which a variant's figures are refused.
const MAX_ERROR_SHARE: f64 = 0.001;

/// A directory holding the do-nothing module (`make bench` builds it) as `portcullis.wasm`, so
/// the floor variants render exactly like the suite's.
fn floor_module(scratch: &Path) -> PathBuf {
    let built = repo().join("target/wasm32-wasip1/release/portcullis_bench_floor.wasm");
    let dir = scratch.join("floor");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    fs::copy(&built, dir.join("portcullis.wasm"))
        .unwrap_or_else(|e| panic!("{}: {e}: run `make bench`", built.display()));
    dir
}

/// The release build of the demo upstream (`make bench` builds it), as its own process.
fn start_upstream() -> (ChildGuard, u16) {
    let binary = repo().join("target/release/portcullis-demo-upstream");
    assert!(
        binary.exists(),
        "{} missing: run `make bench`",
        binary.display()
    );
    let [port] = free_ports::<1>();
    let mut cmd = Command::new(binary);
    cmd.args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    kill_with_parent(&mut cmd);
    let guard = ChildGuard(cmd.spawn().unwrap_or_else(|e| panic!("upstream: {e}")));
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (guard, port);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("demo upstream did not start on port {port}");
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_variant(
    variant: &'static Variant,
    dir: &Path,
    upstream_port: u16,
    collector_port: u16,
    secret: &str,
    sets: &[String],
    floor_dir: &Path,
) -> Running {
    let [port, admin_port] = free_ports::<2>();
    let mut settings = Settings::local(&repo());
    settings.http_port = port;
    settings.admin_port = admin_port;
    settings.upstream_port = upstream_port;
    settings.wasm_dir = wasm_dir();
    settings.audit_collector_port = collector_port;
    for assignment in sets {
        settings.set(assignment).unwrap_or_else(|e| panic!("{e}"));
    }
    if variant.floor {
        settings.wasm_dir = floor_dir.to_path_buf();
    }
    settings.layout = variant.layout;
    let bench_configs = BENCH_CONFIGS.iter().map(|i| (*i, *i));
    for (instance, file) in bench_configs.chain(variant.configs.iter().copied()) {
        let path = repo().join(format!("envoy/bench/filters/{file}.json"));
        let json = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        settings.filter_configs.insert(instance.into(), json);
    }
    let template = fs::read_to_string(repo().join("envoy/bench/bench.yaml"))
        .unwrap_or_else(|e| panic!("bench.yaml: {e}"))
        .replace("{{filters}}", &variant.filters.join("\n"));
    let jwks = serde_json::json!({ "keys": [{ "kty": "oct", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(secret.as_bytes()) }] });
    let yaml = render_template(&template, &settings, &[("BENCH_JWKS", jwks.to_string())])
        .unwrap_or_else(|e| panic!("{}: {e}", variant.name));
    let config = dir.join(format!("{}.yaml", variant.name));
    let log = dir.join(format!("{}.log", variant.name));
    fs::write(&config, yaml).unwrap_or_else(|e| panic!("{e}"));
    // One worker: the machine has two cores, one for Envoy and one for wrk and the upstream.
    let mut envoy = spawn_envoy(&config, &log, 1);
    wait_ready(&mut envoy, admin_port, &log);
    Running {
        variant,
        envoy,
        port,
        admin_port,
    }
}

/// A wrk Lua script per workload: method, body and headers.
fn write_wrk_scripts(dir: &Path, jwt: &str) -> BTreeMap<Workload, PathBuf> {
    let body = post_body_4k();
    let mut scripts = BTreeMap::new();
    for workload in [Workload::Api, Workload::Cacheable, Workload::Post4k] {
        let mut lua = format!("wrk.headers[\"authorization\"] = \"Bearer {jwt}\"\n");
        if workload == Workload::Post4k {
            lua.push_str("wrk.method = \"POST\"\n");
            lua.push_str("wrk.headers[\"content-type\"] = \"application/json\"\n");
            let _ = writeln!(lua, "wrk.body = [==[{body}]==]");
        }
        let path = dir.join(format!("{workload:?}.lua"));
        fs::write(&path, lua).unwrap_or_else(|e| panic!("{e}"));
        scripts.insert(workload, path);
    }
    scripts
}

/// A realistic 4 KiB JSON document: an order with line items and free text.
fn post_body_4k() -> String {
    let items: Vec<serde_json::Value> = (0..24)
        .map(|i| {
            serde_json::json!({
                "sku": format!("SKU-{i:05}"),
                "name": format!("Item {i}: O'Brien's hand-made mug, 350 ml"),
                "quantity": i % 4 + 1,
                "price_cents": 1299 + i * 10,
                "note": "Please gift-wrap; deliver after 5 pm if possible."
            })
        })
        .collect();
    let mut doc =
        serde_json::json!({ "customer": "ada@example.com", "currency": "EUR", "items": items })
            .to_string();
    // Padding with distinct keys: the sanitizer refuses an object that names a key twice
    // (`json_duplicate_key`), and an earlier `"pad"` repeated made every POST a 400.
    let mut n = 0;
    while doc.len() < 4096 {
        doc.insert_str(doc.len() - 1, &format!(",\"pad{n}\":\"x\""));
        n += 1;
    }
    doc
}

fn wrk(url: &str, script: &Path, seconds: u64, connections: u32) -> Sample {
    let out = Command::new("wrk")
        .args([
            "-t1",
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("wrk: {e}"));
    parse_wrk(&String::from_utf8_lossy(&out.stdout))
}

/// Reads what we need from wrk's text report.
fn parse_wrk(text: &str) -> Sample {
    let mut s = Sample::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => s.rps = v.parse().unwrap_or(0.0),
            [n, "requests", "in", ..] => s.requests = n.parse().unwrap_or(f64::NAN),
            ["50%", v] => s.p50_ms = millis(v),
            ["99%", v] => s.p99_ms = millis(v),
            ["Non-2xx", "or", "3xx", "responses:", n] => s.errors += n.parse().unwrap_or(0),
            ["Socket", "errors:", ..] => {
                s.errors += line
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    s
}

fn millis(v: &str) -> f64 {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

/// One of the audit filter's counters (`portcullis_audit_<what>`), summed over workers.
fn audit_counter(admin_port: u16, what: &str) -> u64 {
    let name = format!("wasmcustom.portcullis_audit_{what}");
    ureq::get(&format!(
        "http://127.0.0.1:{admin_port}/stats?filter=^{name}$"
    ))
    .call()
    .ok()
    .and_then(|r| r.into_string().ok())
    .and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    })
    .and_then(|v| v.trim().parse().ok())
    .unwrap_or(0)
}

/// CPU time a process has used so far, all threads, in ns (the first field of each thread's
/// `/proc/PID/task/TID/schedstat`).
fn cpu_time_ns(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// A process's resident set (`VmRSS` of `/proc/PID/status`).
fn rss_mib(pid: u32) -> f64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Envoy's allocated heap, from the admin interface.
fn envoy_memory_mib(admin_port: u16) -> f64 {
    ureq::get(&format!("http://127.0.0.1:{admin_port}/memory"))
        .call()
        .ok()
        .and_then(|r| serde_json::from_reader::<_, serde_json::Value>(r.into_reader()).ok())
        .and_then(|v| v["allocated"].as_str().and_then(|a| a.parse::<f64>().ok()))
        .map(|bytes| bytes / (1024.0 * 1024.0))
        .unwrap_or(f64::NAN)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn report(variants: &[&Variant], samples: &BTreeMap<&str, Vec<Sample>>, o: &Options) -> String {
    let med = |name: &str, f: fn(&Sample) -> f64| {
        median(
            samples
                .get(name)
                .map(|s| s.iter().map(f).collect())
                .unwrap_or_default(),
        )
    };
    let mut out = format!(
        "Medians of {} rounds of {} s, wrk 1 thread / {} connections, Envoy 1 worker, plain HTTP on loopback.\n",
        o.rounds, o.duration, o.connections
    );
    let mut workloads: Vec<Workload> = variants.iter().map(|v| v.workload).collect();
    workloads.dedup();
    for workload in workloads {
        let _ = write!(
            out,
            "\n**{}**\n\n| variant | req/s | × baseline | p50 ms | p99 ms | Envoy CPU µs/req | + µs vs baseline | Envoy heap MiB | Envoy RSS MiB | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            workload.describe()
        );
        let baseline = variants
            .iter()
            .find(|v| v.workload == workload && v.filters.is_empty())
            .map(|v| (med(v.name, |s| s.rps), med(v.name, |s| s.cpu_us)));
        for v in variants.iter().filter(|v| v.workload == workload) {
            let rps = med(v.name, |s| s.rps);
            let ratio = baseline.map_or(f64::NAN, |(b, _)| rps / b);
            let cpu = med(v.name, |s| s.cpu_us);
            let extra = baseline.map_or(f64::NAN, |(_, b)| cpu - b);
            let errors: u64 = samples
                .get(v.name)
                .map(|s| s.iter().map(|x| x.errors).sum())
                .unwrap_or(0);
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {:+.1} | {:.1} | {:.1} | {} |",
                v.name,
                rps,
                ratio,
                med(v.name, |s| s.p50_ms),
                med(v.name, |s| s.p99_ms),
                cpu,
                extra,
                med(v.name, |s| s.memory_mib),
                med(v.name, |s| s.rss_mib),
                errors
            );
        }
    }
    out.push_str("\nEnvoy CPU µs/req = Envoy's CPU time (all threads, from /proc) over the requests served; + µs vs baseline is what the filters add per request.\nerrors = non-2xx/3xx responses and socket errors; a variant with errors is not comparable.\n");
    out
}
