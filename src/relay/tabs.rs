//! Sharing one connection per stream across tabs (DESIGN.md §3).
//!
//! Every tab of a stream key joins the channel `sse-relay/v1/<key>` and queues for the Web Lock of
//! the same name. The lock holder leads: it owns the connection and republishes what its session
//! delivers. Followers feed the leader's frames to their own session, which dedups by id as it
//! does for a server, so a catch-up that overlaps live frames, a second leader or a hostile
//! message can never duplicate a frame. A follower the leader cannot serve from its buffer (its
//! cursor is older) replays on its own connection until it can be served again.

use std::time::Duration;

use gloo_timers::callback::{Interval, Timeout};

use super::shell::{Shell, Source};
use crate::core::{
    Cursor, Frame, Previous, RawEvent, ReadyInfo, State, TabBuffer, TabMessage, MAX_TERM,
};
use crate::web::broadcast::Channel;
use crate::web::clock;
use crate::web::locks::LockRequest;

/// Frames a tab keeps for followers that join or fall behind.
pub(crate) const TAB_BUFFER_FRAMES: usize = 8192;

/// How long a follower waits for any sign of a leader before it connects on its own.
const LEADER_SILENCE: Duration = Duration::from_millis(1000);

/// A tab's part in a stream shared across tabs.
pub(crate) struct Tabs {
    pub(super) me: String,
    name: String,
    channel: Channel,
    lock: Option<LockRequest>,
    /// Bumped at each lock request, so a late callback of an older request is ignored.
    lock_generation: u64,
    pub(super) leading: bool,
    /// The highest term seen and the tab that holds it.
    term: u64,
    leader: Option<String>,
    /// What this tab delivered recently, for followers (kept by followers too: any tab may lead).
    buffer: TabBuffer,
    /// The last id delivered in this epoch, and whether this tab's epoch started from its start.
    last_delivered: Option<String>,
    from_epoch_start: bool,
    /// Followers' hellos waiting for this leader's connection to be ready.
    pending: Vec<(String, Option<Cursor>, bool)>,
    /// Whether any follower spoke: until then the leader does not publish frames.
    pub(super) followers: bool,
    /// Frames delivered since the last publication, and their epoch: published as one message
    /// from a 0 ms timeout, so a burst of one-frame server events becomes one channel message.
    outgoing: Vec<Frame>,
    outgoing_epoch: String,
    publish: Option<Timeout>,
    ping: Option<Interval>,
    silence: Option<Timeout>,
    last_hello: Option<crate::core::Timestamp>,
    pub(super) leader_changes: u64,
    pub(super) rejected: u64,
}

/// `stream.role`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Not sharing (`shareAcrossTabs: false`, or no `BroadcastChannel`/Web Locks).
    Standalone,
    /// Owns the connection.
    Leader,
    /// Gets frames from the leader tab.
    Follower,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }
}

impl Tabs {
    /// Joins the key's channel; `None` where the browser lacks `BroadcastChannel` or Web Locks
    /// (the stream then connects on its own). The lock is requested by [`Shell::request_lock`].
    pub(crate) fn join(
        key: &str,
        from_epoch_start: bool,
        on_message: impl FnMut(Option<String>) + 'static,
    ) -> Option<Tabs> {
        let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
        let locks = js_sys::Reflect::get(&navigator, &"locks".into()).ok()?;
        if locks.is_undefined() || locks.is_null() {
            return None;
        }
        let name = format!("sse-relay/v1/{key}");
        let channel = Channel::open(&name, on_message)?;
        Some(Tabs {
            me: crate::core::hex16((js_sys::Math::random() * 1.8e19) as u64),
            name,
            channel,
            lock: None,
            lock_generation: 0,
            leading: false,
            term: 0,
            leader: None,
            buffer: TabBuffer::new(TAB_BUFFER_FRAMES),
            last_delivered: None,
            from_epoch_start,
            pending: Vec::new(),
            followers: false,
            outgoing: Vec::new(),
            outgoing_epoch: String::new(),
            publish: None,
            ping: None,
            silence: None,
            last_hello: None,
            leader_changes: 0,
            rejected: 0,
        })
    }

    pub(super) fn role(&self) -> Role {
        if self.leading {
            Role::Leader
        } else {
            Role::Follower
        }
    }

    fn post(&self, message: &TabMessage) {
        self.channel.post(&message.encode());
    }

    /// A tab now leads from `term`: count it if it replaces another.
    fn adopt_leader(&mut self, from: &str, term: u64) {
        if self.leader.as_deref().is_some_and(|l| l != from) {
            self.leader_changes += 1;
        }
        self.term = term;
        self.leader = Some(from.to_owned());
    }

