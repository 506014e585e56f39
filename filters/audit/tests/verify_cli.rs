//! The verify command, run as a user would: a file of records in, a verdict and exit status out.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)]

use std::process::Command;

use portcullis_audit::chain::Sealer;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis-audit-verify"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn reports_intact_files_and_the_first_broken_link() {
    let dir = std::env::temp_dir().join(format!("audit-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut sealer = Sealer::new("w1".into());
    let lines: Vec<String> = (1..=3)
        .map(|i| {
            sealer
                .seal(format!("{{\"schema\":\"portcullis.audit/1\",\"i\":{i}}}").into_bytes())
                .unwrap()
        })
        .collect();
    let good = dir.join("good.ndjson");
    std::fs::write(&good, lines.join("\n")).unwrap();
    let (code, out) = run(&[good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.trim(),
        "ok: 3 records in 1 streams, chains intact (0 duplicates skipped)"
    );

    let bad = dir.join("bad.ndjson");
    std::fs::write(&bad, [lines[0].clone(), lines[2].clone()].join("\n")).unwrap();
    let (code, out) = run(&[bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        out.trim(),
        "BROKEN at line 2: stream w1 seq 3: expected seq 2, found 3: records missing or reordered (1 records verified before it)"
    );

    let (code, _) = run(&[dir.join("missing").to_str().unwrap()]);
    assert_eq!(code, 2);
    let (code, _) = run(&[]);
    assert_eq!(code, 2);
    std::fs::remove_dir_all(dir).unwrap();
}
