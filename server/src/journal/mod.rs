//! The journal of every stream key, behind one abstraction with two engines.
//!
//! A [`Journal`] keeps, per stream key, the entries of the current *epoch* (incarnation) in id
//! order, whether the terminal `done` entry is in, and a live path that delivers only what is
//! appended after a subscriber joined — like a real broker, never an older entry. The SSE
//! handler ([`crate::sse`]) stitches replay and live together at the tail it snapshotted while
//! joining ([`Journal::join`]), which is what makes the protocol's `ready` frame honest.
//!
//! Two engines:
//! - [`MemoryJournal`]: in this process, nothing to install; dies with the process.
//! - [`RedisJournal`]: Redis Streams, so several server processes serve one stream and a
//!   client may resume on any of them.
//!
//! Entries reach connections as the exact SSE bytes of their frame ([`Entry::bytes`]), rendered
//! once, so replay and fan-out are copies of shared buffers.

mod memory;
mod redis;

pub use self::memory::MemoryJournal;
pub use self::redis::{RedisJournal, RedisOptions};

use std::collections::hash_map::RandomState;
use std::fmt;
use std::fmt::Write as _;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::broadcast;

use crate::id::{Id, IdMode};

/// How many published batches a live subscriber may fall behind before it is cut off
/// (see [`broadcast`]'s `Lagged`). A batch is one append, or up to a few thousand entries of a
/// fill or a fast turn, so this is thousands of entries in practice.
pub const LIVE_CAPACITY: usize = 1024;

/// The longest accepted event name, in bytes.
pub const MAX_EVENT_LEN: usize = 256;

/// The event name of the terminal entry.
pub const DONE_EVENT: &str = "done";

/// A future a [`Journal`] returns (boxed, so journals can be chosen at run time).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One journal entry: its id and the exact SSE bytes of its frame.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The entry's id, which is also the cursor a client resumes from.
    pub id: Id,
    /// `id: ..\nevent: ..\ndata: ..\n\n`, ready to write to a response.
    pub bytes: Bytes,
    /// Whether this is the terminal `done` entry.
    pub done: bool,
}

/// What the live path carries: entries appended together, in id order.
pub type Published = Arc<[Entry]>;

/// A live subscription: every batch appended after it was taken, in order. It closes when the
/// epoch it belongs to ends (a reset), or when the engine behind it fails; either way the
/// connection ends and its client resumes from its cursor.
pub type Live = broadcast::Receiver<Published>;

/// A frame to append: event name and data (which may span lines).
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Event name; `done` ends the stream.
    pub event: &'a str,
    /// Payload; CR, LF and CRLF each start a new `data:` line.
    pub data: &'a str,
}

/// What a journal holds for one key at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The incarnation; changes on reset (and ids restart).
    pub epoch: String,
    /// The id mode of this incarnation.
    pub mode: IdMode,
    /// The last entry's id, if any.
    pub tail: Option<Id>,
    /// Whether the tail is the `done` entry.
    pub done: bool,
    /// Entries retained.
    pub length: u64,
}

/// How much one [`Journal::read_range`] collects at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// Entries.
    pub entries: usize,
    /// Bytes (the read stops once it has collected at least this many).
    pub bytes: usize,
}

/// The outcome of an append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The epoch the entries went into.
    pub epoch: String,
    /// The id of the last appended entry (`None` for an empty batch).
    pub last: Option<Id>,
}

