//! An incremental `text/event-stream` parser, for transports that read the response bytes
//! themselves (the `fetch` transport). It follows the WHATWG HTML rules ("Parsing an event
//! stream", §9.2.6) exactly, so a stream parsed here yields the same events a native
//! `EventSource` dispatches.
//!
//! Sans-IO: the shell [`feed`](SseParser::feed)s body chunks as they arrive, split anywhere
//! (inside a UTF-8 sequence, between CR and LF), then drains [`poll`](SseParser::poll) for what
//! they completed, in stream order; at the end of the body it calls
//! [`finish`](SseParser::finish). Nothing here allocates per event once the buffers have grown:
//! dispatched events are written into one text arena that is reused after every drain, and
//! [`Parsed::Event`] borrows from it as the [`RawEvent`] the session takes.
//!
//! Memory is bounded by [`ParserLimits`]: a line or an event's data past its limit is reported as
//! a [`ParseError`] and skipped, never buffered (plus what the caller feeds before draining).
//!
//! ```
//! use sse_relay::core::{Parsed, SseParser};
//!
//! let mut parser = SseParser::new();
//! parser.feed(b"id: 7\nevent: token\ndata: hel");
//! assert!(parser.poll().is_none()); // the event is not complete yet
//! parser.feed(b"lo\r");
//! parser.feed(b"\n\r\n");
//! match parser.poll() {
//!     Some(Parsed::Event(event)) => {
//!         assert_eq!((event.event, event.id, event.data), ("token", Some("7"), "hello"));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! assert!(parser.poll().is_none());
//! ```

use std::fmt;
use std::mem;
use std::ops::Range;
use std::time::Duration;

use super::frame::RawEvent;

/// Default [`ParserLimits::max_line_len`]: 1 MiB.
pub const DEFAULT_MAX_LINE_LEN: usize = 1 << 20;

/// Default [`ParserLimits::max_data_len`]: 4 MiB.
pub const DEFAULT_MAX_DATA_LEN: usize = 4 << 20;

/// The UTF-8 byte order mark, stripped once at the start of a stream.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// What the parser agrees to buffer. A server (or a proxy) that never ends a line or an event
/// would otherwise grow the page's memory without bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParserLimits {
    /// Longest line, in bytes as received, without its line end.
    pub max_line_len: usize,
    /// Largest data of one event, in bytes of UTF-8 as dispatched (lines joined with `\n`).
    pub max_data_len: usize,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            max_line_len: DEFAULT_MAX_LINE_LEN,
            max_data_len: DEFAULT_MAX_DATA_LEN,
        }
    }
}

