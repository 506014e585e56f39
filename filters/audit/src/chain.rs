//! Tamper evidence: each record of a stream carries its sequence number, the hash of the
//! previous record, and its own seal, so an edited, deleted, inserted or reordered record breaks
//! the chain. A stream is one writer: a worker's log, or the HTTP shipper.
//!
//! The seal is HMAC-SHA-256 under a secret key named by `key_id` in the record: whoever can write
//! the log but does not hold the key cannot reseal it. The unkeyed mode (plain SHA-256, no
//! `key_id`) only catches accidents, since anyone can recompute it; it is an explicit choice, and
//! the verifier accepts such records only when told to.
//!
//! The seal covers the exact bytes of the record up to and including `key_id` (the line without
//! its final `,"hash":"…"}`, closed with `}`), so verification needs no canonical JSON: it
//! re-hashes the bytes it reads.

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

/// The shortest key accepted (bytes): 256 bits, the HMAC-SHA-256 output size (RFC 2104 §3).
pub const MIN_KEY_LEN: usize = 32;

/// A key id: what a verifier looks the key up by. Letters, digits, `.`, `_` and `-`, so it
/// needs no escaping in JSON and cannot contain the `=` of a key file.
pub fn is_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A sealing key: an id and the secret. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct SealKey {
    id: String,
    /// The HMAC state after the key, cloned for each record (saves two compressions).
    mac: hmac_sha256::HMAC,
}

