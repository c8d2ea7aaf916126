//! One tab's share of a stream shared across tabs (the cross-tab protocol): its role and term,
//! the frames it keeps for followers, what it owes the channel, and the deadlines of leadership.
//!
//! This is state and the rules that need nothing else; the [`Peer`](super::Peer) ties it to the
//! session (see `peer/tabs.rs`).

use std::collections::VecDeque;
use std::time::Duration;

use super::Action;
use crate::core::frame::Frame;
use crate::core::session::Cursor;
use crate::core::tabs::{Previous, TabBuffer, TabMessage, MAX_TERM};
use crate::core::time::Timestamp;

/// Frames a tab keeps for followers that join or fall behind.
pub const TAB_BUFFER_FRAMES: usize = 8192;

/// How long a follower waits for any sign of a leader before it connects on its own.
pub const LEADER_SILENCE: Duration = Duration::from_millis(1000);

/// How long a leader whose stream finished keeps the lock, so its followers finish from the
/// channel instead of one of them leading and connecting once more for a tail it already has.
pub const FINISHED_LEADER_HOLD: Duration = Duration::from_millis(1000);

/// The least time between two hellos of a tab on its own connection while a leader is alive.
pub const HELLO_INTERVAL: Duration = Duration::from_secs(1);

/// Which part a tab plays for a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Not sharing (`shareAcrossTabs: false`, or no `BroadcastChannel`/Web Locks).
    Standalone,
    /// Owns the connection.
    Leader,
    /// Gets frames from the leader tab.
    Follower,
}

impl Role {
    /// `standalone`, `leader` or `follower`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }
}

/// Names one request for the stream's lock, so that the answer to an older one is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LockTicket(pub(crate) u64);

/// A follower's hello that waits for this leader's connection to be ready.
#[derive(Debug)]
pub(crate) struct Hello {
    pub(crate) from: String,
    pub(crate) cursor: Option<Cursor>,
    pub(crate) now: bool,
}

#[derive(Debug)]
pub(crate) struct Sharing {
    pub(crate) me: String,
    ticket: u64,
    pub(crate) leading: bool,
    /// The highest term seen, and the tab that holds it.
    pub(crate) term: u64,
    pub(crate) leader: Option<String>,
    /// The number of the last message taken from the leader of `term` (or sent, as leader).
    seq: u64,
    /// What this tab delivered recently (kept by followers too: any tab may lead).
    buffer: TabBuffer,
    /// The last id delivered in this epoch, and whether this tab's epoch started at its start.
    last_delivered: Option<String>,
    from_epoch_start: bool,
    /// The cursor this tab resumed from (a reload), in its first epoch.
    resumed_after: Option<String>,
    pub(crate) pending: Vec<Hello>,
    /// Whether any follower spoke: until then the leader publishes nothing.
    pub(crate) followers: bool,
    /// Frames delivered since the last publication, all of `outgoing_epoch`: a burst of one-frame
    /// server events becomes one channel message.
    outgoing: Vec<Frame>,
    outgoing_epoch: String,
    /// Most frames in one `frames` message: an eighth of a follower's pause bound, so a follower
    /// that keeps reading takes every message whole and never pauses for a message's size,
    /// however large the bursts of the leader's connection; never below 64, so tiny bounds do
    /// not turn a burst into a flood of one-frame messages.
    message_frames: usize,
    pub(crate) publish_at: Option<Timestamp>,
    pub(crate) ping_at: Option<Timestamp>,
    pub(crate) silence_until: Option<Timestamp>,
    pub(crate) last_hello: Option<Timestamp>,
    /// The epoch and last id of the latest frames heard from the current leader: its stream is
    /// continuous, so the next frames it publishes follow this id.
    heard: Option<(String, String)>,
    pub(crate) hold_until: Option<Timestamp>,
    /// The tab left the stream's channel and lock (its stream ended).
    pub(crate) left: bool,
    pub(crate) leader_changes: u64,
    pub(crate) rejected: u64,
}

