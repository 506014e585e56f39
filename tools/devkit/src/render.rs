//! Renders `envoy/portcullis.yaml` into a config Envoy can load.
//!
//! The template has two kinds of placeholder in double braces: a setting (`HTTPS_PORT`), and
//! `wasm:FILTER:INSTANCE`, which becomes `envoy/wasm-filter.yaml` for `dist/FILTER.wasm`
//! configured with the JSON of `envoy/filters/INSTANCE.json` (or an override). Anything left in
//! double braces after rendering is an error, so a typo cannot reach Envoy.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// Everything that differs between `make run`, a test and docker-compose.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Directory holding `portcullis.yaml`, `wasm-filter.yaml` and `filters/`.
    pub envoy_dir: PathBuf,
    pub listen_address: String,
    pub https_port: u16,
    /// The HTTPS port clients see (differs from `https_port` behind a port mapping); the HTTP
    /// listener redirects there.
    pub https_public_port: u16,
    pub http_port: u16,
    pub admin_port: u16,
    pub upstream_host: String,
    pub upstream_port: u16,
    pub cert_dir: PathBuf,
    pub wasm_dir: PathBuf,
    /// Proxies in front of Envoy whose X-Forwarded-For entries are trusted.
    pub xff_trusted_hops: u32,
    /// An Envoy duration, e.g. `10s`.
    pub request_headers_timeout: String,
    /// Origins allowed by CORS and, for unsafe methods, by CSRF.
    pub cors_allowed_origins: Vec<String>,
    /// Filter configurations that replace `envoy/filters/INSTANCE.json`, verbatim.
    pub filter_configs: BTreeMap<String, String>,
}

impl Settings {
    /// `make run` on this machine: loopback listeners on the documented ports.
    pub fn local(repo: &Path) -> Settings {
        Settings {
            envoy_dir: repo.join("envoy"),
            listen_address: "127.0.0.1".into(),
            https_port: 8443,
            https_public_port: 8443,
            http_port: 8080,
            admin_port: 9901,
            upstream_host: "127.0.0.1".into(),
            upstream_port: 8000,
            cert_dir: repo.join(".dev/certs"),
            wasm_dir: repo.join("dist"),
            xff_trusted_hops: 0,
            request_headers_timeout: "10s".into(),
            cors_allowed_origins: vec!["https://localhost:8443".into()],
            filter_configs: BTreeMap::new(),
        }
    }

    /// docker-compose: listeners on all interfaces of the container, the upstream service by
    /// name, certificates and filters mounted under /etc/portcullis.
    pub fn docker(repo: &Path) -> Settings {
        Settings {
            listen_address: "0.0.0.0".into(),
            upstream_host: "upstream".into(),
            cert_dir: PathBuf::from("/etc/portcullis/certs"),
            wasm_dir: PathBuf::from("/etc/portcullis/dist"),
            ..Settings::local(repo)
        }
    }

