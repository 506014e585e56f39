//! Renders `envoy/portcullis.yaml` into a config Envoy can load.
//!
//! The template has two kinds of placeholder in double braces: a setting (`HTTPS_PORT`), and
//! `wasm:INSTANCE`, which becomes `envoy/wasm-filter.yaml`: the filter instance INSTANCE of
//! `dist/portcullis.wasm` (named `FILTER` or `FILTER-NAME`, e.g. `ratelimit-client`), configured
//! with the JSON of `envoy/filters/INSTANCE.json` (or an override). Anything left in
//! double braces after rendering is an error, so a typo cannot reach Envoy.
//!
//! With `LAYOUT=chain`, a template's `wasm:` lines become one `chain` filter instance instead,
//! which runs those instances as stages in the template's order (each with the same
//! configuration); it stands where the last of them stands.

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
    /// Environment variables Envoy passes to the suite's VM (`host_env_keys`). Every instance
    /// shares that VM, and Envoy shares a VM only between identical VM configurations, so this
    /// is one list for all of them.
    pub wasm_env_keys: Vec<String>,
    /// Where the auth filter's identity-provider cluster (`auth_idp`: JWKS, OIDC discovery,
    /// revocation list) points.
    pub auth_idp_host: String,
    pub auth_idp_port: u16,
    /// TLS to `auth_idp` (default on); off only for a plain-HTTP test IdP.
    pub auth_idp_tls: bool,
    /// The name sent as SNI and required in the IdP's certificate; default `auth_idp_host`.
    pub auth_idp_sni: Option<String>,
    /// CA bundle the IdP's certificate is checked against.
    pub auth_idp_ca_file: PathBuf,
    /// The audit collector (cluster `audit_collector`) for the audit filter's HTTP sink.
    pub audit_collector_host: String,
    pub audit_collector_port: u16,
    /// One Envoy filter per instance, or one `chain` filter running them all.
    pub layout: Layout,
}

/// How a template's `wasm:` lines reach Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One Envoy filter per `wasm:INSTANCE` line.
    Filters,
    /// One `chain` filter holding every instance as a stage.
    Chain,
}

/// Environment variables the auth filter reads: the demo HMAC secret and the API-key pepper.
pub const AUTH_ENV_KEYS: [&str; 2] = ["PORTCULLIS_JWT_SECRET", "PORTCULLIS_API_KEY_PEPPER"];

/// Environment variable holding the audit filter's sealing key (its `seal.key_env` default).
pub const AUDIT_KEY_ENV: &str = "PORTCULLIS_AUDIT_KEY";

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
            wasm_env_keys: AUTH_ENV_KEYS
                .iter()
                .chain([&AUDIT_KEY_ENV])
                .map(|k| k.to_string())
                .collect(),
            auth_idp_host: "127.0.0.1".into(),
            auth_idp_port: 8001,
            auth_idp_tls: true,
            auth_idp_sni: None,
            auth_idp_ca_file: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            audit_collector_host: "127.0.0.1".into(),
            audit_collector_port: 8099,
            layout: Layout::Filters,
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
            "AUTH_IDP_HOST" => self.auth_idp_host = value.into(),
            "AUTH_IDP_PORT" => self.auth_idp_port = port(value)?,
            "AUTH_IDP_TLS" => {
                self.auth_idp_tls = match value {
                    "on" => true,
                    "off" => false,
                    _ => {
                        return Err(RenderError(format!(
                            "--set AUTH_IDP_TLS: `{value}` is not `on` or `off`"
                        )))
                    }
                }
            }
            "AUTH_IDP_SNI" => self.auth_idp_sni = Some(value.into()),
            "AUTH_IDP_CA_FILE" => self.auth_idp_ca_file = value.into(),
            "AUDIT_COLLECTOR_HOST" => self.audit_collector_host = value.into(),
            "AUDIT_COLLECTOR_PORT" => self.audit_collector_port = port(value)?,
            "LAYOUT" => {
                self.layout = match value {
                    "filters" => Layout::Filters,
                    "chain" => Layout::Chain,
                    _ => {
                        return Err(RenderError(format!(
                            "--set LAYOUT: `{value}` is not `filters` or `chain`"
                        )))
                    }
                }
            }
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

    /// The `auth_idp` cluster's `transport_socket` line: TLS with SNI, the certificate's DNS
    /// name checked, under the CA bundle; or a comment saying TLS is off.
    fn auth_idp_transport_socket(&self) -> String {
        if !self.auth_idp_tls {
            return "# AUTH_IDP_TLS=off: keys and revocations travel in plain text (tests only)"
                .into();
        }
        let sni = yaml_string(self.auth_idp_sni.as_deref().unwrap_or(&self.auth_idp_host));
        let ca = yaml_string(&self.auth_idp_ca_file.display().to_string());
        format!(
            "transport_socket: {{ name: envoy.transport_sockets.tls, typed_config: {{ \
             \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, \
             sni: {sni}, common_tls_context: {{ validation_context: {{ trusted_ca: {{ filename: {ca} }}, \
             match_typed_subject_alt_names: [{{ san_type: DNS, matcher: {{ exact: {sni} }} }}] }} }} }} }}"
        )
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
            ("AUTH_IDP_HOST", self.auth_idp_host.clone()),
            ("AUTH_IDP_PORT", self.auth_idp_port.to_string()),
            (
                "AUTH_IDP_TRANSPORT_SOCKET",
                self.auth_idp_transport_socket(),
            ),
            ("CSRF_ALLOWED_HOSTS", matchers(hosts.collect())),
            ("AUDIT_COLLECTOR_HOST", self.audit_collector_host.clone()),
            (
                "AUDIT_COLLECTOR_PORT",
                self.audit_collector_port.to_string(),
            ),
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
    render_template(&template, settings, &[])
}

