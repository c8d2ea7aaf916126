//! The cross-tab protocol (`docs/PROTOCOL.md` §2): the messages tabs exchange on the stream's
//! `BroadcastChannel`, and the leader's catch-up buffer.
//!
//! Messages are JSON text, versioned (`"v": 1`) and validated on decode: anything malformed,
//! of another version, or oversized is an error the shell counts and ignores. Leadership terms
//! fence stale leaders; every tab still dedups by frame id, so even two leaders cause no duplicate.

use std::collections::VecDeque;
use std::fmt;

use super::cursor::compare_ids;
use super::frame::Frame;
use super::json::{self, write_string, JsonValue};
use super::session::Cursor;

/// The name of the `BroadcastChannel` and the Web Lock that the tabs of one stream share:
/// `sse-relay/v1/<key>`, plus the event types when the stream takes only some. Tabs that take
/// other types never share a connection: a leader that does not hear a type could not serve it.
pub fn tabs_name(key: &str, events: Option<&[String]>) -> String {
    let mut name = String::from("sse-relay/v1/");
    name.push_str(key);
    if let Some(events) = events {
        let mut sorted: Vec<&str> = events.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        sorted.dedup();
        name.push_str("?events=");
        for (i, event) in sorted.iter().enumerate() {
            if i > 0 {
                name.push(',');
            }
            // Percent-encode what would make the list ambiguous.
            for c in event.chars() {
                match c {
                    ',' => name.push_str("%2C"),
                    '%' => name.push_str("%25"),
                    c => name.push(c),
                }
            }
        }
    }
    name
}

/// Version of the message format.
pub const TAB_PROTOCOL_VERSION: u64 = 1;

/// Largest message accepted, in bytes of JSON text.
pub const MAX_MESSAGE_BYTES: usize = 32 << 20;

/// One message on a stream's channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TabMessage {
    /// A tab took the lock and leads from `term` on.
    Leader {
        /// The leader's tab id.
        from: String,
        /// Its term; higher terms win.
        term: u64,
        /// The message's number within its leader's term (from 1): a follower takes each number
        /// once, in order, so a replayed message is not taken again.
        seq: u64,
    },
    /// A follower asks the leader for the frames after its cursor.
    Hello {
        /// The follower's tab id.
        from: String,
        /// What the follower has delivered (`None`: nothing yet).
        cursor: Option<Cursor>,
        /// Without a cursor: start at the leader's position (`from=now`) instead of the beginning.
        now: bool,
        /// The highest leadership term the follower has heard of: a leader below it takes a
        /// higher one (a forged or stale term can then no longer keep followers from it).
        /// Absent (0) in messages of tabs that predate it.
        seen_term: u64,
        /// The tab that announced `seen_term`: two tabs that took the lock at once may announce
        /// the same term, and the one still leading must outbid the other.
        seen_leader: Option<String>,
    },
    /// The leader's answer to one follower's `Hello`.
    Welcome {
        /// The leader's tab id.
        from: String,
        /// The leader's term.
        term: u64,
        /// The message's number within its leader's term (from 1): a follower takes each number
        /// once, in order, so a replayed message is not taken again.
        seq: u64,
        /// The follower it answers.
        to: String,
        /// The cursor of the hello it answers: the catch-up starts after it. A follower whose
        /// cursor is no longer this ignores the welcome (a late or replayed one), so a welcome can
        /// never make it skip what it has not delivered.
        after: Option<Cursor>,
        /// The leader's position: its last delivered id (the follower's `ready.tail`).
        tail: Option<String>,
        /// The epoch in force.
        epoch: String,
        /// The frames after the follower's cursor that the leader still buffers.
        frames: Vec<Frame>,
        /// False when the follower's cursor is older than the buffer: it must replay on its own.
        complete: bool,
    },
    /// The leader's connection joined (or rejoined) the server.
    Ready {
        /// The leader's tab id.
        from: String,
        /// The leader's term.
        term: u64,
        /// The message's number within its leader's term (from 1): a follower takes each number
        /// once, in order, so a replayed message is not taken again.
        seq: u64,
        /// The leader's last delivered id.
        tail: Option<String>,
        /// The epoch in force.
        epoch: String,
    },
    /// Frames the leader delivered, in order.
    Frames {
        /// The leader's tab id.
        from: String,
        /// The leader's term.
        term: u64,
        /// The message's number within its leader's term (from 1): a follower takes each number
        /// once, in order, so a replayed message is not taken again.
        seq: u64,
        /// Their epoch.
        epoch: String,
        /// The frames.
        frames: Vec<Frame>,
    },
    /// The leader is alive (its followers' heartbeat).
    Ping {
        /// The leader's tab id.
        from: String,
        /// The leader's term.
        term: u64,
        /// The message's number within its leader's term (from 1): a follower takes each number
        /// once, in order, so a replayed message is not taken again.
        seq: u64,
    },
}