impl Sharing {
    pub(crate) fn new(
        me: String,
        from_epoch_start: bool,
        resumed_after: Option<String>,
        buffer: usize,
        follower_pause: usize,
    ) -> Sharing {
        Sharing {
            me,
            ticket: 0,
            leading: false,
            term: 0,
            leader: None,
            seq: 0,
            buffer: TabBuffer::new(buffer),
            last_delivered: None,
            from_epoch_start,
            resumed_after,
            pending: Vec::new(),
            followers: false,
            outgoing: Vec::new(),
            outgoing_epoch: String::new(),
            message_frames: (follower_pause / 8).max(64),
            publish_at: None,
            ping_at: None,
            silence_until: None,
            last_hello: None,
            heard: None,
            hold_until: None,
            left: false,
            leader_changes: 0,
            rejected: 0,
        }
    }

    pub(crate) fn role(&self) -> Role {
        if self.leading {
            Role::Leader
        } else {
            Role::Follower
        }
    }

    /// Queues for the lock under a new ticket.
    pub(crate) fn request_lock(&mut self, out: &mut VecDeque<Action>) {
        self.ticket += 1;
        out.push_back(Action::RequestLock(LockTicket(self.ticket)));
    }

    /// Whether `ticket` answers the current request of a tab still sharing.
    pub(crate) fn current(&self, ticket: LockTicket) -> bool {
        !self.left && ticket.0 == self.ticket
    }

    /// A tab now leads from `term`: count it if it replaces another.
    pub(crate) fn adopt_leader(&mut self, from: &str, term: u64) {
        if self.leader.as_deref().is_some_and(|l| l != from) {
            self.leader_changes += 1;
        }
        self.heard = None; // another stream of frames, maybe from another position
        if term != self.term || self.leader.as_deref() != Some(from) {
            self.seq = 0;
        }
        self.term = term;
        self.leader = Some(from.to_owned());
    }

    /// A follower has heard of term `seen` from `seen_leader` (a forged or stale announcement,
    /// or another tab that took the lock at the same moment): unless that is this leader's own
    /// term, it announces a term above it, so that every follower accepts it again.
    pub(crate) fn outbid(
        &mut self,
        seen: u64,
        seen_leader: Option<&str>,
        out: &mut VecDeque<Action>,
    ) {
        let ours = seen == self.term && seen_leader == Some(self.me.as_str());
        if !self.leading || seen < self.term || ours {
            return;
        }
        let term = seen.saturating_add(1).min(MAX_TERM);
        let me = self.me.clone();
        self.adopt_leader(&me, term);
        self.announce(out);
    }

    /// Takes the number of a message from the current leader: `false` for one taken already (a
    /// replay), which must be ignored.
    pub(crate) fn take_seq(&mut self, seq: u64) -> bool {
        if seq <= self.seq {
            return false;
        }
        self.seq = seq;
        true
    }

    /// The term and number of the next message this leader sends.
    fn stamp(&mut self) -> (u64, u64) {
        self.seq += 1;
        (self.term, self.seq)
    }

    /// Announces this tab's leadership (its term is already adopted).
    pub(crate) fn announce(&mut self, out: &mut VecDeque<Action>) {
        let (term, seq) = self.stamp();
        out.push_back(Action::Post(TabMessage::Leader {
            from: self.me.clone(),
            term,
            seq,
        }));
    }

    /// Notes frames the current leader published in `epoch`.
    pub(crate) fn heard_frames(&mut self, epoch: &str, frames: &[Frame]) {
        if let Some(last) = frames.last() {
            self.heard = Some((epoch.to_owned(), last.id.clone()));
        }
    }

    /// The last id the current leader published in `epoch`, as far as this tab heard.
    pub(crate) fn heard_up_to(&self, epoch: &str) -> Option<&str> {
        self.heard
            .as_ref()
            .filter(|(e, _)| e == epoch)
            .map(|(_, id)| id.as_str())
    }