    /// Where this tab stands in the frames it published: the last one delivered in this epoch,
    /// else `start` (where its session started without delivering), else nothing.
    fn position(&self, start: Option<String>) -> Option<String> {
        self.last_delivered.clone().or(start)
    }

    /// Records a frame this tab's session delivered.
    pub(super) fn delivered(&mut self, frame: &Frame, epoch: &str) {
        let previous = match &self.last_delivered {
            Some(id) => Previous::Id(id),
            None if self.from_epoch_start => Previous::EpochStart,
            None => Previous::Unknown,
        };
        self.buffer.push(frame.clone(), epoch, previous);
        self.last_delivered = Some(frame.id.clone());
        if self.leading && self.followers {
            if self.outgoing_epoch != epoch {
                self.publish_now(); // a message carries the frames of one epoch
                self.outgoing_epoch = epoch.to_owned();
            }
            self.outgoing.push(frame.clone());
        }
    }

    /// The journal restarted: the new epoch is replayed from its start.
    pub(super) fn reset(&mut self) {
        self.buffer.clear();
        self.last_delivered = None;
        self.from_epoch_start = true;
    }

    /// Publishes the frames delivered since the last publication, now.
    pub(super) fn publish_now(&mut self) {
        self.publish = None;
        if self.outgoing.is_empty() {
            return;
        }
        let frames = std::mem::take(&mut self.outgoing);
        self.post(&TabMessage::Frames {
            from: self.me.clone(),
            term: self.term,
            epoch: self.outgoing_epoch.clone(),
            frames,
        });
    }

    /// Publishes what was delivered once the current burst of events is over.
    pub(super) fn publish_soon(&mut self, weak: &std::rc::Weak<super::shell::Inner>) {
        if self.outgoing.is_empty() || self.publish.is_some() {
            return;
        }
        let weak = weak.clone();
        self.publish = Some(Timeout::new(0, move || {
            super::shell::with_shell(&weak, |shell| {
                if let Some(tabs) = shell.tabs.as_mut() {
                    tabs.publish_now();
                }
            })
        }));
    }
}

impl Shell {
    /// Queues this tab for the stream's lock; leading starts when the browser grants it.
    pub(super) fn request_lock(&mut self) {
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        tabs.lock_generation += 1;
        let generation = tabs.lock_generation;
        let (granted, lost) = (self.weak_self.clone(), self.weak_self.clone());
        tabs.lock = LockRequest::request(
            &tabs.name,
            move || super::shell::with_handle(&granted, |shell| shell.become_leader(generation)),
            move || super::shell::with_handle(&lost, |shell| shell.lock_lost(generation)),
        );
    }

    /// The browser granted the lock: take over the connection.
    fn become_leader(&mut self, generation: u64) {
        let heartbeat = self.heartbeat;
        let weak = self.weak_self.clone();
        let Some(tabs) = self
            .tabs
            .as_mut()
            .filter(|t| t.lock_generation == generation)
        else {
            return;
        };
        tabs.leading = true;
        let (me, term) = (tabs.me.clone(), tabs.term.saturating_add(1).min(MAX_TERM));
        tabs.adopt_leader(&me, term);
        tabs.post(&TabMessage::Leader { from: me, term });
        tabs.silence = None;
        let every = u32::try_from((heartbeat / 3).as_millis())
            .unwrap_or(u32::MAX)
            .max(100);
        tabs.ping = Some(Interval::new(every, move || {
            super::shell::with_handle(&weak, |shell| {
                if let Some(tabs) = shell.tabs.as_ref().filter(|t| t.leading && t.followers) {
                    tabs.post(&TabMessage::Ping {
                        from: tabs.me.clone(),
                        term: tabs.term,
                    });
                }
            })
        }));
        // The current connection, if any, moves from the old leader to a connection of our own.
        if matches!(
            self.link.as_ref().map(|l| &l.source),
            Some(Source::Leader { .. })
        ) {
            let query = self.session.resume_query();
            self.open_own(&query);
        }
    }

    /// The lock request failed or the held lock was taken (`steal`): lead no more, queue again.
    fn lock_lost(&mut self, generation: u64) {
        let still_wanted = self
            .tabs
            .as_ref()
            .is_some_and(|t| t.lock_generation == generation);
        if still_wanted {
            self.step_down();
            self.request_lock();
        }
    }

