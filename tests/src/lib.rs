//! The real-Envoy test harness: renders Envoy's config from `envoy/` (the same template `make run`
//! uses) with free loopback ports, starts the demo upstream and Envoy with the built `dist/*.wasm`,
//! waits for `/ready`, and on drop kills Envoy — printing its log if the test is failing.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_demo_upstream::Upstream;
use portcullis_devkit::render::{render, Settings, AUDIT_KEY_ENV};

pub mod auth;
pub mod h2;
pub mod reply;
pub mod server;
pub mod tls;

pub const FILTERS: [&str; 5] = ["auth", "ratelimit", "sanitizer", "cache", "audit"];

/// The audit filter's sealing key in this test process (random, never the developer's `.dev`
/// key), passed to Envoy as `PORTCULLIS_AUDIT_KEY`; tests verify records with it.
pub fn audit_key() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let mut buf = [0u8; 32];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut buf))
            .unwrap_or_else(|e| panic!("/dev/urandom: {e}"));
        buf.iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// Repository root (the parent of this crate).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The pinned Envoy from the project virtualenv (`make setup`), or `$PORTCULLIS_ENVOY`.
pub fn envoy_binary() -> PathBuf {
    let path = std::env::var_os("PORTCULLIS_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/envoy"));
    assert!(
        path.exists(),
        "{} not found: run `make setup` (or set PORTCULLIS_ENVOY)",
        path.display()
    );
    path
}

/// `dist/`, checked to hold the suite's module (`make build` writes it), or
/// `$PORTCULLIS_TEST_WASM_DIR` (to run the tests against another build, e.g. an older commit's,
/// and see a test fail where a fix is missing).
pub fn wasm_dir() -> PathBuf {
    let dist = std::env::var_os("PORTCULLIS_TEST_WASM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("dist"));
    let wasm = dist.join("portcullis.wasm");
    assert!(
        wasm.exists(),
        "{} missing: run `make build`",
        wasm.display()
    );
    dist
}

/// A scratch directory under `target/`, removed on drop.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(label: &str) -> ScratchDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = repo().join("target/portcullis-tests").join(format!(
            "{label}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Fresh dev certificates (CA + server) made by the same script as `make setup`.
pub fn make_certs(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    let status = Command::new("bash")
        .arg(repo().join("scripts/dev-certs.sh"))
        .arg(&certs)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("dev-certs.sh: {e}"));
    assert!(status.success(), "dev-certs.sh failed");
    certs
}

/// Ports nobody listens on right now. Envoy binds them a moment later; the window is tiny and a
/// clash shows up as a clear bind error in Envoy's log.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}")))
        .collect();
    let mut ports = [0u16; N];
    for (port, l) in ports.iter_mut().zip(&listeners) {
        *port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    }
    ports
}

/// What a test may change about the chain; everything else is `make run`'s configuration.
#[derive(Default, Clone)]
pub struct Options {
    /// `NAME=VALUE` settings, as `portcullis-devkit render --set`.
    pub settings: Vec<String>,
    /// Replacement JSON for `envoy/filters/INSTANCE.json`.
    pub filter_configs: Vec<(String, String)>,
    /// Text replaced in the rendered YAML: a config written by hand, which the renderer would
    /// refuse.
    pub yaml_edits: Vec<(String, String)>,
    /// Envoy's log level for the `wasm` component (`info` unless set).
    pub wasm_log_level: Option<String>,
    /// Extra environment variables for Envoy, each also passed to the VM (`host_env_keys`).
    pub env: Vec<(String, String)>,
}

impl Options {
    pub fn set(mut self, assignment: &str) -> Self {
        self.settings.push(assignment.to_string());
        self
    }

    /// Replaces `from` (which must occur) with `to` in the rendered YAML.
    pub fn edit_yaml(mut self, from: &str, to: &str) -> Self {
        self.yaml_edits.push((from.to_string(), to.to_string()));
        self
    }

    /// Gives Envoy and the filters' VM the environment variable `name`.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Starts Envoy with `--component-log-level wasm:LEVEL` instead of `wasm:info`.
    pub fn wasm_log_level(mut self, level: &str) -> Self {
        self.wasm_log_level = Some(level.to_string());
        self
    }

