//! `portcullis-demo-upstream [--listen ADDR]`: runs the demo origin until the
//! process is interrupted (SIGINT/SIGTERM keep their default: exit at once,
//! which is fine for a stateless demo server).

use std::process::ExitCode;

use portcullis_demo_upstream::Upstream;

const DEFAULT_LISTEN: &str = "127.0.0.1:8000";
const LISTEN_ENV: &str = "PORTCULLIS_UPSTREAM_LISTEN";

const USAGE: &str = "\
Usage: portcullis-demo-upstream [--listen ADDR]

Demo HTTP/1.1 origin for the Portcullis Envoy filters.

Options:
  --listen ADDR   address to bind (default 127.0.0.1:8000,
                  or $PORTCULLIS_UPSTREAM_LISTEN when set)
  -h, --help      print this help

Routes: /api/products[/{id}], /admin[/...], POST /login, /static/logo.png,
/status/{code}, /slow?ms=N, /healthz; anything else is echoed back as JSON.";

/// Prints this crate's access-log lines to stdout and other crates' warnings
/// to stderr; a whole logging framework would be overkill here.
struct AccessLog;

impl log::Log for AccessLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
            || metadata.target().starts_with("portcullis_demo_upstream")
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if record.level() <= log::Level::Warn {
            eprintln!("{}: {}", record.level(), record.args());
        } else {
            println!("{}", record.args());
        }
    }

    fn flush(&self) {}
}

static ACCESS_LOG: AccessLog = AccessLog;

enum Command {
    Serve(String),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut listen = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--listen" => match args.next() {
                Some(addr) => listen = Some(addr),
                None => return Err("--listen needs an address".to_string()),
            },
            _ => match arg.strip_prefix("--listen=") {
                Some(addr) => listen = Some(addr.to_string()),
                None => return Err(format!("unexpected argument: {arg}")),
            },
        }
    }
    let listen = listen
        .or_else(|| std::env::var(LISTEN_ENV).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    Ok(Command::Serve(listen))
}

fn main() -> ExitCode {
    let listen = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Serve(listen)) => listen,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("portcullis-demo-upstream: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    if log::set_logger(&ACCESS_LOG).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    let upstream = match Upstream::start(&listen) {
        Ok(upstream) => upstream,
        Err(err) => {
            eprintln!("portcullis-demo-upstream: cannot listen on {listen}: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "demo upstream listening on http://{}",
        upstream.local_addr()
    );

    // The workers do everything; this thread only keeps `upstream` alive.
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]

    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    fn listen_of(args: &[&str]) -> String {
        match parse(args) {
            Ok(Command::Serve(addr)) => addr,
            _ => panic!("expected Serve for {args:?}"),
        }
    }

    #[test]
    fn parses_listen_flags_and_help() {
        assert_eq!(listen_of(&["--listen", "0.0.0.0:9000"]), "0.0.0.0:9000");
        assert_eq!(listen_of(&["--listen=[::1]:9001"]), "[::1]:9001");
        assert!(matches!(parse(&["--help"]), Ok(Command::Help)));
        assert!(matches!(parse(&["-h", "--bogus"]), Ok(Command::Help)));
        assert!(parse(&["--listen"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
