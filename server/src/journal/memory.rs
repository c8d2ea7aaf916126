//! The in-memory journal: a log of pre-rendered entries per key, and a [`broadcast`] channel
//! per key as its live path.
//!
//! The channel, like a real broker, delivers only what is published after a subscriber joined.
//! Joining subscribes and snapshots the head in one lock hold, so live entries are exactly
//! those after the snapshot's tail. Locks are std mutexes held only for short synchronous
//! sections, never across an `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use super::{
    new_epoch, render_entries, validate_event, Appended, BoxFuture, Entry, Frame, Head, Journal,
    JournalError, Live, Published, ReadLimits, StreamKey, LIVE_CAPACITY,
};
use crate::id::{wall_clock_ms, Id, IdGen, IdMode};

/// The log of one stream key: entries, id generator, epoch, and the live channel.
#[derive(Debug)]
struct Log {
    key: String,
    ids: IdGen,
    epoch: String,
    entries: VecDeque<Entry>,
    retention: usize,
    done: bool,
    live: broadcast::Sender<Published>,
}

impl Log {
    fn new(key: &str, mode: IdMode, retention: usize) -> Log {
        Log {
            key: key.to_owned(),
            ids: IdGen::new(mode),
            epoch: new_epoch(),
            entries: VecDeque::new(),
            retention: retention.max(1),
            done: false,
            live: broadcast::channel(LIVE_CAPACITY).0,
        }
    }

    fn head(&self) -> Head {
        Head {
            epoch: self.epoch.clone(),
            mode: self.ids.mode(),
            tail: self.entries.back().map(|e| e.id),
            done: self.done,
            length: self.entries.len() as u64,
        }
    }

    fn check_epoch(&self, epoch: &str) -> Result<(), JournalError> {
        if self.epoch == epoch {
            Ok(())
        } else {
            Err(JournalError::EpochChanged {
                key: self.key.clone(),
            })
        }
    }

    fn done_error(&self) -> JournalError {
        JournalError::Done {
            key: self.key.clone(),
        }
    }

    /// See [`Journal::append`]: all frames rendered into one shared buffer and published as
    /// one batch.
    fn append(
        &mut self,
        frames: &[Frame<'_>],
        epoch: Option<&str>,
    ) -> Result<Appended, JournalError> {
        for frame in frames {
            validate_event(frame.event)?;
        }
        if let Some(epoch) = epoch {
            self.check_epoch(epoch)?;
        }
        if self.done {
            return Err(self.done_error());
        }
        let now_ms = match self.ids.mode() {
            IdMode::Redis => wall_clock_ms(),
            IdMode::Numeric => 0,
        };
        // Frames up to and including the first `done`; the rest are refused.
        let take = frames
            .iter()
            .position(|f| f.event == super::DONE_EVENT)
            .map_or(frames.len(), |at| at + 1);
        let ids = &mut self.ids;
        let entries = render_entries(
            frames[..take]
                .iter()
                .map(|f| (ids.next(now_ms), f.event, f.data)),
        );
        let last = entries.last().map(|e| e.id);
        self.done = entries.last().is_some_and(|e| e.done);
        self.entries.extend(entries.iter().cloned());
        let excess = self.entries.len().saturating_sub(self.retention);
        self.entries.drain(..excess);
        if !entries.is_empty() {
            // An error only means nobody is subscribed right now, which is fine.
            let _ = self.live.send(Arc::from(entries));
        }
        if take < frames.len() {
            return Err(self.done_error());
        }
        Ok(Appended {
            epoch: self.epoch.clone(),
            last,
        })
    }

    fn read_range(&self, after: Option<Id>, upto: Id, limits: ReadLimits, out: &mut Vec<Entry>) {
        let start = match after {
            Some(after) => self.entries.partition_point(|e| e.id <= after),
            None => 0,
        };
        let (mut count, mut bytes) = (0, 0);
        for entry in self.entries.range(start..) {
            if entry.id > upto || count >= limits.entries || bytes >= limits.bytes {
                break;
            }
            count += 1;
            bytes += entry.bytes.len();
            out.push(entry.clone());
        }
    }

    fn read_last(&self, upto: Id, count: usize, out: &mut Vec<Entry>) {
        let end = self.entries.partition_point(|e| e.id <= upto);
        let start = end.saturating_sub(count);
        out.extend(self.entries.range(start..end).cloned());
    }

    /// A new incarnation. Dropping the old live sender ends every live subscription of the
    /// old epoch, so open connections end and their clients reconnect into the new one.
    fn reset(&mut self, mode: Option<IdMode>) {
        let mode = mode.unwrap_or(self.ids.mode());
        self.ids = IdGen::new(mode);
        self.epoch = new_epoch();
        self.entries = VecDeque::new();
        self.done = false;
        self.live = broadcast::channel(LIVE_CAPACITY).0;
    }
}

/// The in-memory journal: the embedded default, nothing to install. Journals live as long as
/// the value (keys are kept once created) and die with the process.
#[derive(Debug)]
pub struct MemoryJournal {
    logs: Mutex<HashMap<StreamKey, Arc<Mutex<Log>>>>,
    default_mode: IdMode,
    retention: usize,
}

impl MemoryJournal {
    /// An empty journal; new keys get `default_mode` ids and keep at most `retention` entries
    /// (at least 1).
    pub fn new(default_mode: IdMode, retention: usize) -> MemoryJournal {
        MemoryJournal {
            logs: Mutex::new(HashMap::new()),
            default_mode,
            retention: retention.max(1),
        }
    }

