//! Frames of wire protocol v1 (`docs/PROTOCOL.md` §1): what a transport hands over, how the session tells
//! ready, journaled, done and ping frames apart, and what it delivers.

use std::fmt;

use super::json::{self, JsonError, JsonValue};

/// One server-sent event as a transport received it, before the session classifies it.
///
/// `id` is the event's own id, `None` when it carried none (or an empty one). Transports that only
/// see the browser's last-event-id buffer pass what it holds: the session never trusts an id for
/// anything but dedup and the cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEvent<'a> {
    /// The event type (`message` when the server named none).
    pub event: &'a str,
    /// The id, if any.
    pub id: Option<&'a str>,
    /// The data, lines joined with `\n`.
    pub data: &'a str,
}

/// A journaled frame, delivered to the application exactly once and in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The journal id: the cursor after this frame.
    pub id: String,
    /// The event type.
    pub event: String,
    /// The payload, as sent (sse-relay does not parse it).
    pub data: String,
}

/// The event names that carry protocol meaning (configurable; the defaults are protocol v1's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNames {
    /// The join confirmation, `ready`.
    pub ready: String,
    /// The terminal entry, `done`.
    pub done: String,
    /// The heartbeat, `ping`.
    pub ping: String,
}

impl Default for EventNames {
    fn default() -> Self {
        EventNames {
            ready: "ready".into(),
            done: "done".into(),
            ping: "ping".into(),
        }
    }
}

/// What a frame is, by its event name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameKind {
    Ready,
    Ping,
    Done,
    Journaled,
}

impl EventNames {
    pub(crate) fn classify(&self, event: &str) -> FrameKind {
        if event == self.ready {
            FrameKind::Ready
        } else if event == self.ping {
            FrameKind::Ping
        } else if event == self.done {
            FrameKind::Done
        } else {
            FrameKind::Journaled
        }
    }
}

/// The payload of a `ready` frame: `{"tail": <id or null>, "epoch": <string>}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyInfo {
    /// The journal head when the server joined; `None` for an empty journal.
    pub tail: Option<String>,
    /// The journal incarnation; a change means ids may have restarted.
    pub epoch: String,
}

/// Why a `ready` payload is unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadyError {
    /// The data is not JSON.
    NotJson(JsonError),
    /// The JSON is not an object.
    NotAnObject,
    /// `epoch` is missing or not a non-empty string.
    BadEpoch,
    /// `tail` is present but neither null, a string nor a number.
    BadTail,
}

impl fmt::Display for ReadyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadyError::NotJson(e) => {
                f.write_str("the ready frame's data is not JSON (")?;
                fmt::Display::fmt(e, f)?;
                f.write_str(")")
            }
            ReadyError::NotAnObject => f.write_str("the ready frame's data is not a JSON object"),
            ReadyError::BadEpoch => f.write_str("the ready frame has no \"epoch\" string"),
            ReadyError::BadTail => f.write_str("the ready frame's \"tail\" is not an id or null"),
        }
    }
}

impl std::error::Error for ReadyError {}

impl ReadyInfo {
    /// The payload as a server would send it (a tab relaying its leader's join uses this).
    pub fn to_data(&self) -> String {
        let mut out = String::from("{\"tail\":");
        match &self.tail {
            Some(tail) => json::write_string(&mut out, tail),
            None => out.push_str("null"),
        }
        out.push_str(",\"epoch\":");
        json::write_string(&mut out, &self.epoch);
        out.push('}');
        out
    }

    /// Reads a ready frame's data. `tail` may be a string, a number (kept as written) or null or
    /// absent; `epoch` must be a non-empty string. Unknown fields are ignored (forward compatible).
    pub fn parse(data: &str) -> Result<ReadyInfo, ReadyError> {
        let value = json::parse(data).map_err(ReadyError::NotJson)?;
        if !matches!(value, JsonValue::Object(_)) {
            return Err(ReadyError::NotAnObject);
        }
        let epoch = match value.get("epoch") {
            Some(JsonValue::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(ReadyError::BadEpoch),
        };
        let tail = match value.get("tail") {
            None | Some(JsonValue::Null) => None,
            Some(JsonValue::String(s)) if s.is_empty() => None,
            Some(JsonValue::String(s)) => Some(s.clone()),
            Some(JsonValue::Number(n)) => Some(n.clone()),
            Some(_) => return Err(ReadyError::BadTail),
        };
        Ok(ReadyInfo { tail, epoch })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_name() {
        let names = EventNames::default();
        assert_eq!(names.classify("ready"), FrameKind::Ready);
        assert_eq!(names.classify("ping"), FrameKind::Ping);
        assert_eq!(names.classify("done"), FrameKind::Done);
        assert_eq!(names.classify("token"), FrameKind::Journaled);
        assert_eq!(names.classify("message"), FrameKind::Journaled);
    }

    #[test]
    fn parses_ready() {
        assert_eq!(
            ReadyInfo::parse(r#"{"tail":"17","epoch":"e1"}"#),
            Ok(ReadyInfo {
                tail: Some("17".into()),
                epoch: "e1".into()
            })
        );
        assert_eq!(
            ReadyInfo::parse(r#"{"tail":17,"epoch":"e1","extra":[1,{}]}"#),
            Ok(ReadyInfo {
                tail: Some("17".into()),
                epoch: "e1".into()
            })
        );
        assert_eq!(
            ReadyInfo::parse(r#"{"tail":null,"epoch":"e2"}"#),
            Ok(ReadyInfo {
                tail: None,
                epoch: "e2".into()
            })
        );
        assert_eq!(ReadyInfo::parse(r#"{"epoch":"e3"}"#).unwrap().tail, None);
    }

    #[test]
    fn ready_data_round_trips() {
        for info in [
            ReadyInfo {
                tail: Some("1-2".into()),
                epoch: "e\"1".into(),
            },
            ReadyInfo {
                tail: None,
                epoch: "e".into(),
            },
        ] {
            assert_eq!(ReadyInfo::parse(&info.to_data()), Ok(info.clone()));
        }
    }

    #[test]
    fn rejects_bad_ready() {
        assert!(matches!(
            ReadyInfo::parse("{not json"),
            Err(ReadyError::NotJson(_))
        ));
        assert_eq!(ReadyInfo::parse("[]"), Err(ReadyError::NotAnObject));
        assert_eq!(
            ReadyInfo::parse(r#"{"tail":"1"}"#),
            Err(ReadyError::BadEpoch)
        );
        assert_eq!(
            ReadyInfo::parse(r#"{"tail":"1","epoch":""}"#),
            Err(ReadyError::BadEpoch)
        );
        assert_eq!(
            ReadyInfo::parse(r#"{"tail":"1","epoch":7}"#),
            Err(ReadyError::BadEpoch)
        );
        assert_eq!(
            ReadyInfo::parse(r#"{"tail":true,"epoch":"e"}"#),
            Err(ReadyError::BadTail)
        );
    }
}
