//! One re-armable timeout for the session's single deadline.

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::callback::Timeout;

use crate::core::Timestamp;

/// What is armed: a browser timeout, or, for a deadline already due, a microtask (it runs as
/// soon as the current task's script returns, with no timer task to wait for: a leader's frames
/// reach its followers without that hop) that a cancelled flag stops.
enum Armed {
    Timeout(Timeout),
    /// Held for its `Drop`, which stops the microtask.
    Microtask {
        _cancel: Cancel,
    },
}

/// Stops a queued microtask when dropped.
struct Cancel(Rc<Cell<bool>>);

impl Drop for Cancel {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// The session asks for one deadline at a time; this keeps one browser timeout for it.
/// Dropping the timer cancels it.
#[must_use = "dropping the timer cancels it"]
#[derive(Default)]
pub(crate) struct Timer {
    armed: Option<(Timestamp, Armed)>,
    /// The millisecond of the last microtask: at most one per millisecond, so a deadline that
    /// stayed due after it ran (the session found nothing to do) waits for a timer task instead of
    /// spinning in microtasks, which would starve the page.
    microtask_at: Option<u64>,
}

impl Timer {
    /// Arms the timer for `at`, or disarms it for `None`. A deadline at or after the one armed
    /// keeps the armed timeout: it fires early, the session finds nothing due and asks again.
    /// The heartbeat deadline moves with every frame, so this keeps timer calls (and the clock,
    /// read only when arming) off the hot path.
    pub(crate) fn set(
        &mut self,
        at: Option<Timestamp>,
        now: impl FnOnce() -> Timestamp,
        on_fire: impl FnOnce() + 'static,
    ) {
        match (&self.armed, at) {
            (Some((armed, _)), Some(at)) if at >= *armed => return,
            (None, None) => return,
            _ => {}
        }
        // Dropping the previous one clears it.
        self.armed = at.map(|at| {
            let now = now().as_millis();
            let delay = at.as_millis().saturating_sub(now);
            if delay == 0 && self.microtask_at != Some(now) {
                self.microtask_at = Some(now);
                let cancelled = Rc::new(Cell::new(false));
                let stop = Rc::clone(&cancelled);
                wasm_bindgen_futures::spawn_local(async move {
                    if !stop.get() {
                        on_fire();
                    }
                });
                return (
                    at,
                    Armed::Microtask {
                        _cancel: Cancel(cancelled),
                    },
                );
            }
            let delay = u32::try_from(delay).unwrap_or(u32::MAX);
            (at, Armed::Timeout(Timeout::new(delay, on_fire)))
        });
    }

    /// Forgets the deadline after it fired, so the next `set` re-arms even for the same instant.
    pub(crate) fn fired(&mut self) {
        // A microtask that ran has nothing to clear: dropping it sets a flag no one reads any more.
        if let Some((_, Armed::Timeout(timeout))) = self.armed.take() {
            timeout.forget();
        }
    }
}