/// Why a channel message was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TabMessageError {
    /// Not a string of JSON text, or larger than [`MAX_MESSAGE_BYTES`].
    NotText,
    /// Not JSON.
    NotJson(json::JsonError),
    /// `v` is missing or not [`TAB_PROTOCOL_VERSION`].
    Version,
    /// `t` names no message type.
    UnknownType,
    /// A field is missing or has the wrong type.
    BadField(&'static str),
}

impl fmt::Display for TabMessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TabMessageError::NotText => {
                f.write_str("the message is not JSON text of a bounded size")
            }
            TabMessageError::NotJson(e) => {
                f.write_str("the message is not JSON: ")?;
                fmt::Display::fmt(e, f)
            }
            TabMessageError::Version => {
                f.write_str("the message is not version ")?;
                f.write_str(&super::text::decimal(TAB_PROTOCOL_VERSION))
            }
            TabMessageError::UnknownType => f.write_str("the message type is unknown"),
            TabMessageError::BadField(name) => {
                f.write_str("the message field `")?;
                f.write_str(name)?;
                f.write_str("` is missing or malformed")
            }
        }
    }
}

impl std::error::Error for TabMessageError {}

impl TabMessage {
    /// The sending tab.
    pub fn from(&self) -> &str {
        match self {
            TabMessage::Leader { from, .. }
            | TabMessage::Hello { from, .. }
            | TabMessage::Welcome { from, .. }
            | TabMessage::Ready { from, .. }
            | TabMessage::Frames { from, .. }
            | TabMessage::Ping { from, .. } => from,
        }
    }

    /// The leadership term, for messages a leader sends.
    pub fn term(&self) -> Option<u64> {
        match self {
            TabMessage::Hello { .. } => None,
            TabMessage::Leader { term, .. }
            | TabMessage::Welcome { term, .. }
            | TabMessage::Ready { term, .. }
            | TabMessage::Frames { term, .. }
            | TabMessage::Ping { term, .. } => Some(*term),
        }
    }

    /// The message's number in its leader's term, for messages a leader sends.
    pub fn seq(&self) -> Option<u64> {
        match self {
            TabMessage::Hello { .. } => None,
            TabMessage::Leader { seq, .. }
            | TabMessage::Welcome { seq, .. }
            | TabMessage::Ready { seq, .. }
            | TabMessage::Frames { seq, .. }
            | TabMessage::Ping { seq, .. } => Some(*seq),
        }
    }

