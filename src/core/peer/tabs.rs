//! The peer's cross-tab inputs: the stream's lock, its channel, and the deadlines of leadership.
//!
//! The lock holder leads: it owns the only connection and republishes what its session delivers.
//! Followers feed the leader's frames to their own session, which dedups by id as it does for a
//! server, so a catch-up that overlaps live frames, a second leader or a hostile message can never
//! duplicate a frame. Nothing on the channel is trusted: it is decoded strictly by the driver,
//! fenced here by term and sender, and counted when rejected.

use super::sharing::{Hello, LockTicket, FINISHED_LEADER_HOLD};
use super::{Action, Peer, Source};
use crate::core::frame::{Frame, RawEvent, ReadyInfo};
use crate::core::session::{ConnectionId, Cursor, State};
use crate::core::tabs::TabMessage;
use crate::core::time::Timestamp;

impl<P> Peer<P> {
    /// The browser granted the lock requested under `ticket`: this tab leads and takes over the
    /// connection.
    pub fn handle_lock_granted(&mut self, ticket: LockTicket, now: Timestamp) {
        let Some(sharing) = self.sharing.as_mut().filter(|s| s.current(ticket)) else {
            return;
        };
        sharing.leading = true;
        // Followers of earlier terms say hello again when they hear of this one.
        sharing.followers = false;
        let (me, term) = (sharing.me.clone(), sharing.next_term());
        sharing.adopt_leader(&me, term);
        sharing.silence_until = None;
        sharing.ping_at = Some(now.saturating_add(self.ping_every));
        sharing.announce(&mut self.actions);
        // The stream moves to a connection of our own. A link the channel had joined becomes a
        // new connection, not ready (and serving no one) until its own `ready`: what the channel
        // told us may be stale. One that had not joined simply gets its transport.
        match self.link.as_ref().map(|l| &l.source) {
            Some(Source::Leader { .. }) if self.session.joined() => self.session.reconnect(now),
            Some(Source::Leader { .. }) => self.connect_own(),
            // Already joined on our own connection (we were catching up on it): lead from here.
            Some(Source::Own) if self.session.joined() && !self.body_ended => {
                if let Some(epoch) = self.session.epoch().map(str::to_owned) {
                    self.leader_ready(&epoch, now);
                }
            }
            _ => {}
        }
        self.pump(now);
    }

    /// The lock request under `ticket` failed, or the held lock was taken (a steal): lead no
    /// more, and queue again.
    pub fn handle_lock_lost(&mut self, ticket: LockTicket, now: Timestamp) {
        if !self.sharing.as_ref().is_some_and(|s| s.current(ticket)) {
            return;
        }
        self.hand_over(now);
        self.pump(now);
    }

    /// A message from another tab, decoded by the driver (`None`: it could not be decoded).
    pub fn handle_tab_message(&mut self, message: Option<TabMessage>, now: Timestamp) {
        self.on_tab_message(message, now);
        self.pump(now);
    }