    /// The next term this tab leads in.
    pub(crate) fn next_term(&self) -> u64 {
        self.term.saturating_add(1).min(MAX_TERM)
    }

    /// Records a frame this tab's session delivered in `epoch`; a leader serving followers
    /// publishes it soon.
    pub(crate) fn delivered(
        &mut self,
        frame: &Frame,
        epoch: &str,
        start: Option<&str>,
        now: Timestamp,
        out: &mut VecDeque<Action>,
    ) {
        let previous = previous(
            &self.last_delivered,
            self.from_epoch_start,
            &self.resumed_after,
            start,
        );
        self.buffer.push(frame.clone(), epoch, previous);
        match self.last_delivered.as_mut() {
            Some(id) => id.clone_from(&frame.id), // reuses the buffer: no allocation per frame
            None => self.last_delivered = Some(frame.id.clone()),
        }
        if self.leading && self.followers {
            if self.outgoing_epoch != epoch {
                self.publish(out); // a message carries the frames of one epoch
                self.outgoing_epoch = epoch.to_owned();
            }
            self.outgoing.push(frame.clone());
            self.publish_at.get_or_insert(now);
            if self.outgoing.len() >= self.message_frames {
                self.publish(out);
            }
        }
    }

    /// The journal restarted: the new epoch is delivered from its start.
    pub(crate) fn reset(&mut self) {
        self.buffer.clear();
        self.last_delivered = None;
        self.from_epoch_start = true;
        self.resumed_after = None;
    }

    /// Publishes the frames delivered since the last publication, now.
    pub(crate) fn publish(&mut self, out: &mut VecDeque<Action>) {
        self.publish_at = None;
        if self.outgoing.is_empty() {
            return;
        }
        let frames = std::mem::take(&mut self.outgoing);
        let (term, seq) = self.stamp();
        out.push_back(Action::Post(TabMessage::Frames {
            from: self.me.clone(),
            term,
            seq,
            epoch: self.outgoing_epoch.clone(),
            frames,
        }));
    }

    /// Where this tab stands in what it published: the last frame delivered in this epoch, else
    /// `start` (where its session started without delivering).
    pub(crate) fn position(&self, start: Option<&str>) -> Option<String> {
        self.last_delivered
            .clone()
            .or_else(|| start.map(str::to_owned))
    }

    /// This leader's answer to `hello`, in `epoch`. Frames delivered before it are published
    /// first, so its tail is exact for whoever reads the channel in order.
    pub(crate) fn welcome(
        &mut self,
        hello: Hello,
        epoch: &str,
        start: Option<&str>,
        finished: bool,
        out: &mut VecDeque<Action>,
    ) {
        self.publish(out);
        // A live-only follower of a finished stream gets `done`, starting just before it, as a
        // server answers `from=now` on a finished journal: else it would wait forever.
        if finished && hello.now && hello.cursor.is_none() {
            if let Some((before, done)) = self.buffer.last_with_previous() {
                let (term, seq) = self.stamp();
                out.push_back(Action::Post(TabMessage::Welcome {
                    from: self.me.clone(),
                    term,
                    seq,
                    to: hello.from,
                    after: None,
                    tail: before,
                    epoch: epoch.to_owned(),
                    frames: vec![done],
                    complete: true,
                }));
                return;
            }
        }
        let previous = previous(
            &self.last_delivered,
            self.from_epoch_start,
            &self.resumed_after,
            start,
        );
        self.buffer.anchor(epoch, previous);
        let catch_up = self.buffer.catch_up(hello.cursor.as_ref(), hello.now);
        let (term, seq) = self.stamp();
        out.push_back(Action::Post(TabMessage::Welcome {
            from: self.me.clone(),
            term,
            seq,
            to: hello.from,
            after: hello.cursor,
            tail: self.position(start),
            epoch: epoch.to_owned(),
            frames: catch_up.frames,
            complete: catch_up.complete,
        }));
    }