    /// Applies `NAME=VALUE` from the command line.
    pub fn set(&mut self, assignment: &str) -> Result<(), RenderError> {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| RenderError(format!("--set {assignment}: expected NAME=VALUE")))?;
        let port = |v: &str| {
            v.parse::<u16>()
                .map_err(|_| RenderError(format!("--set {name}: `{v}` is not a port number")))
        };
        match name {
            "LISTEN_ADDRESS" => self.listen_address = value.into(),
            "HTTPS_PORT" => self.https_port = port(value)?,
            "HTTPS_PUBLIC_PORT" => self.https_public_port = port(value)?,
            "HTTP_PORT" => self.http_port = port(value)?,
            "ADMIN_PORT" => self.admin_port = port(value)?,
            "UPSTREAM_HOST" => self.upstream_host = value.into(),
            "UPSTREAM_PORT" => self.upstream_port = port(value)?,
            "CERT_DIR" => self.cert_dir = value.into(),
            "WASM_DIR" => self.wasm_dir = value.into(),
            "XFF_TRUSTED_HOPS" => {
                self.xff_trusted_hops = value.parse().map_err(|_| {
                    RenderError(format!("--set {name}: `{value}` is not a whole number"))
                })?
            }
            "REQUEST_HEADERS_TIMEOUT" => self.request_headers_timeout = value.into(),
            "CORS_ALLOWED_ORIGINS" => {
                self.cors_allowed_origins = value
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(String::from)
                    .collect()
            }
            _ => return Err(RenderError(format!("--set {name}: unknown setting"))),
        }
        Ok(())
    }

    fn values(&self) -> Vec<(&'static str, String)> {
        let matchers = |values: Vec<&str>| {
            let exact: Vec<String> = values
                .iter()
                .map(|v| format!("{{ exact: {} }}", yaml_string(v)))
                .collect();
            format!("[{}]", exact.join(", "))
        };
        let origins = self.cors_allowed_origins.iter().map(String::as_str);
        // Envoy's CSRF filter compares the host[:port] of Origin, not the whole origin.
        let hosts = origins
            .clone()
            .map(|o| o.split_once("://").map_or(o, |(_, host)| host));
        vec![
            ("LISTEN_ADDRESS", self.listen_address.clone()),
            ("HTTPS_PORT", self.https_port.to_string()),
            ("HTTPS_PUBLIC_PORT", self.https_public_port.to_string()),
            ("HTTP_PORT", self.http_port.to_string()),
            ("ADMIN_PORT", self.admin_port.to_string()),
            ("UPSTREAM_HOST", self.upstream_host.clone()),
            ("UPSTREAM_PORT", self.upstream_port.to_string()),
            ("CERT_DIR", self.cert_dir.display().to_string()),
            ("WASM_DIR", self.wasm_dir.display().to_string()),
            ("XFF_TRUSTED_HOPS", self.xff_trusted_hops.to_string()),
            (
                "REQUEST_HEADERS_TIMEOUT",
                self.request_headers_timeout.clone(),
            ),
            ("CORS_ALLOWED_ORIGINS", matchers(origins.collect())),
            ("CSRF_ALLOWED_HOSTS", matchers(hosts.collect())),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError(pub String);

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RenderError {}

/// Renders the full chain.
pub fn render(settings: &Settings) -> Result<String, RenderError> {
    let template = read(&settings.envoy_dir.join("portcullis.yaml"))?;
    let wasm_block = read(&settings.envoy_dir.join("wasm-filter.yaml"))?;
    let mut out = String::with_capacity(template.len() * 2);
    for line in template.lines() {
        match wasm_placeholder(line) {
            Some((filter, instance, body)) => {
                let config = match settings.filter_configs.get(instance) {
                    Some(config) => config.clone(),
                    None => read(
                        &settings
                            .envoy_dir
                            .join("filters")
                            .join(format!("{instance}.json")),
                    )?,
                };
                let block = fill(
                    &wasm_block,
                    &[
                        ("FILTER", filter.to_string()),
                        ("INSTANCE", instance.to_string()),
                        ("WASM_DIR", settings.wasm_dir.display().to_string()),
                        ("CONFIG", yaml_string(config.trim())),
                        ("HEADERS_STOP_ITERATION", body.to_string()),
                    ],
                );
                out.push_str(&block);
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    let out = fill(&out, &settings.values());
    match out.find("{{") {
        Some(at) => {
            let rest: String = out[at..].chars().take(40).collect();
            Err(RenderError(format!("unknown placeholder at `{rest}`")))
        }
        None => Ok(out),
    }
}

/// `{{wasm:FILTER:INSTANCE}}` alone on a line; `{{wasm:FILTER:INSTANCE:body}}` for a filter that
/// must see the request body before the headers go upstream (the sanitizer): its `Pause` from
/// the headers callback is then Envoy's `StopIteration`, not `StopAllIterationAndWatermark`,
/// which would withhold the body from the filter too.
fn wasm_placeholder(line: &str) -> Option<(&str, &str, bool)> {
    let inner = line.trim().strip_prefix("{{wasm:")?.strip_suffix("}}")?;
    let (filter, rest) = inner.split_once(':')?;
    Some(match rest.strip_suffix(":body") {
        Some(instance) => (filter, instance, true),
        None => (filter, rest, false),
    })
}

fn fill(text: &str, values: &[(&str, String)]) -> String {
    values.iter().fold(text.to_string(), |acc, (name, value)| {
        acc.replace(&format!("{{{{{name}}}}}"), value)
    })
}

/// A double-quoted YAML scalar; JSON string escaping is valid YAML, so any text (including a
/// deliberately broken filter config in a test) reaches the filter byte for byte.
fn yaml_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

fn read(path: &Path) -> Result<String, RenderError> {
    fs::read_to_string(path).map_err(|e| RenderError(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn renders_every_placeholder() {
        let yaml = render(&Settings::local(&repo())).unwrap();
        assert!(!yaml.contains("{{"));
        // Only the sanitizer holds the headers while it reads the body.
        assert_eq!(
            yaml.matches("allow_on_headers_stop_iteration: true")
                .count(),
            1
        );
        assert_eq!(
            wasm_placeholder("{{wasm:sanitizer:sanitizer:body}}"),
            Some(("sanitizer", "sanitizer", true))
        );
        assert_eq!(
            wasm_placeholder("  {{wasm:auth:auth}}"),
            Some(("auth", "auth", false))
        );
        assert!(yaml.contains("port_value: 8443"));
        assert!(yaml.contains("allow_origin_string_match: [{ exact: \"https://localhost:8443\" }]"));
        assert!(yaml.contains("additional_origins: [{ exact: \"localhost:8443\" }]"));
        for instance in [
            "audit",
            "ratelimit-client",
            "auth",
            "ratelimit-identity",
            "sanitizer",
            "cache",
        ] {
            assert!(
                yaml.contains(&format!("root_id: {instance}\n")),
                "{instance}"
            );
        }
        assert!(yaml.contains("dist/ratelimit.wasm"));
        assert!(yaml.contains(r#"value: "{\"mode\": \"enforce\"}""#));
    }

    #[test]
    fn filters_appear_in_the_designed_order() {
        let yaml = render(&Settings::local(&repo())).unwrap();
        let order = [
            "envoy.filters.http.health_check",
            "envoy.filters.http.header_mutation",
            "name: portcullis.audit",
            "name: envoy.filters.http.cors",
            "name: envoy.filters.http.csrf",
            "name: envoy.filters.http.compressor",
            "name: portcullis.ratelimit-client",
            "name: portcullis.auth",
            "name: portcullis.ratelimit-identity",
            "name: portcullis.sanitizer",
            "name: portcullis.cache",
            "name: envoy.filters.http.router",
        ];
        let positions: Vec<usize> = order
            .iter()
            .map(|n| yaml.rfind(n).unwrap_or_else(|| panic!("{n} missing")))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    }

    #[test]
    fn overrides_reach_the_filter_verbatim() {
        let mut s = Settings::local(&repo());
        s.filter_configs
            .insert("sanitizer".into(), "{\"mode\": \"bl\\ock\"\n".into());
        let yaml = render(&s).unwrap();
        assert!(
            yaml.contains(r#"value: "{\"mode\": \"bl\\ock\"""#),
            "{yaml}"
        );
    }

    #[test]
    fn settings_from_the_command_line() {
        let mut s = Settings::local(&repo());
        s.set("HTTPS_PORT=9443").unwrap();
        s.set("CORS_ALLOWED_ORIGINS=https://a.example, https://b.example")
            .unwrap();
        s.set("XFF_TRUSTED_HOPS=2").unwrap();
        let yaml = render(&s).unwrap();
        assert!(yaml.contains("port_value: 9443"));
        assert!(yaml.contains("xff_num_trusted_hops: 2"));
        assert!(
            yaml.contains("[{ exact: \"https://a.example\" }, { exact: \"https://b.example\" }]")
        );
        assert_eq!(
            s.set("HTTPS_PORT=99999").unwrap_err().0,
            "--set HTTPS_PORT: `99999` is not a port number"
        );
        assert_eq!(
            s.set("NOPE=1").unwrap_err().0,
            "--set NOPE: unknown setting"
        );
        assert!(s.set("HTTPS_PORT").is_err());
    }

    #[test]
    fn unknown_placeholders_and_missing_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("portcullis-render-{}", std::process::id()));
        fs::create_dir_all(dir.join("filters")).unwrap();
        fs::write(dir.join("portcullis.yaml"), "a: {{TYPO}}\n").unwrap();
        fs::write(dir.join("wasm-filter.yaml"), "").unwrap();
        let s = Settings {
            envoy_dir: dir.clone(),
            ..Settings::local(&repo())
        };
        assert_eq!(
            render(&s).unwrap_err().0,
            "unknown placeholder at `{{TYPO}}\n`"
        );
        fs::write(dir.join("portcullis.yaml"), "{{wasm:auth:missing}}\n").unwrap();
        assert!(render(&s).unwrap_err().0.contains("missing.json"));
        fs::remove_dir_all(dir).unwrap();
    }
}
