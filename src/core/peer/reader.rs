//! The frames delivered to one tab's application that it has not taken yet, and the bounds that
//! keep them few.
//!
//! A reader that falls behind must not make memory grow without bound. How that is enforced
//! depends on what feeds the queue: a `fetch` body pauses (backpressure reaches the network); an
//! `EventSource` or a leader tab's channel cannot pause, so the connection is closed and later
//! resumed from the last frame delivered.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::core::frame::Frame;

/// Queued frames at which this tab's own `EventSource`, or a follower's link to its leader, is
/// closed (neither can pause), and at which the session reconnects from the last frame delivered.
/// Higher than for `fetch`: each pause costs a reconnect and a replay.
pub const UNPAUSABLE_HIGH: usize = 8192;
/// Queued frames at or below which a closed link is resumed.
pub const UNPAUSABLE_LOW: usize = 2048;

/// Queued frames at which a `fetch` body pauses. The queue never holds more: the rest of a slice
/// of the body waits, parsed but not turned into frames, in the connection's parser.
pub const BODY_HIGH: usize = 2048;
/// Queued frames at or below which a paused `fetch` body resumes.
pub const BODY_LOW: usize = 512;

/// How long a leader serving followers may hold more frames than its bound before it hands the
/// lead to another tab: long enough for a burst to be read, short enough that a page that reads
/// too slowly (or stopped: a throttled background tab) does not hold the stream.
pub const READER_STUCK: std::time::Duration = std::time::Duration::from_secs(1);

/// A frame waiting for the application.
#[derive(Debug)]
pub(crate) struct Queued<P> {
    pub(crate) frame: Frame,
    pub(crate) epoch: Arc<str>,
    /// The frame as the driver already made it for the application, if it did (the browser's own
    /// `EventSource` strings), so it need not be made again from `frame`.
    pub(crate) payload: Option<P>,
}

/// The application's queue: frames in delivery order. A batch of them can be shown to the reader
/// at once (one crossing into JavaScript); each is taken, and the cursor moves, one by one.
#[derive(Debug)]
pub(crate) struct Reader<P> {
    queue: VecDeque<Queued<P>>,
    /// How many frames at the front have been shown but not taken.
    shown: usize,
}

impl<P> Reader<P> {
    pub(crate) fn new() -> Self {
        Reader {
            queue: VecDeque::new(),
            shown: 0,
        }
    }

    pub(crate) fn push(&mut self, queued: Queued<P>) {
        self.queue.push_back(queued);
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether there are frames not shown yet.
    pub(crate) fn has_unshown(&self) -> bool {
        self.shown < self.queue.len()
    }

    /// Frames taken but for `shown` are still shown (the reader holds them).
    pub(crate) fn holds_shown(&self) -> bool {
        self.shown > 0
    }

    /// The frames not shown yet, in order; they count as shown from now on.
    pub(crate) fn show(&mut self) -> impl Iterator<Item = &Queued<P>> {
        let from = self.shown;
        self.shown = self.queue.len();
        self.queue.range(from..)
    }

    /// The oldest frame, taken by the application.
    pub(crate) fn take(&mut self) -> Option<Queued<P>> {
        let queued = self.queue.pop_front()?;
        self.shown = self.shown.saturating_sub(1);
        Some(queued)
    }
}
