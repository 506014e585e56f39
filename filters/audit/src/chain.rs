//! Tamper evidence: each record of a stream carries its sequence number, the hash of the
//! previous record, and its own hash, so an edited, deleted, inserted or reordered record breaks
//! the chain. A stream is one writer: a worker's log, or the HTTP shipper.
//!
//! The hash is SHA-256 over the exact bytes of the record up to and including `prev` (the line
//! without its final `,"hash":"…"}`, closed with `}`), so verification needs no canonical JSON:
//! it re-hashes the bytes it reads.

use std::collections::HashMap;
use std::fmt::Write;

use serde::Deserialize;

/// `prev` of the first record of a stream.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every record starts with this, which is how the verifier tells records from other lines.
pub const SCHEMA_MARK: &str = "{\"schema\":\"portcullis.audit/";

const HASH_SUFFIX_LEN: usize = ",\"hash\":\"\"}".len() + 64;

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// The writer's end of a stream.
#[derive(Debug, Clone)]
pub struct Sealer {
    stream: String,
    /// `stream` as a JSON string, written into every record.
    stream_json: String,
    seq: u64,
    /// Hex hash of the last record sealed.
    prev: String,
}

impl Sealer {
    /// `stream` must be unique per writer and per start (e.g. worker number and start time).
    pub fn new(stream: String) -> Sealer {
        Sealer {
            stream_json: serde_json::to_string(&stream).unwrap_or_else(|_| "\"\"".into()),
            stream,
            seq: 0,
            prev: GENESIS.to_string(),
        }
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Next sequence number to be written.
    pub fn next_seq(&self) -> u64 {
        self.seq + 1
    }

    /// Appends `stream`, `seq`, `prev` and `hash` to a record (a JSON object) and returns the
    /// line. `None` if `record` is not an object.
    ///
    /// The line is the record's own buffer, extended: the record up to `prev` and a closing `}`
    /// is hashed (SHA-256, once per record), then the `}` gives way to `hash`.
    pub fn seal(&mut self, record: Vec<u8>) -> Option<String> {
        let mut line = String::from_utf8(record).ok()?;
        line.truncate(line.trim_end().len());
        if !line.starts_with('{') || !line.ends_with('}') {
            return None;
        }
        line.pop();
        let seq = self.seq + 1;
        line.reserve(self.stream_json.len() + 192);
        if line.len() > 1 {
            line.push(',');
        }
        line.push_str("\"stream\":");
        line.push_str(&self.stream_json);
        let _ = write!(line, ",\"seq\":{seq}");
        line.push_str(",\"prev\":\"");
        line.push_str(&self.prev);
        line.push_str("\"}");
        let hash = hmac_sha256::Hash::hash(line.as_bytes());
        line.pop();
        line.push_str(",\"hash\":\"");
        let start = line.len();
        push_hex(&mut line, &hash);
        self.prev.clear();
        self.prev.push_str(line.get(start..).unwrap_or_default());
        line.push_str("\"}");
        self.seq = seq;
        Some(line)
    }
}

/// Why verification stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// 1-based line number in the input.
    pub line: usize,
    pub stream: String,
    pub seq: u64,
    pub problem: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub records: u64,
    pub streams: usize,
    /// The same record seen again (an HTTP batch retried after a timeout).
    pub duplicates: u64,
    pub first_break: Option<Break>,
}

#[derive(Deserialize)]
struct Link {
    stream: String,
    seq: u64,
    prev: String,
    hash: String,
}

#[derive(Default)]
struct StreamState {
    last_seq: u64,
    last_hash: String,
    seen: HashMap<u64, String>,
}