    /// The message as JSON text.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(64);
        let kind = match self {
            TabMessage::Leader { .. } => "leader",
            TabMessage::Hello { .. } => "hello",
            TabMessage::Welcome { .. } => "welcome",
            TabMessage::Ready { .. } => "ready",
            TabMessage::Frames { .. } => "frames",
            TabMessage::Ping { .. } => "ping",
        };
        out.push_str("{\"v\":1,\"t\":\"");
        out.push_str(kind);
        out.push_str("\",\"from\":");
        write_string(&mut out, self.from());
        if let (Some(term), Some(seq)) = (self.term(), self.seq()) {
            out.push_str(",\"term\":");
            out.push_str(&super::text::decimal(term));
            out.push_str(",\"seq\":");
            out.push_str(&super::text::decimal(seq));
        }
        match self {
            TabMessage::Leader { .. } | TabMessage::Ping { .. } => {}
            TabMessage::Hello {
                cursor,
                now,
                seen_term,
                seen_leader,
                ..
            } => {
                out.push_str(",\"seenTerm\":");
                out.push_str(&super::text::decimal(*seen_term));
                out.push_str(",\"seenLeader\":");
                match seen_leader {
                    Some(leader) => write_string(&mut out, leader),
                    None => out.push_str("null"),
                }
                out.push_str(",\"cursor\":");
                match cursor {
                    Some(c) => write_cursor(&mut out, c),
                    None => out.push_str("null"),
                }
                out.push_str(if *now {
                    ",\"now\":true"
                } else {
                    ",\"now\":false"
                });
            }
            TabMessage::Welcome {
                to,
                after,
                tail,
                epoch,
                frames,
                complete,
                ..
            } => {
                out.push_str(",\"to\":");
                write_string(&mut out, to);
                out.push_str(",\"after\":");
                match after {
                    Some(c) => write_cursor(&mut out, c),
                    None => out.push_str("null"),
                }
                write_tail_epoch(&mut out, tail.as_deref(), epoch);
                write_frames(&mut out, frames);
                out.push_str(if *complete {
                    ",\"complete\":true"
                } else {
                    ",\"complete\":false"
                });
            }
            TabMessage::Ready { tail, epoch, .. } => {
                write_tail_epoch(&mut out, tail.as_deref(), epoch)
            }
            TabMessage::Frames { epoch, frames, .. } => {
                out.push_str(",\"epoch\":");
                write_string(&mut out, epoch);
                write_frames(&mut out, frames);
            }
        }
        out.push('}');
        out
    }

    /// Reads and validates a message.
    pub fn decode(text: &str) -> Result<TabMessage, TabMessageError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(TabMessageError::NotText);
        }
        let mut value = json::parse(text).map_err(TabMessageError::NotJson)?;
        match value.get("v") {
            Some(JsonValue::Number(n)) if n == "1" => {}
            _ => return Err(TabMessageError::Version),
        }
        let kind = string(&value, "t").map_err(|_| TabMessageError::UnknownType)?;
        let from = nonempty(&value, "from")?;
        let counter = |field: &'static str| match value.get(field) {
            Some(JsonValue::Number(n)) => match n.parse::<u64>() {
                Ok(n) if n <= MAX_TERM => Ok(n),
                _ => Err(TabMessageError::BadField(field)),
            },
            _ => Err(TabMessageError::BadField(field)),
        };
        let term = || counter("term");
        let seq = || counter("seq");
        Ok(match kind.as_str() {
            "leader" => TabMessage::Leader {
                from,
                term: term()?,
                seq: seq()?,
            },
            "ping" => TabMessage::Ping {
                from,
                term: term()?,
                seq: seq()?,
            },
            "hello" => {
                let cursor = optional_cursor(&value, "cursor")?;
                let seen_term = match value.get("seenTerm") {
                    None => 0,
                    Some(JsonValue::Number(n)) => match n.parse::<u64>() {
                        Ok(term) if term <= MAX_TERM => term,
                        _ => return Err(TabMessageError::BadField("seenTerm")),
                    },
                    Some(_) => return Err(TabMessageError::BadField("seenTerm")),
                };
                let seen_leader = match value.get("seenLeader") {
                    None | Some(JsonValue::Null) => None,
                    Some(JsonValue::String(s)) if !s.is_empty() => Some(s.clone()),
                    Some(_) => return Err(TabMessageError::BadField("seenLeader")),
                };
                TabMessage::Hello {
                    from,
                    cursor,
                    now: boolean(&value, "now")?,
                    seen_term,
                    seen_leader,
                }
            }
            "welcome" => TabMessage::Welcome {
                from,
                term: term()?,
                seq: seq()?,
                to: nonempty(&value, "to")?,
                after: optional_cursor(&value, "after")?,
                tail: tail(&value)?,
                epoch: nonempty(&value, "epoch")?,
                frames: frames(&mut value)?,
                complete: boolean(&value, "complete")?,
            },
            "ready" => TabMessage::Ready {
                from,
                term: term()?,
                seq: seq()?,
                tail: tail(&value)?,
                epoch: nonempty(&value, "epoch")?,
            },
            "frames" => TabMessage::Frames {
                from,
                term: term()?,
                seq: seq()?,
                epoch: nonempty(&value, "epoch")?,
                frames: frames(&mut value)?,
            },
            _ => return Err(TabMessageError::UnknownType),
        })
    }
}

