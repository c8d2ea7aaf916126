//! Durable Streams (ElectricSQL's protocol) read over SSE: `GET <stream>?offset=<o>&live=sse`
//! answers with `data` events (a JSON array of messages on a JSON stream, text otherwise) and, after
//! each batch, a `control` event with the next offset (`docs/PROTOCOL.md` §3).
//!
//! Offsets exist only at batch ends, and batches differ from one read to the next, so a message
//! is named by a position no batching can change: `<offset>,<k>`, the k-th message after a real
//! offset (`-1` is the stream's beginning). One message may have several such names (counted from
//! different offsets); the cross-tab protocol matches ids exactly, and every connection resumes by
//! skipping exactly what its cursor names, so a message never comes twice under two names.

use super::json::{self, JsonValue};

/// The epoch of every frame of a Durable Stream: the protocol has none (a stream is never
/// recreated at the same URL; lost data is a 410).
pub const DURABLE_EPOCH: &str = "durable";
/// The offset of the stream's beginning.
pub(crate) const BEGINNING: &str = "-1";
/// The event that carries messages.
pub(crate) const DATA_EVENT: &str = "data";
/// The event that carries the next offset after each batch.
pub(crate) const CONTROL_EVENT: &str = "control";
/// The suffix of the id of the `done` frame a closed stream ends with.
const CLOSED: &str = "closed";

/// A position in a Durable Stream: `after` messages past the real offset `offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) offset: String,
    pub(crate) after: u64,
}

impl Position {
    /// Reads an id or a cursor: `<offset>,<k>` or a bare offset (`k` = 0). Offsets never contain
    /// a comma (the protocol forbids it); an unknown suffix (the `done` frame's) counts as 0.
    pub(crate) fn parse(id: &str) -> Position {
        match id.rsplit_once(',') {
            Some((offset, k)) => Position {
                offset: offset.to_owned(),
                after: k.parse().unwrap_or(0),
            },
            None => Position {
                offset: id.to_owned(),
                after: 0,
            },
        }
    }
}

/// The name of the k-th message after `offset`.
pub(crate) fn message_id(offset: &str, k: u64) -> String {
    let mut id = String::with_capacity(offset.len() + 4);
    id.push_str(offset);
    id.push(',');
    id.push_str(&super::text::decimal(k));
    id
}

/// The id of the `done` frame of a stream closed at `offset`.
pub(crate) fn closed_id(offset: &str) -> String {
    let mut id = String::with_capacity(offset.len() + 8);
    id.push_str(offset);
    id.push(',');
    id.push_str(CLOSED);
    id
}

/// A `control` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Control {
    /// Where the next read starts: the position after this batch.
    pub(crate) next_offset: String,
    /// The server's cursor for CDN collapsing, echoed on the next request.
    pub(crate) cursor: Option<String>,
    /// Everything the stream held when the batch was read has been sent.
    pub(crate) up_to_date: bool,
    /// The stream is closed at `next_offset`: nothing will follow.
    pub(crate) closed: bool,
}

/// Why a `control` event is unusable.
pub(crate) fn parse_control(data: &str) -> Result<Control, &'static str> {
    let value = json::parse(data).map_err(|_| "a control event is not JSON")?;
    if !matches!(value, JsonValue::Object(_)) {
        return Err("a control event is not a JSON object");
    }
    let next_offset = match value.get("streamNextOffset") {
        Some(JsonValue::String(s)) if !s.is_empty() && !s.contains(',') && s.len() <= 1024 => {
            s.clone()
        }
        _ => return Err("a control event has no usable streamNextOffset"),
    };
    let flag = |name: &str| matches!(value.get(name), Some(JsonValue::Bool(true)));
    let cursor = match value.get("streamCursor") {
        Some(JsonValue::String(s)) => Some(s.clone()),
        Some(JsonValue::Number(n)) => Some(n.clone()),
        _ => None,
    };
    Ok(Control {
        next_offset,
        cursor,
        up_to_date: flag("upToDate"),
        closed: flag("streamClosed"),
    })
}

/// The messages of a `data` event: the items of a JSON array (a JSON stream's batch), else the
/// whole text as one message (a text stream).
pub(crate) fn messages(data: &str) -> Vec<&str> {
    match json::array_items(data) {
        Ok(items) => items,
        Err(_) => vec![data],
    }
}

/// How one connection reads: where it counts from and what it already delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reading {
    /// The real offset messages are counted from; `None` for a live-only read (`offset=now`)
    /// until its first `control` places the start.
    base: Option<String>,
    /// Messages since `base`.
    count: u64,
    /// The first `skip` messages after `base` were delivered already (a cursor inside a batch).
    skip: u64,
}

/// What a message or a control means for the session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// A new message, named.
    Message(String),
    /// A message the cursor already covers.
    Delivered,
    /// A message before a live-only read's start (it arrived before the first `control`).
    BeforeStart,
}

