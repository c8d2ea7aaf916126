//! Cursors: what a journal id means and how two ids compare (`docs/PROTOCOL.md`, "Cursor order").

use std::fmt;
use std::str::FromStr;

/// Longest id accepted, in bytes. Ids are kept in the dedup window, so this bounds its memory.
pub const MAX_ID_LEN: usize = 1024;

/// How the ids of a stream are ordered, as configured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CursorOrder {
    /// Decide from the first id seen: numeric, else redis, else opaque.
    #[default]
    Auto,
    /// Unsigned 64-bit integers.
    Numeric,
    /// Redis stream ids, `<ms>-<seq>`, both unsigned 64-bit, compared as a pair.
    Redis,
    /// No order: exactly-once by a bounded set of recently seen ids.
    Opaque,
}

impl CursorOrder {
    /// The option's spelling: `auto`, `numeric`, `redis` or `opaque`.
    pub fn as_str(self) -> &'static str {
        match self {
            CursorOrder::Auto => "auto",
            CursorOrder::Numeric => "numeric",
            CursorOrder::Redis => "redis",
            CursorOrder::Opaque => "opaque",
        }
    }

    /// The order an id of this stream is read in: fixed, or for [`CursorOrder::Auto`] picked by
    /// the shape of `first_id`.
    pub fn resolve(self, first_id: &str) -> ResolvedOrder {
        match self {
            CursorOrder::Numeric => ResolvedOrder::Numeric,
            CursorOrder::Redis => ResolvedOrder::Redis,
            CursorOrder::Opaque => ResolvedOrder::Opaque,
            CursorOrder::Auto if parse_numeric(first_id).is_some() => ResolvedOrder::Numeric,
            CursorOrder::Auto if parse_redis(first_id).is_some() => ResolvedOrder::Redis,
            CursorOrder::Auto => ResolvedOrder::Opaque,
        }
    }
}

impl FromStr for CursorOrder {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(CursorOrder::Auto),
            "numeric" => Ok(CursorOrder::Numeric),
            "redis" => Ok(CursorOrder::Redis),
            "opaque" => Ok(CursorOrder::Opaque),
            _ => Err(()),
        }
    }
}

/// The order in force once the first id of an epoch is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResolvedOrder {
    /// Unsigned 64-bit integers.
    Numeric,
    /// `<ms>-<seq>` pairs.
    Redis,
    /// Unordered.
    Opaque,
}

/// Why an id cannot be a cursor of its stream. Carries the offending id so nothing is lost.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CursorError {
    /// The id is empty (a journaled frame must carry one).
    Empty,
    /// The id is longer than 1024 bytes (`MAX_ID_LEN`).
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The stream's ids are numeric and this one is not an unsigned 64-bit integer.
    NotNumeric {
        /// The id as received.
        id: String,
    },
    /// The stream's ids are `<ms>-<seq>` and this one is not.
    NotRedis {
        /// The id as received.
        id: String,
    },
}

impl fmt::Display for CursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CursorError::Empty => f.write_str("the frame id is empty"),
            CursorError::TooLong { len } => {
                f.write_str("the frame id is ")?;
                f.write_str(&super::text::decimal(*len as u64))?;
                f.write_str(" bytes long, more than the ")?;
                f.write_str(&super::text::decimal(MAX_ID_LEN as u64))?;
                f.write_str(" allowed")
            }
            CursorError::NotNumeric { id } => {
                f.write_str("the stream's ids are numeric but ")?;
                fmt::Debug::fmt(id.as_str(), f)?;
                f.write_str(" is not an unsigned 64-bit integer")
            }
            CursorError::NotRedis { id } => {
                f.write_str("the stream's ids are redis-style <ms>-<seq> but ")?;
                fmt::Debug::fmt(id.as_str(), f)?;
                f.write_str(" is not")
            }
        }
    }
}

impl std::error::Error for CursorError {}

/// The position of an id in an ordered stream. The order of a stream is fixed per epoch, so the
/// two variants never meet in one comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Position {
    Numeric(u64),
    Redis(u64, u64),
}

/// Checks the length limits every id shares.
pub(crate) fn check_len(id: &str) -> Result<(), CursorError> {
    if id.is_empty() {
        Err(CursorError::Empty)
    } else if id.len() > MAX_ID_LEN {
        Err(CursorError::TooLong { len: id.len() })
    } else {
        Ok(())
    }
}