    /// Another tab leads now: hand the connection over and follow it.
    fn step_down(&mut self) {
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        if !tabs.leading {
            return;
        }
        tabs.leading = false;
        tabs.ping = None;
        tabs.pending.clear();
        tabs.lock = None; // releases the lock if it is still held
        if matches!(
            self.link.as_ref().map(|l| &l.source),
            Some(Source::Own { .. })
        ) {
            self.follow();
        }
    }

    /// Makes the current connection one served by the leader: say hello and wait for its welcome.
    pub(super) fn follow(&mut self) {
        // Only before the stream's first join: after it, even without a cursor (a new epoch),
        // the follower wants everything from the beginning.
        let now_requested = self.session.starts_now();
        let Some(link) = self.link.as_mut() else {
            return;
        };
        link.source = Source::Leader { welcomed: false };
        self.say_hello(now_requested);
    }

    fn say_hello(&mut self, now: bool) {
        let cursor = self.session.cursor();
        let weak = self.weak_self.clone();
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        tabs.last_hello = Some(clock::now());
        tabs.post(&TabMessage::Hello {
            from: tabs.me.clone(),
            cursor,
            now,
        });
        // No leader answers: connect on our own (the lock may be held by a frozen tab).
        let silence = u32::try_from(LEADER_SILENCE.as_millis()).unwrap_or(u32::MAX);
        tabs.silence = Some(Timeout::new(silence, move || {
            super::shell::with_handle(&weak, |shell| {
                if let Some(tabs) = shell.tabs.as_mut() {
                    tabs.silence = None;
                }
                if matches!(
                    shell.link.as_ref().map(|l| &l.source),
                    Some(Source::Leader { welcomed: false })
                ) {
                    let query = shell.session.resume_query();
                    shell.open_own(&query);
                }
            })
        }));
    }

    /// A message from another tab. Nothing in it is trusted: it is decoded strictly, fenced by
    /// term and sender, and its frames go through the session's dedup like a server's.
    pub(super) fn on_tab_message(&mut self, text: Option<String>) {
        let now = clock::now();
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        let Some(message) = text.as_deref().and_then(|t| TabMessage::decode(t).ok()) else {
            tabs.rejected += 1;
            return;
        };
        let from = message.from().to_owned();
        if from == tabs.me {
            tabs.rejected += 1; // our id in someone else's message: forged
            return;
        }
        if let TabMessage::Hello {
            cursor,
            now: from_now,
            ..
        } = message
        {
            if tabs.leading {
                tabs.followers = true;
                if let Some(epoch) = self
                    .session
                    .epoch()
                    .filter(|_| self.session.state() == State::Live)
                {
                    let epoch = epoch.to_owned();
                    self.welcome(from, cursor, from_now, &epoch);
                } else {
                    tabs.pending.push((from, cursor, from_now));
                    // Tell the follower a leader exists, so it waits instead of connecting itself.
                    tabs.post(&TabMessage::Ping {
                        from: tabs.me.clone(),
                        term: tabs.term,
                    });
                }
            }
            return;
        }
        // Everything else comes from a leader: fence it.
        let term = message.term().unwrap_or(0);
        if term > tabs.term {
            tabs.adopt_leader(&from, term);
            if tabs.leading {
                self.step_down();
                self.request_lock();
            } else if self.link.is_some() && !matches!(message, TabMessage::Welcome { .. }) {
                // A new leader: make sure it knows where we are, so it fills any gap (a welcome
                // already answers our hello).
                self.follow();
            }
        } else if term < tabs.term || tabs.leader.as_deref() != Some(from.as_str()) {
            tabs.rejected += 1;
            return;
        }
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        if tabs.leading {
            return;
        }
        // Only a leader that serves (welcome, ready, frames, ping) proves it is there: an
        // announcement alone, possibly forged, must not cancel the wait for one.
        if !matches!(message, TabMessage::Leader { .. }) {
            tabs.silence = None;
        }
        let Some(link) = self.link.as_ref() else {
            return;
        };
        let id = link.id;
        let welcomed = matches!(link.source, Source::Leader { welcomed: true });
        match message {
            TabMessage::Welcome {
                to,
                tail,
                epoch,
                frames,
                complete,
                ..
            } if to == tabs.me => {
                if complete {
                    self.link_mut_source(Source::Leader { welcomed: true });
                    self.session.handle_connected(id, now);
                    self.feed_ready(&ReadyInfo { tail, epoch }, now);
                    for frame in &frames {
                        self.feed_frame(frame, now);
                    }
                } else if !matches!(
                    self.link.as_ref().map(|l| &l.source),
                    Some(Source::Own { .. })
                ) {
                    // Older than the leader's buffer: replay on our own connection.
                    let query = self.session.resume_query();
                    self.open_own(&query);
                }
            }
            TabMessage::Ready { tail, epoch, .. } if welcomed => {
                self.feed_ready(&ReadyInfo { tail, epoch }, now)
            }
            TabMessage::Frames { epoch, .. }
                if welcomed && self.session.epoch() != Some(epoch.as_str()) =>
            {
                // Frames of an epoch this tab has not joined: never delivered blind. Counted, and
                // the leader is asked where things stand (its welcome carries the epoch).
                tabs.rejected += 1;
                if tabs
                    .last_hello
                    .is_none_or(|t| now.saturating_since(t) >= Duration::from_secs(1))
                {
                    self.follow();
                }
            }
            TabMessage::Frames { frames, .. } if welcomed => {
                // A reader that fell behind takes no more than the queue's bound: the link pauses
                // there (the session then ignores the rest), and the frames left out come back in
                // the catch-up after the cursor when it resumes.
                let room = self.room_for_reader();
                let before = self.session.stats().delivered;
                for frame in &frames {
                    if self.session.stats().delivered - before >= room {
                        self.session.pause_reader();
                    }
                    self.feed_frame(frame, now);
                }
            }
            TabMessage::Ping { .. } if welcomed => self.session.handle_heartbeat(id, now),
            TabMessage::Frames { .. } | TabMessage::Ping { .. } | TabMessage::Ready { .. }
                if matches!(link.source, Source::Own { .. }) =>
            {
                // On our own connection while a leader is alive: ask to be served again, at
                // most once per second; a complete welcome moves us back to the channel.
                let due = tabs
                    .last_hello
                    .is_none_or(|t| now.saturating_since(t) >= Duration::from_secs(1));
                if due {
                    tabs.last_hello = Some(now);
                    let cursor = self.session.cursor();
                    tabs.post(&TabMessage::Hello {
                        from: tabs.me.clone(),
                        cursor,
                        now: false,
                    });
                }
            }
            _ => {}
        }
    }