    /// Runs `f` on the log of `key` (created if needed) under its lock. A panic while a lock
    /// was held does not lock everybody else out: the log is consistent at every point where a
    /// panic could happen, so the poison flag is ignored.
    fn with<T>(&self, key: &StreamKey, f: impl FnOnce(&mut Log) -> T) -> T {
        let log = {
            let mut logs = relock(&self.logs);
            Arc::clone(logs.entry(key.clone()).or_insert_with(|| {
                Arc::new(Mutex::new(Log::new(
                    key.as_str(),
                    self.default_mode,
                    self.retention,
                )))
            }))
        };
        let mut log = relock(&log);
        f(&mut log)
    }
}

fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl Journal for MemoryJournal {
    fn head<'a>(&'a self, key: &'a StreamKey) -> BoxFuture<'a, Result<Head, JournalError>> {
        ready(Ok(self.with(key, |log| log.head())))
    }

    fn append<'a>(
        &'a self,
        key: &'a StreamKey,
        frames: &'a [Frame<'a>],
        epoch: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Appended, JournalError>> {
        ready(self.with(key, |log| log.append(frames, epoch)))
    }

    fn join<'a>(&'a self, key: &'a StreamKey) -> BoxFuture<'a, Result<(Live, Head), JournalError>> {
        // One lock hold: live entries are exactly those after the snapshot's tail.
        ready(Ok(self.with(key, |log| (log.live.subscribe(), log.head()))))
    }