    pub fn filter_config(mut self, instance: &str, json: &str) -> Self {
        self.filter_configs
            .push((instance.to_string(), json.to_string()));
        self
    }
}

/// Envoy + demo upstream, all on loopback.
pub struct Chain {
    pub upstream: Upstream,
    pub https_port: u16,
    pub http_port: u16,
    pub admin_port: u16,
    pub certs: PathBuf,
    envoy: Child,
    log: PathBuf,
    // Last, so the directory outlives the process writing into it.
    dir: ScratchDir,
}

impl Chain {
    pub fn start() -> Chain {
        Chain::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Chain {
        let upstream = Upstream::start("127.0.0.1:0").unwrap_or_else(|e| panic!("upstream: {e}"));
        // Free ports are picked before Envoy binds them; if another process took one in between,
        // start again on fresh ports instead of failing the test.
        for attempt in 1.. {
            let launch = Launch::new(&options, upstream.local_addr());
            let mut envoy = launch.spawn();
            match until_ready(&mut envoy, launch.admin_port) {
                Ok(()) => {
                    return Chain {
                        upstream,
                        https_port: launch.https_port,
                        http_port: launch.http_port,
                        admin_port: launch.admin_port,
                        certs: launch.certs,
                        envoy,
                        log: launch.log,
                        dir: launch.dir,
                    }
                }
                Err(why) => {
                    let log = read_lossy(&launch.log);
                    if attempt < 3 && log.contains("ddress already in use") {
                        continue;
                    }
                    panic!("{why}; its log:\n{log}");
                }
            }
        }
        unreachable!("the loop returns or panics")
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https_port)
    }

    /// An HTTP/1.1 client trusting the dev CA; redirects are not followed.
    pub fn client(&self) -> ureq::Agent {
        ureq::AgentBuilder::new()
            .tls_config(Arc::new(tls::client_config(
                &self.certs,
                &[&rustls::version::TLS13, &rustls::version::TLS12],
                &[b"http/1.1"],
            )))
            .redirects(0)
            .timeout(Duration::from_secs(20))
            .build()
    }

    /// GET on the admin interface.
    pub fn admin(&self, path: &str) -> String {
        ureq::get(&format!("http://127.0.0.1:{}{path}", self.admin_port))
            .call()
            .unwrap_or_else(|e| panic!("admin {path}: {e}"))
            .into_string()
            .unwrap_or_default()
    }

    /// One counter or gauge from `/stats`, if Envoy has it.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let stats = self.admin(&format!("/stats?filter=^{}$", name.replace('.', "\\.")));
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        read_lossy(&self.log)
    }

    pub fn scratch(&self) -> &Path {
        &self.dir.0
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        let _ = self.envoy.kill();
        let _ = self.envoy.wait();
        if std::thread::panicking() {
            eprintln!(
                "----- Envoy log ({}) -----\n{}",
                self.log.display(),
                self.log()
            );
        }
    }
}