    /// Answers one follower from the buffer, in `epoch`.
    fn welcome(&mut self, to: String, cursor: Option<Cursor>, now: bool, epoch: &str) {
        let start = self.session.start().map(str::to_owned);
        let Some(tabs) = self.tabs.as_mut() else {
            return;
        };
        // Frames delivered before this answer go out before it, so its tail is exact.
        tabs.publish_now();
        let catch_up = tabs.buffer.catch_up(cursor.as_ref(), now);
        tabs.post(&TabMessage::Welcome {
            from: tabs.me.clone(),
            term: tabs.term,
            to,
            tail: tabs.position(start),
            epoch: epoch.to_owned(),
            frames: catch_up.frames,
            complete: catch_up.complete,
        });
    }

    /// The leader's connection joined (`ready` of `epoch`, in the order of the session's events):
    /// tell the followers, and answer those who waited.
    pub(super) fn leader_ready(&mut self, epoch: &str) {
        let start = self.session.start().map(str::to_owned);
        let Some(tabs) = self.tabs.as_mut().filter(|t| t.leading) else {
            return;
        };
        let pending = std::mem::take(&mut tabs.pending);
        tabs.publish_now();
        tabs.post(&TabMessage::Ready {
            from: tabs.me.clone(),
            term: tabs.term,
            tail: tabs.position(start),
            epoch: epoch.to_owned(),
        });
        for (to, cursor, now) in pending {
            self.welcome(to, cursor, now, epoch);
        }
    }

    fn feed_ready(&mut self, info: &ReadyInfo, now: crate::core::Timestamp) {
        let Some(id) = self.link.as_ref().map(|l| l.id) else {
            return;
        };
        let data = info.to_data();
        let ready = self.ready_event.clone();
        self.session.handle_frame(
            id,
            RawEvent {
                event: &ready,
                id: None,
                data: &data,
            },
            now,
        );
    }

    fn feed_frame(&mut self, frame: &Frame, now: crate::core::Timestamp) {
        let Some(id) = self.link.as_ref().map(|l| l.id) else {
            return;
        };
        let raw = RawEvent {
            event: &frame.event,
            id: Some(&frame.id),
            data: &frame.data,
        };
        self.session.handle_frame(id, raw, now);
    }

    fn link_mut_source(&mut self, source: Source) {
        if let Some(link) = self.link.as_mut() {
            link.source = source;
        }
    }
}
