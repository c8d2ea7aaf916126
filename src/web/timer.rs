//! One re-armable timeout for the session's single deadline.

use gloo_timers::callback::Timeout;

use crate::core::Timestamp;

/// The session asks for one deadline at a time; this keeps one browser timeout for it.
/// Dropping the timer cancels it.
#[must_use = "dropping the timer cancels it"]
#[derive(Default)]
pub(crate) struct Timer {
    armed: Option<(Timestamp, Timeout)>,
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
        // Dropping the previous `Timeout` clears it.
        self.armed = at.map(|at| {
            let delay = at.as_millis().saturating_sub(now().as_millis());
            let delay = u32::try_from(delay).unwrap_or(u32::MAX);
            (at, Timeout::new(delay, on_fire))
        });
    }

    /// Forgets the deadline after it fired, so the next `set` re-arms even for the same instant.
    pub(crate) fn fired(&mut self) {
        if let Some((_, timeout)) = self.armed.take() {
            timeout.forget();
        }
    }
}