/// Reads `id` in an ordered stream; `None` for an opaque one.
pub(crate) fn position(order: ResolvedOrder, id: &str) -> Result<Option<Position>, CursorError> {
    check_len(id)?;
    match order {
        ResolvedOrder::Numeric => parse_numeric(id)
            .map(|n| Some(Position::Numeric(n)))
            .ok_or_else(|| CursorError::NotNumeric { id: id.to_owned() }),
        ResolvedOrder::Redis => parse_redis(id)
            .map(|(ms, seq)| Some(Position::Redis(ms, seq)))
            .ok_or_else(|| CursorError::NotRedis { id: id.to_owned() }),
        ResolvedOrder::Opaque => Ok(None),
    }
}

/// ASCII digits only (no sign, no spaces), within u64.
fn parse_numeric(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_redis(s: &str) -> Option<(u64, u64)> {
    let (ms, seq) = s.split_once('-')?;
    Some((parse_numeric(ms)?, parse_numeric(seq)?))
}

/// Orders two ids when both read as numeric, or both as redis, ids; `None` when either is opaque
/// or they differ in shape.
pub(crate) fn compare_ids(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    match (parse_numeric(a), parse_numeric(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => Some(parse_redis(a)?.cmp(&parse_redis(b)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_from_the_shape_of_the_first_id() {
        assert_eq!(CursorOrder::Auto.resolve("42"), ResolvedOrder::Numeric);
        assert_eq!(
            CursorOrder::Auto.resolve("1700000000000-0"),
            ResolvedOrder::Redis
        );
        assert_eq!(
            CursorOrder::Auto.resolve("msg_01HZX"),
            ResolvedOrder::Opaque
        );
        assert_eq!(CursorOrder::Auto.resolve("-1"), ResolvedOrder::Opaque);
        assert_eq!(
            CursorOrder::Auto.resolve("18446744073709551616"),
            ResolvedOrder::Opaque
        );
        assert_eq!(CursorOrder::Numeric.resolve("abc"), ResolvedOrder::Numeric);
    }

    #[test]
    fn numeric_is_strict() {
        assert_eq!(
            position(ResolvedOrder::Numeric, "007").unwrap(),
            Some(Position::Numeric(7))
        );
        for bad in [
            "+7",
            " 7",
            "7 ",
            "1e3",
            "0x10",
            "18446744073709551616",
            "1-2",
        ] {
            assert_eq!(
                position(ResolvedOrder::Numeric, bad),
                Err(CursorError::NotNumeric { id: bad.into() })
            );
        }
        assert_eq!(
            position(ResolvedOrder::Numeric, ""),
            Err(CursorError::Empty)
        );
    }

    #[test]
    fn redis_compares_as_a_pair() {
        let a = position(ResolvedOrder::Redis, "5-10").unwrap().unwrap();
        let b = position(ResolvedOrder::Redis, "6-0").unwrap().unwrap();
        let c = position(ResolvedOrder::Redis, "5-9").unwrap().unwrap();
        assert!(a < b);
        assert!(a > c);
        for bad in ["5", "5-", "-5", "5-5-5", "a-1"] {
            assert!(position(ResolvedOrder::Redis, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn opaque_takes_anything_bounded() {
        assert_eq!(position(ResolvedOrder::Opaque, "ünïcödé id"), Ok(None));
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert_eq!(
            position(ResolvedOrder::Opaque, &long),
            Err(CursorError::TooLong {
                len: MAX_ID_LEN + 1
            })
        );
    }

    #[test]
    fn compares_ids_of_one_shape() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_ids("9", "10"), Some(Less));
        assert_eq!(compare_ids("5-1", "5-0"), Some(Greater));
        assert_eq!(compare_ids("5", "5-0"), None);
        assert_eq!(compare_ids("a", "b"), None);
    }

    #[test]
    fn order_names_round_trip() {
        for order in [
            CursorOrder::Auto,
            CursorOrder::Numeric,
            CursorOrder::Redis,
            CursorOrder::Opaque,
        ] {
            assert_eq!(order.as_str().parse(), Ok(order));
        }
        assert!("Numeric".parse::<CursorOrder>().is_err());
    }
}
