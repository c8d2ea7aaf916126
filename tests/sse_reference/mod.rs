//! A deliberately naive model of the WHATWG event-stream parsing rules (HTML §9.2.6), written
//! straight from the spec text: decode the whole stream, split it into lines, interpret each.
//! It shares no code with `SseParser`, so the property tests (`tests/core_parser.rs`) and the fuzz
//! target (`fuzz/`) can check the real parser against it. It has no limits: use it on inputs
//! below the parser's limits.
#![allow(dead_code)] // each user takes what it needs

/// What a parser reports, owned, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Event {
        event: String,
        id: Option<String>,
        data: String,
    },
    Comment,
    /// Milliseconds, saturating at `u64::MAX`.
    Retry(u64),
    /// A limit error (the model never produces one; the real parser does, by name).
    Error(String),
}

/// Parses a whole stream, ended by the end of input.
pub fn parse(bytes: &[u8]) -> Vec<Item> {
    // "UTF-8 decode": one leading BOM is skipped, invalid sequences become U+FFFD.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = String::from_utf8_lossy(bytes);

    // Lines end at CRLF, CR or LF; what follows the last line end is not a line.
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(std::mem::take(&mut line));
            }
            '\n' => lines.push(std::mem::take(&mut line)),
            c => line.push(c),
        }
    }

    let mut out = Vec::new();
    let mut data = String::new();
    let mut event_type = String::new();
    let mut last_event_id = String::new();
    for line in lines {
        if line.is_empty() {
            // Dispatch.
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            out.push(Item::Event {
                event: if event_type.is_empty() {
                    "message".to_owned()
                } else {
                    event_type.clone()
                },
                id: (!last_event_id.is_empty()).then(|| last_event_id.clone()),
                data: std::mem::take(&mut data),
            });
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            out.push(Item::Comment);
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line.as_str(), ""),
        };
        match field {
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => last_event_id = value.to_owned(),
            "retry" if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) => {
                let ms = value.bytes().fold(0u64, |n, d| {
                    n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                out.push(Item::Retry(ms));
            }
            _ => {}
        }
    }
    out
}

/// A frame for the round-trip property: what a serializer writes and a parser must give back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

/// Renders frames the way a server does: `id`, `event`, one `data:` line per line of data
/// (split at `\n`), a blank line; each line ended by `line_end`.
pub fn render(frames: &[Frame], line_end: &str, bom: bool) -> Vec<u8> {
    let mut out = String::new();
    if bom {
        out.push('\u{FEFF}');
    }
    for frame in frames {
        if let Some(id) = &frame.id {
            out.push_str(&format!("id: {id}{line_end}"));
        }
        if let Some(event) = &frame.event {
            out.push_str(&format!("event: {event}{line_end}"));
        }
        for line in frame.data.split('\n') {
            out.push_str(&format!("data: {line}{line_end}"));
        }
        out.push_str(line_end);
    }
    out.into_bytes()
}
