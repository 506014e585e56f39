//! Many-needle substring search in one pass. Detectors ask "does this value contain any of these
//! words?"; calling `str::contains` once per word builds a searcher per word and rescans the value
//! each time, which was most of the per-request cost. A [`NeedleSet`] keeps, built at compile
//! time, which needles start with each byte: one pass over the value, and only the needles that
//! start with the byte at hand are compared there.

use super::Present;

/// At most this many needles per set (one bit each in [`NeedleSet::by_first`]).
const MAX_NEEDLES: usize = 64;

/// A fixed list of needles, indexed by their first byte.
pub(crate) struct NeedleSet {
    needles: &'static [&'static str],
    /// For each byte, bit `k` is set when needle `k` starts with that byte.
    by_first: [u64; 256],
    /// Some needle is empty: it is in every value.
    has_empty: bool,
    /// For each needle, the classes of its bytes ([`super::signature`]): a needle whose bytes are
    /// not all in a value cannot be in it, which [`NeedleSet::any_in_present`] checks first.
    sigs: [u64; MAX_NEEDLES],
}

impl NeedleSet {
    /// Panics at compile time (the sets are `const`) if there are more than 64 needles.
    pub(crate) const fn new(needles: &'static [&'static str]) -> NeedleSet {
        assert!(
            needles.len() <= MAX_NEEDLES,
            "a NeedleSet holds at most 64 needles"
        );
        let mut set = NeedleSet {
            needles,
            by_first: [0; 256],
            has_empty: false,
            sigs: [0; MAX_NEEDLES],
        };
        let mut rest = needles;
        let mut k = 0;
        while let [needle, tail @ ..] = rest {
            match needle.as_bytes() {
                [] => set.has_empty = true,
                [b, ..] => set.by_first[*b as usize] |= 1 << k,
            }
            set.sigs[k] = super::signature(needle.as_bytes());
            k += 1;
            rest = tail;
        }
        set
    }

    /// Same answer as `needles.iter().any(|n| hay.contains(n))`.
    pub(crate) fn any_in(&self, hay: &str) -> bool {
        self.search(hay, u64::MAX)
    }

    /// [`NeedleSet::any_in`] for a value whose bytes `p` holds (`p` may hold more, never less).
    /// Only the needles whose bytes all occur in the value are looked for, and none at all when
    /// there is no such needle: most values have few of the bytes a set's needles need.
    pub(crate) fn any_in_present(&self, hay: &str, p: &Present) -> bool {
        let mut viable = 0u64;
        for (k, sig) in self.sigs.iter().take(self.needles.len()).enumerate() {
            viable |= u64::from(p.may_hold(*sig)) << k;
        }
        viable != 0 && self.search(hay, viable)
    }

    /// One pass over `hay`, comparing only the needles in `viable` (bit `k`: needle `k`).
    fn search(&self, hay: &str, viable: u64) -> bool {
        if self.has_empty {
            return true;
        }
        let b = hay.as_bytes();
        (0..b.len()).any(|i| {
            let Some(&c) = b.get(i) else { return false };
            let mut candidates = self.by_first.get(usize::from(c)).copied().unwrap_or(0) & viable;
            let rest = b.get(i..).unwrap_or_default();
            while candidates != 0 {
                let k = candidates.trailing_zeros() as usize;
                candidates &= candidates - 1;
                // The second byte first: it rules out most candidates without a `memcmp` call.
                let matches = self.needles.get(k).is_some_and(|n| {
                    let n = n.as_bytes();
                    n.get(1).is_none_or(|x| rest.get(1) == Some(x)) && rest.starts_with(n)
                });
                if matches {
                    return true;
                }
            }
            false
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: NeedleSet = NeedleSet::new(&["etc/passwd", "win.ini", "__class__", "é"]);

    #[test]
    fn agrees_with_contains() {
        let needles = ["etc/passwd", "win.ini", "__class__", "é"];
        for hay in [
            "",
            "x",
            "../../etc/passwd",
            "etc/passw",
            "c:\\windows\\win.ini",
            "a.__class__.b",
            "__clas__",
            "café",
            "cafe",
            "win.in",
        ] {
            let want = needles.iter().any(|n| hay.contains(n));
            assert_eq!(WORDS.any_in(hay), want, "{hay}");
            assert_eq!(WORDS.any_in_present(hay, &Present::of(hay)), want, "{hay}");
        }
    }

    #[test]
    fn empty_needle_matches_everything() {
        const EMPTY: NeedleSet = NeedleSet::new(&["abc", ""]);
        assert!(EMPTY.any_in(""));
        assert!(EMPTY.any_in("zzz"));
        assert!(EMPTY.any_in_present("", &Present::of("")));
    }
}
