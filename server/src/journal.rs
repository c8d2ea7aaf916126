//! The in-memory journal of each stream key, and its live pub/sub channel.
//!
//! Every entry is stored pre-rendered as the exact SSE bytes a client receives, so replay is a
//! copy of stored bytes. Appends are published on a per-key [`broadcast`] channel which, like a
//! real broker, delivers only what is published after a subscriber joined: there is no way to get
//! an older entry from it. Replay comes from the journal, live frames from the channel, and the
//! handler in [`crate::sse`] stitches the two together at the tail it snapshotted.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::broadcast;

use crate::faults::{Armed, LiveFault};
use crate::id::{wall_clock_ms, Id, IdGen, IdMode};

/// How many published batches a live subscriber may fall behind before it is cut off
/// (see [`broadcast`]'s `Lagged`). A batch is one append, or up to a few thousand entries of a
/// fill or a fast turn, so this is thousands of entries in practice.
pub const LIVE_CAPACITY: usize = 1024;

/// The longest accepted event name, in bytes.
pub const MAX_EVENT_LEN: usize = 256;

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

/// What the live channel carries: entries appended together, in id order.
pub type Published = Arc<[Entry]>;

/// A frame to append: event name and data (which may span lines).
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Event name; `done` ends the stream.
    pub event: &'a str,
    /// Payload; CR, LF and CRLF each start a new `data:` line.
    pub data: &'a str,
}

/// The event name of the terminal entry.
pub const DONE_EVENT: &str = "done";

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

