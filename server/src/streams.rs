//! What this process keeps per stream key beside the journal: its open SSE connections, the
//! live faults sent to them, the faults armed for its next connections, and the `failCount`
//! counter. This is per process even when the journal is shared (Redis): a live fault reaches
//! the connections of the process that received it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use crate::faults::{Armed, LiveFault};
use crate::journal::StreamKey;

/// How many live faults a connection may have pending before it skips the oldest (it reads
/// them whenever it is not blocked writing to its client).
pub const LIVE_FAULTS_CAPACITY: usize = 64;

/// One stream key, as this process sees it.
#[derive(Debug)]
pub struct Stream {
    open: AtomicU64,
    total: AtomicU64,
    /// Live faults for the open connections: every connection subscribes when it opens.
    faults: broadcast::Sender<LiveFault>,
    /// Faults armed for the next connections.
    armed: Mutex<Armed>,
    /// Connections that carried a `status`/`contentType` knob, counted per epoch (a reset
    /// starts the count again): `(epoch, count)`.
    failed: Mutex<(String, u64)>,
}

impl Stream {
    fn new() -> Stream {
        Stream {
            open: AtomicU64::new(0),
            total: AtomicU64::new(0),
            faults: broadcast::channel(LIVE_FAULTS_CAPACITY).0,
            armed: Mutex::new(Armed::default()),
            failed: Mutex::new((String::new(), 0)),
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
        relock(&self.armed)
    }

    /// Counts one more connection that carries a `status`/`contentType` knob in `epoch`;
    /// returns the count including it.
    pub fn count_fault_connection(&self, epoch: &str) -> u64 {
        let mut failed = relock(&self.failed);
        if failed.0 != epoch {
            *failed = (epoch.to_owned(), 0);
        }
        failed.1 += 1;
        failed.1
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

    /// SSE connections accepted since the key was first used here (resets do not clear it).
    pub fn total_connections(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// Locks, ignoring the poison flag: every section these locks guard leaves the data
/// consistent at any point a panic could happen.
fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Keeps an SSE connection counted as open; see [`Stream::connection`].
#[derive(Debug)]
pub struct ConnectionGuard(Arc<Stream>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every stream key this process has seen, kept for its life.
#[derive(Debug, Default)]
pub struct Streams {
    map: Mutex<HashMap<StreamKey, Arc<Stream>>>,
}

impl Streams {
    /// An empty registry.
    pub fn new() -> Streams {
        Streams::default()
    }

    /// The stream of `key`, created if this process has not seen it yet.
    pub fn get(&self, key: &StreamKey) -> Arc<Stream> {
        let mut map = relock(&self.map);
        Arc::clone(
            map.entry(key.clone())
                .or_insert_with(|| Arc::new(Stream::new())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fail_count_starts_again_in_a_new_epoch() {
        let stream = Stream::new();
        assert_eq!(stream.count_fault_connection("1-a"), 1);
        assert_eq!(stream.count_fault_connection("1-a"), 2);
        assert_eq!(stream.count_fault_connection("2-b"), 1);
    }
}