impl SealKey {
    /// `id` must pass [`is_key_id`] and `secret` be at least [`MIN_KEY_LEN`] bytes; the error
    /// says which, never what the secret is.
    pub fn new(id: &str, secret: &[u8]) -> Result<SealKey, String> {
        if !is_key_id(id) {
            return Err("a key id is 1 to 64 of letters, digits, `.`, `_` and `-`".into());
        }
        if secret.len() < MIN_KEY_LEN {
            return Err(format!(
                "the key is {} bytes; at least {MIN_KEY_LEN} are required",
                secret.len()
            ));
        }
        Ok(SealKey {
            id: id.to_string(),
            mac: hmac_sha256::HMAC::new(secret),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn seal(&self, bytes: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(bytes);
        mac.finalize()
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealKey({})", self.id)
    }
}

/// How a writer seals its records.
#[derive(Debug, Clone)]
pub enum Seal {
    Keyed(SealKey),
    /// Plain SHA-256: the explicit choice of `"seal": {"mode": "unkeyed_sha256"}`.
    Unkeyed,
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
    seal: Seal,
}

impl Sealer {
    /// `stream` must be unique per writer and per start (e.g. worker number and start time).
    pub fn new(stream: String, seal: Seal) -> Sealer {
        Sealer {
            stream_json: serde_json::to_string(&stream).unwrap_or_else(|_| "\"\"".into()),
            stream,
            seq: 0,
            prev: GENESIS.to_string(),
            seal,
        }
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Next sequence number to be written.
    pub fn next_seq(&self) -> u64 {
        self.seq + 1
    }

    /// Appends `stream`, `seq`, `prev`, `key_id` (keyed seals) and `hash` to a record (a JSON
    /// object) and returns the line. `None` if `record` is not an object.
    ///
    /// The line is the record's own buffer, extended: the record up to `key_id` and a closing
    /// `}` is sealed (HMAC-SHA-256, or SHA-256 unkeyed), then the `}` gives way to `hash`.
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
        let hash = match &self.seal {
            Seal::Keyed(key) => {
                line.push_str("\",\"key_id\":\"");
                line.push_str(key.id());
                line.push_str("\"}");
                key.seal(line.as_bytes())
            }
            Seal::Unkeyed => {
                line.push_str("\"}");
                hmac_sha256::Hash::hash(line.as_bytes())
            }
        };
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

/// Reads a key file for the verifier: one `KEY_ID=KEY` per line (the key is every byte after the
/// first `=`, as the filter reads its environment variable); blank lines and `#` comments are
/// skipped. Errors name the line, never its content.
pub fn parse_key_file(text: &str) -> Result<Vec<SealKey>, String> {
    let mut keys: Vec<SealKey> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (id, secret) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected KEY_ID=KEY", i + 1))?;
        let key = SealKey::new(id.trim(), secret.as_bytes())
            .map_err(|why| format!("line {}: {why}", i + 1))?;
        if keys.iter().any(|k| k.id == key.id) {
            return Err(format!("line {}: key id `{}` given twice", i + 1, key.id));
        }
        keys.push(key);
    }
    if keys.is_empty() {
        return Err("no key in the file".into());
    }
    Ok(keys)
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
    #[serde(default)]
    key_id: Option<String>,
    hash: String,
}

/// The keys a verifier checks seals with, by id, and whether it accepts unkeyed records.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<SealKey>,
    /// Accept records sealed without a key (plain SHA-256). Off by default: otherwise anyone
    /// could reseal a keyed log unkeyed.
    pub accept_unkeyed: bool,
}

impl Keyring {
    pub fn new(keys: Vec<SealKey>, accept_unkeyed: bool) -> Keyring {
        Keyring {
            keys,
            accept_unkeyed,
        }
    }

    /// Only unkeyed records verify.
    pub fn unkeyed() -> Keyring {
        Keyring::new(Vec::new(), true)
    }

    /// Adds a key; a second key with the same id is refused.
    pub fn add(&mut self, key: SealKey) -> Result<(), String> {
        if self.keys.iter().any(|k| k.id == key.id) {
            return Err(format!("key id `{}` given twice", key.id));
        }
        self.keys.push(key);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && !self.accept_unkeyed
    }

    /// The seal `bytes` should carry under `key_id`, or why it cannot be checked.
    fn seal(&self, key_id: Option<&str>, bytes: &[u8]) -> Result<[u8; 32], String> {
        match key_id {
            Some(id) => self
                .keys
                .iter()
                .find(|k| k.id == id)
                .map(|k| k.seal(bytes))
                .ok_or_else(|| format!("sealed under key id `{id}`, which was not given")),
            None if self.accept_unkeyed => Ok(hmac_sha256::Hash::hash(bytes)),
            None => Err(
                "sealed without a key (unkeyed SHA-256): anyone can forge such a \
                 record; accept it only by choice (--unkeyed)"
                    .into(),
            ),
        }
    }
}

#[derive(Default)]
struct StreamState {
    last_seq: u64,
    last_hash: String,
    seen: HashMap<u64, String>,
}

/// Checks every record in `input` (NDJSON, or Envoy's log with one record per line; other
/// lines are skipped) against the seals `keys` compute. With `partial`, a stream may start after
/// seq 1 (a rotated log).
pub fn verify(input: &str, partial: bool, keys: &Keyring) -> Report {
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
        let expected = match keys.seal(link.key_id.as_deref(), linked.as_bytes()) {
            Ok(seal) => seal,
            Err(why) => {
                report.first_break = Some(fail(&link.stream, link.seq, &why));
                break;
            }
        };
        if hex(&expected) != link.hash {
            report.first_break = Some(fail(
                &link.stream,
                link.seq,
                "hash mismatch: the record was edited (or sealed under another key)",
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

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn key() -> SealKey {
        SealKey::new("k1", SECRET).unwrap()
    }

    fn keyed(name: &str) -> Sealer {
        Sealer::new(name.into(), Seal::Keyed(key()))
    }

    fn ring() -> Keyring {
        Keyring::new(vec![key()], false)
    }

    fn verify(input: &str, partial: bool) -> Report {
        super::verify(input, partial, &ring())
    }

    fn stream(name: &str, n: u32) -> Vec<String> {
        let mut s = keyed(name);
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
            hex(&key().seal(linked.as_bytes()))
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
        let mut forged = keyed("w1");
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
        let mut s = keyed("w");
        assert_eq!(s.seal(b"[1]".to_vec()), None);
        assert_eq!(s.seal(b"\xff}".to_vec()), None);
        assert_eq!(s.seal(b"}".to_vec()), None);
        assert_eq!(s.seal(b" {}".to_vec()), None);
        assert_eq!(s.next_seq(), 1, "a refused record takes no number");
        let line = s.seal(b"{}\n".to_vec()).unwrap();
        assert!(line.starts_with("{\"stream\":\"w\",\"seq\":1,"));
    }

    #[test]
    fn keyed_records_name_their_key() {
        let lines = stream("w1", 2);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["key_id"], "k1");
        assert!(lines[0].contains("\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"key_id\":\"k1\",\"hash\":\""));
        // The seal is the HMAC of the line up to key_id, closed.
        let cut = lines[0].len() - HASH_SUFFIX_LEN;
        let linked = format!("{}}}", &lines[0][..cut]);
        assert_eq!(
            v["hash"],
            hex(&hmac_sha256::HMAC::mac(linked.as_bytes(), SECRET))
        );
    }

    /// Re-seals every record of `lines` after `edit`, as someone who can write the log would.
    fn reseal(lines: &[String], edit: (&str, &str), seal: Seal) -> Vec<String> {
        let mut s = Sealer::new("w1".into(), seal);
        lines
            .iter()
            .map(|l| {
                let body = format!("{}}}", &l[..l.rfind(",\"stream\":").unwrap()]);
                s.seal(body.replace(edit.0, edit.1).into_bytes()).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_resealed_forgery_needs_the_key() {
        let lines = stream("w1", 3);
        let edit = ("/r/2", "/r/X");
        // Resealed unkeyed: refused unless unkeyed records are accepted by choice.
        let unkeyed = reseal(&lines, edit, Seal::Unkeyed);
        let b = verify(&unkeyed.join("\n"), false).first_break.unwrap();
        assert_eq!((b.line, b.seq), (1, 1));
        assert!(b.problem.contains("sealed without a key"), "{b:?}");
        // Resealed under another key with the same id: a mismatch.
        let other = SealKey::new("k1", &[b'x'; 32]).unwrap();
        let wrong = reseal(&lines, edit, Seal::Keyed(other));
        let b = verify(&wrong.join("\n"), false).first_break.unwrap();
        assert!(b.problem.starts_with("hash mismatch"), "{b:?}");
        // Under an id the verifier was not given.
        let k9 = SealKey::new("k9", &[b'x'; 32]).unwrap();
        let unknown = reseal(&lines, edit, Seal::Keyed(k9));
        let b = verify(&unknown.join("\n"), false).first_break.unwrap();
        assert_eq!(b.problem, "sealed under key id `k9`, which was not given");
        // The key holder's own reseal verifies (which is why the key stays secret).
        let honest = reseal(&lines, edit, Seal::Keyed(key()));
        assert_eq!(verify(&honest.join("\n"), false).first_break, None);
    }

    #[test]
    fn rotation_verifies_each_stream_under_its_key() {
        let old = stream("w1", 2);
        let new_key = SealKey::new("k2", &[b'n'; 40]).unwrap();
        let mut s = Sealer::new("w1-after".into(), Seal::Keyed(new_key.clone()));
        let new: Vec<String> = (1..=2).map(|i| s.seal(record(i)).unwrap()).collect();
        let all = [old, new].concat().join("\n");
        let both = Keyring::new(vec![key(), new_key.clone()], false);
        let r = super::verify(&all, false, &both);
        assert_eq!((r.records, r.streams, r.first_break), (4, 2, None));
        let only_new = Keyring::new(vec![new_key], false);
        let b = super::verify(&all, false, &only_new).first_break.unwrap();
        assert_eq!(b.problem, "sealed under key id `k1`, which was not given");
    }

    #[test]
    fn unkeyed_records_verify_only_by_choice() {
        let mut s = Sealer::new("u".into(), Seal::Unkeyed);
        let lines: Vec<String> = (1..=2).map(|i| s.seal(record(i)).unwrap()).collect();
        assert!(!lines[0].contains("key_id"));
        let text = lines.join("\n");
        let r = super::verify(&text, false, &Keyring::unkeyed());
        assert_eq!((r.records, r.first_break), (2, None));
        assert!(verify(&text, false).first_break.is_some());
        // Accepting unkeyed records never waives the check of keyed ones.
        let mut mixed = Keyring::new(vec![key()], true);
        let keyed_lines = stream("w1", 1);
        assert_eq!(
            super::verify(&keyed_lines[0], false, &mixed).first_break,
            None
        );
        let tampered = keyed_lines[0].replace("/r/1", "/r/X");
        assert!(super::verify(&tampered, false, &mixed)
            .first_break
            .is_some());
        assert!(mixed.add(key()).unwrap_err().contains("`k1` given twice"));
    }

    #[test]
    fn short_keys_and_bad_ids_are_refused_without_showing_the_key() {
        let e = SealKey::new("k1", b"short-secret-value").unwrap_err();
        assert_eq!(e, "the key is 18 bytes; at least 32 are required");
        assert!(!e.contains("short-secret-value"));
        for bad in ["", "a b", "k=1", "k\"", &"x".repeat(65)] {
            assert!(SealKey::new(bad, SECRET).is_err(), "{bad:?}");
        }
        let debug = format!("{:?}", Seal::Keyed(key()));
        assert_eq!(debug, "Keyed(SealKey(k1))");
        assert!(!debug.contains("0123456789abcdef"));
    }

    #[test]
    fn key_files_hold_one_key_per_id() {
        let text = format!(
            "# rotated 2026-12\nk1={}\r\n\nk2={}=with=equals\n",
            std::str::from_utf8(SECRET).unwrap(),
            "n".repeat(30)
        );
        let keys = parse_key_file(&text).unwrap();
        assert_eq!(
            keys.iter().map(SealKey::id).collect::<Vec<_>>(),
            ["k1", "k2"]
        );
        let ring = Keyring::new(keys, false);
        assert_eq!(
            super::verify(&stream("w1", 2).join("\n"), false, &ring).first_break,
            None
        );
        let short = "k1=short-secret\n";
        let e = parse_key_file(short).err().unwrap();
        assert_eq!(e, "line 1: the key is 12 bytes; at least 32 are required");
        assert!(!e.contains("short-secret"));
        assert_eq!(
            parse_key_file("just-a-key-without-an-id-at-all-000000")
                .err()
                .unwrap(),
            "line 1: expected KEY_ID=KEY"
        );
        let twice = format!("a={0}\na={0}\n", "s".repeat(32));
        assert_eq!(
            parse_key_file(&twice).err().unwrap(),
            "line 2: key id `a` given twice"
        );
        assert_eq!(
            parse_key_file("# none\n").err().unwrap(),
            "no key in the file"
        );
    }
}
