//! Entry ids, which double as cursors: numeric (`42`) or Redis-stream style (`<ms>-<seq>`).

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// How a journal numbers its entries. Chosen per journal incarnation (see `POST .../reset?ids=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdMode {
    /// `1`, `2`, `3`, … restarting at 1 in every epoch.
    Numeric,
    /// `<ms>-<seq>` like a Redis stream: wall-clock milliseconds and a sequence number within
    /// that millisecond, compared as a pair.
    Redis,
}

impl IdMode {
    /// The name used on the command line, in query parameters and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            IdMode::Numeric => "numeric",
            IdMode::Redis => "redis",
        }
    }
}

impl fmt::Display for IdMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An id mode name that is neither `numeric` nor `redis`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdModeError(pub String);

impl fmt::Display for IdModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown id mode {:?} (expected `numeric` or `redis`)",
            self.0
        )
    }
}

impl std::error::Error for IdModeError {}

impl FromStr for IdMode {
    type Err = IdModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "numeric" => Ok(IdMode::Numeric),
            "redis" => Ok(IdMode::Redis),
            other => Err(IdModeError(other.to_owned())),
        }
    }
}

/// One entry id. All ids of one journal incarnation share a mode, so the derived order (which
/// would put every numeric id before every Redis id) only ever compares like with like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Id {
    /// A numeric id.
    Numeric(u64),
    /// A Redis-style id; field order gives the (ms, seq) pair order.
    Redis {
        /// Milliseconds part.
        ms: u64,
        /// Sequence within the millisecond.
        seq: u64,
    },
}

impl Id {
    /// Parses a cursor sent by a client, in the id mode of the journal it targets.
    pub fn parse(text: &str, mode: IdMode) -> Result<Id, CursorError> {
        let bad = || CursorError {
            cursor: text.to_owned(),
            mode,
        };
        match mode {
            IdMode::Numeric => parse_u64(text).map(Id::Numeric).ok_or_else(bad),
            IdMode::Redis => {
                let (ms, seq) = text.split_once('-').ok_or_else(bad)?;
                Ok(Id::Redis {
                    ms: parse_u64(ms).ok_or_else(bad)?,
                    seq: parse_u64(seq).ok_or_else(bad)?,
                })
            }
        }
    }
}

/// Plain ASCII digits only: `str::parse` would also take a leading `+`, which no id ever has.
fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Numeric(n) => write!(f, "{n}"),
            Id::Redis { ms, seq } => write!(f, "{ms}-{seq}"),
        }
    }
}

/// A cursor that does not parse in the journal's id mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorError {
    /// The cursor as the client sent it.
    pub cursor: String,
    /// The id mode of the journal it was meant for.
    pub mode: IdMode,
}

impl fmt::Display for CursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expected = match self.mode {
            IdMode::Numeric => "an unsigned 64-bit integer such as `42`",
            IdMode::Redis => {
                "`<ms>-<seq>` with two unsigned 64-bit integers such as `1700000000000-0`"
            }
        };
        write!(
            f,
            "unparsable cursor {:?}: this stream uses {} ids, expected {expected}",
            self.cursor, self.mode
        )
    }
}

impl std::error::Error for CursorError {}

/// Hands out strictly increasing ids for one journal incarnation.
#[derive(Debug, Clone)]
pub struct IdGen {
    mode: IdMode,
    last: Option<Id>,
}

impl IdGen {
    /// A generator whose first numeric id is 1.
    pub fn new(mode: IdMode) -> Self {
        IdGen { mode, last: None }
    }

    /// The mode of the ids this generator makes.
    pub fn mode(&self) -> IdMode {
        self.mode
    }

    /// The next id. In Redis mode `now_ms` is the wall clock; when it stands still or goes
    /// backwards the id keeps the last millisecond and bumps the sequence, so ids never repeat
    /// or go back.
    pub fn next(&mut self, now_ms: u64) -> Id {
        let id = match (self.mode, self.last) {
            (IdMode::Numeric, Some(Id::Numeric(n))) => Id::Numeric(n.saturating_add(1)),
            (IdMode::Numeric, _) => Id::Numeric(1),
            (IdMode::Redis, Some(Id::Redis { ms, seq })) if now_ms <= ms => {
                match seq.checked_add(1) {
                    Some(seq) => Id::Redis { ms, seq },
                    None => Id::Redis {
                        ms: ms.saturating_add(1),
                        seq: 0,
                    },
                }
            }
            (IdMode::Redis, _) => Id::Redis { ms: now_ms, seq: 0 },
        };
        self.last = Some(id);
        id
    }
}

/// Milliseconds since the Unix epoch by the wall clock (0 if the clock is before 1970).
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_count_from_one() {
        let mut ids = IdGen::new(IdMode::Numeric);
        assert_eq!(ids.next(5), Id::Numeric(1));
        assert_eq!(ids.next(5), Id::Numeric(2));
    }

    #[test]
    fn redis_ids_increase_even_when_the_clock_goes_back() {
        let mut ids = IdGen::new(IdMode::Redis);
        let a = ids.next(1000);
        let b = ids.next(1000);
        let c = ids.next(900);
        let d = ids.next(1001);
        assert_eq!(a, Id::Redis { ms: 1000, seq: 0 });
        assert_eq!(b, Id::Redis { ms: 1000, seq: 1 });
        assert_eq!(c, Id::Redis { ms: 1000, seq: 2 });
        assert_eq!(d, Id::Redis { ms: 1001, seq: 0 });
        assert!(a < b && b < c && c < d);
    }

    #[test]
    fn cursors_parse_strictly() {
        assert_eq!(Id::parse("7", IdMode::Numeric), Ok(Id::Numeric(7)));
        assert!(Id::parse("+7", IdMode::Numeric).is_err());
        assert!(Id::parse("7-1", IdMode::Numeric).is_err());
        assert!(Id::parse("", IdMode::Numeric).is_err());
        assert!(Id::parse("18446744073709551616", IdMode::Numeric).is_err());
        assert_eq!(
            Id::parse("12-3", IdMode::Redis),
            Ok(Id::Redis { ms: 12, seq: 3 })
        );
        assert!(Id::parse("12", IdMode::Redis).is_err());
        assert!(Id::parse("12-", IdMode::Redis).is_err());
        assert!(Id::parse("12-3-4", IdMode::Redis).is_err());
        assert_eq!(Id::Redis { ms: 12, seq: 3 }.to_string(), "12-3");
    }

    #[test]
    fn redis_ids_compare_as_pairs() {
        assert!(Id::Redis { ms: 2, seq: 0 } > Id::Redis { ms: 1, seq: 99 });
        assert!(Id::Redis { ms: 2, seq: 10 } > Id::Redis { ms: 2, seq: 9 });
    }
}