/// Renders any template of `envoy/` (the chain, or a benchmark variant). Besides the settings and
/// `wasm:INSTANCE` lines, a line `include:FILE` inserts `envoy/FILE`, and `extra` fills
/// placeholders that only that template has.
pub fn render_template(
    template: &str,
    settings: &Settings,
    extra: &[(&str, String)],
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(template.len() * 2);
    let wasm_lines: Vec<&str> = template
        .lines()
        .filter_map(|line| match line_placeholder(line) {
            Some(("wasm", arg)) => Some(arg),
            _ => None,
        })
        .collect();
    let mut seen = 0;
    for line in template.lines() {
        match line_placeholder(line) {
            Some(("wasm", _)) if settings.layout == Layout::Chain => {
                seen += 1;
                if seen == wasm_lines.len() {
                    out.push_str(&chain_block(settings, &wasm_lines)?);
                }
            }
            Some(("wasm", arg)) => out.push_str(&wasm_block(settings, arg)?),
            Some(("include", file)) => out.push_str(&read(&settings.envoy_dir.join(file))?),
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    let mut values = settings.values();
    values.extend(extra.iter().map(|(name, value)| (*name, value.clone())));
    let out = fill(&out, &values);
    match out.find("{{") {
        Some(at) => {
            let rest: String = out[at..].chars().take(40).collect();
            Err(RenderError(format!("unknown placeholder at `{rest}`")))
        }
        None => Ok(out),
    }
}

/// `envoy/wasm-filter.yaml` for `INSTANCE`, or `INSTANCE:body` for a filter that
/// must see the request body before the headers go upstream (the sanitizer): its `Pause` from the
/// headers callback is then Envoy's `StopIteration`, not `StopAllIterationAndWatermark`, which
/// would withhold the body from the filter too.
fn wasm_block(settings: &Settings, arg: &str) -> Result<String, RenderError> {
    let (instance, body) = instance_of(arg)?;
    let config = instance_config(settings, instance)?;
    filter_block(settings, instance, &config, body)
}

/// The instance a `wasm:` argument names, and whether it reads request bodies (`:body`).
fn instance_of(arg: &str) -> Result<(&str, bool), RenderError> {
    let (instance, body) = match arg.strip_suffix(":body") {
        Some(rest) => (rest, true),
        None => (arg, false),
    };
    portcullis::filter_for(instance).map_err(|e| RenderError(format!("wasm:{arg}: {e}")))?;
    Ok((instance, body))
}

/// An instance's configuration: its override, or `envoy/filters/INSTANCE.json`.
fn instance_config(settings: &Settings, instance: &str) -> Result<String, RenderError> {
    match settings.filter_configs.get(instance) {
        Some(config) => Ok(config.clone()),
        None => read(
            &settings
                .envoy_dir
                .join("filters")
                .join(format!("{instance}.json")),
        ),
    }
}

fn filter_block(
    settings: &Settings,
    instance: &str,
    config: &str,
    body: bool,
) -> Result<String, RenderError> {
    let block = read(&settings.envoy_dir.join("wasm-filter.yaml"))?;
    Ok(fill(
        &block,
        &[
            ("INSTANCE", instance.to_string()),
            ("WASM_DIR", settings.wasm_dir.display().to_string()),
            ("CONFIG", yaml_string(config.trim())),
            ("ENV_KEYS", env_keys(&settings.wasm_env_keys)),
            ("HEADERS_STOP_ITERATION", body.to_string()),
        ],
    ))
}

/// One `chain` instance running the instances of `args` (`wasm:` arguments) as its stages; it
/// holds the request headers for the body when any stage reads bodies.
fn chain_block(settings: &Settings, args: &[&str]) -> Result<String, RenderError> {
    let mut stages = Vec::with_capacity(args.len());
    let mut any_body = false;
    for arg in args {
        let (instance, body) = instance_of(arg)?;
        any_body |= body;
        let text = instance_config(settings, instance)?;
        let text = if text.trim().is_empty() { "{}" } else { &text };
        // Embedded verbatim (not re-serialised), so the stage sees exactly its file.
        let config = serde_json::from_str::<Box<serde_json::value::RawValue>>(text)
            .ok()
            .filter(|c| c.get().starts_with('{'))
            .ok_or_else(|| {
                RenderError(format!(
                    "wasm:{arg}: a chain stage's configuration must be a JSON object"
                ))
            })?;
        stages.push(format!(
            r#"{{"instance":{},"config":{}}}"#,
            serde_json::Value::String(instance.to_string()),
            config.get()
        ));
    }
    let chain = format!(r#"{{"stages":[{}]}}"#, stages.join(","));
    filter_block(settings, "chain", &chain, any_body)
}

/// `{{KIND:ARG}}` alone on a line, for the kinds that insert whole blocks.
fn line_placeholder(line: &str) -> Option<(&str, &str)> {
    let inner = line.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let (kind, arg) = inner.split_once(':')?;
    matches!(kind, "wasm" | "include").then_some((kind, arg))
}

/// A YAML flow list of quoted names (`[]` for none).
fn env_keys(keys: &[String]) -> String {
    let quoted: Vec<String> = keys.iter().map(|name| yaml_string(name)).collect();
    format!("[{}]", quoted.join(", "))
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
    fn the_chain_layout_renders_one_filter_with_every_instance_as_a_stage() {
        let mut s = Settings::local(&repo());
        s.set("LAYOUT=chain").unwrap();
        s.filter_configs
            .insert("cache".into(), r#"{"mode": "shadow"}"#.into());
        let yaml = render(&s).unwrap();
        assert_eq!(yaml.matches("root_id: ").count(), 1);
        assert!(yaml.contains("root_id: chain\n"));
        // It holds the headers for the body, for its sanitizer stage.
        assert!(yaml.contains("allow_on_headers_stop_iteration: true"));
        // After the compressor, where the last instance stood.
        let chain_at = yaml.find("root_id: chain").unwrap();
        assert!(yaml.find("envoy.filters.http.compressor").unwrap() < chain_at);
        assert!(chain_at < yaml.rfind("envoy.filters.http.router").unwrap());
        let config = chain_config(&yaml);
        let stages: Vec<&str> = config["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|st| st["instance"].as_str().unwrap())
            .collect();
        assert_eq!(
            stages,
            [
                "audit",
                "ratelimit-client",
                "auth",
                "ratelimit-identity",
                "sanitizer",
                "cache"
            ]
        );
        // Each stage has its configuration: the file's, or the override.
        let file: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(repo().join("envoy/filters/auth.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(config["stages"][2]["config"], file);
        assert_eq!(
            config["stages"][5]["config"],
            serde_json::json!({"mode": "shadow"})
        );

        s.filter_configs.insert("audit".into(), "{ not json".into());
        let e = render(&s).unwrap_err().0;
        assert!(
            e.starts_with("wasm:audit: a chain stage's configuration must be a JSON object"),
            "{e}"
        );
        assert_eq!(
            s.set("LAYOUT=stacked").unwrap_err().0,
            "--set LAYOUT: `stacked` is not `filters` or `chain`"
        );
    }

    /// The JSON a rendered `chain` instance is configured with.
    fn chain_config(yaml: &str) -> serde_json::Value {
        let block = &yaml[yaml.find("root_id: chain").unwrap()..];
        let line = block
            .lines()
            .find(|l| l.trim_start().starts_with("value: "))
            .unwrap();
        let quoted: String =
            serde_json::from_str(line.trim_start().trim_start_matches("value: ")).unwrap();
        serde_json::from_str(&quoted).unwrap()
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
            line_placeholder("  {{wasm:sanitizer:body}}"),
            Some(("wasm", "sanitizer:body"))
        );
        let s = Settings::local(&repo());
        let body = wasm_block(&s, "sanitizer:body").unwrap();
        assert!(body.contains("allow_on_headers_stop_iteration: true"));
        assert!(body.contains("root_id: sanitizer\n"));
        let plain = wasm_block(&s, "auth").unwrap();
        assert!(plain.contains("allow_on_headers_stop_iteration: false"));
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
        // One module and one VM configuration for every instance, so they share a VM.
        assert_eq!(yaml.matches("/dist/portcullis.wasm\"").count(), 6);
        assert_eq!(yaml.matches("vm_id: portcullis\n").count(), 6);
        assert_eq!(
            yaml.matches(
                r#"host_env_keys: ["PORTCULLIS_JWT_SECRET", "PORTCULLIS_API_KEY_PEPPER", "PORTCULLIS_AUDIT_KEY"]"#
            )
            .count(),
            6
        );
        assert!(yaml.contains("name: auth_idp"));
        // TLS to the IdP by default: SNI, the name checked, the system CA bundle.
        let idp = &yaml[yaml.find("- name: auth_idp").unwrap()..];
        let idp = &idp[..idp.find("load_assignment").unwrap()];
        assert!(idp.contains("UpstreamTlsContext"), "{idp}");
        assert!(idp.contains(r#"sni: "127.0.0.1""#), "{idp}");
        assert!(idp.contains(r#"matcher: { exact: "127.0.0.1" }"#), "{idp}");
        assert!(idp.contains(r#"filename: "/etc/ssl/certs/ca-certificates.crt""#));
        let mut plain = Settings::local(&repo());
        plain.set("AUTH_IDP_TLS=off").unwrap();
        plain.set("AUTH_IDP_SNI=login.example.com").unwrap();
        let yaml = render(&plain).unwrap();
        let idp = &yaml[yaml.find("- name: auth_idp").unwrap()..];
        let idp = &idp[..idp.find("load_assignment").unwrap()];
        assert!(!idp.contains("UpstreamTlsContext"), "{idp}");
        assert!(plain.set("AUTH_IDP_TLS=maybe").is_err());
        // Each instance carries its envoy/filters/INSTANCE.json, byte for byte.
        for instance in ["audit", "auth", "cache", "ratelimit-client", "sanitizer"] {
            let json = fs::read_to_string(repo().join(format!("envoy/filters/{instance}.json")));
            let value = format!("value: {}", yaml_string(json.unwrap().trim()));
            assert!(yaml.contains(&value), "{instance}");
        }
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
    fn templates_include_files_and_extra_values() {
        let s = Settings::local(&repo());
        let yaml = render_template(
            "a: {{HTTP_PORT}}\n  {{include:bench/native-cache.yaml}}\nb: {{X}}\n",
            &s,
            &[("X", "42".into())],
        )
        .unwrap();
        assert!(yaml.starts_with("a: 8080\n"));
        assert!(yaml.contains("simple_http_cache.v3.SimpleHttpCacheConfig"));
        assert!(yaml.ends_with("b: 42\n"));
        assert!(render_template("{{include:nope.yaml}}\n", &s, &[]).is_err());
    }

    #[test]
    fn settings_from_the_command_line() {
        let mut s = Settings::local(&repo());
        s.set("HTTPS_PORT=9443").unwrap();
        s.set("CORS_ALLOWED_ORIGINS=https://a.example, https://b.example")
            .unwrap();
        s.set("XFF_TRUSTED_HOPS=2").unwrap();
        s.set("AUDIT_COLLECTOR_PORT=9411").unwrap();
        let yaml = render(&s).unwrap();
        assert!(yaml.contains("port_value: 9411"));
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
        fs::write(dir.join("portcullis.yaml"), "{{wasm:auth-missing}}\n").unwrap();
        assert!(render(&s).unwrap_err().0.contains("auth-missing.json"));
        fs::write(dir.join("portcullis.yaml"), "{{wasm:authz}}\n").unwrap();
        assert!(render(&s)
            .unwrap_err()
            .0
            .starts_with("wasm:authz: root_id `authz`: expected a filter name"));
        fs::remove_dir_all(dir).unwrap();
    }
}