/// Why an append was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendError {
    /// The stream already holds its `done` entry.
    Done {
        /// The stream key.
        key: String,
    },
    /// The journal was reset since the producer started (its epoch is gone).
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
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendError::Done { key } => write!(
                f,
                "stream {key:?} is done: it takes no more entries; reset it \
                 (POST /streams/{key}/reset) or use a new key"
            ),
            AppendError::EpochChanged { key } => {
                write!(
                    f,
                    "stream {key:?} was reset while this producer was writing"
                )
            }
            AppendError::BadEvent { event, reason } => {
                write!(f, "invalid event name {event:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for AppendError {}

/// Checks that `event` can be journaled: it must fit on one `event:` line and must not be one
/// of the unjournaled frame names of the protocol.
pub fn validate_event(event: &str) -> Result<(), AppendError> {
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
        Some(reason) => Err(AppendError::BadEvent {
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

/// A new epoch name: a process-wide counter (unique within this run) plus a random suffix
/// (unique across restarts of the server, where the counter starts again).
fn new_epoch() -> String {
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

/// What a connection saw of the journal at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The last entry's id, if any.
    pub tail: Option<Id>,
    /// The incarnation the snapshot belongs to.
    pub epoch: String,
    /// Whether the tail is the `done` entry.
    pub done: bool,
    /// When the tail is the `done` entry: the id of the retained entry before it, if any.
    pub before_done: Option<Id>,
}

/// The journal of one stream key: entries, id generator, epoch, and the live channel.
#[derive(Debug)]
pub struct Journal {
    key: String,
    ids: IdGen,
    epoch: String,
    entries: VecDeque<Entry>,
    retention: usize,
    done: bool,
    live: broadcast::Sender<Published>,
    fault_connections: u64,
}

impl Journal {
    /// An empty journal in a fresh epoch.
    pub fn new(key: &str, mode: IdMode, retention: usize) -> Journal {
        Journal {
            key: key.to_owned(),
            ids: IdGen::new(mode),
            epoch: new_epoch(),
            entries: VecDeque::new(),
            retention: retention.max(1),
            done: false,
            live: broadcast::channel(LIVE_CAPACITY).0,
            fault_connections: 0,
        }
    }

    /// The current epoch name.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The id mode of this incarnation.
    pub fn mode(&self) -> IdMode {
        self.ids.mode()
    }

    /// How many entries are retained.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is retained.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most entries retained; older ones are dropped.
    pub fn retention(&self) -> usize {
        self.retention
    }

    /// The last entry's id.
    pub fn tail(&self) -> Option<Id> {
        self.entries.back().map(|e| e.id)
    }

    /// Whether the `done` entry has been appended.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Fails unless the journal is still in `epoch` (for producers started in an earlier one).
    pub fn check_epoch(&self, epoch: &str) -> Result<(), AppendError> {
        if self.epoch == epoch {
            Ok(())
        } else {
            Err(AppendError::EpochChanged {
                key: self.key.clone(),
            })
        }
    }

    /// Fails if the stream is done.
    pub fn check_open(&self) -> Result<(), AppendError> {
        if self.done {
            Err(AppendError::Done {
                key: self.key.clone(),
            })
        } else {
            Ok(())
        }
    }

    /// Appends one frame and publishes it. Returns its id.
    pub fn append(&mut self, event: &str, data: &str) -> Result<Id, AppendError> {
        let tail = self.append_batch(&[Frame { event, data }])?;
        // A one-frame batch that succeeded appended exactly that frame.
        tail.ok_or(AppendError::Done {
            key: self.key.clone(),
        })
    }

    /// Appends frames in order, renders them into one shared buffer, and publishes them as
    /// one batch. All event names are checked first, so a bad one appends nothing. Frames after
    /// a `done` frame are refused with [`AppendError::Done`] (the ones before stay appended).
    /// Returns the id of the last appended frame.
    pub fn append_batch(&mut self, frames: &[Frame<'_>]) -> Result<Option<Id>, AppendError> {
        for frame in frames {
            validate_event(frame.event)?;
        }
        self.check_open()?;
        let now_ms = match self.ids.mode() {
            IdMode::Redis => wall_clock_ms(),
            IdMode::Numeric => 0,
        };
        let mut buf = BytesMut::with_capacity(
            frames
                .iter()
                .map(|f| f.event.len() + f.data.len() + 40)
                .sum(),
        );
        let mut ends = Vec::with_capacity(frames.len());
        let mut refused = false;
        for frame in frames {
            if self.done {
                refused = true;
                break;
            }
            let id = self.ids.next(now_ms);
            render(&mut buf, id, frame.event, frame.data);
            let done = frame.event == DONE_EVENT;
            self.done = done;
            ends.push((id, buf.len(), done));
        }
        // Split the shared buffer into one `Bytes` per entry: no copy, one allocation.
        let mut entries = Vec::with_capacity(ends.len());
        let mut start = 0;
        for (id, end, done) in ends {
            let bytes = buf.split_to(end - start).freeze();
            start = end;
            entries.push(Entry { id, bytes, done });
        }
        let tail = entries.last().map(|e| e.id);
        self.entries.extend(entries.iter().cloned());
        let excess = self.entries.len().saturating_sub(self.retention);
        self.entries.drain(..excess);
        if !entries.is_empty() {
            // An error only means nobody is subscribed right now, which is fine.
            let _ = self.live.send(Arc::from(entries));
        }
        if refused {
            return Err(AppendError::Done {
                key: self.key.clone(),
            });
        }
        Ok(tail)
    }

    /// The current tail, epoch and done flag.
    pub fn snapshot(&self) -> Snapshot {
        let before_done = match self.done {
            true => self.entries.iter().rev().nth(1).map(|e| e.id),
            false => None,
        };
        Snapshot {
            tail: self.tail(),
            epoch: self.epoch.clone(),
            done: self.done,
            before_done,
        }
    }

    /// Joins the live channel: the receiver gets every batch published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.live.subscribe()
    }

    /// Joins the live channel and snapshots the tail in one step (the caller holds the lock),
    /// so live entries are exactly those with ids above the snapshot's tail.
    pub fn join(&self) -> (broadcast::Receiver<Published>, Snapshot) {
        (self.subscribe(), self.snapshot())
    }

    /// Copies handles to retained entries with `after < id <= upto` into `out`, oldest first,
    /// stopping after `max_entries` entries or once `max_bytes` bytes are collected. With
    /// `after == None` it starts at the oldest retained entry.
    pub fn read_range(
        &self,
        after: Option<Id>,
        upto: Id,
        max_entries: usize,
        max_bytes: usize,
        out: &mut Vec<Entry>,
    ) {
        let start = match after {
            Some(after) => self.entries.partition_point(|e| e.id <= after),
            None => 0,
        };
        let mut bytes = 0;
        for entry in self.entries.range(start..) {
            if entry.id > upto || out.len() >= max_entries || bytes >= max_bytes {
                break;
            }
            bytes += entry.bytes.len();
            out.push(entry.clone());
        }
    }

    /// Copies handles to the last `count` retained entries with `id <= upto` into `out`,
    /// oldest first.
    pub fn read_last(&self, upto: Id, count: usize, out: &mut Vec<Entry>) {
        let end = self.entries.partition_point(|e| e.id <= upto);
        let start = end.saturating_sub(count);
        out.extend(self.entries.range(start..end).cloned());
    }

    /// Wipes the journal into a new incarnation: new epoch, ids restart, not done, fault
    /// counters cleared. Dropping the old live sender ends every live subscription of the old
    /// epoch, so open connections end and their clients reconnect into the new one.
    pub fn reset(&mut self, mode: Option<IdMode>) {
        let mode = mode.unwrap_or(self.ids.mode());
        self.ids = IdGen::new(mode);
        self.epoch = new_epoch();
        self.entries = VecDeque::new();
        self.done = false;
        self.live = broadcast::channel(LIVE_CAPACITY).0;
        self.fault_connections = 0;
    }

    /// Counts one more connection that carries a `status`/`contentType` knob; returns the count
    /// including it.
    pub fn count_fault_connection(&mut self) -> u64 {
        self.fault_connections += 1;
        self.fault_connections
    }
}

/// How many live faults a connection may have pending before it skips the oldest (it reads
/// them whenever it is not blocked writing to its client).
pub const LIVE_FAULTS_CAPACITY: usize = 64;

/// One stream key: its journal, connection counters, and live faults.
#[derive(Debug)]
pub struct Stream {
    journal: Mutex<Journal>,
    open: AtomicU64,
    total: AtomicU64,
    /// Live faults for the open connections: every connection subscribes when it opens.
    faults: broadcast::Sender<LiveFault>,
    /// Faults armed for the next connections.
    armed: Mutex<Armed>,
}

impl Stream {
    fn new(key: &StreamKey, mode: IdMode, retention: usize) -> Stream {
        Stream {
            journal: Mutex::new(Journal::new(key.as_str(), mode, retention)),
            open: AtomicU64::new(0),
            total: AtomicU64::new(0),
            faults: broadcast::channel(LIVE_FAULTS_CAPACITY).0,
            armed: Mutex::new(Armed::default()),
        }
    }

    /// A receiver of the live faults sent from now on; an SSE connection holds one while it is
    /// open, so [`Stream::send_fault`] counts it.
    pub fn live_faults(&self) -> broadcast::Receiver<LiveFault> {
        self.faults.subscribe()
    }

    /// Sends a live fault to every open connection of the key; returns how many got it.
    pub fn send_fault(&self, fault: LiveFault) -> usize {
        // An error only means no connection is open.
        self.faults.send(fault).unwrap_or(0)
    }

    /// The armed faults, for changes; never hold the guard across an `.await`.
    pub fn armed(&self) -> MutexGuard<'_, Armed> {
        self.armed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Locks the journal. Never hold the guard across an `.await`. A panic while it was held
    /// does not lock everybody else out: journal methods keep it consistent at every point a
    /// panic could happen, so the poison flag is ignored.
    pub fn lock(&self) -> MutexGuard<'_, Journal> {
        self.journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers an open SSE connection until the guard drops.
    pub fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(Arc::clone(self))
    }

    /// SSE connections open now.
    pub fn open_connections(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// SSE connections accepted since the key was created (resets do not clear it).
    pub fn total_connections(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// Keeps an SSE connection counted as open; see [`Stream::connection`].
#[derive(Debug)]
pub struct ConnectionGuard(Arc<Stream>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// All stream keys, created on first use and kept for the life of the server.
#[derive(Debug)]
pub struct Streams {
    map: Mutex<HashMap<StreamKey, Arc<Stream>>>,
    default_mode: IdMode,
    retention: usize,
}

impl Streams {
    /// An empty registry; new keys get `default_mode` ids and keep at most `retention` entries.
    pub fn new(default_mode: IdMode, retention: usize) -> Streams {
        Streams {
            map: Mutex::new(HashMap::new()),
            default_mode,
            retention,
        }
    }

    /// The stream of `key`, created empty if it does not exist yet.
    pub fn get(&self, key: &StreamKey) -> Arc<Stream> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            map.entry(key.clone())
                .or_insert_with(|| Arc::new(Stream::new(key, self.default_mode, self.retention))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(entry: &Entry) -> &str {
        std::str::from_utf8(&entry.bytes).unwrap()
    }

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
    fn append_publishes_only_to_existing_subscribers() {
        let mut journal = Journal::new("k", IdMode::Numeric, 10);
        journal.append("token", "before").unwrap();
        let mut rx = journal.subscribe();
        journal.append("token", "after").unwrap();
        let batch = rx.try_recv().unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(text(&batch[0]), "id: 2\nevent: token\ndata: after\n\n");
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn retention_drops_the_oldest() {
        let mut journal = Journal::new("k", IdMode::Numeric, 3);
        for i in 0..5 {
            journal.append("token", &i.to_string()).unwrap();
        }
        assert_eq!(journal.len(), 3);
        let mut out = Vec::new();
        journal.read_range(None, Id::Numeric(5), usize::MAX, usize::MAX, &mut out);
        let ids: Vec<Id> = out.iter().map(|e| e.id).collect();
        assert_eq!(ids, [Id::Numeric(3), Id::Numeric(4), Id::Numeric(5)]);
    }

    #[test]
    fn done_closes_the_journal_until_reset() {
        let mut journal = Journal::new("k", IdMode::Numeric, 10);
        let frames = [
            Frame {
                event: "token",
                data: "x",
            },
            Frame {
                event: "done",
                data: "",
            },
            Frame {
                event: "token",
                data: "late",
            },
        ];
        assert!(matches!(
            journal.append_batch(&frames),
            Err(AppendError::Done { .. })
        ));
        assert_eq!(journal.len(), 2);
        assert!(journal.is_done());
        assert!(journal.append("token", "y").is_err());
        let epoch = journal.epoch().to_owned();
        journal.reset(Some(IdMode::Redis));
        assert_ne!(journal.epoch(), epoch);
        assert!(!journal.is_done());
        assert!(journal.is_empty());
        assert!(matches!(journal.append("token", "z"), Ok(Id::Redis { .. })));
    }

    #[test]
    fn bad_events_append_nothing() {
        let mut journal = Journal::new("k", IdMode::Numeric, 10);
        for bad in ["", "a:b", "a\nb", "ready", "ping"] {
            assert!(journal.append(bad, "x").is_err(), "{bad:?}");
        }
        assert!(journal.is_empty());
    }

    #[test]
    fn read_range_respects_bounds() {
        let mut journal = Journal::new("k", IdMode::Numeric, 100);
        for i in 0..10 {
            journal.append("token", &i.to_string()).unwrap();
        }
        let mut out = Vec::new();
        journal.read_range(
            Some(Id::Numeric(3)),
            Id::Numeric(8),
            2,
            usize::MAX,
            &mut out,
        );
        let ids: Vec<Id> = out.iter().map(|e| e.id).collect();
        assert_eq!(ids, [Id::Numeric(4), Id::Numeric(5)]);
        out.clear();
        journal.read_range(
            Some(Id::Numeric(6)),
            Id::Numeric(8),
            100,
            usize::MAX,
            &mut out,
        );
        let ids: Vec<Id> = out.iter().map(|e| e.id).collect();
        assert_eq!(ids, [Id::Numeric(7), Id::Numeric(8)]);
    }

    #[test]
    fn read_last_takes_the_entries_ending_at_upto() {
        let mut journal = Journal::new("k", IdMode::Numeric, 100);
        for i in 0..6 {
            journal.append("token", &i.to_string()).unwrap();
        }
        let ids = |upto: u64, count: usize| {
            let mut out = Vec::new();
            journal.read_last(Id::Numeric(upto), count, &mut out);
            out.iter().map(|e| e.id).collect::<Vec<_>>()
        };
        assert_eq!(ids(4, 2), [Id::Numeric(3), Id::Numeric(4)]);
        assert_eq!(ids(2, 5), [Id::Numeric(1), Id::Numeric(2)]);
        assert_eq!(ids(6, 0), []);
    }

    #[test]
    fn keys_are_validated() {
        assert!(StreamKey::parse("chat-1.a_b").is_ok());
        assert!(StreamKey::parse("").is_err());
        assert!(StreamKey::parse("a/b").is_err());
        assert!(StreamKey::parse(&"x".repeat(129)).is_err());
        assert!(StreamKey::parse(&"x".repeat(128)).is_ok());
    }
}