/// A limit the stream went past. The parser recovers on its own (see [`SseParser`]); the error
/// is reported so the shell can count it as malformed input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// A line was longer than [`ParserLimits::max_line_len`] bytes.
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// An event's data grew past [`ParserLimits::max_data_len`] bytes.
    DataTooLong {
        /// The limit in force.
        limit: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::LineTooLong { limit } => {
                f.write_str("an event-stream line is longer than ")?;
                f.write_str(&super::text::decimal(*limit as u64))?;
                f.write_str(" bytes; the event it belongs to was discarded")
            }
            ParseError::DataTooLong { limit } => {
                f.write_str("an event's data is larger than ")?;
                f.write_str(&super::text::decimal(*limit as u64))?;
                f.write_str(" bytes; the event was discarded")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// One thing the stream said, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Parsed<'a> {
    /// A dispatched event. `event` is `message` when the stream named no type; `id` is the
    /// last-event-id buffer at dispatch (it persists across events, as in `EventSource`), `None`
    /// when empty; `data` has its lines joined with `\n`.
    Event(RawEvent<'a>),
    /// A comment line (`:` first). Not an event, but proof the connection is alive: a heartbeat.
    Comment,
    /// A `retry:` field with a valid value: the server's reconnection delay. Values too large for
    /// a `u64` of milliseconds saturate.
    Retry(Duration),
    /// A limit was exceeded; the offending event is discarded and parsing goes on.
    Error(ParseError),
}

/// A parsed item, its text held in the arena.
#[derive(Clone, Debug)]
enum Item {
    Event {
        event: Range<usize>,
        id: Range<usize>,
        data: Range<usize>,
    },
    Comment,
    Retry(Duration),
    Error(ParseError),
}

/// Where the parser is in the optional byte order mark at the start of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bom {
    /// This many bytes of the stream so far matched the BOM (0 to 2).
    Matching(usize),
    /// Past it (stripped, or the stream did not start with one).
    Done,
}

/// An incremental parser of one `text/event-stream` at a time.
///
/// Rules (WHATWG HTML §9.2.6), each independent of how the bytes are split into chunks:
///
/// - The stream is decoded as UTF-8; invalid sequences become U+FFFD, and a sequence split
///   across chunks decodes as if it were not. One leading byte order mark is stripped.
/// - Lines end at CRLF, a lone CR or a lone LF (a CR ending one chunk and an LF starting the next
///   are one line end).
/// - A line starting with `:` is a comment ([`Parsed::Comment`]). Otherwise the field name runs to
///   the first `:` and the value follows it, minus one leading space; a line without `:` is a
///   field with an empty value.
/// - `data` appends its value and a `\n` to the data buffer; `event` sets the event type buffer;
///   `id` sets the last-event-id buffer, unless the value contains U+0000 (then it is ignored);
///   the buffer is not reset between events, and `id:` with no value empties it; `retry` with a
///   value of ASCII digits only is reported as [`Parsed::Retry`]; other fields are ignored.
/// - A blank line dispatches: the buffer-so-far becomes the last event ID; if the data buffer is
///   empty (no `data` line at all) nothing is dispatched, otherwise an event with the data minus
///   its final `\n`, the type (`message` if empty) and the id. The data and type buffers are
///   then emptied.
/// - At the end of the stream ([`finish`](SseParser::finish)) an incomplete line and an event
///   without its blank line are discarded.
///
/// Limits: a line longer than [`ParserLimits::max_line_len`] is reported once as
/// [`ParseError::LineTooLong`] and skipped without being buffered, up to its line end; data past
/// [`ParserLimits::max_data_len`] is reported as [`ParseError::DataTooLong`]. Either way the event
/// the line belongs to is discarded (never dispatched with a line missing): its later `data` lines
/// are ignored and its blank line dispatches nothing, exactly like an event without data (so its
/// `id` lines still set the last-event-id buffer). Parsing then goes on normally;
/// [`errors`](SseParser::errors) counts these.
#[derive(Clone, Debug)]
pub struct SseParser {
    limits: ParserLimits,
    bom: Bom,
    /// The previous chunk ended with CR: an LF at the start of this one ends nothing.
    pending_cr: bool,
    /// The bytes of a line that started in an earlier chunk (at most `max_line_len`).
    partial: Vec<u8>,
    /// Inside a line that went past the limit (already reported): skip to its end.
    skipping: bool,
    /// Text of the queued items, followed by the data buffer of the event being built: the data
    /// goes straight where it is dispatched from, so it is copied once.
    arena: String,
    /// Where the data buffer starts in `arena` (it runs to the end).
    data_start: usize,
    items: Vec<Item>,
    /// Items before this index were handed out by `poll`.
    read: usize,
    event_type: String,
    id_buffer: String,
    /// The last-event-id buffer as of the last blank line: what a browser would send as
    /// `Last-Event-ID` if the connection dropped now.
    last_event_id: String,
    /// The event being built went past a limit: it will not be dispatched.
    discard: bool,
    errors: u64,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new()
    }
}

impl SseParser {
    /// A parser with the default [`ParserLimits`].
    pub fn new() -> SseParser {
        SseParser::with_limits(ParserLimits::default())
    }

    /// A parser with `limits`.
    pub fn with_limits(limits: ParserLimits) -> SseParser {
        SseParser {
            limits,
            bom: Bom::Matching(0),
            pending_cr: false,
            partial: Vec::new(),
            skipping: false,
            arena: String::new(),
            data_start: 0,
            items: Vec::new(),
            read: 0,
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            discard: false,
            errors: 0,
        }
    }

    /// Whether events parsed from the input fed so far wait to be polled.
    pub fn pending(&self) -> bool {
        self.read < self.items.len()
    }

    /// The limits in force.
    pub fn limits(&self) -> ParserLimits {
        self.limits
    }

    /// Parses the next bytes of the stream. What they complete is queued for
    /// [`poll`](SseParser::poll). Drain the queue before feeding again: the arena behind it is
    /// only reused once everything was handed out (undrained items just keep the memory).
    pub fn feed(&mut self, chunk: &[u8]) {
        self.compact();
        let mut rest = chunk;
        if let Bom::Matching(seen) = self.bom {
            rest = self.strip_bom(seen, rest);
        }
        if self.pending_cr {
            match rest.split_first() {
                None => return,
                Some((&b'\n', after)) => rest = after,
                Some(_) => {}
            }
            self.pending_cr = false;
        }
        while let Some(at) = find_line_end(rest) {
            let (line, end) = rest.split_at(at);
            let skip = match end {
                [b'\r', b'\n', ..] => 2,
                [b'\r'] => {
                    // Maybe the first half of a CRLF: the next chunk will tell.
                    self.pending_cr = true;
                    1
                }
                _ => 1,
            };
            self.line_end(line);
            rest = &end[skip..];
        }
        self.line_part(rest);
    }

