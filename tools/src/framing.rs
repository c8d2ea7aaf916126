//! Frames of an event stream found on its raw bytes, and what each one is.
//!
//! The proxy must pass every byte through unchanged and act *between* frames (cut after the N-th,
//! inject noise or a seam after the first), so it needs the byte offset where each frame ends.
//! The project's parser ([`SseParser`]) turns bytes into events and keeps no offsets, so the
//! boundaries come from [`FrameSplitter`], a small scanner for blank lines (CR, LF or CRLF, split
//! anywhere across chunks). What a complete frame *is* comes from the parser itself
//! ([`classify`]): a fresh parser per frame, so the id it reports is the frame's own `id:` line
//! and not the last-event-id buffer carried over from an earlier frame.

use sse_relay::core::{Parsed, SseParser};

/// Most bytes of one frame kept for [`classify`]; a larger frame is passed on but not parsed.
pub const MAX_FRAME_BYTES: usize = 8 << 20;

/// A frame's end in the chunk that completed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boundary {
    /// Offset in the chunk just past the frame's blank line.
    pub end: usize,
    /// The whole frame, from its first byte to its blank line included (possibly begun in earlier
    /// chunks).
    pub frame: RawFrame,
}

/// The bytes of one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFrame {
    /// The frame's bytes (its first [`MAX_FRAME_BYTES`] when `oversized`).
    pub bytes: Vec<u8>,
    /// The frame was longer than [`MAX_FRAME_BYTES`].
    pub oversized: bool,
}

/// Splits a byte stream into frames at its blank lines, chunk by chunk.
///
/// A frame is everything up to and including a blank line (a line end right after a line end, or
/// at the start of the stream). A CRLF split between two chunks is one line end: when a frame ends
/// on a CR that closes a chunk and the next chunk starts with LF, that LF is not the start of the
/// next frame (it is reported in no frame; a pass-through forwards it like any byte).
#[derive(Clone, Debug)]
pub struct FrameSplitter {
    /// The last byte seen was a CR: an LF right after it belongs to the same line end.
    pending_cr: bool,
    /// That CR ended a frame in an earlier chunk.
    cr_ended_frame: bool,
    /// At the start of a line (nothing of it seen yet).
    line_start: bool,
    current: Vec<u8>,
    oversized: bool,
}

impl Default for FrameSplitter {
    fn default() -> Self {
        FrameSplitter::new()
    }
}

impl FrameSplitter {
    /// A splitter at the start of a stream.
    pub fn new() -> FrameSplitter {
        FrameSplitter {
            pending_cr: false,
            cr_ended_frame: false,
            line_start: true,
            current: Vec::new(),
            oversized: false,
        }
    }

    /// Whether bytes of an unfinished frame were seen (injecting bytes now would land inside it).
    pub fn in_frame(&self) -> bool {
        !self.current.is_empty() || self.oversized
    }

    /// Scans the next chunk; returns the frames it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Boundary> {
        let mut out: Vec<Boundary> = Vec::new();
        for (i, &byte) in chunk.iter().enumerate() {
            if byte == b'\n' && self.pending_cr {
                // The LF of a CRLF: the line already ended at the CR.
                self.pending_cr = false;
                if self.cr_ended_frame {
                    self.cr_ended_frame = false;
                    // The frame ended at the CR just before: in this chunk, it takes the LF too.
                    if let Some(last) = out.last_mut().filter(|b| b.end == i) {
                        last.end = i + 1;
                        if !last.frame.oversized {
                            last.frame.bytes.push(b'\n');
                        }
                    }
                } else {
                    self.keep(byte);
                }
                continue;
            }
            self.pending_cr = false;
            self.cr_ended_frame = false;
            self.keep(byte);
            match byte {
                b'\r' | b'\n' => {
                    self.pending_cr = byte == b'\r';
                    if self.line_start {
                        self.cr_ended_frame = self.pending_cr;
                        out.push(Boundary {
                            end: i + 1,
                            frame: self.take(),
                        });
                    }
                    self.line_start = true;
                }
                _ => self.line_start = false,
            }
        }
        out
    }

    fn keep(&mut self, byte: u8) {
        if self.current.len() < MAX_FRAME_BYTES {
            self.current.push(byte);
        } else {
            self.oversized = true;
        }
    }

    fn take(&mut self) -> RawFrame {
        let frame = RawFrame {
            bytes: std::mem::take(&mut self.current),
            oversized: self.oversized,
        };
        self.oversized = false;
        frame
    }
}

/// What one complete frame is, as an `EventSource` would see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameClass {
    /// A dispatched event. `id` is the frame's own id: `None` when it has no `id:` line with a
    /// value (an `EventSource` would then report the previous frame's id).
    Event {
        /// The event type (`message` when the frame names none).
        event: String,
        /// The frame's own id.
        id: Option<String>,
        /// The data, lines joined with `\n`.
        data: String,
    },
    /// Comment lines (and `retry:`) only: a heartbeat the `EventSource` API never shows.
    Comment,
    /// Fields but no `data:` line: an `EventSource` dispatches nothing.
    NoData {
        /// The frame's own id, if it had one.
        id: Option<String>,
    },
    /// A blank line alone.
    Empty,
    /// Longer than [`MAX_FRAME_BYTES`]: not parsed.
    Oversized,
}

impl FrameClass {
    /// The frame's own non-empty id, dispatched or not.
    pub fn id(&self) -> Option<&str> {
        match self {
            FrameClass::Event { id, .. } | FrameClass::NoData { id } => id.as_deref(),
            _ => None,
        }
    }
}

