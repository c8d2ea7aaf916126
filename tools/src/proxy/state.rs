//! What the proxy remembers across requests: open event streams (for live faults), armed faults,
//! the last journaled frames per path (for seams), status-fault counts, and a short request log.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::knobs::{Knobs, MAX_SEAM};
use super::shape::Live;

/// Most paths whose last frames are kept (the oldest path is forgotten beyond it).
const MAX_SEAM_PATHS: usize = 256;
/// Most bytes of frames kept per path.
const MAX_SEAM_BYTES: usize = 4 << 20;
/// Requests kept in the log of `/_proxy/stats`.
const LOG_LEN: usize = 200;
/// Most paths with status-fault counts.
const MAX_COUNTED_PATHS: usize = 4096;

/// Faults armed for the next requests whose path contains `matching`.
#[derive(Clone, Debug)]
struct Armed {
    knobs: Knobs,
    matching: Option<String>,
    left: u64,
}

/// One line of the request log.
#[derive(Clone, Debug)]
pub struct Logged {
    /// Request number (from 1).
    pub n: u64,
    /// Method.
    pub method: String,
    /// Path and forwarded query.
    pub target: String,
    /// Status sent to the client (`None` while unknown).
    pub status: Option<u16>,
    /// Knobs in force.
    pub faults: Vec<String>,
    /// What happened, briefly (`cut after 25 journaled frames`, `upstream unreachable`).
    pub note: Option<String>,
}

#[derive(Default)]
struct Inner {
    open: HashMap<u64, (String, mpsc::UnboundedSender<Live>)>,
    armed: Vec<Armed>,
    seams: HashMap<String, VecDeque<Bytes>>,
    seam_order: VecDeque<String>,
    failures: HashMap<(String, u16), u64>,
    log: VecDeque<Logged>,
}

/// The proxy's shared state.
#[derive(Default)]
pub struct State {
    requests: AtomicU64,
    inner: Mutex<Inner>,
    /// Print each request's line on stderr, and again when a note is added (`--log`).
    log: bool,
}