impl Reading {
    /// A read that resumes after `cursor` (`None`: from the beginning).
    pub(crate) fn after(cursor: Option<&str>) -> Reading {
        let position = cursor.map_or(
            Position {
                offset: BEGINNING.to_owned(),
                after: 0,
            },
            Position::parse,
        );
        Reading::at(position.offset, position.after)
    }

    /// A read from the real offset `offset` whose first `skip` messages were delivered already.
    pub(crate) fn at(offset: String, skip: u64) -> Reading {
        Reading {
            base: Some(offset),
            count: 0,
            skip,
        }
    }

    /// A live-only read (`offset=now`).
    pub(crate) fn live_only() -> Reading {
        Reading {
            base: None,
            count: 0,
            skip: 0,
        }
    }

    /// The `offset` query parameter of this read.
    pub(crate) fn offset(&self) -> &str {
        self.base.as_deref().unwrap_or("now")
    }

    /// One message.
    pub(crate) fn message(&mut self) -> Read {
        let Some(base) = &self.base else {
            return Read::BeforeStart;
        };
        self.count += 1;
        if self.count <= self.skip {
            Read::Delivered
        } else {
            Read::Message(message_id(base, self.count))
        }
    }

    /// A `control`: counting starts over at its offset. Returns how many messages after it were
    /// delivered already (0 once the read has passed the cursor: the offset is then the position
    /// right after the last message delivered), and, for a live-only read, whether this control
    /// placed its start.
    pub(crate) fn control(&mut self, control: &Control) -> (u64, bool) {
        let started = self.base.is_none();
        self.skip = self.skip.saturating_sub(self.count);
        self.base = Some(control.next_offset.clone());
        self.count = 0;
        (self.skip, started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(offset: &str) -> Control {
        Control {
            next_offset: offset.into(),
            cursor: None,
            up_to_date: false,
            closed: false,
        }
    }

    fn names(reading: &mut Reading, n: usize) -> Vec<Read> {
        (0..n).map(|_| reading.message()).collect()
    }

    #[test]
    fn names_messages_after_the_last_offset() {
        let mut r = Reading::after(None);
        assert_eq!(r.offset(), "-1");
        assert_eq!(
            names(&mut r, 2),
            [Read::Message("-1,1".into()), Read::Message("-1,2".into())]
        );
        assert_eq!(r.control(&control("0_10")), (0, false));
        assert_eq!(r.message(), Read::Message("0_10,1".into()));
    }

    #[test]
    fn a_cursor_inside_a_batch_skips_what_it_names_across_batches() {
        // Delivered: the 5 messages after 0_10. The server now batches them 3 + 4.
        let mut r = Reading::after(Some("0_10,5"));
        assert_eq!(r.offset(), "0_10");
        assert_eq!(
            names(&mut r, 3),
            [Read::Delivered, Read::Delivered, Read::Delivered]
        );
        assert_eq!(r.control(&control("0_13")), (2, false));
        assert_eq!(
            names(&mut r, 4),
            [
                Read::Delivered,
                Read::Delivered,
                Read::Message("0_13,3".into()),
                Read::Message("0_13,4".into())
            ]
        );
        assert_eq!(r.control(&control("0_17")), (0, false));
    }

    #[test]
    fn a_live_only_read_starts_at_its_first_control() {
        let mut r = Reading::live_only();
        assert_eq!(r.offset(), "now");
        assert_eq!(r.message(), Read::BeforeStart);
        assert_eq!(r.control(&control("0_20")), (0, true));
        assert_eq!(r.message(), Read::Message("0_20,1".into()));
    }

    #[test]
    fn reads_ids_and_controls() {
        assert_eq!(
            Position::parse("0_1,7"),
            Position {
                offset: "0_1".into(),
                after: 7
            }
        );
        assert_eq!(Position::parse("0_1").after, 0);
        assert_eq!(Position::parse(&closed_id("0_9")).offset, "0_9");
        let c = parse_control(r#"{"streamNextOffset":"0_5","streamCursor":"123","upToDate":true}"#)
            .unwrap();
        assert_eq!(
            (
                c.next_offset.as_str(),
                c.cursor.as_deref(),
                c.up_to_date,
                c.closed
            ),
            ("0_5", Some("123"), true, false)
        );
        assert!(
            parse_control(r#"{"streamNextOffset":"0_5","streamClosed":true}"#)
                .unwrap()
                .closed
        );
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"streamNextOffset":""}"#,
            r#"{"streamNextOffset":"a,b"}"#,
        ] {
            assert!(parse_control(bad).is_err(), "{bad}");
        }
        assert_eq!(messages(r#"[{"a":1},[2]]"#), [r#"{"a":1}"#, "[2]"]);
        assert_eq!(messages("plain text"), ["plain text"]);
    }
}