/// A journal engine: the part of protocol v1 that must be atomic.
///
/// Every method takes the stream key; a key comes into being on first use, empty, in a fresh
/// epoch. Implementations must keep these promises, on which the SSE handler relies:
///
/// - **join**: [`Journal::join`] returns a live subscription and a [`Head`] such that every entry
///   with an id above `head.tail` (in `head.epoch`) is delivered on the subscription. Entries at
///   or below it may be delivered too (the handler skips them by id).
/// - **appends are atomic** with the `done` and epoch checks: an append after `done` fails with
///   [`JournalError::Done`]; an append racing a reset lands in exactly one epoch.
/// - **ids strictly increase** within an epoch, in the epoch's [`IdMode`].
/// - **reset** starts a new epoch and closes the live subscriptions of the old one.
pub trait Journal: Send + Sync + fmt::Debug + 'static {
    /// The head of `key` (creating the key if needed).
    fn head<'a>(&'a self, key: &'a StreamKey) -> BoxFuture<'a, Result<Head, JournalError>>;

    /// Appends `frames` in order. With `epoch`, fails with [`JournalError::EpochChanged`]
    /// unless the key is still in that epoch. Event names are checked first, so a bad one
    /// appends nothing; frames after a `done` frame are refused with [`JournalError::Done`]
    /// (the ones before it stay appended).
    fn append<'a>(
        &'a self,
        key: &'a StreamKey,
        frames: &'a [Frame<'a>],
        epoch: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Appended, JournalError>>;

    /// Joins the live path of `key` and snapshots its head, so that the live subscription
    /// delivers every entry above `head.tail` (see the trait's promises).
    fn join<'a>(&'a self, key: &'a StreamKey) -> BoxFuture<'a, Result<(Live, Head), JournalError>>;

    /// Joins the live path of `key` *without* a snapshot, failing with
    /// [`JournalError::EpochChanged`] if the key is no longer in `epoch`. Only the `readyEarly`
    /// fault uses it (it reproduces the join race on purpose).
    fn subscribe<'a>(
        &'a self,
        key: &'a StreamKey,
        epoch: &'a str,
    ) -> BoxFuture<'a, Result<Live, JournalError>>;

    /// Appends to `out` the retained entries of `epoch` with `after < id <= upto`, oldest
    /// first (from the oldest retained one when `after` is `None`), stopping at `limits`. An empty read means
    /// there is nothing more. [`JournalError::EpochChanged`] if the key was reset.
    fn read_range<'a>(
        &'a self,
        key: &'a StreamKey,
        epoch: &'a str,
        after: Option<Id>,
        upto: Id,
        limits: ReadLimits,
        out: &'a mut Vec<Entry>,
    ) -> BoxFuture<'a, Result<(), JournalError>>;

    /// Appends to `out` the last `count` retained entries of `epoch` with `id <= upto`,
    /// oldest first.
    fn read_last<'a>(
        &'a self,
        key: &'a StreamKey,
        epoch: &'a str,
        upto: Id,
        count: usize,
        out: &'a mut Vec<Entry>,
    ) -> BoxFuture<'a, Result<(), JournalError>>;

    /// Starts a new epoch of `key`: no entries, not done, ids restart, in `mode` (or the mode
    /// it had). Closes the live subscriptions of the old epoch. Returns the new head.
    fn reset<'a>(
        &'a self,
        key: &'a StreamKey,
        mode: Option<IdMode>,
    ) -> BoxFuture<'a, Result<Head, JournalError>>;

    /// The most entries retained per key (older ones are dropped).
    fn retention(&self) -> usize;

    /// The engine's name for messages and stats: `memory` or `redis`.
    fn engine(&self) -> &'static str;
}

/// A stream key: 1 to 128 characters from `[A-Za-z0-9._-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamKey(String);

impl StreamKey {
    /// Validates a key taken from a URL path.
    pub fn parse(key: &str) -> Result<StreamKey, KeyError> {
        let ok = (1..=128).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(StreamKey(key.to_owned()))
        } else {
            Err(KeyError(key.to_owned()))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stream key outside the allowed alphabet or length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid stream key {:?}: use 1 to 128 characters from A-Z, a-z, 0-9, '.', '_' and '-'",
            self.0
        )
    }
}

impl std::error::Error for KeyError {}

/// Why a journal operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalError {
    /// The stream already holds its `done` entry.
    Done {
        /// The stream key.
        key: String,
    },
    /// The key was reset: the epoch the caller works in is gone.
    EpochChanged {
        /// The stream key.
        key: String,
    },
    /// The event name cannot be written as an SSE `event:` line, or is reserved.
    BadEvent {
        /// The offending name.
        event: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The engine cannot be reached (or did not answer in time). Nothing was changed that the
    /// caller can rely on; try again later.
    Unavailable {
        /// The engine (`redis`).
        engine: &'static str,
        /// What went wrong, in one line.
        detail: String,
    },
    /// The engine answered something this server cannot use (for example a Redis key of the
    /// wrong type, written by someone else).
    Engine {
        /// The engine (`redis`).
        engine: &'static str,
        /// What went wrong, in one line.
        detail: String,
    },
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Done { key } => write!(
                f,
                "stream {key:?} is done: it takes no more entries; reset it \
                 (POST /streams/{key}/reset) or use a new key"
            ),
            JournalError::EpochChanged { key } => {
                write!(
                    f,
                    "stream {key:?} was reset while this request was using it"
                )
            }
            JournalError::BadEvent { event, reason } => {
                write!(f, "invalid event name {event:?}: {reason}")
            }
            JournalError::Unavailable { engine, detail } => write!(
                f,
                "the journal ({engine}) is unavailable: {detail}; try again shortly"
            ),
            JournalError::Engine { engine, detail } => {
                write!(f, "the journal ({engine}) failed: {detail}")
            }
        }
    }
}