    /// This leader's connection joined in `epoch`: published after the frames before it.
    pub(crate) fn announce_ready(
        &mut self,
        epoch: &str,
        start: Option<&str>,
        out: &mut VecDeque<Action>,
    ) {
        self.publish(out);
        let (term, seq) = self.stamp();
        out.push_back(Action::Post(TabMessage::Ready {
            from: self.me.clone(),
            term,
            seq,
            tail: self.position(start),
            epoch: epoch.to_owned(),
        }));
    }

    pub(crate) fn post_ping(&mut self, out: &mut VecDeque<Action>) {
        let (term, seq) = self.stamp();
        out.push_back(Action::Post(TabMessage::Ping {
            from: self.me.clone(),
            term,
            seq,
        }));
    }

    /// Asks the leader for the frames after `cursor`; connect on our own if none answers soon.
    pub(crate) fn hello(
        &mut self,
        cursor: Option<Cursor>,
        now_start: bool,
        now: Timestamp,
        out: &mut VecDeque<Action>,
    ) {
        self.last_hello = Some(now);
        out.push_back(Action::Post(TabMessage::Hello {
            from: self.me.clone(),
            cursor,
            now: now_start,
            seen_term: self.term,
            seen_leader: self.leader.clone(),
        }));
        self.silence_until = Some(now.saturating_add(LEADER_SILENCE));
    }

    /// Whether a hello may go out now without repeating the last one too soon.
    pub(crate) fn hello_due(&self, now: Timestamp) -> bool {
        self.last_hello
            .is_none_or(|t| now.saturating_since(t) >= HELLO_INTERVAL)
    }

    /// Leaves the stream's lock and channel: nothing more is posted, nothing more is heard.
    pub(crate) fn leave(&mut self, out: &mut VecDeque<Action>) {
        if self.left {
            return;
        }
        self.left = true;
        self.pending.clear();
        self.publish_at = None;
        self.ping_at = None;
        self.silence_until = None;
        self.hold_until = None;
        out.push_back(Action::LeaveTabs);
    }

    /// The earliest deadline of this tab's part.
    pub(crate) fn deadline(&self) -> Option<Timestamp> {
        [
            self.publish_at,
            self.ping_at,
            self.silence_until,
            self.hold_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// What precedes the next frame a tab delivers in its epoch: the last one it delivered, the
/// epoch's start, where its session started (`from=now`) or resumed, or nothing known.
fn previous<'a>(
    last_delivered: &'a Option<String>,
    from_epoch_start: bool,
    resumed_after: &'a Option<String>,
    start: Option<&'a str>,
) -> Previous<'a> {
    match (last_delivered, start) {
        (Some(id), _) => Previous::Id(id),
        (None, _) if from_epoch_start => Previous::EpochStart,
        (None, Some(start)) => Previous::Id(start),
        (None, None) => resumed_after
            .as_deref()
            .map_or(Previous::Unknown, Previous::Id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A leader's burst (a `fetch` chunk of thousands of frames) goes out in messages a follower
    /// can take whole: never more than an eighth of its pause bound each, in order, none lost.
    #[test]
    fn a_burst_is_published_in_messages_below_a_followers_pause_bound() {
        let mut sharing = Sharing::new("me".into(), true, None, 8192, 8192);
        sharing.leading = true;
        sharing.followers = true;
        let mut out = VecDeque::new();
        let now = Timestamp::from_millis(0);
        for n in 1..=2500 {
            let frame = Frame {
                id: n.to_string(),
                event: "token".into(),
                data: "{}".into(),
            };
            sharing.delivered(&frame, "e1", None, now, &mut out);
        }
        sharing.publish(&mut out);
        let mut sizes = Vec::new();
        let mut ids = Vec::new();
        for action in out {
            if let Action::Post(TabMessage::Frames { frames, .. }) = action {
                sizes.push(frames.len());
                ids.extend(frames.into_iter().map(|f| f.id));
            }
        }
        assert_eq!(sizes, [1024, 1024, 452]);
        let expected: Vec<String> = (1..=2500).map(|n: u32| n.to_string()).collect();
        assert_eq!(ids, expected);
    }
}
