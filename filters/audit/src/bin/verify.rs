//! `portcullis-audit-verify [--partial] FILE...` (or `-` for stdin): checks the sequence numbers
//! and hash chain of every stream of audit records in the files (NDJSON from the HTTP sink, or
//! Envoy's log with the log sink) and reports the first broken link. Exit status 0 if intact,
//! 1 if broken, 2 on a usage or read error.

use std::io::Read;
use std::process::ExitCode;

use portcullis_audit::chain::verify;

fn main() -> ExitCode {
    let mut partial = false;
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--partial" => partial = true,
            "-h" | "--help" => {
                println!("usage: portcullis-audit-verify [--partial] FILE... (- for stdin)");
                println!("  --partial  a stream may start after seq 1 (a rotated log)");
                return ExitCode::SUCCESS;
            }
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        eprintln!("usage: portcullis-audit-verify [--partial] FILE... (- for stdin)");
        return ExitCode::from(2);
    }
    let mut input = String::new();
    for f in &files {
        let read = if f == "-" {
            std::io::stdin().read_to_string(&mut input).map(|_| ())
        } else {
            std::fs::read(f).map(|b| input.push_str(&String::from_utf8_lossy(&b)))
        };
        if let Err(e) = read {
            eprintln!("{f}: {e}");
            return ExitCode::from(2);
        }
        input.push('\n');
    }
    let report = verify(&input, partial);
    match report.first_break {
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
    }
}