    fn on_tab_message(&mut self, message: Option<TabMessage>, now: Timestamp) {
        let Some(sharing) = self.sharing.as_mut().filter(|s| !s.left) else {
            return;
        };
        let Some(message) = message else {
            sharing.rejected += 1;
            return;
        };
        if message.from() == sharing.me {
            sharing.rejected += 1; // our id in someone else's message: forged
            return;
        }
        if let TabMessage::Hello {
            from,
            cursor,
            now: now_start,
            seen_term,
            seen_leader,
        } = message
        {
            if sharing.leading {
                sharing.followers = true;
                sharing.outbid(seen_term, seen_leader.as_deref(), &mut self.actions);
                let hello = Hello {
                    from,
                    cursor,
                    now: now_start,
                };
                // Only a leader joined on its own connection knows the stream as it is now (a
                // paused one, or one still moving off the channel, may hold a stale epoch). One
                // whose stream finished still answers, from its buffer, while it holds the lock.
                let joined = self.session.state() == State::Live
                    && self.link.as_ref().is_some_and(|l| l.source == Source::Own)
                    && !self.body_ended;
                let serving = joined || self.finished;
                match self.session.epoch().filter(|_| serving) {
                    Some(epoch) => sharing.welcome(
                        hello,
                        epoch,
                        self.session.start(),
                        self.finished,
                        &mut self.actions,
                    ),
                    None => {
                        sharing.pending.push(hello);
                        // Tell the follower a leader exists, so it waits instead of connecting.
                        sharing.post_ping(&mut self.actions);
                    }
                }
            }
            return;
        }
        // Everything else comes from a leader: fence it.
        let from = message.from().to_owned();
        let term = message.term().unwrap_or(0);
        if term > sharing.term {
            sharing.adopt_leader(&from, term);
            sharing.take_seq(message.seq().unwrap_or(0));
            if sharing.leading {
                self.hand_over(now);
            } else if self.link.is_some() && !matches!(message, TabMessage::Welcome { .. }) {
                // A new leader: tell it where we are, so it fills any gap (a welcome already
                // answers our hello).
                self.follow(now);
            }
        } else if term < sharing.term
            || sharing.leader.as_deref() != Some(from.as_str())
            || !sharing.take_seq(message.seq().unwrap_or(0))
        {
            sharing.rejected += 1;
            // A tab leading below the term we heard of, while we replay on our own: say hello, so
            // it outbids that term and we can be served again.
            let serving = !matches!(message, TabMessage::Welcome { .. });
            let own = self.link.as_ref().is_some_and(|l| l.source == Source::Own);
            if serving && own && !sharing.leading && sharing.hello_due(now) {
                sharing.hello(self.session.cursor(), false, now, &mut self.actions);
                sharing.silence_until = None;
            }
            return;
        }
        let Some(sharing) = self.sharing.as_mut().filter(|s| !s.leading) else {
            return;
        };
        // Only a leader that serves (welcome, ready, frames, ping) proves it is there: an
        // announcement alone, possibly forged, must not cancel the wait for one.
        if !matches!(message, TabMessage::Leader { .. }) {
            sharing.silence_until = None;
        }
        // Frames already heard by the time these arrive: whatever this tab does with them.
        let heard_before = match &message {
            TabMessage::Frames { epoch, frames, .. } => {
                let before = sharing.heard_up_to(epoch).map(str::to_owned);
                sharing.heard_frames(epoch, frames);
                before
            }
            _ => None,
        };
        let Some(link) = self.link.as_ref() else {
            return;
        };
        let id = link.id;
        let welcomed = link.source == Source::Leader { welcomed: true };
        let own = link.source == Source::Own;
        match message {
            TabMessage::Welcome {
                to,
                after,
                tail,
                epoch,
                frames,
                complete,
                ..
            } if to == sharing.me
                && continues(&self.session.cursor(), &after, &tail, &epoch, &frames) =>
            {
                if complete {
                    let fresh = after_cursor(&self.session.cursor(), &epoch, &frames);
                    self.set_source(Source::Leader { welcomed: true });
                    // The leader's join, then the link's start: a plain server's profile would
                    // take the start for a join of its own and announce `ready` twice.
                    self.session
                        .handle_ready(id, ReadyInfo { tail, epoch }, now);
                    self.session.handle_connected(id, now);
                    self.feed(id, &frames[fresh..], now);
                } else if !own {
                    // Older than the leader's buffer: replay on our own connection.
                    self.connect_own();
                }
            }
            TabMessage::Ready { tail, epoch, .. } if welcomed => {
                self.session
                    .handle_ready(id, ReadyInfo { tail, epoch }, now)
            }
            TabMessage::Frames { epoch, .. }
                if welcomed && self.session.epoch() != Some(epoch.as_str()) =>
            {
                // Frames of an epoch this tab has not joined are never delivered blind: counted,
                // and the leader is asked where things stand (its welcome carries the epoch).
                sharing.rejected += 1;
                if sharing.hello_due(now) {
                    self.follow(now);
                }
            }
            TabMessage::Frames { frames, .. } if welcomed => self.feed(id, &frames, now),
            // On our own connection (catching up): once the leader's stream passes through our
            // position, it continues it: back to the channel, no hello needed.
            TabMessage::Frames { epoch, frames, .. } if own => {
                let continuous = self.session.cursor().is_some_and(|c| {
                    c.epoch == epoch
                        && (frames.iter().any(|f| f.id == c.id)
                            || heard_before.as_deref() == Some(c.id.as_str()))
                });
                if continuous {
                    let fresh = after_cursor(&self.session.cursor(), &epoch, &frames);
                    self.set_source(Source::Leader { welcomed: true });
                    if self.session.state() != State::Live {
                        // Our own connection had not joined yet: the leader's has, in `epoch`.
                        let ready = ReadyInfo {
                            tail: None,
                            epoch: epoch.clone(),
                        };
                        self.session.handle_ready(id, ready, now);
                    }
                    self.feed(id, &frames[fresh..], now);
                } else if sharing.hello_due(now) {
                    sharing.hello(self.session.cursor(), false, now, &mut self.actions);
                    sharing.silence_until = None;
                }
            }
            TabMessage::Ping { .. } if welcomed => self.session.handle_heartbeat(id, now),
            // On our own connection while a leader is alive: ask to be served again, at most once
            // per interval; a complete welcome moves us back to the channel.
            TabMessage::Ping { .. } | TabMessage::Ready { .. } if own && sharing.hello_due(now) => {
                sharing.hello(self.session.cursor(), false, now, &mut self.actions);
                sharing.silence_until = None;
            }
            _ => {}
        }
    }

