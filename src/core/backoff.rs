//! The reconnect policy: capped exponential backoff with full jitter, randomness injected.
//!
//! Full jitter (a delay drawn uniformly from zero to the capped exponential ceiling) spreads the
//! reconnects of many tabs and clients after a server restart instead of synchronising them.

use std::time::Duration;

/// Bounds of the reconnect delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Ceiling of the first delay; each failed attempt doubles the ceiling.
    pub base: Duration,
    /// The ceiling never exceeds this.
    pub cap: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl BackoffPolicy {
    /// The ceiling of the delay before attempt `attempt` (0-based): `min(cap, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// Successive reconnect delays. Deterministic for a given seed, so tests can replay it.
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
    rng: SplitMix64,
}

impl Backoff {
    /// A fresh backoff; `seed` feeds the jitter (the browser shell seeds it from `Math.random`).
    pub fn new(policy: BackoffPolicy, seed: u64) -> Self {
        Backoff {
            policy,
            attempt: 0,
            rng: SplitMix64(seed),
        }
    }

    /// The delay before the next attempt, drawn uniformly from `[0, ceiling]` in whole
    /// milliseconds; counts the attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.policy.ceiling(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.rng.below_inclusive(ceiling_ms))
    }

    /// Attempts since the last [`Backoff::reset`].
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Back to the first ceiling (after a successful `ready`).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The policy in force.
    pub fn policy(&self) -> BackoffPolicy {
        self.policy
    }

    /// Replaces the base delay, e.g. from a server's `retry:` field; the cap stays.
    pub fn set_base(&mut self, base: Duration) {
        self.policy.base = base.min(self.policy.cap);
    }
}

/// A small, fast, well-mixed PRNG; jitter needs spread, not secrecy.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, max]` (the modulo bias is below 2^-40 for delays under an hour).
    fn below_inclusive(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(span) => self.next() % span,
            None => self.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let p = BackoffPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
        };
        let ceilings: Vec<u128> = (0..6).map(|a| p.ceiling(a).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.ceiling(u32::MAX), Duration::from_millis(1000));
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        let p = BackoffPolicy {
            base: Duration::from_millis(1000),
            cap: Duration::from_millis(1000),
        };
        let mut b = Backoff::new(p, 7);
        let delays: Vec<u64> = (0..2000)
            .map(|_| b.next_delay().as_millis() as u64)
            .collect();
        assert!(delays.iter().all(|&d| d <= 1000));
        assert!(
            delays.iter().any(|&d| d < 100),
            "full jitter reaches near zero"
        );
        assert!(delays.iter().any(|&d| d > 900), "and near the ceiling");
    }

    #[test]
    fn same_seed_same_delays() {
        let mut a = Backoff::new(BackoffPolicy::default(), 42);
        let mut b = Backoff::new(BackoffPolicy::default(), 42);
        for _ in 0..10 {
            assert_eq!(a.next_delay(), b.next_delay());
        }
    }

    #[test]
    fn set_base_respects_the_cap() {
        let mut b = Backoff::new(BackoffPolicy::default(), 1);
        b.set_base(Duration::from_secs(3600));
        assert_eq!(b.policy().base, BackoffPolicy::default().cap);
    }
}
