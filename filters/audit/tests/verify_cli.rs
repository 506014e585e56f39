//! The verify command, run as a user would: a file of records in, a verdict and exit status out.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)]

use std::process::Command;

use portcullis_audit::chain::{Seal, SealKey, Sealer};

const SECRET: &str = "test-key-0123456789-0123456789-0123456789";

/// Exit status, stdout and stderr of the command with `args` and `env`.
fn run_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis-audit-verify"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("PORTCULLIS_AUDIT_KEY")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run(args: &[&str]) -> (i32, String) {
    let (code, out, _) = run_with(args, &[]);
    (code, out)
}

fn records(seal: Seal) -> Vec<String> {
    let mut sealer = Sealer::new("w1".into(), seal);
    (1..=3)
        .map(|i| {
            sealer
                .seal(format!("{{\"schema\":\"portcullis.audit/1\",\"i\":{i}}}").into_bytes())
                .unwrap()
        })
        .collect()
}

#[test]
fn reports_intact_files_and_the_first_broken_link() {
    let dir = std::env::temp_dir().join(format!("audit-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lines = records(Seal::Keyed(SealKey::new("k1", SECRET.as_bytes()).unwrap()));
    let keys = dir.join("keys");
    std::fs::write(&keys, format!("# audit keys\nk1={SECRET}\n")).unwrap();
    let keys = keys.to_str().unwrap();
    let good = dir.join("good.ndjson");
    std::fs::write(&good, lines.join("\n")).unwrap();
    let good = good.to_str().unwrap();
    let (code, out) = run(&["--key-file", keys, good]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.trim(),
        "ok: 3 records in 1 streams, chains intact (0 duplicates skipped)"
    );
    // The same key from the environment, with its id.
    let env = [("AUDIT_K", SECRET)];
    let (code, out, err) = run_with(&["--key-env", "AUDIT_K", "--key-id", "k1", good], &env);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run_with(&["--key-env", "AUDIT_K", good], &env);
    assert_eq!(code, 1, "the default id is 1");
    assert!(
        out.contains("sealed under key id `k1`, which was not given"),
        "{out}"
    );

    let bad = dir.join("bad.ndjson");
    std::fs::write(&bad, [lines[0].clone(), lines[2].clone()].join("\n")).unwrap();
    let (code, out) = run(&["--key-file", keys, bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        out.trim(),
        "BROKEN at line 2: stream w1 seq 3: expected seq 2, found 3: records missing or reordered (1 records verified before it)"
    );

    // Unkeyed records: refused unless accepted by choice.
    let unkeyed = dir.join("unkeyed.ndjson");
    std::fs::write(&unkeyed, records(Seal::Unkeyed).join("\n")).unwrap();
    let unkeyed = unkeyed.to_str().unwrap();
    let (code, out) = run(&["--key-file", keys, unkeyed]);
    assert_eq!(code, 1);
    assert!(out.contains("sealed without a key"), "{out}");
    let (code, out) = run(&["--unkeyed", unkeyed]);
    assert_eq!(code, 0, "{out}");

    let (code, _) = run(&["--key-file", keys, dir.join("missing").to_str().unwrap()]);
    assert_eq!(code, 2);
    let (code, _) = run(&[]);
    assert_eq!(code, 2);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn keys_are_required_long_and_never_printed() {
    let (code, _, err) = run_with(&["-"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no key: give --key-file or --key-env"),
        "{err}"
    );
    let short = "short-audit-key";
    let (code, out, err) = run_with(&["--key-env", "AUDIT_K", "-"], &[("AUDIT_K", short)]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--key-env `AUDIT_K`: the key is 15 bytes; at least 32 are required"),
        "{err}"
    );
    assert!(!err.contains(short) && !out.contains(short));
    let (code, _, err) = run_with(&["--key-env", "NOT_SET_AUDIT_K", "-"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("`NOT_SET_AUDIT_K` is not set"), "{err}");
    // There is no way to give the key itself as an argument.
    let (code, _, err) = run_with(&["--key", SECRET, "-"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown option --key"), "{err}");
    assert!(!err.contains(SECRET));
}