/// Starts Envoy with `options` and expects it to refuse the configuration: returns its exit
/// status and log once it has exited (or panics if it is still running after 60 s).
pub fn envoy_refuses(options: Options) -> (ExitStatus, String) {
    let launch = Launch::new(&options, SocketAddr::from(([127, 0, 0, 1], 9)));
    let mut envoy = launch.spawn();
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = envoy.try_wait() {
            return (status, read_lossy(&launch.log));
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = envoy.kill();
            let _ = envoy.wait();
            panic!(
                "Envoy still running after 60 s with a bad config; its log:\n{}",
                read_lossy(&launch.log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Everything needed to start one Envoy.
struct Launch {
    dir: ScratchDir,
    certs: PathBuf,
    config: PathBuf,
    log: PathBuf,
    https_port: u16,
    http_port: u16,
    admin_port: u16,
    wasm_log_level: String,
    env: Vec<(String, String)>,
}

impl Launch {
    fn new(options: &Options, upstream: SocketAddr) -> Launch {
        let dir = ScratchDir::new("chain");
        let certs = make_certs(&dir.0);
        let [https_port, http_port, admin_port] = free_ports::<3>();
        let mut settings = Settings::local(&repo());
        settings.https_port = https_port;
        settings.https_public_port = https_port;
        settings.http_port = http_port;
        settings.admin_port = admin_port;
        settings.upstream_host = upstream.ip().to_string();
        settings.upstream_port = upstream.port();
        settings.cert_dir = certs.clone();
        settings.wasm_dir = wasm_dir();
        settings.cors_allowed_origins = vec!["https://app.example.com".into()];
        // The tests' identity provider is a plain-HTTP TestServer (a test may set it back on).
        settings.auth_idp_tls = false;
        // `make test` runs the suite a second time with every instance as a stage of one chain.
        if let Ok(layout) = std::env::var("PORTCULLIS_TEST_LAYOUT") {
            settings
                .set(&format!("LAYOUT={layout}"))
                .unwrap_or_else(|e| panic!("PORTCULLIS_TEST_LAYOUT: {e}"));
        }
        for s in &options.settings {
            settings.set(s).unwrap_or_else(|e| panic!("{e}"));
        }
        for (name, _) in &options.env {
            settings.wasm_env_keys.push(name.clone());
        }
        for (instance, json) in &options.filter_configs {
            settings
                .filter_configs
                .insert(instance.clone(), json.clone());
        }
        let mut yaml = render(&settings).unwrap_or_else(|e| panic!("render: {e}"));
        for (from, to) in &options.yaml_edits {
            assert!(
                yaml.contains(from.as_str()),
                "edit_yaml: `{from}` not in the config"
            );
            yaml = yaml.replace(from.as_str(), to);
        }
        let config = dir.0.join("envoy.yaml");
        fs::write(&config, yaml).unwrap_or_else(|e| panic!("{e}"));
        let log = dir.0.join("envoy.log");
        Launch {
            dir,
            certs,
            config,
            log,
            https_port,
            http_port,
            admin_port,
            wasm_log_level: options
                .wasm_log_level
                .clone()
                .unwrap_or_else(|| "info".into()),
            env: options.env.clone(),
        }
    }

    fn spawn(&self) -> Child {
        spawn_envoy_with(&self.config, &self.log, 2, &self.wasm_log_level, &self.env)
    }
}

/// Starts Envoy on `config` with `concurrency` workers, its output in `log`.
pub fn spawn_envoy(config: &Path, log: &Path, concurrency: u32) -> Child {
    spawn_envoy_with(config, log, concurrency, "info", &[])
}

/// [`spawn_envoy`] with the `wasm` component logging at `wasm_level` and `env` added.
pub fn spawn_envoy_with(
    config: &Path,
    log: &Path,
    concurrency: u32,
    wasm_level: &str,
    env: &[(String, String)],
) -> Child {
    let out = fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let err = out.try_clone().unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(envoy_binary());
    cmd.arg("-c")
        .arg(config)
        .arg("--disable-hot-restart")
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--log-level", "info", "--component-log-level"])
        .arg(format!("wasm:{wasm_level}"))
        .envs(auth::envoy_env())
        .env(AUDIT_KEY_ENV, audit_key())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    kill_with_parent(&mut cmd);
    cmd.spawn().unwrap_or_else(|e| panic!("spawn envoy: {e}"))
}

/// If the test process dies without running Drop (a signal, an abort), the kernel kills the
/// child too: no orphans.
pub fn kill_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only the child being exec'd.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Waits until Envoy answers `/ready` on `admin_port`, or panics with its log.
pub fn wait_ready(envoy: &mut Child, admin_port: u16, log: &Path) {
    if let Err(why) = until_ready(envoy, admin_port) {
        panic!("{why}; its log:\n{}", read_lossy(log));
    }
}

fn until_ready(envoy: &mut Child, admin_port: u16) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = envoy.try_wait() {
            return Err(format!("Envoy exited ({status}) before it was ready"));
        }
        if http_get_status(admin_port, "/ready") == Some(200) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = envoy.kill();
            let _ = envoy.wait();
            return Err("Envoy not ready after 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Plain-HTTP GET on loopback returning only the status (None if nothing answers).
pub fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

pub fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}