/// Classifies a complete frame with the project's parser.
pub fn classify(frame: &RawFrame) -> FrameClass {
    if frame.oversized {
        return FrameClass::Oversized;
    }
    let mut parser = SseParser::new();
    parser.feed(&frame.bytes);
    let mut event = None;
    let mut quiet = false;
    while let Some(item) = parser.poll() {
        match item {
            Parsed::Event(raw) => {
                event = Some(FrameClass::Event {
                    event: raw.event.to_owned(),
                    id: raw.id.map(str::to_owned),
                    data: raw.data.to_owned(),
                });
            }
            Parsed::Comment | Parsed::Retry(_) => quiet = true,
            _ => {}
        }
    }
    let own_id = Some(parser.last_event_id()).filter(|id| !id.is_empty());
    if let Some(event) = event {
        event
    } else if let Some(id) = own_id {
        FrameClass::NoData {
            id: Some(id.to_owned()),
        }
    } else if quiet {
        FrameClass::Comment
    } else if frame.bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
        FrameClass::Empty
    } else {
        FrameClass::NoData { id: None }
    }
}

/// A frame's text for a message: lossy UTF-8, line ends escaped, at most `max` characters.
pub fn preview(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(chunks: &[&[u8]]) -> Vec<(usize, usize, Vec<u8>)> {
        let mut splitter = FrameSplitter::new();
        let mut out = Vec::new();
        for (c, chunk) in chunks.iter().enumerate() {
            for b in splitter.push(chunk) {
                out.push((c, b.end, b.frame.bytes));
            }
        }
        out
    }

    #[test]
    fn splits_on_every_kind_of_blank_line() {
        let stream = b"event: ready\ndata: {}\n\nid: 1\r\ndata: a\r\n\r\nid: 2\rdata: b\r\r: c\n\n";
        let whole = frames_of(&[stream]);
        let texts: Vec<&[u8]> = whole.iter().map(|f| f.2.as_slice()).collect();
        assert_eq!(
            texts,
            [
                &b"event: ready\ndata: {}\n\n"[..],
                b"id: 1\r\ndata: a\r\n\r\n",
                b"id: 2\rdata: b\r\r",
                b": c\n\n",
            ]
        );
        // Byte by byte: the same frames, except that a frame ending in a CRLF split across two
        // chunks ends at its CR (the LF, alone in the next chunk, starts no frame).
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        let split = frames_of(&bytes);
        let split_texts: Vec<&[u8]> = split.iter().map(|f| f.2.as_slice()).collect();
        assert_eq!(
            split_texts,
            [
                &b"event: ready\ndata: {}\n\n"[..],
                b"id: 1\r\ndata: a\r\n\r",
                b"id: 2\rdata: b\r\r",
                b": c\n\n",
            ]
        );
        for (_, end, _) in &split {
            assert_eq!(*end, 1, "a one-byte chunk ends its frame after its byte");
        }
    }

    #[test]
    fn a_crlf_split_after_the_blank_line_stays_out_of_the_next_frame() {
        let frames = frames_of(&[b"data: a\r\n\r", b"\ndata: b\n\n"]);
        assert_eq!(frames[0].2, b"data: a\r\n\r");
        assert_eq!(frames[1].2, b"data: b\n\n");
        assert_eq!(frames[1].1, 10, "offset past the second frame in its chunk");
    }

    #[test]
    fn a_leading_blank_line_is_an_empty_frame() {
        let frames = frames_of(&[b"\ndata: x\n\n"]);
        assert_eq!(frames[0].2, b"\n");
        assert_eq!(classify(&raw(b"\n")), FrameClass::Empty);
    }

    #[test]
    fn the_offsets_cut_the_chunk_into_frames() {
        let chunk = b"id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\nda";
        let mut splitter = FrameSplitter::new();
        let ends: Vec<usize> = splitter.push(chunk).iter().map(|b| b.end).collect();
        assert_eq!(ends, [15, 30]);
        assert!(splitter.in_frame());
        assert_eq!(&chunk[15..30], b"id: 2\ndata: b\n\n");
    }

    fn raw(bytes: &[u8]) -> RawFrame {
        RawFrame {
            bytes: bytes.to_vec(),
            oversized: false,
        }
    }

    #[test]
    fn classifies_with_the_frames_own_id() {
        assert_eq!(
            classify(&raw(b"id: 7\nevent: token\ndata: a\ndata: b\n\n")),
            FrameClass::Event {
                event: "token".into(),
                id: Some("7".into()),
                data: "a\nb".into()
            }
        );
        assert_eq!(
            classify(&raw(b"event: token\nid:\ndata: x\n\n")),
            FrameClass::Event {
                event: "token".into(),
                id: None,
                data: "x".into()
            }
        );
        assert_eq!(
            classify(&raw(b"id: 9\nevent: done\n\n")),
            FrameClass::NoData {
                id: Some("9".into())
            }
        );
        assert_eq!(
            classify(&raw(b"event: ping\n\n")),
            FrameClass::NoData { id: None }
        );
        assert_eq!(classify(&raw(b": keep-alive\n\n")), FrameClass::Comment);
        assert_eq!(classify(&raw(b"retry: 10\n\n")), FrameClass::Comment);
        assert_eq!(
            classify(&RawFrame {
                bytes: Vec::new(),
                oversized: true
            }),
            FrameClass::Oversized
        );
    }

    #[test]
    fn previews_escape_line_ends() {
        assert_eq!(
            preview(b"id: 1\r\ndata: x\n\n", 100),
            "id: 1\\r\\ndata: x\\n\\n"
        );
        assert_eq!(preview(b"abcdef", 3), "abc…");
    }
}
