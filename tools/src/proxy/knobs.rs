//! Fault knobs: read from a request's query string (`proxy.` names, stripped before the request
//! goes upstream) or from an arming request of the control endpoint (the same names, with or
//! without the prefix).

use std::fmt;
use std::time::Duration;

use crate::net::decode_component;

/// The prefix of knob names in an application's query string.
pub const PREFIX: &str = "proxy.";

/// Every knob, by its name after the prefix.
pub const NAMES: [&str; 11] = [
    "cutAfter",
    "stallAfter",
    "dupSeam",
    "garbage",
    "garbageEvent",
    "delayMs",
    "earlyOpen",
    "status",
    "retryAfter",
    "failCount",
    "dropLastEventId",
];

/// Most frames a seam repeats (and the proxy remembers per path).
pub const MAX_SEAM: usize = 1000;

/// The faults asked for one connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Knobs {
    /// End the response after this many journaled frames (frames with an id).
    pub cut_after: Option<u64>,
    /// Forward nothing more after this many journaled frames, keeping the connection open.
    pub stall_after: Option<u64>,
    /// After the first event, resend the last K journaled frames earlier connections to the same
    /// path got.
    pub dup_seam: Option<usize>,
    /// After the first event, inject noise.
    pub garbage: bool,
    /// The event type of the noise frames (default `message`).
    pub garbage_event: Option<String>,
    /// Wait this long before sending the request upstream.
    pub delay: Option<Duration>,
    /// Answer `200 text/event-stream` at once, before the upstream is asked.
    pub early_open: bool,
    /// Answer this status instead of forwarding.
    pub status: Option<u16>,
    /// `Retry-After` seconds on an injected 429 or 503.
    pub retry_after: Option<u64>,
    /// How many requests to the path carrying `status` get it (default 1).
    pub fail_count: Option<u64>,
    /// Remove the `Last-Event-ID` header before forwarding.
    pub drop_last_event_id: bool,
}

/// A knob that does not parse: 400, naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KnobError {
    /// A `proxy.` name that is no knob.
    Unknown(String),
    /// A knob whose value does not parse.
    BadValue {
        /// The knob as written.
        knob: String,
        /// Its value.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// A knob that needs another one.
    Needs {
        /// The knob.
        knob: &'static str,
        /// What it needs.
        needs: &'static str,
    },
}

impl fmt::Display for KnobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KnobError::Unknown(knob) => write!(
                f,
                "unknown proxy knob {knob:?} (known: {})",
                NAMES.map(|n| format!("{PREFIX}{n}")).join(", ")
            ),
            KnobError::BadValue {
                knob,
                value,
                expected,
            } => write!(
                f,
                "bad value {value:?} for proxy knob {knob}: expected {expected}"
            ),
            KnobError::Needs { knob, needs } => {
                write!(f, "proxy knob {PREFIX}{knob} needs {needs}")
            }
        }
    }
}

impl std::error::Error for KnobError {}

/// A query string split in two: the knobs (`(name without prefix, decoded value)`) and what
/// goes upstream (the other parameters, byte for byte, in order).
pub fn split_query(query: Option<&str>) -> (Vec<(String, String)>, Option<String>) {
    let mut knobs = Vec::new();
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match decode_component(name).strip_prefix(PREFIX) {
            Some(knob) => knobs.push((knob.to_owned(), decode_component(value))),
            None if pair.is_empty() => {}
            None => kept.push(pair),
        }
    }
    let forwarded = (!kept.is_empty()).then(|| kept.join("&"));
    (knobs, forwarded)
}

impl Knobs {
    /// Whether no knob is set.
    pub fn is_empty(&self) -> bool {
        *self == Knobs::default()
    }

    /// Whether a knob acts on the frames of an event stream.
    pub fn shapes_frames(&self) -> bool {
        self.cut_after.is_some()
            || self.stall_after.is_some()
            || self.dup_seam.is_some()
            || self.garbage
    }

