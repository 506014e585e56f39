//! Progressive penalties: strikes (a request denied by a limit, a 401/403 response) within a
//! window start a ban; each ban while the previous ones are remembered is longer (the configured
//! steps), and the remembered level drops by one per `decay` without a new ban.

use crate::config::Penalties;

/// Bytes of penalty state per key.
pub const STATE_LEN: usize = 32;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PenaltyState {
    pub strikes: u32,
    /// Bans remembered (0 = none); the next ban uses step `level` (0-based), capped at the last.
    pub level: u32,
    pub window_start: u64,
    pub banned_until: u64,
    /// When the level last changed (a ban ended, or a decay step was taken).
    pub level_since: u64,
}

/// What a strike did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrikeOutcome {
    Counted,
    /// A ban started: its level (1-based) and end.
    Banned {
        level: u32,
        until: u64,
    },
}

impl PenaltyState {
    pub fn decode(bytes: &[u8]) -> PenaltyState {
        let u32_at = |at: usize| {
            let mut b = [0u8; 4];
            if let Some(src) = bytes.get(at..at + 4) {
                b.copy_from_slice(src);
            }
            u32::from_le_bytes(b)
        };
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            if let Some(src) = bytes.get(at..at + 8) {
                b.copy_from_slice(src);
            }
            u64::from_le_bytes(b)
        };
        PenaltyState {
            strikes: u32_at(0),
            level: u32_at(4),
            window_start: u64_at(8),
            banned_until: u64_at(16),
            level_since: u64_at(24),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(STATE_LEN);
        out.extend_from_slice(&self.strikes.to_le_bytes());
        out.extend_from_slice(&self.level.to_le_bytes());
        out.extend_from_slice(&self.window_start.to_le_bytes());
        out.extend_from_slice(&self.banned_until.to_le_bytes());
        out.extend_from_slice(&self.level_since.to_le_bytes());
        out
    }

    pub fn is_banned(&self, now: u64) -> bool {
        self.banned_until > now
    }

    /// Lowers the level by one per full `decay` since it last changed (never during a ban).
    fn decay(&mut self, cfg: &Penalties, now: u64) {
        if self.level == 0 || self.is_banned(now) {
            return;
        }
        let since = self.level_since.max(self.banned_until);
        let steps = now.saturating_sub(since) / cfg.decay_ms.max(1);
        let steps = u32::try_from(steps).unwrap_or(u32::MAX).min(self.level);
        self.level -= steps;
        self.level_since = since.saturating_add(u64::from(steps).saturating_mul(cfg.decay_ms));
    }

    /// Records one strike at `now`.
    pub fn strike(&mut self, cfg: &Penalties, now: u64) -> StrikeOutcome {
        self.decay(cfg, now);
        // A new window when the old one ended, or if the clock went back before it.
        if now < self.window_start
            || now.saturating_sub(self.window_start) >= cfg.strike_window_ms
            || self.strikes == 0
        {
            self.window_start = now;
            self.strikes = 0;
        }
        self.strikes = self.strikes.saturating_add(1);
        if self.strikes < cfg.strikes || self.is_banned(now) {
            return StrikeOutcome::Counted;
        }
        let steps = cfg.bans_ms.len();
        let step = usize::try_from(self.level)
            .unwrap_or(usize::MAX)
            .min(steps.saturating_sub(1));
        let length = cfg.bans_ms.get(step).copied().unwrap_or(60_000);
        self.level = self
            .level
            .saturating_add(1)
            .min(u32::try_from(steps).unwrap_or(16));
        self.strikes = 0;
        self.banned_until = now.saturating_add(length);
        self.level_since = self.banned_until;
        StrikeOutcome::Banned {
            level: self.level,
            until: self.banned_until,
        }
    }