impl std::error::Error for JournalError {}

/// Checks that `event` can be journaled: it must fit on one `event:` line and must not be one
/// of the unjournaled frame names of the protocol.
pub fn validate_event(event: &str) -> Result<(), JournalError> {
    let reason = if event.is_empty() {
        Some("it is empty")
    } else if event.len() > MAX_EVENT_LEN {
        Some("it is longer than 256 bytes")
    } else if event.contains(['\r', '\n', ':']) {
        Some("it contains CR, LF or ':'")
    } else if event == "ready" || event == "ping" {
        Some("`ready` and `ping` are reserved for frames that are not journaled")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(JournalError::BadEvent {
            event: event.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Splits SSE data into lines the way an SSE parser does: at CRLF, CR or LF.
fn data_lines(data: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(text)
            }
            Some(at) => {
                let skip = if text[at..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&text[at + skip..]);
                Some(&text[..at])
            }
        }
    })
}

/// Appends the SSE bytes of one journaled frame to `buf`.
pub fn render(buf: &mut BytesMut, id: Id, event: &str, data: &str) {
    // Writing into a BytesMut cannot fail.
    let _ = write!(buf, "id: {id}\nevent: {event}\n");
    for line in data_lines(data) {
        buf.put_slice(b"data: ");
        buf.put_slice(line.as_bytes());
        buf.put_u8(b'\n');
    }
    buf.put_u8(b'\n');
}

/// Renders `(id, event, data)` triples into one shared buffer and splits it into one
/// [`Entry`] per frame: one allocation, no copy.
pub fn render_entries<'a>(frames: impl IntoIterator<Item = (Id, &'a str, &'a str)>) -> Vec<Entry> {
    let mut buf = BytesMut::new();
    let mut ends = Vec::new();
    for (id, event, data) in frames {
        render(&mut buf, id, event, data);
        ends.push((id, buf.len(), event == DONE_EVENT));
    }
    let mut entries = Vec::with_capacity(ends.len());
    let mut start = 0;
    for (id, end, done) in ends {
        let bytes = buf.split_to(end - start).freeze();
        start = end;
        entries.push(Entry { id, bytes, done });
    }
    entries
}

/// A new epoch name: a process-wide counter (unique within this run) plus a random suffix
/// (unique across restarts and across processes, where counters repeat).
pub fn new_epoch() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // RandomState is seeded randomly per process; hashing the clock with it gives a suffix
    // nobody can predict, without a dependency on a random number crate.
    let suffix = RandomState::new().hash_one((n, nanos)) as u32;
    format!("{n}-{suffix:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_render_one_data_line_per_line() {
        let mut buf = BytesMut::new();
        render(&mut buf, Id::Numeric(3), "token", "a\nb\r\nc\rd\n");
        assert_eq!(
            &buf[..],
            b"id: 3\nevent: token\ndata: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"
        );
        let mut buf = BytesMut::new();
        render(&mut buf, Id::Numeric(4), "done", "");
        assert_eq!(&buf[..], b"id: 4\nevent: done\ndata: \n\n");
    }

    #[test]
    fn render_entries_splits_one_buffer_per_frame() {
        let entries =
            render_entries([(Id::Numeric(1), "token", "a"), (Id::Numeric(2), "done", "")]);
        assert_eq!(&entries[0].bytes[..], b"id: 1\nevent: token\ndata: a\n\n");
        assert_eq!(&entries[1].bytes[..], b"id: 2\nevent: done\ndata: \n\n");
        assert!(!entries[0].done && entries[1].done);
    }

    #[test]
    fn keys_are_validated() {
        assert!(StreamKey::parse("chat-1.a_b").is_ok());
        assert!(StreamKey::parse("").is_err());
        assert!(StreamKey::parse("a/b").is_err());
        assert!(StreamKey::parse(&"x".repeat(129)).is_err());
        assert!(StreamKey::parse(&"x".repeat(128)).is_ok());
    }

    #[test]
    fn bad_events_are_refused() {
        for bad in ["", "a:b", "a\nb", "ready", "ping"] {
            assert!(validate_event(bad).is_err(), "{bad:?}");
        }
        assert!(validate_event(&"e".repeat(257)).is_err());
        assert!(validate_event("token").is_ok());
    }
}
