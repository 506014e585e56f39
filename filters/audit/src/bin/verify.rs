//! `portcullis-audit-verify [--partial] (--key-file FILE | --key-env VAR [--key-id ID] |
//! --unkeyed)... FILE...` (or `-` for stdin): checks the sequence numbers and seals of every
//! stream of audit records in the files (NDJSON from the HTTP sink, or Envoy's log with the log
//! sink) and reports the first broken link. Exit status 0 if intact, 1 if broken, 2 on a usage,
//! key or read error.
//!
//! Keys never come from the command line (shell history, process lists, CI logs): from a file
//! of `KEY_ID=KEY` lines, or from an environment variable (the one the filter reads) with its id.

use std::io::Read;
use std::process::ExitCode;

use portcullis_audit::chain::{parse_key_file, verify, Keyring, SealKey};
use portcullis_audit::config::DEFAULT_KEY_ID;

const USAGE: &str = "usage: portcullis-audit-verify [--partial] \
(--key-file FILE | --key-env VAR [--key-id ID] | --unkeyed)... FILE... (- for stdin)
  --key-file FILE  keys to verify with, one KEY_ID=KEY per line (rotation: one line per key)
  --key-env VAR    the key in environment variable VAR (e.g. PORTCULLIS_AUDIT_KEY)
  --key-id ID      the id of the --key-env key (default 1, as the filter's seal.key_id)
  --unkeyed        also accept records sealed without a key (seal.mode unkeyed_sha256)
  --partial        a stream may start after seq 1 (a rotated log)";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(why) => {
            eprintln!("portcullis-audit-verify: {why}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let mut partial = false;
    let mut keys = Keyring::default();
    let mut key_env: Option<String> = None;
    let mut key_id: Option<String> = None;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--partial" => partial = true,
            "--unkeyed" => keys.accept_unkeyed = true,
            "--key-file" => {
                let path = value("--key-file")?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                for key in parse_key_file(&text).map_err(|e| format!("{path}: {e}"))? {
                    keys.add(key).map_err(|e| format!("{path}: {e}"))?;
                }
            }
            "--key-env" => key_env = Some(value("--key-env")?),
            "--key-id" => key_id = Some(value("--key-id")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            flag if flag.starts_with("--") => {
                return Err(format!("unknown option {flag}\n{USAGE}"))
            }
            _ => files.push(arg),
        }
    }
    match (key_env, key_id) {
        (Some(var), id) => {
            let id = id.unwrap_or_else(|| DEFAULT_KEY_ID.to_string());
            let secret = std::env::var_os(&var)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("--key-env: environment variable `{var}` is not set"))?;
            let key = SealKey::new(&id, secret.as_encoded_bytes())
                .map_err(|why| format!("--key-env `{var}`: {why}"))?;
            keys.add(key).map_err(|e| format!("--key-env: {e}"))?;
        }
        (None, Some(_)) => return Err("--key-id names the key of --key-env".into()),
        (None, None) => {}
    }
    if keys.is_empty() {
        return Err(format!(
            "no key: give --key-file or --key-env (or --unkeyed for unkeyed records)\n{USAGE}"
        ));
    }
    if files.is_empty() {
        return Err(USAGE.into());
    }
    let mut input = String::new();
    for f in &files {
        let read = if f == "-" {
            std::io::stdin().read_to_string(&mut input).map(|_| ())
        } else {
            std::fs::read(f).map(|b| input.push_str(&String::from_utf8_lossy(&b)))
        };
        read.map_err(|e| format!("{f}: {e}"))?;
        input.push('\n');
    }
    let report = verify(&input, partial, &keys);
    Ok(match report.first_break {
        None => {
            println!(
                "ok: {} records in {} streams, chains intact ({} duplicates skipped)",
                report.records, report.streams, report.duplicates
            );
            ExitCode::SUCCESS
        }
        Some(b) => {
            println!(
                "BROKEN at line {}: stream {} seq {}: {} ({} records verified before it)",
                b.line, b.stream, b.seq, b.problem, report.records
            );
            ExitCode::from(1)
        }
    })
}