impl State {
    /// A new state; `log` prints each request's line on stderr (`--log`).
    pub fn new(log: bool) -> State {
        State {
            log,
            ..State::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the maps consistent, so a panic elsewhere cannot leave a
        // half-done update behind: the poison flag carries no information.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Numbers a new request and logs it.
    pub fn begin(&self, method: &str, target: &str, knobs: &Knobs) -> u64 {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let mut inner = self.lock();
        if inner.log.len() == LOG_LEN {
            inner.log.pop_front();
        }
        inner.log.push_back(Logged {
            n,
            method: method.to_owned(),
            target: target.to_owned(),
            status: None,
            faults: knobs.describe(),
            note: None,
        });
        n
    }

    /// Records the status and a note for request `n`.
    pub fn finish(&self, n: u64, status: u16, note: Option<String>) {
        let mut inner = self.lock();
        if let Some(entry) = inner.log.iter_mut().rev().find(|e| e.n == n) {
            entry.status = Some(status);
            if note.is_some() {
                entry.note = note;
            }
        }
    }

    /// Adds a note to request `n` (what a shaped stream did).
    pub fn note(&self, n: u64, note: String) {
        let mut inner = self.lock();
        if let Some(entry) = inner.log.iter_mut().rev().find(|e| e.n == n) {
            entry.note = Some(note);
        }
        drop(inner);
        self.print(n);
    }

    /// `--log`: request `n`'s line on stderr.
    pub fn print(&self, n: u64) {
        if self.log {
            if let Some(line) = self.line(n) {
                eprintln!("{line}");
            }
        }
    }

    /// Request `n` on one line: `#3 GET /streams/k/events -> 200 [cutAfter=5] cut after 5 …`.
    pub fn line(&self, n: u64) -> Option<String> {
        let inner = self.lock();
        let e = inner.log.iter().rev().find(|e| e.n == n)?;
        let status = e.status.map_or("-".to_owned(), |s| s.to_string());
        let mut line = format!("#{} {} {} -> {status}", e.n, e.method, e.target);
        if !e.faults.is_empty() {
            line.push_str(&format!(" [{}]", e.faults.join(" ")));
        }
        if let Some(note) = &e.note {
            line.push_str(&format!(" {note}"));
        }
        Some(line)
    }

    /// Arms `knobs` for the next `count` requests whose path contains `matching`.
    pub fn arm(&self, knobs: Knobs, matching: Option<String>, count: u64) {
        self.lock().armed.push(Armed {
            knobs,
            matching,
            left: count,
        });
    }

    /// Forgets every armed fault.
    pub fn disarm(&self) -> usize {
        std::mem::take(&mut self.lock().armed).len()
    }

    /// The armed faults that apply to a request to `path`, each used once.
    pub fn take_armed(&self, path: &str) -> Option<Knobs> {
        let mut inner = self.lock();
        let mut out: Option<Knobs> = None;
        for armed in inner.armed.iter_mut() {
            if armed.matching.as_deref().is_none_or(|m| path.contains(m)) {
                armed.left -= 1;
                out = Some(out.unwrap_or_default().merged(&armed.knobs));
            }
        }
        inner.armed.retain(|a| a.left > 0);
        out
    }

    /// Counts one more request to `path` asking for `status`; returns the count.
    pub fn count_failure(&self, path: &str, status: u16) -> u64 {
        let mut inner = self.lock();
        if inner.failures.len() >= MAX_COUNTED_PATHS {
            inner.failures.clear();
        }
        let count = inner.failures.entry((path.to_owned(), status)).or_insert(0);
        *count += 1;
        *count
    }

    /// Registers an open event stream to `path`; its live faults arrive on the receiver.
    pub fn open(
        self: &Arc<Self>,
        n: u64,
        path: &str,
    ) -> (Registration, mpsc::UnboundedReceiver<Live>) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().open.insert(n, (path.to_owned(), tx));
        (
            Registration {
                state: self.clone(),
                n,
            },
            rx,
        )
    }

    /// Sends `faults` to the open streams whose path contains `matching`; returns how many.
    pub fn live(&self, faults: &[Live], matching: Option<&str>) -> usize {
        let inner = self.lock();
        let mut affected = 0;
        for (path, tx) in inner.open.values() {
            if matching.is_none_or(|m| path.contains(m)) {
                affected += 1;
                for fault in faults {
                    let _ = tx.send(fault.clone());
                }
            }
        }
        affected
    }

    /// Keeps journaled frames that went out on `path`, for the seams of later connections.
    pub fn remember(&self, path: &str, frames: Vec<Bytes>) {
        if frames.is_empty() {
            return;
        }
        let mut inner = self.lock();
        if !inner.seams.contains_key(path) {
            if inner.seam_order.len() == MAX_SEAM_PATHS {
                if let Some(oldest) = inner.seam_order.pop_front() {
                    inner.seams.remove(&oldest);
                }
            }
            inner.seam_order.push_back(path.to_owned());
        }
        let kept = inner.seams.entry(path.to_owned()).or_default();
        kept.extend(frames);
        let mut bytes: usize = kept.iter().map(Bytes::len).sum();
        while kept.len() > MAX_SEAM || (bytes > MAX_SEAM_BYTES && kept.len() > 1) {
            if let Some(dropped) = kept.pop_front() {
                bytes -= dropped.len();
            }
        }
    }

    /// The last `k` journaled frames that went out on `path`.
    pub fn seam(&self, path: &str, k: usize) -> Vec<Bytes> {
        let inner = self.lock();
        inner
            .seams
            .get(path)
            .map(|kept| {
                kept.iter()
                    .skip(kept.len().saturating_sub(k))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `GET /_proxy/stats`.
    pub fn stats(&self) -> Value {
        let inner = self.lock();
        let mut open: Vec<&String> = inner.open.values().map(|(path, _)| path).collect();
        open.sort();
        json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "openStreams": open,
            "armed": inner.armed.iter().map(|a| json!({
                "faults": a.knobs.describe(),
                "match": a.matching,
                "left": a.left,
            })).collect::<Vec<_>>(),
            "log": inner.log.iter().map(|e| json!({
                "n": e.n,
                "method": e.method,
                "target": e.target,
                "status": e.status,
                "faults": e.faults,
                "note": e.note,
            })).collect::<Vec<_>>(),
        })
    }
}

/// An open event stream's place in the registry; removed when dropped.
pub struct Registration {
    state: Arc<State>,
    n: u64,
}

impl Registration {
    /// The request number.
    pub fn n(&self) -> u64 {
        self.n
    }

    /// The shared state.
    pub fn state(&self) -> &State {
        &self.state
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.state.lock().open.remove(&self.n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armed_faults_are_used_once_per_matching_request() {
        let state = State::default();
        let cut = Knobs {
            cut_after: Some(3),
            ..Knobs::default()
        };
        state.arm(cut, Some("/k1/".into()), 2);
        assert!(state.take_armed("/streams/k2/events").is_none());
        assert_eq!(
            state.take_armed("/streams/k1/events").unwrap().cut_after,
            Some(3)
        );
        assert!(state.take_armed("/streams/k1/events").is_some());
        assert!(state.take_armed("/streams/k1/events").is_none());
    }

    #[test]
    fn seams_keep_the_last_frames_per_path() {
        let state = State::default();
        let frames: Vec<Bytes> = (0..(MAX_SEAM + 5))
            .map(|i| Bytes::from(i.to_string()))
            .collect();
        state.remember("/a", frames);
        let last = state.seam("/a", 2);
        assert_eq!(
            last,
            [
                Bytes::from((MAX_SEAM + 3).to_string()),
                Bytes::from((MAX_SEAM + 4).to_string())
            ]
        );
        assert_eq!(state.seam("/a", MAX_SEAM * 2).len(), MAX_SEAM);
        assert!(state.seam("/b", 3).is_empty());
    }

    #[test]
    fn live_faults_reach_open_streams_of_matching_paths_until_they_close() {
        let state = Arc::new(State::default());
        let (registration, mut rx) = state.open(1, "/streams/a/events");
        let (_other, mut other_rx) = state.open(2, "/streams/b/events");
        assert_eq!(state.live(&[Live::Cut], Some("/a/")), 1);
        assert_eq!(rx.try_recv(), Ok(Live::Cut));
        assert!(other_rx.try_recv().is_err());
        drop(registration);
        assert_eq!(state.live(&[Live::Stall], None), 1);
    }
}