    /// Reads knobs from `(name, value)` pairs (names without the prefix; `prefixed` says how they
    /// were written, for messages). Pairs whose name is not a knob are an error.
    pub fn parse(pairs: &[(String, String)], prefixed: bool) -> Result<Knobs, KnobError> {
        let mut knobs = Knobs::default();
        for (name, value) in pairs {
            let shown = if prefixed {
                format!("{PREFIX}{name}")
            } else {
                name.clone()
            };
            let bad = |expected| KnobError::BadValue {
                knob: shown.clone(),
                value: value.clone(),
                expected,
            };
            let number = |range: std::ops::RangeInclusive<u64>, expected| {
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| bad(expected))
            };
            let flag = || match value.as_str() {
                "" | "1" | "true" => Ok(true),
                "0" | "false" => Ok(false),
                _ => Err(bad("1 or 0")),
            };
            match name.as_str() {
                "cutAfter" => knobs.cut_after = Some(number(1..=u64::MAX, "a frame count >= 1")?),
                "stallAfter" => {
                    knobs.stall_after = Some(number(1..=u64::MAX, "a frame count >= 1")?)
                }
                "dupSeam" => {
                    knobs.dup_seam =
                        Some(number(1..=MAX_SEAM as u64, "a frame count 1-1000")? as usize)
                }
                "garbage" => knobs.garbage = flag()?,
                "garbageEvent" => {
                    let ok =
                        !value.is_empty() && value.len() <= 256 && !value.contains(['\r', '\n']);
                    if !ok {
                        return Err(bad("an event type of 1-256 bytes without CR or LF"));
                    }
                    knobs.garbage_event = Some(value.clone());
                }
                "delayMs" => {
                    knobs.delay = Some(Duration::from_millis(number(
                        0..=600_000,
                        "milliseconds 0-600000",
                    )?))
                }
                "earlyOpen" => knobs.early_open = flag()?,
                "status" => {
                    let status = number(204..=599, "204 or 400-599")?;
                    if status != 204 && status < 400 {
                        return Err(bad("204 or 400-599"));
                    }
                    knobs.status = Some(status as u16);
                }
                "retryAfter" => knobs.retry_after = Some(number(0..=86_400, "seconds 0-86400")?),
                "failCount" => knobs.fail_count = Some(number(1..=1_000_000, "a count 1-1000000")?),
                "dropLastEventId" => knobs.drop_last_event_id = flag()?,
                _ => return Err(KnobError::Unknown(shown)),
            }
        }
        if knobs.retry_after.is_some() && !matches!(knobs.status, Some(429 | 503)) {
            return Err(KnobError::Needs {
                knob: "retryAfter",
                needs: "status=429 or status=503",
            });
        }
        if knobs.fail_count.is_some() && knobs.status.is_none() {
            return Err(KnobError::Needs {
                knob: "failCount",
                needs: "status",
            });
        }
        if knobs.garbage_event.is_some() && !knobs.garbage {
            return Err(KnobError::Needs {
                knob: "garbageEvent",
                needs: "garbage=1",
            });
        }
        Ok(knobs)
    }

    /// These knobs, with those set in `armed` on top.
    pub fn merged(mut self, armed: &Knobs) -> Knobs {
        macro_rules! take {
            ($($field:ident),*) => {$(
                if armed.$field.is_some() {
                    self.$field = armed.$field.clone();
                }
            )*};
        }
        take!(
            cut_after,
            stall_after,
            dup_seam,
            garbage_event,
            delay,
            status,
            retry_after,
            fail_count
        );
        self.garbage |= armed.garbage;
        self.early_open |= armed.early_open;
        self.drop_last_event_id |= armed.drop_last_event_id;
        self
    }

    /// The knobs set, as `name=value` (for the log and the stats).
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut put = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                out.push(format!("{name}={value}"));
            }
        };
        let on = |b: bool| b.then(|| "1".to_owned());
        put("cutAfter", self.cut_after.map(|n| n.to_string()));
        put("stallAfter", self.stall_after.map(|n| n.to_string()));
        put("dupSeam", self.dup_seam.map(|n| n.to_string()));
        put("garbage", on(self.garbage));
        put("garbageEvent", self.garbage_event.clone());
        put("delayMs", self.delay.map(|d| d.as_millis().to_string()));
        put("earlyOpen", on(self.early_open));
        put("status", self.status.map(|n| n.to_string()));
        put("retryAfter", self.retry_after.map(|n| n.to_string()));
        put("failCount", self.fail_count.map(|n| n.to_string()));
        put("dropLastEventId", on(self.drop_last_event_id));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        split_query(Some(query)).0
    }

    #[test]
    fn knobs_are_split_from_the_query_which_passes_byte_for_byte() {
        let (knobs, rest) = split_query(Some(
            "a=1&proxy.cutAfter=5&b=%20x&proxy.garbage&&lastEventId=7",
        ));
        assert_eq!(
            knobs,
            [
                ("cutAfter".to_owned(), "5".to_owned()),
                ("garbage".to_owned(), String::new())
            ]
        );
        assert_eq!(rest.as_deref(), Some("a=1&b=%20x&lastEventId=7"));
        assert_eq!(split_query(Some("proxy.status=503")).1, None);
        assert_eq!(split_query(None), (Vec::new(), None));
    }

    #[test]
    fn every_knob_parses() {
        let knobs = Knobs::parse(
            &pairs("proxy.cutAfter=3&proxy.stallAfter=9&proxy.dupSeam=5&proxy.garbage=1&proxy.garbageEvent=token&proxy.delayMs=250&proxy.earlyOpen=1&proxy.status=429&proxy.retryAfter=2&proxy.failCount=3&proxy.dropLastEventId=true"),
            true,
        )
        .unwrap();
        assert_eq!(
            knobs.describe().join("&"),
            "cutAfter=3&stallAfter=9&dupSeam=5&garbage=1&garbageEvent=token&delayMs=250&earlyOpen=1&status=429&retryAfter=2&failCount=3&dropLastEventId=1"
        );
        assert!(knobs.shapes_frames());
        assert!(Knobs::default().is_empty());
    }

    #[test]
    fn a_bad_knob_is_named() {
        let err = |q: &str| Knobs::parse(&pairs(q), true).unwrap_err().to_string();
        assert_eq!(
            err("proxy.cutAfter=x"),
            "bad value \"x\" for proxy knob proxy.cutAfter: expected a frame count >= 1"
        );
        assert!(err("proxy.cutafter=1")
            .starts_with("unknown proxy knob \"proxy.cutafter\" (known: proxy.cutAfter,"));
        assert_eq!(
            err("proxy.status=200"),
            "bad value \"200\" for proxy knob proxy.status: expected 204 or 400-599"
        );
        assert_eq!(
            err("proxy.status=500&proxy.retryAfter=1"),
            "proxy knob proxy.retryAfter needs status=429 or status=503"
        );
        assert_eq!(
            err("proxy.failCount=2"),
            "proxy knob proxy.failCount needs status"
        );
        assert_eq!(
            err("proxy.garbage=yes"),
            "bad value \"yes\" for proxy knob proxy.garbage: expected 1 or 0"
        );
        assert_eq!(
            err("proxy.dupSeam=1001"),
            "bad value \"1001\" for proxy knob proxy.dupSeam: expected a frame count 1-1000"
        );
    }

    #[test]
    fn armed_knobs_go_on_top() {
        let url = Knobs::parse(&pairs("proxy.cutAfter=3&proxy.garbage=1"), true).unwrap();
        let armed = Knobs::parse(
            &[
                ("cutAfter".into(), "7".into()),
                ("status".into(), "503".into()),
            ],
            false,
        )
        .unwrap();
        let merged = url.merged(&armed);
        assert_eq!(merged.describe(), ["cutAfter=7", "garbage=1", "status=503"]);
    }
}