/// `{"id":...,"epoch":...}`: a cursor in a `hello`, and as `sessionStorage` keeps it.
fn write_cursor(out: &mut String, cursor: &Cursor) {
    out.push_str("{\"id\":");
    write_string(out, &cursor.id);
    out.push_str(",\"epoch\":");
    write_string(out, &cursor.epoch);
    out.push('}');
}

/// `field`: a cursor object or `null`.
fn optional_cursor(
    value: &JsonValue,
    field: &'static str,
) -> Result<Option<Cursor>, TabMessageError> {
    match value.get(field) {
        Some(JsonValue::Null) => Ok(None),
        Some(c @ JsonValue::Object(_)) => Ok(Some(cursor_of(c)?)),
        _ => Err(TabMessageError::BadField(field)),
    }
}

fn cursor_of(value: &JsonValue) -> Result<Cursor, TabMessageError> {
    Ok(Cursor {
        id: nonempty(value, "id")?,
        epoch: nonempty(value, "epoch")?,
    })
}

/// A cursor as JSON text (`{"id":...,"epoch":...}`), for storage.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn cursor_to_json(cursor: &Cursor) -> String {
    let mut out = String::new();
    write_cursor(&mut out, cursor);
    out
}

/// A cursor read back from [`cursor_to_json`]'s text (or any JSON object with non-empty `id` and
/// `epoch` strings); `None` for anything else.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn cursor_from_json(text: &str) -> Option<Cursor> {
    cursor_of(&json::parse(text).ok()?).ok()
}

fn write_tail_epoch(out: &mut String, tail: Option<&str>, epoch: &str) {
    out.push_str(",\"tail\":");
    match tail {
        Some(t) => write_string(out, t),
        None => out.push_str("null"),
    }
    out.push_str(",\"epoch\":");
    write_string(out, epoch);
}

fn write_frames(out: &mut String, frames: &[Frame]) {
    out.push_str(",\"frames\":[");
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        write_string(out, &f.id);
        out.push(',');
        write_string(out, &f.event);
        out.push(',');
        write_string(out, &f.data);
        out.push(']');
    }
    out.push(']');
}

fn string(value: &JsonValue, field: &'static str) -> Result<String, TabMessageError> {
    match value.get(field) {
        Some(JsonValue::String(s)) => Ok(s.clone()),
        _ => Err(TabMessageError::BadField(field)),
    }
}

fn nonempty(value: &JsonValue, field: &'static str) -> Result<String, TabMessageError> {
    string(value, field).and_then(|s| {
        if s.is_empty() {
            Err(TabMessageError::BadField(field))
        } else {
            Ok(s)
        }
    })
}

fn boolean(value: &JsonValue, field: &'static str) -> Result<bool, TabMessageError> {
    match value.get(field) {
        Some(JsonValue::Bool(b)) => Ok(*b),
        _ => Err(TabMessageError::BadField(field)),
    }
}