    /// Feeds a leader's frames to the session. A reader that fell behind takes no more than its
    /// bound: the link pauses there (the session then ignores the rest), and the frames left
    /// out come back in the catch-up after the cursor when it resumes.
    fn feed(&mut self, id: ConnectionId, frames: &[Frame], now: Timestamp) {
        let room = self
            .limits
            .unpausable_high
            .saturating_sub(self.reader.len()) as u64;
        let before = self.session.stats().delivered;
        for frame in frames {
            if self.session.stats().delivered - before >= room {
                self.session.pause_reader(now);
            }
            let raw = RawEvent {
                event: &frame.event,
                id: Some(&frame.id),
                data: &frame.data,
            };
            self.session.handle_relayed(id, raw, now);
        }
    }

    /// This leader's reader is too far behind to serve followers: let another tab lead, and
    /// queue for the lock again.
    pub(super) fn hand_over(&mut self, now: Timestamp) {
        self.step_down(now);
        if let Some(sharing) = self.sharing.as_mut() {
            sharing.request_lock(&mut self.actions);
        }
    }

    /// Another tab leads now: hand the connection over and follow it.
    fn step_down(&mut self, now: Timestamp) {
        let Some(sharing) = self.sharing.as_mut().filter(|s| s.leading) else {
            return;
        };
        sharing.leading = false;
        sharing.ping_at = None;
        sharing.pending.clear();
        self.actions.push_back(Action::ReleaseLock);
        // The stream moves to the leader's channel: a joined link becomes a new one, ready only
        // once welcomed; one that had not joined simply follows.
        if self.session.joined() {
            self.session.reconnect(now);
        } else if self.link.is_some() {
            self.follow(now);
        }
    }

    /// Makes the current connection one served by the leader: say hello and wait for its
    /// welcome.
    pub(super) fn follow(&mut self, now: Timestamp) {
        if self.link.is_none() {
            return;
        }
        self.set_source(Source::Leader { welcomed: false });
        // Only before the stream's first join: after it, even without a cursor (a new epoch),
        // this tab wants everything from the beginning.
        let starts_now = self.session.starts_now();
        if let Some(sharing) = self.sharing.as_mut() {
            sharing.hello(self.session.cursor(), starts_now, now, &mut self.actions);
        }
    }

