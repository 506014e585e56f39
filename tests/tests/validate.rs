//! `envoy --mode validate` on every Envoy config we ship, rendered for each place it runs.

use std::process::Command;

use portcullis_devkit::render::{render, Layout, Settings, AUDIT_KEY_ENV};
use portcullis_tests::{audit_key, envoy_binary, make_certs, repo, wasm_dir, ScratchDir};

#[test]
fn envoy_validates_every_shipped_config() {
    let dir = ScratchDir::new("validate");
    let certs = make_certs(&dir.0);
    for (profile, base) in [
        ("local", Settings::local(&repo())),
        ("docker", Settings::docker(&repo())),
        (
            "local-chain",
            Settings {
                layout: Layout::Chain,
                ..Settings::local(&repo())
            },
        ),
    ] {
        let settings = Settings {
            cert_dir: certs.clone(),
            wasm_dir: wasm_dir(),
            ..base
        };
        let config = dir.0.join(format!("{profile}.yaml"));
        std::fs::write(&config, render(&settings).unwrap()).unwrap();
        // Validation runs each filter's on_configure: auth needs its secret variables, audit
        // its sealing key.
        let out = Command::new(envoy_binary())
            .args(["--mode", "validate", "--disable-hot-restart", "-c"])
            .arg(&config)
            .envs(portcullis_tests::auth::envoy_env())
            .env(AUDIT_KEY_ENV, audit_key())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{profile}: {text}");
        assert!(
            text.contains("configuration") && text.contains("OK"),
            "{profile}: {text}"
        );
    }
}

#[test]
fn validate_catches_a_broken_config() {
    let dir = ScratchDir::new("validate-broken");
    let config = dir.0.join("broken.yaml");
    std::fs::write(
        &config,
        "static_resources: { listeners: [ { name: x, bogus: 1 } ] }\n",
    )
    .unwrap();
    let out = Command::new(envoy_binary())
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
