//! Envoy shared data, as the core sees it: one store per VM shared by every worker, whose values
//! carry a version (`cas`). The in-memory [`MemoryStore`] copies the host's rules exactly, so the
//! core's tests exercise the same races the filter meets in Envoy.

use std::cell::RefCell;
use std::collections::HashMap;

/// A write lost a race: the value changed since it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CasMismatch;

pub trait SharedStore {
    /// The value and its version; `None` if the key was never written.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes `value`. With `cas` 0 the write is unconditional; otherwise it fails with
    /// [`CasMismatch`] unless the stored version is still `cas`.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), CasMismatch>;
}

/// The host's rules in memory: versions start at 1 and grow on every write; keys are never freed.
#[derive(Debug, Default)]
pub struct MemoryStore {
    data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
}

impl MemoryStore {
    pub fn keys(&self) -> usize {
        self.data.borrow().len()
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.data.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), CasMismatch> {
        let mut data = self.data.borrow_mut();
        let current = data.get(key).map_or(0, |(_, v)| *v);
        if cas != 0 && cas != current {
            return Err(CasMismatch);
        }
        data.insert(
            key.to_string(),
            (value.to_vec(), current.wrapping_add(1).max(1)),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_rules() {
        let s = MemoryStore::default();
        assert_eq!(s.get("k"), None);
        s.set("k", b"a", 0).unwrap();
        let (v, cas) = s.get("k").unwrap();
        assert_eq!(v, b"a");
        s.set("k", b"b", cas).unwrap();
        assert_eq!(s.set("k", b"c", cas), Err(CasMismatch));
        s.set("k", b"d", 0).unwrap();
        assert_eq!(s.get("k").unwrap().0, b"d");
    }
}
