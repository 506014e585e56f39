//! A stored response and its byte encoding in shared data. The encoding is length-prefixed
//! binary (bodies are bytes, and JSON would double them); decoding checks every length, so a
//! truncated or foreign value is "no entry", never a panic.

/// One stored response (a variant of a resource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Fingerprint of primary key + Vary values; must equal the directory's record.
    pub variant: u64,
    pub url_key: String,
    pub primary_key: String,
    /// When the request that produced it was sent and when the response arrived (Unix s).
    pub request_time: u64,
    pub response_time: u64,
    /// `corrected_initial_age` (RFC 9111 §4.2.3).
    pub initial_age: u64,
    pub status: u16,
    /// Lower-cased names, in order; hop-by-hop and per-hop headers removed.
    pub headers: Vec<(String, String)>,
    /// The Vary header names and the request's normalised values.
    pub vary: Vec<(String, String)>,
    pub tags: Vec<String>,
    pub body: Vec<u8>,
}

const MAGIC: &[u8; 4] = b"PCE1";

impl Entry {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 256);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.variant.to_le_bytes());
        put_str(&mut out, &self.url_key);
        put_str(&mut out, &self.primary_key);
        for t in [self.request_time, self.response_time, self.initial_age] {
            out.extend_from_slice(&t.to_le_bytes());
        }
        out.extend_from_slice(&self.status.to_le_bytes());
        put_pairs(&mut out, &self.headers);
        put_pairs(&mut out, &self.vary);
        out.extend_from_slice(&(self.tags.len() as u32).to_le_bytes());
        for t in &self.tags {
            put_str(&mut out, t);
        }
        put_bytes(&mut out, &self.body);
        out
    }

    pub fn decode(raw: &[u8]) -> Option<Entry> {
        let mut r = Reader { raw, at: 0 };
        if r.take(4)? != MAGIC {
            return None;
        }
        let variant = r.u64()?;
        let url_key = r.string()?;
        let primary_key = r.string()?;
        let request_time = r.u64()?;
        let response_time = r.u64()?;
        let initial_age = r.u64()?;
        let status = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
        let headers = r.pairs()?;
        let vary = r.pairs()?;
        let n = r.u32()?;
        let mut tags = Vec::new();
        for _ in 0..n {
            tags.push(r.string()?);
        }
        let body = r.bytes()?.to_vec();
        if r.at != raw.len() {
            return None;
        }
        Some(Entry {
            variant,
            url_key,
            primary_key,
            request_time,
            response_time,
            initial_age,
            status,
            headers,
            vary,
            tags,
            body,
        })
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

fn put_pairs(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (n, v) in pairs {
        put_str(out, n);
        put_str(out, v);
    }
}

struct Reader<'a> {
    raw: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.raw.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    fn pairs(&mut self) -> Option<Vec<(String, String)>> {
        let n = self.u32()?;
        // Each pair takes at least 8 bytes: a count larger than the rest is corrupt.
        if (n as usize).saturating_mul(8) > self.raw.len().saturating_sub(self.at) {
            return None;
        }
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            out.push((self.string()?, self.string()?));
        }
        Some(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> Entry {
        Entry {
            variant: 42,
            url_key: "GET https://h/a".into(),
            primary_key: "GET https://h/a".into(),
            request_time: 1000,
            response_time: 1001,
            initial_age: 3,
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "max-age=60".into()),
            ],
            vary: vec![("accept".into(), "text/plain".into())],
            tags: vec!["product-1".into(), "catalog".into()],
            body: b"{\"a\":1}".to_vec(),
        }
    }

    #[test]
    fn round_trips() {
        let e = sample();
        let raw = e.encode();
        assert_eq!(Entry::decode(&raw), Some(e.clone()));
        assert_eq!(e.header("content-type"), Some("application/json"));
        assert_eq!(e.header_values("cache-control"), vec!["max-age=60"]);
    }

    #[test]
    fn truncated_or_foreign_bytes_are_no_entry() {
        let raw = sample().encode();
        for cut in 0..raw.len() {
            assert_eq!(Entry::decode(&raw[..cut]), None, "cut at {cut}");
        }
        let mut longer = raw.clone();
        longer.push(0);
        assert_eq!(Entry::decode(&longer), None);
        assert_eq!(Entry::decode(b""), None);
        let mut huge = raw.clone();
        // A header count of u32::MAX must not allocate.
        let at = 4 + 8 + 4 + 15 + 4 + 15 + 24 + 2;
        huge[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Entry::decode(&huge), None);
    }
}