    fn subscribe<'a>(
        &'a self,
        key: &'a StreamKey,
        epoch: &'a str,
    ) -> BoxFuture<'a, Result<Live, JournalError>> {
        ready(self.with(key, |log| {
            log.check_epoch(epoch)?;
            Ok(log.live.subscribe())
        }))
    }

    fn read_range<'a>(
        &'a self,
        key: &'a StreamKey,
        epoch: &'a str,
        after: Option<Id>,
        upto: Id,
        limits: ReadLimits,
        out: &'a mut Vec<Entry>,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        ready(self.with(key, |log| {
            log.check_epoch(epoch)?;
            log.read_range(after, upto, limits, out);
            Ok(())
        }))
    }

    fn read_last<'a>(
        &'a self,
        key: &'a StreamKey,
        epoch: &'a str,
        upto: Id,
        count: usize,
        out: &'a mut Vec<Entry>,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        ready(self.with(key, |log| {
            log.check_epoch(epoch)?;
            log.read_last(upto, count, out);
            Ok(())
        }))
    }

    fn reset<'a>(
        &'a self,
        key: &'a StreamKey,
        mode: Option<IdMode>,
    ) -> BoxFuture<'a, Result<Head, JournalError>> {
        ready(Ok(self.with(key, |log| {
            log.reset(mode);
            log.head()
        })))
    }

    fn retention(&self) -> usize {
        self.retention
    }

    fn engine(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(entry: &Entry) -> &str {
        std::str::from_utf8(&entry.bytes).unwrap()
    }

    fn frame<'a>(event: &'a str, data: &'a str) -> Frame<'a> {
        Frame { event, data }
    }

    fn append(log: &mut Log, event: &str, data: &str) -> Result<Id, JournalError> {
        log.append(&[frame(event, data)], None)
            .map(|a| a.last.expect("one entry"))
    }

    fn ids(entries: &[Entry]) -> Vec<Id> {
        entries.iter().map(|e| e.id).collect()
    }

    #[test]
    fn append_publishes_only_to_existing_subscribers() {
        let mut log = Log::new("k", IdMode::Numeric, 10);
        append(&mut log, "token", "before").unwrap();
        let mut rx = log.live.subscribe();
        append(&mut log, "token", "after").unwrap();
        let batch = rx.try_recv().unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(text(&batch[0]), "id: 2\nevent: token\ndata: after\n\n");
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn retention_drops_the_oldest() {
        let mut log = Log::new("k", IdMode::Numeric, 3);
        for i in 0..5 {
            append(&mut log, "token", &i.to_string()).unwrap();
        }
        assert_eq!(log.head().length, 3);
        let mut out = Vec::new();
        let all = ReadLimits {
            entries: usize::MAX,
            bytes: usize::MAX,
        };
        log.read_range(None, Id::Numeric(5), all, &mut out);
        assert_eq!(ids(&out), [Id::Numeric(3), Id::Numeric(4), Id::Numeric(5)]);
    }

    #[test]
    fn done_closes_the_log_until_reset() {
        let mut log = Log::new("k", IdMode::Numeric, 10);
        let frames = [
            frame("token", "x"),
            frame("done", ""),
            frame("token", "late"),
        ];
        assert!(matches!(
            log.append(&frames, None),
            Err(JournalError::Done { .. })
        ));
        assert_eq!(log.head().length, 2);
        assert!(log.head().done);
        assert!(append(&mut log, "token", "y").is_err());
        let epoch = log.epoch.clone();
        log.reset(Some(IdMode::Redis));
        let head = log.head();
        assert_ne!(head.epoch, epoch);
        assert!(!head.done);
        assert_eq!(head.length, 0);
        assert!(matches!(
            append(&mut log, "token", "z"),
            Ok(Id::Redis { .. })
        ));
        assert!(matches!(
            log.append(&[frame("token", "old")], Some(&epoch)),
            Err(JournalError::EpochChanged { .. })
        ));
    }

    #[test]
    fn bad_events_append_nothing() {
        let mut log = Log::new("k", IdMode::Numeric, 10);
        for bad in ["", "a:b", "a\nb", "ready", "ping"] {
            assert!(append(&mut log, bad, "x").is_err(), "{bad:?}");
        }
        assert_eq!(log.head().length, 0);
    }

    #[test]
    fn read_range_respects_bounds() {
        let mut log = Log::new("k", IdMode::Numeric, 100);
        for i in 0..10 {
            append(&mut log, "token", &i.to_string()).unwrap();
        }
        let mut out = Vec::new();
        let two = ReadLimits {
            entries: 2,
            bytes: usize::MAX,
        };
        log.read_range(Some(Id::Numeric(3)), Id::Numeric(8), two, &mut out);
        assert_eq!(ids(&out), [Id::Numeric(4), Id::Numeric(5)]);
        out.clear();
        let many = ReadLimits {
            entries: 100,
            bytes: usize::MAX,
        };
        log.read_range(Some(Id::Numeric(6)), Id::Numeric(8), many, &mut out);
        assert_eq!(ids(&out), [Id::Numeric(7), Id::Numeric(8)]);
    }

    #[test]
    fn read_last_takes_the_entries_ending_at_upto() {
        let mut log = Log::new("k", IdMode::Numeric, 100);
        for i in 0..6 {
            append(&mut log, "token", &i.to_string()).unwrap();
        }
        let last = |upto: u64, count: usize| {
            let mut out = Vec::new();
            log.read_last(Id::Numeric(upto), count, &mut out);
            ids(&out)
        };
        assert_eq!(last(4, 2), [Id::Numeric(3), Id::Numeric(4)]);
        assert_eq!(last(2, 5), [Id::Numeric(1), Id::Numeric(2)]);
        assert_eq!(last(6, 0), []);
    }
}
