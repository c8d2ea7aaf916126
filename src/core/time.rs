//! Time as the caller gives it: the core never reads a clock.

use std::time::Duration;

/// A point in time, in whole milliseconds since an origin the caller picks (in the browser,
/// `performance.now()`). Only differences between timestamps of one session matter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The timestamp `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating instead of overflowing.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_millis(u64::MAX - 1);
        assert_eq!(
            t.saturating_add(Duration::from_secs(5)).as_millis(),
            u64::MAX
        );
        assert_eq!(
            Timestamp::from_millis(3).saturating_since(t),
            Duration::ZERO
        );
        assert_eq!(
            Timestamp::from_millis(1500).saturating_since(Timestamp::from_millis(500)),
            Duration::from_secs(1)
        );
    }
}