    /// When the entry can be forgotten: the ban is over, the strike window closed, and the level
    /// has decayed to zero.
    pub fn expires_at(&self, cfg: &Penalties) -> u64 {
        let active = self
            .banned_until
            .max(self.window_start.saturating_add(cfg.strike_window_ms));
        let decayed = self
            .level_since
            .max(self.banned_until)
            .saturating_add(cfg.decay_ms.saturating_mul(u64::from(self.level)));
        active.max(decayed).saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyPart;

    fn cfg() -> Penalties {
        Penalties {
            key: vec![KeyPart::ClientIp],
            strikes: 3,
            strike_window_ms: 10_000,
            from_limits: true,
            from_statuses: vec![401, 403],
            bans_ms: vec![1_000, 5_000, 30_000],
            decay_ms: 60_000,
            status: 429,
            table: crate::config::RawTable {
                buckets: 1,
                ways: 1,
            },
        }
    }

    fn strikes(s: &mut PenaltyState, n: u32, now: u64) -> StrikeOutcome {
        let mut last = StrikeOutcome::Counted;
        for _ in 0..n {
            last = s.strike(&cfg(), now);
        }
        last
    }

    #[test]
    fn round_trip() {
        let s = PenaltyState {
            strikes: 1,
            level: 2,
            window_start: 3,
            banned_until: 4,
            level_since: 5,
        };
        assert_eq!(PenaltyState::decode(&s.encode()), s);
        assert_eq!(s.encode().len(), STATE_LEN);
        assert_eq!(PenaltyState::decode(b"xy"), PenaltyState::default());
    }

    #[test]
    fn strikes_within_the_window_ban() {
        let mut s = PenaltyState::default();
        assert_eq!(strikes(&mut s, 2, 100), StrikeOutcome::Counted);
        assert!(!s.is_banned(100));
        assert_eq!(
            s.strike(&cfg(), 200),
            StrikeOutcome::Banned {
                level: 1,
                until: 1_200
            }
        );
        assert!(s.is_banned(1_199));
        assert!(!s.is_banned(1_200));
    }

    #[test]
    fn strikes_spread_beyond_the_window_do_not_ban() {
        let mut s = PenaltyState::default();
        for t in 0..10 {
            assert_eq!(s.strike(&cfg(), t * 6_000), StrikeOutcome::Counted);
        }
    }

    #[test]
    fn bans_escalate_and_cap_at_the_last_step() {
        let mut s = PenaltyState::default();
        let mut now = 0;
        let mut lengths = vec![];
        for _ in 0..4 {
            match strikes(&mut s, 3, now) {
                StrikeOutcome::Banned { until, .. } => lengths.push(until - now),
                StrikeOutcome::Counted => panic!("no ban"),
            }
            now = s.banned_until;
        }
        assert_eq!(lengths, vec![1_000, 5_000, 30_000, 30_000]);
        assert_eq!(s.level, 3);
    }

    #[test]
    fn levels_decay() {
        let mut s = PenaltyState::default();
        strikes(&mut s, 3, 0); // level 1, until 1000
        strikes(&mut s, 3, 1_000); // level 2, until 6000
        assert_eq!(s.level, 2);
        // One decay period after the ban ended: back to level 1 → next ban is 5 s, not 30 s.
        let now = 6_000 + 60_000;
        match strikes(&mut s, 3, now) {
            StrikeOutcome::Banned { level, until } => {
                assert_eq!(level, 2);
                assert_eq!(until - now, 5_000);
            }
            other => panic!("{other:?}"),
        }
        // Long enough and everything is forgotten.
        let later = s.banned_until + 10 * 60_000;
        match strikes(&mut s, 3, later) {
            StrikeOutcome::Banned { level, until } => {
                assert_eq!(level, 1);
                assert_eq!(until - later, 1_000);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn strikes_during_a_ban_do_not_extend_it() {
        let mut s = PenaltyState::default();
        strikes(&mut s, 3, 0);
        assert_eq!(strikes(&mut s, 10, 500), StrikeOutcome::Counted);
        assert_eq!(s.banned_until, 1_000);
    }

    #[test]
    fn clock_going_backwards() {
        let mut s = PenaltyState::default();
        strikes(&mut s, 2, 50_000);
        // Earlier than the window: a fresh window, no panic, no ban from stale strikes.
        assert_eq!(s.strike(&cfg(), 10), StrikeOutcome::Counted);
        assert_eq!(s.strikes, 1);
    }

    #[test]
    fn expiry_covers_ban_window_and_decay() {
        let mut s = PenaltyState::default();
        s.strike(&cfg(), 0);
        assert_eq!(s.expires_at(&cfg()), 10_001);
        strikes(&mut s, 2, 0);
        // Banned until 1000 at level 1: remembered for one decay after that.
        assert_eq!(s.expires_at(&cfg()), 61_001);
    }
}