/// Checks every record in `input` (NDJSON, or Envoy's log with one record per line; other
/// lines are skipped). With `partial`, a stream may start after seq 1 (a rotated log).
pub fn verify(input: &str, partial: bool) -> Report {
    let mut report = Report::default();
    let mut streams: HashMap<String, StreamState> = HashMap::new();
    for (i, raw) in input.lines().enumerate() {
        let line_no = i + 1;
        let Some(at) = raw.find(SCHEMA_MARK) else {
            continue;
        };
        let line = raw.get(at..).unwrap_or_default().trim_end();
        let fail = |stream: &str, seq: u64, problem: &str| Break {
            line: line_no,
            stream: stream.to_string(),
            seq,
            problem: problem.to_string(),
        };
        let link: Link = match serde_json::from_str(line) {
            Ok(l) => l,
            Err(e) => {
                report.first_break = Some(fail("", 0, &format!("not a sealed record: {e}")));
                break;
            }
        };
        // Re-hash the bytes as written: the line minus `,"hash":"…"}`, closed again.
        let linked = line
            .len()
            .checked_sub(HASH_SUFFIX_LEN)
            .and_then(|cut| line.get(..cut))
            .map(|s| format!("{s}}}"));
        let expected = format!(",\"hash\":\"{}\"}}", link.hash);
        let Some(linked) = linked.filter(|_| line.ends_with(&expected) && link.hash.len() == 64)
        else {
            report.first_break = Some(fail(&link.stream, link.seq, "hash is not the last field"));
            break;
        };
        if hex(&hmac_sha256::Hash::hash(linked.as_bytes())) != link.hash {
            report.first_break = Some(fail(
                &link.stream,
                link.seq,
                "hash mismatch: the record was edited",
            ));
            break;
        }
        let state = streams.entry(link.stream.clone()).or_default();
        if let Some(seen) = state.seen.get(&link.seq) {
            if *seen == link.hash {
                report.duplicates += 1;
                continue;
            }
            report.first_break = Some(fail(
                &link.stream,
                link.seq,
                "a different record with the same sequence number",
            ));
            break;
        }
        let starts = state.last_seq == 0;
        let problem = if starts && !partial && (link.seq != 1 || link.prev != GENESIS) {
            Some(format!(
                "stream starts at seq {}: earlier records are missing",
                link.seq
            ))
        } else if !starts && link.seq != state.last_seq + 1 {
            Some(format!(
                "expected seq {}, found {}: records missing or reordered",
                state.last_seq + 1,
                link.seq
            ))
        } else if !starts && link.prev != state.last_hash {
            Some("prev does not match the previous record's hash".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            report.first_break = Some(fail(&link.stream, link.seq, &problem));
            break;
        }
        state.last_seq = link.seq;
        state.last_hash = link.hash.clone();
        state.seen.insert(link.seq, link.hash);
        report.records += 1;
    }
    report.streams = streams.len();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u32) -> Vec<u8> {
        format!("{{\"schema\":\"portcullis.audit/1\",\"path\":\"/r/{n}\"}}").into_bytes()
    }

    fn stream(name: &str, n: u32) -> Vec<String> {
        let mut s = Sealer::new(name.into());
        (1..=n).map(|i| s.seal(record(i)).unwrap()).collect()
    }

    #[test]
    fn sealing_links_each_record_to_the_previous() {
        let lines = stream("w1", 3);
        assert!(lines[0].starts_with(SCHEMA_MARK));
        assert!(lines[0].contains(&format!("\"seq\":1,\"prev\":\"{GENESIS}\"")));
        let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        let second: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(second["prev"], first["hash"]);
        assert_eq!(second["seq"], 2);
        assert_eq!(first["path"], "/r/1");
        let report = verify(&lines.join("\n"), false);
        assert_eq!(report.records, 3);
        assert_eq!(report.first_break, None);
    }

    #[test]
    fn an_edit_is_found() {
        let mut lines = stream("w1", 3);
        lines[1] = lines[1].replace("/r/2", "/r/X");
        let b = verify(&lines.join("\n"), false).first_break.unwrap();
        assert_eq!((b.line, b.seq), (2, 2));
        assert!(b.problem.contains("edited"), "{b:?}");
    }

    #[test]
    fn a_deletion_is_found() {
        let mut lines = stream("w1", 4);
        lines.remove(2);
        let b = verify(&lines.join("\n"), false).first_break.unwrap();
        assert_eq!((b.line, b.seq), (3, 4));
        assert_eq!(
            b.problem,
            "expected seq 3, found 4: records missing or reordered"
        );
    }

    #[test]
    fn a_reseal_after_deletion_is_found_by_prev() {
        // An attacker deletes record 2 and renumbers record 3 as 2, re-hashing it: its `prev`
        // still names record 2.
        let lines = stream("w1", 3);
        let third = lines[2].replace("\"seq\":3", "\"seq\":2");
        let v: serde_json::Value = serde_json::from_str(&third).unwrap();
        let cut = third.len() - HASH_SUFFIX_LEN;
        let linked = format!("{}}}", &third[..cut]);
        let rehashed = format!(
            "{},\"hash\":\"{}\"}}",
            &linked[..linked.len() - 1],
            hex(&hmac_sha256::Hash::hash(linked.as_bytes()))
        );
        assert_eq!(v["seq"], 2);
        let b = verify(&[lines[0].clone(), rehashed].join("\n"), false)
            .first_break
            .unwrap();
        assert_eq!(b.problem, "prev does not match the previous record's hash");
    }

    #[test]
    fn a_missing_head_is_found_unless_partial() {
        let lines = stream("w1", 3);
        let tail = lines[1..].join("\n");
        let b = verify(&tail, false).first_break.unwrap();
        assert_eq!(
            b.problem,
            "stream starts at seq 2: earlier records are missing"
        );
        let r = verify(&tail, true);
        assert_eq!((r.records, r.first_break), (2, None));
    }

    #[test]
    fn streams_interleave_and_duplicates_are_counted() {
        let a = stream("w1", 3);
        let b = stream("w2", 2);
        let mixed = [&a[0], &b[0], &a[1], &a[1], &b[1], &a[2], &a[2]]
            .iter()
            .map(|s| format!("[2026-01-01][info][wasm] wasm log portcullis.audit: {s}"))
            .chain(["some other log line {not a record}".to_string()])
            .collect::<Vec<_>>()
            .join("\n");
        let r = verify(&mixed, false);
        assert_eq!(r.first_break, None, "{r:?}");
        assert_eq!((r.records, r.streams, r.duplicates), (5, 2, 2));
    }

    #[test]
    fn a_conflicting_replay_and_a_moved_hash_are_found() {
        let a = stream("w1", 2);
        let other = stream("w1", 1)[0].clone();
        assert_eq!(other, a[0], "sealing is deterministic");
        let mut forged = Sealer::new("w1".into());
        let forged = forged
            .seal(b"{\"schema\":\"portcullis.audit/1\",\"path\":\"/forged\"}".to_vec())
            .unwrap();
        let b = verify(&[a[0].clone(), a[1].clone(), forged].join("\n"), false)
            .first_break
            .unwrap();
        assert_eq!(
            b.problem,
            "a different record with the same sequence number"
        );

        let moved = a[0].replace(",\"hash\":", ",\"x\":1,\"hash\":");
        assert!(verify(&moved, false).first_break.is_some());
        let truncated = &a[0][..a[0].len() - 10];
        assert!(verify(truncated, false).first_break.is_some());
    }

    #[test]
    fn seal_refuses_non_objects() {
        let mut s = Sealer::new("w".into());
        assert_eq!(s.seal(b"[1]".to_vec()), None);
        assert_eq!(s.seal(b"\xff}".to_vec()), None);
        assert_eq!(s.seal(b"}".to_vec()), None);
        assert_eq!(s.seal(b" {}".to_vec()), None);
        assert_eq!(s.next_seq(), 1, "a refused record takes no number");
        let line = s.seal(b"{}\n".to_vec()).unwrap();
        assert!(line.starts_with("{\"stream\":\"w\",\"seq\":1,"));
    }
}