fn tail(value: &JsonValue) -> Result<Option<String>, TabMessageError> {
    match value.get("tail") {
        Some(JsonValue::Null) => Ok(None),
        Some(JsonValue::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        _ => Err(TabMessageError::BadField("tail")),
    }
}

fn frames(value: &mut JsonValue) -> Result<Vec<Frame>, TabMessageError> {
    let Some(JsonValue::Array(items)) = value.take("frames") else {
        return Err(TabMessageError::BadField("frames"));
    };
    // A loop rather than `collect::<Result<Vec<_>, _>>()`, whose adapter costs wasm bytes. The
    // strings move out of the parsed message: no copy per frame.
    let mut frames = Vec::with_capacity(items.len());
    for item in items {
        let JsonValue::Array(parts) = item else {
            return Err(TabMessageError::BadField("frames"));
        };
        let Ok([JsonValue::String(id), JsonValue::String(event), JsonValue::String(data)]) =
            <[JsonValue; 3]>::try_from(parts)
        else {
            return Err(TabMessageError::BadField("frames"));
        };
        if id.is_empty() || event.is_empty() {
            return Err(TabMessageError::BadField("frames"));
        }
        frames.push(Frame { id, event, data });
    }
    Ok(frames)
}

/// Largest term accepted: terms travel as JSON numbers, exact in JavaScript up to 2^53.
pub const MAX_TERM: u64 = 1 << 53;

/// What preceded a frame a tab delivered, which anchors its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Previous<'a> {
    /// Nothing: it is the first frame of its epoch.
    EpochStart,
    /// This id, delivered just before it.
    Id(&'a str),
    /// Unknown (the tab started from a stored cursor or `from=now`): the buffer cannot serve
    /// anyone older than its first frame.
    Unknown,
}

/// What precedes the first buffered frame.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Base {
    /// The beginning of the epoch: the buffer holds the epoch from its first frame.
    Start,
    /// This id: the buffer holds everything after it.
    After(String),
    /// Unknown: the buffer serves only cursors it holds.
    Unknown,
}

/// The frames a tab delivered recently, so that as leader it can bring a follower up to date.
#[derive(Clone, Debug)]
pub struct TabBuffer {
    capacity: usize,
    epoch: Option<String>,
    base: Base,
    frames: VecDeque<Frame>,
}

/// What a follower with some cursor is missing, as far as the buffer knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatchUp {
    /// The buffered frames after the cursor.
    pub frames: Vec<Frame>,
    /// False when the cursor is older than the buffer (or of another epoch it no longer holds):
    /// the follower has to replay from the server.
    pub complete: bool,
}

impl TabBuffer {
    /// A buffer of at most `capacity` frames (at least one).
    pub fn new(capacity: usize) -> TabBuffer {
        TabBuffer {
            capacity: capacity.max(1),
            epoch: None,
            base: Base::Start,
            frames: VecDeque::new(),
        }
    }

    /// Records a delivered frame of `epoch`; `previous` anchors the buffer when it starts or
    /// restarts.
    pub fn push(&mut self, frame: Frame, epoch: &str, previous: Previous<'_>) {
        if self.epoch.as_deref() != Some(epoch) {
            self.epoch = Some(epoch.to_owned());
            self.frames.clear();
        }
        if self.frames.is_empty() {
            self.base = match previous {
                Previous::EpochStart => Base::Start,
                Previous::Id(id) => Base::After(id.to_owned()),
                Previous::Unknown => Base::Unknown,
            };
        }
        if self.frames.len() == self.capacity {
            if let Some(oldest) = self.frames.pop_front() {
                self.base = Base::After(oldest.id);
            }
        }
        self.frames.push_back(frame);
    }

    /// While nothing is buffered in `epoch`: what precedes the first frame the tab will deliver,
    /// so that a catch-up from the empty buffer promises no more than the tab knows.
    pub fn anchor(&mut self, epoch: &str, previous: Previous<'_>) {
        if self.epoch.as_deref() == Some(epoch) && !self.frames.is_empty() {
            return;
        }
        self.epoch = Some(epoch.to_owned());
        self.frames.clear();
        self.base = match previous {
            Previous::EpochStart => Base::Start,
            Previous::Id(id) => Base::After(id.to_owned()),
            Previous::Unknown => Base::Unknown,
        };
    }