    /// The next parsed item, in stream order; `None` when everything fed so far was handed out.
    pub fn poll(&mut self) -> Option<Parsed<'_>> {
        let index = self.read;
        let item = self.items.get(index)?;
        self.read = index + 1;
        let arena = self.arena.as_str();
        Some(match item {
            Item::Event { event, id, data } => Parsed::Event(RawEvent {
                event: if event.is_empty() {
                    "message"
                } else {
                    &arena[event.clone()]
                },
                id: if id.is_empty() {
                    None
                } else {
                    Some(&arena[id.clone()])
                },
                data: &arena[data.clone()],
            }),
            Item::Comment => Parsed::Comment,
            Item::Retry(delay) => Parsed::Retry(*delay),
            Item::Error(error) => Parsed::Error(error.clone()),
        })
    }

    /// The end of the stream: an incomplete line and an incomplete event are discarded (a final
    /// event without its blank line is not dispatched). Items queued before stay available to
    /// [`poll`](SseParser::poll).
    ///
    /// The parser is then ready for the next stream (a reconnection): a byte order mark is
    /// stripped again, and the last-event-id buffer starts from
    /// [`last_event_id`](SseParser::last_event_id), as a browser's does. Use a new parser to start
    /// from an empty one instead.
    pub fn finish(&mut self) {
        self.bom = Bom::Matching(0);
        self.pending_cr = false;
        self.partial.clear();
        self.skipping = false;
        self.arena.truncate(self.data_start);
        self.event_type.clear();
        self.discard = false;
        self.id_buffer.clone_from(&self.last_event_id);
    }

    /// The last event ID string: the last-event-id buffer as of the last blank line, whether or
    /// not that blank line dispatched an event. This is what a browser would send as
    /// `Last-Event-ID` on a reconnection.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// How many limit errors the stream caused so far.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Reuses the arena once every queued item was handed out; only the data of the event being
    /// built (if any) is kept, moved to the front.
    fn compact(&mut self) {
        if self.read < self.items.len() {
            return;
        }
        self.items.clear();
        self.read = 0;
        if self.data_start > 0 {
            self.arena.drain(..self.data_start);
            self.data_start = 0;
        }
    }

    /// Consumes what is left of a byte order mark at the start of the stream and returns the rest
    /// of `chunk`. Bytes that looked like the start of a BOM but were not go back to the stream.
    fn strip_bom<'c>(&mut self, mut seen: usize, chunk: &'c [u8]) -> &'c [u8] {
        let mut rest = chunk;
        while let Some((&byte, after)) = rest.split_first() {
            if BOM.get(seen) != Some(&byte) {
                self.bom = Bom::Done;
                self.line_part(&BOM[..seen]);
                return rest;
            }
            seen += 1;
            rest = after;
            if seen == BOM.len() {
                self.bom = Bom::Done;
                return rest;
            }
        }
        self.bom = Bom::Matching(seen);
        rest
    }

    /// Bytes of a line whose end has not arrived yet.
    fn line_part(&mut self, bytes: &[u8]) {
        if self.skipping || bytes.is_empty() {
            return;
        }
        if self.partial.len() + bytes.len() > self.limits.max_line_len {
            self.partial.clear();
            self.skipping = true;
            self.fail(ParseError::LineTooLong {
                limit: self.limits.max_line_len,
            });
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    /// The last bytes of a line (maybe none), whose end was just seen.
    fn line_end(&mut self, bytes: &[u8]) {
        if self.skipping {
            self.skipping = false;
            return;
        }
        let too_long = ParseError::LineTooLong {
            limit: self.limits.max_line_len,
        };
        if self.partial.is_empty() {
            // The common case: the whole line is in this chunk, parse it where it lies.
            if bytes.len() > self.limits.max_line_len {
                self.fail(too_long);
            } else {
                self.line(bytes);
            }
        } else if self.partial.len() + bytes.len() > self.limits.max_line_len {
            self.partial.clear();
            self.fail(too_long);
        } else {
            let mut line = mem::take(&mut self.partial);
            line.extend_from_slice(bytes);
            self.line(&line);
            line.clear();
            self.partial = line;
        }
    }

    /// Interprets one complete line.
    fn line(&mut self, line: &[u8]) {
        let (field, value) = match line.iter().position(|&b| b == b':') {
            None if line.is_empty() => return self.dispatch(),
            None => (line, &line[line.len()..]),
            Some(0) => return self.items.push(Item::Comment),
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
        };
        match field {
            b"data" => self.data(value),
            b"event" => {
                self.event_type.clear();
                push_utf8(&mut self.event_type, value);
            }
            // An id containing U+0000 is ignored; the only byte that decodes to it is 0x00.
            b"id" if !value.contains(&0) => {
                self.id_buffer.clear();
                push_utf8(&mut self.id_buffer, value);
            }
            b"retry" => {
                if let Some(delay) = parse_retry(value) {
                    self.items.push(Item::Retry(delay));
                }
            }
            _ => {}
        }
    }

    /// A `data` line: appends the value and a newline to the data buffer.
    fn data(&mut self, value: &[u8]) {
        if self.discard {
            return;
        }
        push_utf8(&mut self.arena, value);
        self.arena.push('\n');
        // The data as dispatched is the buffer without its final newline.
        if self.arena.len() - self.data_start - 1 > self.limits.max_data_len {
            self.fail(ParseError::DataTooLong {
                limit: self.limits.max_data_len,
            });
        }
    }

    /// A blank line: dispatch the event being built, if it has data.
    fn dispatch(&mut self) {
        self.last_event_id.clone_from(&self.id_buffer);
        if !self.discard && self.arena.len() > self.data_start {
            // Drop the data buffer's final newline; the type and id follow it in the arena.
            let data = self.data_start..self.arena.len() - 1;
            let event = push_span(&mut self.arena, &self.event_type);
            let id = push_span(&mut self.arena, &self.id_buffer);
            self.items.push(Item::Event { event, id, data });
        } else {
            self.arena.truncate(self.data_start);
        }
        self.data_start = self.arena.len();
        self.event_type.clear();
        self.discard = false;
    }

    /// Reports a limit error and discards the event being built.
    fn fail(&mut self, error: ParseError) {
        self.errors += 1;
        self.discard = true;
        self.arena.truncate(self.data_start);
        self.items.push(Item::Error(error));
    }
}

/// The position of the first CR or LF.
fn find_line_end(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n' || b == b'\r')
}

/// Appends `bytes` decoded as UTF-8, each maximal invalid subsequence replaced by U+FFFD (the
/// WHATWG "UTF-8 decode", which is also what `String::from_utf8_lossy` does). A line never
/// splits a character (CR and LF are ASCII and never part of a multi-byte sequence), so decoding
/// line by line equals decoding the whole stream.
fn push_utf8(dst: &mut String, mut bytes: &[u8]) {
    // `from_utf8` in a loop rather than `utf8_chunks`, which costs about 1 KB more of wasm.
    loop {
        match std::str::from_utf8(bytes) {
            Ok(text) => return dst.push_str(text),
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                dst.push_str(std::str::from_utf8(valid).unwrap_or_default());
                dst.push(char::REPLACEMENT_CHARACTER);
                // `None`: the input ends inside a character, one maximal invalid subsequence.
                bytes = rest
                    .get(e.error_len().unwrap_or(rest.len())..)
                    .unwrap_or_default();
            }
        }
    }
}