    /// Moves the current connection to `source`, dropping this tab's transport if it had one.
    fn set_source(&mut self, source: Source) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        let id = link.id;
        let was_own = link.source == Source::Own;
        link.source = source;
        if was_own && link.source != Source::Own {
            self.drop_transport(id);
        }
    }

    /// The leader's connection joined in `epoch` (in the order of the session's events): tell
    /// the followers, and answer those who waited.
    pub(super) fn leader_ready(&mut self, epoch: &str, _now: Timestamp) {
        // A `ready` of a connection that is gone already, or whose body ended (it waited in the
        // parser's backlog), is history: the server may have reset since (it ends streams on a
        // reset). The next connection's `ready` is announced instead.
        if self.link.is_none() || self.body_ended {
            return;
        }
        let Some(sharing) = self.sharing.as_mut().filter(|s| s.leading && !s.left) else {
            return;
        };
        let start = self.session.start();
        sharing.announce_ready(epoch, start, &mut self.actions);
        for hello in std::mem::take(&mut sharing.pending) {
            sharing.welcome(hello, epoch, start, self.finished, &mut self.actions);
        }
    }

    /// The stream ended for this tab: publish the last frames, then leave the channel and the
    /// lock. A leader whose stream finished holds them a moment longer, so its followers finish
    /// from the channel.
    pub(super) fn end_sharing(&mut self, now: Timestamp) {
        let Some(sharing) = self.sharing.as_mut().filter(|s| !s.left) else {
            return;
        };
        sharing.publish(&mut self.actions);
        sharing.ping_at = None;
        sharing.silence_until = None;
        if sharing.leading && self.finished {
            sharing.hold_until = Some(now.saturating_add(FINISHED_LEADER_HOLD));
        } else {
            sharing.leave(&mut self.actions);
        }
    }

    /// The cross-tab deadlines that passed by `now`.
    pub(super) fn sharing_timeouts(&mut self, now: Timestamp) {
        let Some(sharing) = self.sharing.as_mut().filter(|s| !s.left) else {
            return;
        };
        let due = |at: Option<Timestamp>| at.is_some_and(|at| now >= at);
        if due(sharing.publish_at) {
            sharing.publish(&mut self.actions);
        }
        if due(sharing.ping_at) {
            if sharing.leading && sharing.followers {
                sharing.post_ping(&mut self.actions);
            }
            sharing.ping_at = Some(now.saturating_add(self.ping_every));
        }
        if due(sharing.hold_until) {
            sharing.leave(&mut self.actions);
        }
        if due(sharing.silence_until) {
            sharing.silence_until = None;
            // No leader answered: connect on our own (the lock may be held by a frozen tab).
            if self.link.as_ref().map(|l| &l.source) == Some(&Source::Leader { welcomed: false }) {
                self.connect_own();
            }
        }
    }
}

/// Where the frames after `cursor` start in `frames`, of `epoch` (all of them, if it is not among
/// them): what precedes it was delivered, whatever name this tab knew it by (a Durable Stream's
/// message may have been named from another offset here), so it is not handed to the session
/// again. An id of another epoch is another frame (ids restart after a reset).
fn after_cursor(cursor: &Option<Cursor>, epoch: &str, frames: &[Frame]) -> usize {
    cursor
        .as_ref()
        .filter(|c| c.epoch == epoch)
        .and_then(|c| frames.iter().position(|f| f.id == c.id))
        .map_or(0, |at| at + 1)
}

/// Whether a welcome continues from `cursor` (this tab's position now): it answers a hello sent
/// from there (`after`), or its catch-up or tail passed through it since (the tab delivered more
/// on its own connection meanwhile). Any other welcome, late or replayed, could make the tab skip
/// frames it has not delivered, so it is ignored.
fn continues(
    cursor: &Option<Cursor>,
    after: &Option<Cursor>,
    tail: &Option<String>,
    epoch: &str,
    frames: &[Frame],
) -> bool {
    if cursor == after {
        return true;
    }
    // The catch-up is consecutive frames of `epoch`: passing through the cursor, it continues it.
    let Some(cursor) = cursor.as_ref().filter(|c| c.epoch == epoch) else {
        return false;
    };
    tail.as_deref() == Some(cursor.id.as_str()) || frames.iter().any(|f| f.id == cursor.id)
}