    /// The last frame buffered and the id before it (`None` before: the epoch's first frame), if
    /// the buffer knows both: what a live-only (`from=now`) follower of a finished stream needs,
    /// the `done` entry, and where to start before it.
    pub fn last_with_previous(&self) -> Option<(Option<String>, Frame)> {
        let last = self.frames.back()?.clone();
        let previous = match self.frames.len() {
            1 => match &self.base {
                Base::Start => None,
                Base::After(id) => Some(id.clone()),
                Base::Unknown => return None,
            },
            n => Some(self.frames[n - 2].id.clone()),
        };
        Some((previous, last))
    }

    /// Forgets everything (the tab's stream was reset to a new epoch it has no frames of yet).
    pub fn clear(&mut self) {
        self.epoch = None;
        self.base = Base::Start;
        self.frames.clear();
    }

    /// Frames buffered now.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// What a follower whose last delivered frame is `cursor` is missing. `now`: a follower
    /// without a cursor that starts at the leader's position needs nothing.
    pub fn catch_up(&self, cursor: Option<&Cursor>, now: bool) -> CatchUp {
        let all = || self.frames.iter().cloned().collect::<Vec<_>>();
        let cursor = cursor
            .filter(|c| Some(c.epoch.as_str()) == self.epoch.as_deref() || self.epoch.is_none());
        let Some(cursor) = cursor else {
            return if now {
                CatchUp {
                    frames: Vec::new(),
                    complete: true,
                }
            } else if self.base == Base::Start {
                CatchUp {
                    frames: all(),
                    complete: true,
                }
            } else {
                // An incomplete catch-up carries nothing: the follower replays on its own.
                CatchUp {
                    frames: Vec::new(),
                    complete: false,
                }
            };
        };
        if self.base == Base::After(cursor.id.clone()) {
            return CatchUp {
                frames: all(),
                complete: true,
            };
        }
        if let Some(at) = self.frames.iter().position(|f| f.id == cursor.id) {
            return CatchUp {
                frames: self.frames.iter().skip(at + 1).cloned().collect(),
                complete: true,
            };
        }
        // A follower ahead of this buffer (an ordered id past its last frame) needs nothing;
        // what this tab delivers next it will drop as duplicates.
        let last = self
            .frames
            .back()
            .map(|f| f.id.as_str())
            .or(match &self.base {
                Base::After(id) => Some(id.as_str()),
                Base::Start | Base::Unknown => None,
            });
        if last.and_then(|last| compare_ids(&cursor.id, last)) == Some(std::cmp::Ordering::Greater)
        {
            return CatchUp {
                frames: Vec::new(),
                complete: true,
            };
        }
        CatchUp {
            frames: Vec::new(),
            complete: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // serde_json is a native-only dev-dependency.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn cursors_round_trip_through_storage_json() {
        let cursor = Cursor {
            id: "17-0".into(),
            epoch: "e \"1\"\u{1F600}\n".into(),
        };
        let text = cursor_to_json(&cursor);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!({ "id": "17-0", "epoch": "e \"1\"\u{1F600}\n" })
        );
        assert_eq!(cursor_from_json(&text), Some(cursor));
        // What JSON.stringify wrote before (escapes, spacing and key order may differ).
        assert_eq!(
            cursor_from_json(r#"{ "epoch": "e\u0031", "id": "5" }"#),
            Some(Cursor {
                id: "5".into(),
                epoch: "e1".into()
            })
        );
        for corrupt in [
            "",
            "null",
            "[]",
            "{\"id\":\"5\"}",
            r#"{"id":"","epoch":"e"}"#,
            r#"{"id":5,"epoch":"e"}"#,
            "{",
        ] {
            assert_eq!(cursor_from_json(corrupt), None, "{corrupt}");
        }
    }

    fn frame(id: &str) -> Frame {
        Frame {
            id: id.into(),
            event: "token".into(),
            data: format!("data {id}"),
        }
    }

    fn cursor(id: &str, epoch: &str) -> Cursor {
        Cursor {
            id: id.into(),
            epoch: epoch.into(),
        }
    }

    #[test]
    fn tabs_name_the_key_and_the_types_they_take() {
        assert_eq!(tabs_name("chat", None), "sse-relay/v1/chat");
        let a = tabs_name("chat", Some(&["token".into(), "status".into()]));
        let b = tabs_name(
            "chat",
            Some(&["status".into(), "token".into(), "token".into()]),
        );
        assert_eq!(a, "sse-relay/v1/chat?events=status,token");
        assert_eq!(a, b, "the order and repeats of the list do not matter");
        assert_ne!(
            tabs_name("chat", Some(&["a,b".into()])),
            tabs_name("chat", Some(&["a".into(), "b".into()]))
        );
    }

    #[test]
    fn messages_round_trip() {
        let messages = [
            TabMessage::Leader {
                from: "a".into(),
                term: 3,
                seq: 7,
            },
            TabMessage::Ping {
                from: "a".into(),
                term: MAX_TERM,
                seq: 7,
            },
            TabMessage::Hello {
                from: "b".into(),
                cursor: None,
                now: true,
                seen_term: 0,
                seen_leader: None,
            },
            TabMessage::Hello {
                from: "b".into(),
                cursor: Some(cursor("7", "e\"1")),
                now: false,
                seen_term: MAX_TERM,
                seen_leader: Some("a".into()),
            },
            TabMessage::Welcome {
                from: "a".into(),
                term: 3,
                seq: 7,
                to: "b".into(),
                after: Some(cursor("7", "e1")),
                tail: Some("9".into()),
                epoch: "e1".into(),
                frames: vec![
                    frame("8"),
                    Frame {
                        id: "9".into(),
                        event: "done".into(),
                        data: "multi\nline \u{1} é".into(),
                    },
                ],
                complete: true,
            },
            TabMessage::Ready {
                from: "a".into(),
                term: 3,
                seq: 7,
                tail: None,
                epoch: "e2".into(),
            },
            TabMessage::Frames {
                from: "a".into(),
                term: 4,
                seq: 7,
                epoch: "e2".into(),
                frames: vec![],
            },
        ];
        for m in messages {
            assert_eq!(
                TabMessage::decode(&m.encode()),
                Ok(m.clone()),
                "{}",
                m.encode()
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_v1_message() {
        let cases = [
            ("not json", "NotJson"),
            (r#"{"t":"ping","from":"a","term":1}"#, "Version"),
            (r#"{"v":2,"t":"ping","from":"a","term":1}"#, "Version"),
            (r#"{"v":"1","t":"ping","from":"a","term":1}"#, "Version"),
            (r#"{"v":1,"t":"shout","from":"a"}"#, "UnknownType"),
            (r#"{"v":1,"t":"ping","from":"","term":1}"#, "BadField"),
            (r#"{"v":1,"t":"ping","from":"a","term":-1}"#, "BadField"),
            (r#"{"v":1,"t":"ping","from":"a","term":1.5}"#, "BadField"),
            (
                r#"{"v":1,"t":"ping","from":"a","term":9007199254740993}"#,
                "BadField",
            ),
            (
                r#"{"v":1,"t":"frames","from":"a","term":1,"epoch":"e","frames":[["1","token"]]}"#,
                "BadField",
            ),
            (
                r#"{"v":1,"t":"frames","from":"a","term":1,"epoch":"e","frames":[["","token","x"]]}"#,
                "BadField",
            ),
            (
                r#"{"v":1,"t":"frames","from":"a","term":1,"epoch":"e","frames":{}}"#,
                "BadField",
            ),
            (
                r#"{"v":1,"t":"hello","from":"b","cursor":{"id":"1"},"now":false}"#,
                "BadField",
            ),
            (
                r#"{"v":1,"t":"welcome","from":"a","term":1,"to":"b","tail":7,"epoch":"e","frames":[],"complete":true}"#,
                "BadField",
            ),
        ];
        for (text, kind) in cases {
            let err = TabMessage::decode(text).unwrap_err();
            assert!(format!("{err:?}").starts_with(kind), "{text}: {err:?}");
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn catch_up_from_the_buffer_or_not() {
        let mut b = TabBuffer::new(3);
        b.push(frame("1"), "e", Previous::EpochStart);
        b.push(frame("2"), "e", Previous::Id("1"));
        b.push(frame("3"), "e", Previous::Id("2"));
        let ids = |c: CatchUp| {
            (
                c.frames.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
                c.complete,
            )
        };
        assert_eq!(
            ids(b.catch_up(None, false)),
            (vec!["1".into(), "2".into(), "3".into()], true)
        );
        assert_eq!(
            ids(b.catch_up(Some(&cursor("1", "e")), false)),
            (vec!["2".into(), "3".into()], true)
        );
        assert_eq!(
            ids(b.catch_up(Some(&cursor("3", "e")), false)),
            (vec![], true)
        );
        assert_eq!(
            ids(b.catch_up(None, true)),
            (vec![], true),
            "from=now needs nothing"
        );
        b.push(frame("4"), "e", Previous::Id("3")); // evicts 1: the buffer now starts after 1
        assert!(!b.catch_up(None, false).complete, "the start is gone");
        assert_eq!(
            ids(b.catch_up(Some(&cursor("1", "e")), false)),
            (vec!["2".into(), "3".into(), "4".into()], true)
        );
        assert_eq!(
            ids(b.catch_up(Some(&cursor("0", "e")), false)),
            (vec![], false),
            "older than the buffer"
        );
        assert_eq!(
            ids(b.catch_up(Some(&cursor("9", "e")), false)),
            (vec![], true),
            "ahead of it"
        );
        assert!(
            !b.catch_up(Some(&cursor("2", "old")), false).complete,
            "another epoch, start gone"
        );
        b.push(frame("1"), "new", Previous::EpochStart);
        assert_eq!(
            ids(b.catch_up(Some(&cursor("3", "e")), false)),
            (vec!["1".into()], true),
            "a new epoch from its start"
        );
    }

    #[test]
    fn an_empty_buffer_promises_only_what_its_anchor_says() {
        let mut b = TabBuffer::new(8);
        b.anchor("e", Previous::Id("3"));
        assert!(
            !b.catch_up(None, false).complete,
            "a tab that started after 3 cannot serve the epoch from its start"
        );
        assert!(b.catch_up(Some(&cursor("3", "e")), false).complete);
        assert!(b.catch_up(None, true).complete, "from=now needs nothing");
        b.anchor("e", Previous::EpochStart);
        assert!(b.catch_up(None, false).complete);
        b.push(frame("1"), "e", Previous::EpochStart);
        b.anchor("e", Previous::Unknown);
        assert_eq!(b.len(), 1, "frames held: the anchor stays");
    }

    #[test]
    fn a_buffer_started_mid_stream_is_anchored_at_its_cursor() {
        let mut b = TabBuffer::new(8);
        b.push(frame("41"), "e", Previous::Id("40"));
        assert!(
            !b.catch_up(None, false).complete,
            "the epoch's start is not here"
        );
        assert_eq!(b.catch_up(Some(&cursor("40", "e")), false).frames.len(), 1);
        assert!(!b.catch_up(Some(&cursor("39", "e")), false).complete);
        let mut unknown = TabBuffer::new(8);
        unknown.push(frame("41"), "e", Previous::Unknown);
        assert!(
            !unknown.catch_up(Some(&cursor("40", "e")), false).complete,
            "no anchor, no promise"
        );
        assert!(unknown.catch_up(Some(&cursor("41", "e")), false).complete);
    }
}