/// Appends `text` to the arena and returns where it went.
fn push_span(arena: &mut String, text: &str) -> Range<usize> {
    let start = arena.len();
    arena.push_str(text);
    start..arena.len()
}

/// A `retry` value: ASCII digits only (at least one), in milliseconds, saturating.
fn parse_retry(value: &[u8]) -> Option<Duration> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let ms = value.iter().fold(0u64, |ms, digit| {
        ms.saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    });
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owned [`Parsed`], to compare whole parses.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Out {
        Event {
            event: String,
            id: Option<String>,
            data: String,
        },
        Comment,
        Retry(u64),
        Error(ParseError),
    }

    fn ev(event: &str, id: Option<&str>, data: &str) -> Out {
        Out::Event {
            event: event.into(),
            id: id.map(Into::into),
            data: data.into(),
        }
    }

    fn msg(data: &str) -> Out {
        ev("message", None, data)
    }

    fn drain(parser: &mut SseParser, out: &mut Vec<Out>) {
        while let Some(item) = parser.poll() {
            out.push(match item {
                Parsed::Event(e) => ev(e.event, e.id, e.data),
                Parsed::Comment => Out::Comment,
                Parsed::Retry(d) => Out::Retry(d.as_millis() as u64),
                Parsed::Error(e) => Out::Error(e),
            });
        }
    }

    /// Feeds `chunks` one by one, draining after each, then finishes.
    fn parse_chunks(parser: &mut SseParser, chunks: &[&[u8]]) -> Vec<Out> {
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk);
            drain(parser, &mut out);
        }
        parser.finish();
        drain(parser, &mut out);
        out
    }

    /// Parses `input` whole, then split at every single position, then byte by byte, and checks
    /// all agree (the chunking must never matter); returns the parse.
    fn parse(input: &[u8]) -> Vec<Out> {
        parse_with(ParserLimits::default(), input)
    }

    fn parse_with(limits: ParserLimits, input: &[u8]) -> Vec<Out> {
        let whole = parse_chunks(&mut SseParser::with_limits(limits), &[input]);
        // Every split point of a long input would take quadratic time; its first kilobyte is
        // where the interesting boundaries of these tests are.
        for at in 0..=input.len().min(1024) {
            let (a, b) = input.split_at(at);
            let split = parse_chunks(&mut SseParser::with_limits(limits), &[a, b]);
            assert_eq!(split, whole, "split at {at} of {input:?}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let by_byte = parse_chunks(&mut SseParser::with_limits(limits), &bytes);
        assert_eq!(by_byte, whole, "byte by byte: {input:?}");
        whole
    }

    #[test]
    fn whatwg_stock_example_joins_data_lines_with_newlines() {
        assert_eq!(
            parse(b"data: YHOO\ndata: +2\ndata: 10\n\n"),
            [msg("YHOO\n+2\n10")]
        );
    }

    #[test]
    fn whatwg_four_block_example_comments_ids_and_the_single_space() {
        let stream = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n";
        assert_eq!(
            parse(stream),
            [
                Out::Comment,
                ev("message", Some("1"), "first event"),
                // `id` with no value resets the buffer to empty.
                ev("message", None, "second event"),
                // Only one leading space is removed.
                ev("message", None, " third event"),
            ]
        );
        // "The last still has to end with a blank line."
        let unterminated = &stream[..stream.len() - 1];
        assert_eq!(parse(unterminated).len(), 3);
    }

    #[test]
    fn whatwg_empty_data_example() {
        // The first block's data is empty, the middle one's a single newline, and the last block
        // is discarded because no blank line follows it.
        assert_eq!(parse(b"data\n\ndata\ndata\n\ndata:"), [msg(""), msg("\n")]);
    }

    #[test]
    fn whatwg_test_and_test_colon_fire_identical_events() {
        assert_eq!(
            parse(b"data:test\n\ndata: test\n\n"),
            [msg("test"), msg("test")]
        );
    }

    #[test]
    fn a_field_without_colon_has_an_empty_value() {
        // `event` alone empties the type (back to message); `data` alone adds an empty line.
        assert_eq!(parse(b"event: x\nevent\ndata\ndata: a\n\n"), [msg("\na")]);
    }

    #[test]
    fn the_field_name_ends_at_the_first_colon_only() {
        assert_eq!(
            parse(b"data: a: b:c\nevent:type:sub\n\n"),
            [ev("type:sub", None, "a: b:c")]
        );
        // Field names are case-sensitive and exact: no trimming.
        assert_eq!(
            parse(b"Data: x\ndata : y\n data: z\ndata: ok\n\n"),
            [msg("ok")]
        );
    }

    #[test]
    fn cr_lf_and_crlf_all_end_lines() {
        let expected = [ev("t", Some("1"), "a\nb")];
        assert_eq!(parse(b"id: 1\nevent: t\ndata: a\ndata: b\n\n"), expected);
        assert_eq!(parse(b"id: 1\revent: t\rdata: a\rdata: b\r\r"), expected);
        assert_eq!(
            parse(b"id: 1\r\nevent: t\r\ndata: a\r\ndata: b\r\n\r\n"),
            expected
        );
        assert_eq!(
            parse(b"id: 1\r\nevent: t\rdata: a\ndata: b\r\r\n"),
            expected
        );
        // CR CR is two line ends (a blank line); LF CR is two line ends too.
        assert_eq!(parse(b"data: a\r\rdata: b\n\r"), [msg("a"), msg("b")]);
    }

    #[test]
    fn a_crlf_split_across_chunks_is_one_line_end() {
        // If the LF of a split CRLF counted as a second line end, it would dispatch `a` early
        // (with an empty line) and `b` would be its own event.
        let mut parser = SseParser::new();
        let out = parse_chunks(&mut parser, &[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(out, [msg("a\nb")]);
        // A CR at the end of a chunk followed by a non-LF byte is a line end by itself.
        let out = parse_chunks(&mut parser, &[b"data: a\r", b"data: b\r", b"", b"\r"]);
        assert_eq!(out, [msg("a\nb")]);
    }

    #[test]
    fn utf8_is_decoded_even_when_split_across_chunks() {
        let input = "data: h\u{e9}llo \u{1F600} \u{4e16}\n\n".as_bytes();
        assert_eq!(parse(input), [msg("h\u{e9}llo \u{1F600} \u{4e16}")]);
        // Split inside the 4-byte emoji, one byte per chunk.
        let emoji = "\u{1F600}".as_bytes();
        let mut parser = SseParser::new();
        let out = parse_chunks(
            &mut parser,
            &[b"data: ", &emoji[..1], &emoji[1..2], &emoji[2..], b"\n\n"],
        );
        assert_eq!(out, [msg("\u{1F600}")]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        // A lone continuation byte, a truncated 3-byte sequence before the line end, an overlong
        // encoding and a surrogate: each maximal invalid subpart is one U+FFFD.
        assert_eq!(
            parse(b"data: a\x80b\ndata: \xE2\x82\ndata: \xC0\xAF\ndata: \xED\xA0\x80\n\n"),
            [msg(
                "a\u{FFFD}b\n\u{FFFD}\n\u{FFFD}\u{FFFD}\n\u{FFFD}\u{FFFD}\u{FFFD}"
            )]
        );
        // In the type and id too.
        assert_eq!(
            parse(b"event: \xFFx\nid: \xFE\ndata\n\n"),
            [ev("\u{FFFD}x", Some("\u{FFFD}"), "")]
        );
        // A field name with invalid bytes is unknown, not `data`.
        assert_eq!(parse(b"d\xFFata: x\n\n"), []);
    }

    // proptest is a native-only dev-dependency.
    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        /// `push_utf8` decodes exactly as `String::from_utf8_lossy` (the WHATWG decoder).
        #[test]
        fn push_utf8_matches_from_utf8_lossy(
            bytes in proptest::collection::vec(
                proptest::sample::select(vec![
                    b'a', 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xe0, 0xe2, 0x82, 0xa0, 0xed, 0xf0, 0x90,
                    0xf4, 0xf5, 0xff,
                ]),
                0..24,
            )
        ) {
            let mut out = String::from("x");
            push_utf8(&mut out, &bytes);
            proptest::prop_assert_eq!(out, format!("x{}", String::from_utf8_lossy(&bytes)));
        }
    }

    #[test]
    fn one_leading_bom_is_stripped() {
        assert_eq!(parse(b"\xEF\xBB\xBFdata: a\n\n"), [msg("a")]);
        // Only one: a second BOM is part of the first line, so its field is not `data`.
        assert_eq!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"), []);
        // Not at the start: part of the value.
        assert_eq!(parse(b"data: \xEF\xBB\xBFa\n\n"), [msg("\u{FEFF}a")]);
        // Split across chunks, one byte at a time.
        let out = parse_chunks(
            &mut SseParser::new(),
            &[b"\xEF", b"\xBB", b"\xBF", b"data: a\n\n"],
        );
        assert_eq!(out, [msg("a")]);
    }

    #[test]
    fn a_partial_bom_is_given_back_to_the_stream() {
        // EF BB then LF: a line of two invalid bytes, an unknown field.
        assert_eq!(parse(b"\xEF\xBB\ndata: a\n\n"), [msg("a")]);
        // EF then a BOM-less start: the field name is "\u{FFFD}data", unknown.
        assert_eq!(parse(b"\xEFdata: a\n\ndata: b\n\n"), [msg("b")]);
        // EF BB then `:` (a comment? no: the line starts with the two bytes).
        assert_eq!(parse(b"\xEF\xBB: x\n\n"), []);
        // A stream of only part of a BOM.
        assert_eq!(parse(b"\xEF\xBB"), []);
    }

    #[test]
    fn events_without_data_are_not_dispatched_but_set_the_last_event_id() {
        let mut parser = SseParser::new();
        let out = parse_chunks(&mut parser, &[b"id: 5\nevent: x\n\n"]);
        assert_eq!(out, []);
        assert_eq!(parser.last_event_id(), "5");
        // The type buffer was emptied by that blank line even though nothing was dispatched.
        parser.feed(b"data: y\n\n");
        let mut out = Vec::new();
        drain(&mut parser, &mut out);
        assert_eq!(out, [ev("message", Some("5"), "y")]);
    }

    #[test]
    fn the_id_buffer_persists_across_events_and_an_empty_id_resets_it() {
        assert_eq!(
            parse(b"id: 1\ndata: a\n\ndata: b\n\nid:\ndata: c\n\ndata: d\n\nid: 2\ndata: e\n\n"),
            [
                ev("message", Some("1"), "a"),
                ev("message", Some("1"), "b"),
                ev("message", None, "c"),
                ev("message", None, "d"),
                ev("message", Some("2"), "e"),
            ]
        );
        // The id may come after the data, and the last one wins.
        assert_eq!(
            parse(b"data: a\nid: 1\nid: 2\n\n"),
            [ev("message", Some("2"), "a")]
        );
    }

    #[test]
    fn an_id_containing_null_is_ignored() {
        assert_eq!(
            parse(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"),
            [ev("message", Some("1"), "a"), ev("message", Some("1"), "b")]
        );
    }

    #[test]
    fn the_type_defaults_to_message_and_resets_after_each_event() {
        assert_eq!(
            parse(b"event: ready\ndata: {}\n\ndata: x\n\nevent:\ndata: y\n\n"),
            [ev("ready", None, "{}"), msg("x"), msg("y")]
        );
    }

    #[test]
    fn retry_takes_ascii_digits_only() {
        assert_eq!(
            parse(
                b"retry: 1500\nretry: 15x\nretry: -1\nretry:\nretry: 1.5\nretry:  20\nretry:0\n\n"
            ),
            [Out::Retry(1500), Out::Retry(0)]
        );
        // Reported in stream order, not at dispatch, and it does not make an event.
        assert_eq!(parse(b"data: a\nretry: 7\n\n"), [Out::Retry(7), msg("a")]);
        // Too large for u64 milliseconds: saturates.
        assert_eq!(
            parse(b"retry: 99999999999999999999999\n"),
            [Out::Retry(u64::MAX)]
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_comments_are_heartbeats() {
        assert_eq!(
            parse(b"foo: bar\n:\n: keepalive\nDATA: no\ndata: yes\n\n"),
            [Out::Comment, Out::Comment, msg("yes")]
        );
    }

    #[test]
    fn a_final_event_without_a_blank_line_is_discarded() {
        assert_eq!(parse(b"data: a\n\ndata: b\n"), [msg("a")]);
        assert_eq!(parse(b"data: a\n\ndata: b"), [msg("a")]);
        // A retry or comment line without its line end is not complete either.
        assert_eq!(parse(b"retry: 5"), []);
        assert_eq!(parse(b": ping"), []);
    }

    #[test]
    fn finish_resets_for_the_next_stream_but_keeps_the_last_event_id() {
        let mut parser = SseParser::new();
        // An id that was never dispatched (no blank line) does not count.
        let out = parse_chunks(&mut parser, &[b"id: 1\ndata: a\n\nid: 2\ndata: b\n"]);
        assert_eq!(out, [ev("message", Some("1"), "a")]);
        assert_eq!(parser.last_event_id(), "1");
        // The next stream: a BOM again, a CR pending from before is forgotten, the id persists.
        let out = parse_chunks(&mut parser, &[b"\xEF\xBB\xBF\ndata: c\n\n"]);
        assert_eq!(out, [ev("message", Some("1"), "c")]);
        let out = parse_chunks(&mut parser, &[b"data: d\r"]);
        assert_eq!(out, []);
        let out = parse_chunks(&mut parser, &[b"\ndata: e\n\n"]);
        // The LF starts the stream with a blank line (nothing to dispatch).
        assert_eq!(out, [ev("message", Some("1"), "e")]);
    }

    #[test]
    fn items_survive_until_drained_even_across_feeds() {
        // A caller that feeds twice before draining gets everything, in order.
        let mut parser = SseParser::new();
        parser.feed(b"data: a\n\ndata: b");
        parser.feed(b"b\n\n: c\n");
        let mut out = Vec::new();
        drain(&mut parser, &mut out);
        assert_eq!(out, [msg("a"), msg("bb"), Out::Comment]);
        // Draining half, then feeding, keeps the rest valid.
        parser.feed(b"data: 1\n\ndata: 2\n\n");
        assert!(matches!(parser.poll(), Some(Parsed::Event(e)) if e.data == "1"));
        parser.feed(b"data: 3\n\n");
        let mut out = Vec::new();
        drain(&mut parser, &mut out);
        assert_eq!(out, [msg("2"), msg("3")]);
    }

    #[test]
    fn an_overlong_line_is_an_error_and_its_event_is_discarded() {
        let limits = ParserLimits {
            max_line_len: 10,
            max_data_len: 100,
        };
        let too_long = || Out::Error(ParseError::LineTooLong { limit: 10 });
        // Exactly at the limit is fine ("data: 1234" is 10 bytes).
        assert_eq!(parse_with(limits, b"data: 1234\n\n"), [msg("1234")]);
        // One more is an error; the event is discarded, its id still applies (as for an event
        // without data), and the next event is parsed normally.
        assert_eq!(
            parse_with(
                limits,
                b"id: 1\ndata: a\ndata: 12345\ndata: b\nid: 2\n\ndata: c\n\n"
            ),
            [too_long(), ev("message", Some("2"), "c")]
        );
        // Any kind of line counts, and one error per line however long it is.
        assert_eq!(
            parse_with(limits, b": comment too long\r\ndata: x\r\n\r\n"),
            [too_long()]
        );
        let mut huge = b"data: ".to_vec();
        huge.resize(100_000, b'x');
        huge.extend_from_slice(b"\r\rdata: ok\r\r");
        assert_eq!(parse_with(limits, &huge), [too_long(), msg("ok")]);
        // The line end of the overlong line is a CR split from its LF: still one line end.
        let mut parser = SseParser::with_limits(limits);
        let out = parse_chunks(
            &mut parser,
            &[b"data: 12345678", b"\r", b"\ndata: y\n\ndata: z\n\n"],
        );
        // (Had the LF counted as a blank line, it would have closed the discarded event and `y`
        // would be dispatched.)
        assert_eq!(out, [too_long(), msg("z")]);
        assert_eq!(parser.errors(), 1);
    }

    #[test]
    fn an_overlong_line_is_never_buffered() {
        let limits = ParserLimits {
            max_line_len: 64,
            max_data_len: 64,
        };
        let mut parser = SseParser::with_limits(limits);
        parser.feed(b"data: ");
        for _ in 0..1000 {
            parser.feed(&[b'x'; 1000]);
            while parser.poll().is_some() {}
        }
        assert!(
            parser.partial.capacity() <= 128,
            "{}",
            parser.partial.capacity()
        );
        assert!(
            parser.arena.capacity() <= 128,
            "{}",
            parser.arena.capacity()
        );
        assert_eq!(parser.errors(), 1);
        parser.feed(b"\n\ndata: z\n\n");
        assert_eq!(
            parser.poll(),
            Some(Parsed::Event(RawEvent {
                event: "message",
                id: None,
                data: "z"
            }))
        );
    }

    #[test]
    fn data_past_its_limit_is_an_error_and_the_event_is_discarded() {
        let limits = ParserLimits {
            max_line_len: 100,
            max_data_len: 5,
        };
        let too_big = || Out::Error(ParseError::DataTooLong { limit: 5 });
        // 5 bytes of data ("ab\ncd") is fine, 6 is not.
        assert_eq!(
            parse_with(limits, b"data: ab\ndata: cd\n\n"),
            [msg("ab\ncd")]
        );
        assert_eq!(
            parse_with(limits, b"data: ab\ndata: cde\ndata: f\n\ndata: g\n\n"),
            [too_big(), msg("g")]
        );
        // Replacement characters count at their decoded size (3 bytes each).
        assert_eq!(parse_with(limits, b"data: \xFF\xFF\n\n"), [too_big()]);
        assert_eq!(parse_with(limits, b"data: \xFFa\n\n"), [msg("\u{FFFD}a")]);
    }

    #[test]
    fn errors_display_their_limit() {
        assert_eq!(
            ParseError::LineTooLong { limit: 10 }.to_string(),
            "an event-stream line is longer than 10 bytes; the event it belongs to was discarded"
        );
        assert_eq!(
            ParseError::DataTooLong { limit: 7 }.to_string(),
            "an event's data is larger than 7 bytes; the event was discarded"
        );
    }

    #[test]
    fn a_zero_limit_rejects_every_non_empty_line_but_still_dispatches_nothing_wrongly() {
        let limits = ParserLimits {
            max_line_len: 0,
            max_data_len: 0,
        };
        let out = parse_with(limits, b"data: a\n\n\n");
        assert_eq!(out, [Out::Error(ParseError::LineTooLong { limit: 0 })]);
        // An empty data line passes the line limit (0 bytes) and the data limit (0 bytes).
        let limits = ParserLimits {
            max_line_len: 4,
            max_data_len: 0,
        };
        assert_eq!(parse_with(limits, b"data\n\n"), [msg("")]);
    }
}
