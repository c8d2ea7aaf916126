//! One tab's part of one stream, in the sans-IO style: the whole client but the browser.
//!
//! A [`Peer`] owns the [`Session`] (ready gate, cursor, dedup, epochs, reconnects), the tab's
//! share of the cross-tab protocol (lock, role and term, followers, catch-up, the silence window,
//! the finished leader's hold), the application's queue with its bounds (a paused `fetch` body, a
//! closed `EventSource` or leader link), the HTTP status and credentials policy, the `fetch`
//! body's event-stream parser, and cursor persistence. Every deadline is behind one
//! [`Peer::poll_timeout`].
//!
//! The driver (the browser shell, or a simulator) reports what happened through `handle_*` with
//! the time, performs each [`Action`] from [`Peer::poll_action`], hands each [`Event`] from
//! [`Peer::poll_event`] to listeners, lets the application take frames ([`Peer::show`],
//! [`Peer::take`]), and arms one timer for [`Peer::poll_timeout`]. It decides nothing.

mod reader;
mod sharing;
mod tabs;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

pub use reader::{BODY_HIGH, BODY_LOW, READER_STUCK, UNPAUSABLE_HIGH, UNPAUSABLE_LOW};
pub use sharing::{
    LockTicket, Role, FINISHED_LEADER_HOLD, HELLO_INTERVAL, LEADER_SILENCE, TAB_BUFFER_FRAMES,
};

use reader::{Queued, Reader};
use sharing::Sharing;

use super::frame::{Frame, RawEvent};
use super::parser::{Parsed, SseParser};
use super::profile::Guarantee;
use super::session::{
    Command, ConfigError, ConnectionId, Cursor, Disconnect, Error, Event, Session, SessionConfig,
    StartFrom, State, Stats,
};
use super::time::Timestamp;

/// How frames reach this tab when it connects on its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// The browser's `EventSource`: events arrive parsed; it cannot pause or show the status.
    #[default]
    EventSource,
    /// `fetch` and a streamed body: bytes go through the core's parser; the body can pause and
    /// the status is seen.
    Fetch,
}

/// How a peer behaves.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// The session's options.
    pub session: SessionConfig,
    /// How this tab connects on its own.
    pub transport: Transport,
    /// Share the stream with the browser's other tabs as the tab with this id (unique per tab;
    /// random). `None`: connect on our own, always.
    pub tab: Option<String>,
    /// Ask for the consumed cursor to be saved ([`Action::SaveCursor`]).
    pub persist_cursor: bool,
    /// A 401/403 asks the application for fresh credentials ([`Action::RefreshCredentials`])
    /// before it fails.
    pub refresh_credentials: bool,
    /// Request headers of `fetch` connections (credentials refreshes replace some).
    pub headers: Vec<(String, String)>,
    /// Bounds of the application's queue and of the tab buffer.
    pub limits: Limits,
}

/// How many frames may wait where. The defaults suit a browser; a simulator makes them small so
/// that every bound is met often.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Queued frames at which a `fetch` body pauses (the queue never holds more).
    pub body_high: usize,
    /// Queued frames at or below which a paused `fetch` body resumes.
    pub body_low: usize,
    /// Queued frames at which what cannot pause (`EventSource`, a leader tab's channel) is
    /// closed, and a leader serving followers hands the lead over.
    pub unpausable_high: usize,
    /// Queued frames at or below which a closed link resumes from the last frame delivered.
    pub unpausable_low: usize,
    /// Frames a tab keeps for followers that join or fall behind.
    pub tab_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_high: BODY_HIGH,
            body_low: BODY_LOW,
            unpausable_high: UNPAUSABLE_HIGH,
            unpausable_low: UNPAUSABLE_LOW,
            tab_buffer: TAB_BUFFER_FRAMES,
        }
    }
}

impl Limits {
    fn validate(&self) -> Result<(), ConfigError> {
        let ordered = |low: usize, high: usize| high >= 1 && low < high;
        if !ordered(self.body_low, self.body_high)
            || !ordered(self.unpausable_low, self.unpausable_high)
            || self.tab_buffer == 0
        {
            return Err(ConfigError::Invalid {
                option: "limits",
                reason: "each low mark must be below its high mark, and every bound positive"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            session: SessionConfig::default(),
            transport: Transport::EventSource,
            tab: None,
            persist_cursor: false,
            refresh_credentials: false,
            headers: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// A connection this tab opens on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// The id its inputs are reported under.
    pub connection: ConnectionId,
    /// Parameters to append to the stream URL (cursor and epoch, or `from=now`), in order.
    pub query: Vec<(String, String)>,
    /// The cursor for the `Last-Event-ID` header (`fetch` only; [`Peer::headers`] has the rest).
    pub last_event_id: Option<String>,
}

/// IO the driver performs for the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a connection of this tab's own.
    Connect(Connect),
    /// Drop the transport of this connection (nothing if it is gone already).
    Disconnect(ConnectionId),
    /// Pause (`true`) or resume reading the current `fetch` body.
    PauseBody(bool),
    /// Ask the application for fresh credentials after `status` (401 or 403); answer with
    /// [`Peer::handle_credentials`].
    RefreshCredentials {
        /// The refused connection.
        connection: ConnectionId,
        /// Its status.
        status: u16,
    },
    /// Post on the stream's channel.
    Post(super::tabs::TabMessage),
    /// Queue for the stream's lock; answer with [`Peer::handle_lock_granted`] or
    /// [`Peer::handle_lock_lost`] with the same ticket.
    RequestLock(LockTicket),
    /// Release the stream's lock, or withdraw the request for it.
    ReleaseLock,
    /// Release the lock and leave the channel: the stream ended for this tab.
    LeaveTabs,
    /// Store the cursor for a reload (`None`: remove it; the stream finished).
    SaveCursor(Option<Cursor>),
    /// Tell the developer (the console): a kind of frame was not delivered for the first time.
    /// Every such frame is also counted in the stats and reported as an [`Event`].
    Warn(String),
}

/// How long a cursor change may wait before it is stored.
pub const PERSIST_DELAY: Duration = Duration::from_millis(200);

/// How the stream ended, for a reader with nothing left to take.
#[derive(Debug)]
enum Ending {
    Closed,
    Failed(Error),
}

/// Where the session's current connection gets its frames.
#[derive(Debug)]
struct Link {
    id: ConnectionId,
    source: Source,
}

#[derive(Debug, PartialEq, Eq)]
enum Source {
    /// A connection of this tab.
    Own,
    /// A `fetch` refused with `status` while the application looks for fresh credentials.
    Refreshing { status: u16 },
    /// The leader tab, through the channel; `welcomed` once it answered this tab's hello.
    Leader { welcomed: bool },
}

/// One tab's part of one stream. `P` is what the driver attaches to a transport frame for the
/// application (the browser's own strings), kept with the frame if it is delivered.
#[derive(Debug)]
pub struct Peer<P = ()> {
    session: Session,
    transport: Transport,
    done_event: String,
    ping_every: Duration,
    refresh_credentials: bool,
    headers: Vec<(String, String)>,
    limits: Limits,
    link: Option<Link>,
    sharing: Option<Sharing>,
    reader: Reader<P>,
    /// Since when this tab, leading for followers, has held at least its bound.
    behind_since: Option<Timestamp>,
    /// The transport frame being handled, with its payload, until the session delivers it.
    arriving: Option<(String, P)>,
    /// The `fetch` connection's parser, holding what the queue had no room for yet.
    parser: Option<(ConnectionId, SseParser)>,
    /// The `fetch` body ended while its parser held a backlog: the session hears of the end once
    /// the backlog is delivered.
    body_ended: bool,
    body_paused: bool,
    /// The session delivered `done`.
    finished: bool,
    opened: Option<Result<(), Error>>,
    ending: Option<Ending>,
    /// The last frame the application took, and its epoch.
    consumed: Option<(String, Arc<str>)>,
    persist: Option<Persist>,
    /// The kinds of undelivered frames already warned about (each is warned about once).
    warned: Vec<&'static str>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

#[derive(Debug, Default)]
struct Persist {
    dirty: bool,
    flush_at: Option<Timestamp>,
}

impl<P> Peer<P> {
    /// Starts the peer at `now`: its first connection (or hello) and its lock request are queued.
    pub fn new(config: PeerConfig, now: Timestamp) -> Result<Peer<P>, ConfigError> {
        let from_epoch_start =
            config.session.resume.is_none() && config.session.from == StartFrom::Start;
        let resumed_after = config.session.resume.as_ref().map(|c| c.id.clone());
        let done_event = config.session.names.done.clone();
        let ping_every = (config.session.heartbeat_timeout / 3).max(Duration::from_millis(100));
        config.limits.validate()?;
        let session = Session::new(config.session, now)?;
        let mut peer = Peer {
            session,
            transport: config.transport,
            done_event,
            ping_every,
            refresh_credentials: config.refresh_credentials,
            headers: config.headers,
            limits: config.limits,
            link: None,
            sharing: config.tab.map(|me| {
                Sharing::new(
                    me,
                    from_epoch_start,
                    resumed_after,
                    config.limits.tab_buffer,
                    config.limits.unpausable_high,
                )
            }),
            reader: Reader::new(),
            behind_since: None,
            arriving: None,
            parser: None,
            body_ended: false,
            body_paused: false,
            finished: false,
            opened: None,
            ending: None,
            consumed: None,
            persist: config.persist_cursor.then(Persist::default),
            warned: Vec::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        if let Some(sharing) = peer.sharing.as_mut() {
            sharing.request_lock(&mut peer.actions);
        }
        peer.pump(now);
        Ok(peer)
    }

    // -----------------------------------------------------------------------------------------
    // Outputs

    /// The next IO to perform.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next thing to tell the application's listeners (frames go to the reader instead).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Peer::handle_timeout`] next; `None` when nothing is pending.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let sharing = self.sharing.as_ref().and_then(Sharing::deadline);
        let persist = self.persist.as_ref().and_then(|p| p.flush_at);
        let stuck = self
            .behind_since
            .map(|since| since.saturating_add(READER_STUCK));
        [self.session.poll_timeout(), sharing, persist, stuck]
            .into_iter()
            .flatten()
            .min()
    }

    // -----------------------------------------------------------------------------------------
    // Inputs from this tab's own connection

    /// The connection's response started (`EventSource` open). Not a join.
    pub fn handle_open(&mut self, connection: ConnectionId, now: Timestamp) {
        if self.is_own(connection) {
            self.session.handle_connected(connection, now);
            self.pump(now);
        }
    }

    /// One event from the connection (`EventSource`), with the driver's `payload` for it.
    pub fn handle_event(
        &mut self,
        connection: ConnectionId,
        raw: RawEvent<'_>,
        payload: Option<P>,
        now: Timestamp,
    ) {
        if !self.is_own(connection) {
            return;
        }
        if let (Some(id), Some(payload)) = (raw.id, payload) {
            self.arriving = Some((id.to_owned(), payload));
        }
        self.session.handle_frame(connection, raw, now);
        self.pump(now);
    }

    /// The transport lost the connection and would retry by itself (`EventSource` in
    /// `CONNECTING`): the session reconnects itself instead.
    pub fn handle_retrying(&mut self, connection: ConnectionId, now: Timestamp) {
        if self.is_own(connection) {
            self.session.handle_error(connection, now);
            self.pump(now);
        }
    }

    /// The transport gave up on the connection (a network error, a refused `EventSource`, a
    /// URL the browser would not open).
    pub fn handle_failed(&mut self, connection: ConnectionId, now: Timestamp) {
        if self.is_own(connection) {
            self.session
                .handle_closed(connection, Disconnect::Failed, now);
            self.pump(now);
        }
    }

    /// A `fetch` response head: a stream, or a status the policy decides about (the server's
    /// `Retry-After`, read with [`retry_after_ms`](crate::core::retry_after_ms), backs it).
    pub fn handle_response(
        &mut self,
        connection: ConnectionId,
        status: u16,
        content_type: Option<&str>,
        retry_after: Option<Duration>,
        now: Timestamp,
    ) {
        if !self.is_own(connection) {
            return;
        }
        let event_stream = content_type.is_some_and(is_event_stream);
        match status {
            200..=299 if status != 204 && event_stream => {
                self.session.handle_connected(connection, now)
            }
            200..=299 if status != 204 => {
                self.session
                    .handle_closed(connection, Disconnect::NotEventStream, now)
            }
            401 | 403 if self.refresh_credentials => {
                if let Some(link) = self.link.as_mut() {
                    link.source = Source::Refreshing { status };
                }
                self.drop_transport(connection);
                self.actions
                    .push_back(Action::RefreshCredentials { connection, status });
            }
            _ => self.session.handle_closed(
                connection,
                Disconnect::Status {
                    status,
                    retry_after,
                },
                now,
            ),
        }
        self.pump(now);
    }

    /// Bytes of the connection's `fetch` body.
    pub fn handle_chunk(&mut self, connection: ConnectionId, bytes: &[u8], now: Timestamp) {
        if let Some((_, parser)) = self.parser_of(connection) {
            parser.feed(bytes);
            self.drain(self.drain_limit(), now);
            self.pump(now);
        }
    }

    /// The connection's `fetch` body ended: what it held goes to the session before its end,
    /// as the application makes room for it.
    pub fn handle_end(&mut self, connection: ConnectionId, now: Timestamp) {
        if let Some((_, parser)) = self.parser_of(connection) {
            parser.finish();
            self.body_ended = true;
            self.drain(self.drain_limit(), now);
            self.pump(now);
        }
    }

    /// The application's answer to [`Action::RefreshCredentials`]: headers to retry with
    /// (replacing those of the same names), or `None` to give up.
    pub fn handle_credentials(
        &mut self,
        connection: ConnectionId,
        fresh: Option<Vec<(String, String)>>,
        now: Timestamp,
    ) {
        let status = match &self.link {
            Some(Link {
                id,
                source: Source::Refreshing { status },
            }) if *id == connection => *status,
            _ => return,
        };
        let why = match fresh {
            Some(headers) => {
                for (name, value) in headers {
                    self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
                    self.headers.push((name, value));
                }
                Disconnect::CredentialsRefreshed
            }
            None => Disconnect::Status {
                status,
                retry_after: None,
            },
        };
        self.session.handle_closed(connection, why, now);
        self.pump(now);
    }

    // -----------------------------------------------------------------------------------------
    // Other inputs

    /// The deadline from [`Peer::poll_timeout`] passed (early or late calls are harmless).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.session.handle_timeout(now);
        self.sharing_timeouts(now);
        if self
            .persist
            .as_ref()
            .and_then(|p| p.flush_at)
            .is_some_and(|at| now >= at)
        {
            self.flush_cursor();
        }
        self.pump(now);
    }

    /// The page is going away: store the cursor now.
    pub fn handle_page_hide(&mut self) {
        self.flush_cursor();
    }

    /// The application is done with the stream.
    pub fn close(&mut self, now: Timestamp) {
        if self.opened.is_none() {
            self.opened = Some(Err(Error::Closed));
        }
        self.session.close();
        self.pump(now);
    }

    // -----------------------------------------------------------------------------------------
    // The application's side

    /// Resolves `open()`: `Ok` once the server's first `ready` came, or why it never will.
    pub fn opened(&self) -> Option<&Result<(), Error>> {
        self.opened.as_ref()
    }

    /// Whether the reader has something to act on: a frame not shown yet, or the end.
    pub fn readable(&self) -> bool {
        self.reader.has_unshown() || self.ending.is_some()
    }

    /// Every frame not shown to the application yet, in order, with its payload; they count as
    /// shown from now on, and are then taken one by one with [`Peer::take`].
    pub fn show(&mut self) -> impl Iterator<Item = (&Frame, Option<&P>)> {
        self.reader.show().map(|q| (&q.frame, q.payload.as_ref()))
    }

    /// Whether frames wait that the application has not been shown yet.
    pub fn unshown(&self) -> bool {
        self.reader.has_unshown()
    }

    /// Whether frames shown earlier wait to be taken.
    pub fn holds_shown(&self) -> bool {
        self.reader.holds_shown()
    }

    /// The application takes the oldest frame: the cursor moves past it.
    pub fn take(&mut self, now: Timestamp) -> Option<(Frame, Option<P>)> {
        let Queued {
            frame,
            epoch,
            payload,
        } = self.reader.take()?;
        // Reuses the cursor's buffer: no allocation per frame.
        match self.consumed.as_mut() {
            Some((id, at)) => {
                id.clone_from(&frame.id);
                *at = epoch;
            }
            None => self.consumed = Some((frame.id.clone(), epoch)),
        }
        if let Some(persist) = self.persist.as_mut() {
            persist.dirty = true;
            persist
                .flush_at
                .get_or_insert(now.saturating_add(PERSIST_DELAY));
            if frame.event == self.done_event {
                self.flush_cursor(); // the stream is over: its cursor goes at once
            }
        }
        if self.refill(now) {
            self.pump(now);
        }
        Some((frame, payload))
    }

    /// The end of the stream for a reader with nothing queued: `Err` once if it failed, then
    /// `Ok`; `None` while it runs.
    pub fn take_ending(&mut self) -> Option<Result<(), Error>> {
        if self.reader.len() > 0 {
            return None;
        }
        match self.ending.take()? {
            Ending::Failed(e) => {
                self.ending = Some(Ending::Closed);
                Some(Err(e))
            }
            Ending::Closed => {
                self.ending = Some(Ending::Closed);
                Some(Ok(()))
            }
        }
    }

    /// Frames delivered and not taken yet.
    pub fn queued(&self) -> usize {
        self.reader.len()
    }

    /// `connecting`, `live`, `reconnecting` or `closed`.
    pub fn state(&self) -> State {
        self.session.state()
    }

    /// The last frame the application took, with its epoch.
    pub fn cursor(&self) -> Option<Cursor> {
        self.consumed.as_ref().map(|(id, epoch)| Cursor {
            id: id.clone(),
            epoch: String::from(&**epoch),
        })
    }

    /// The journal epoch in force.
    pub fn epoch(&self) -> Option<&str> {
        self.session.epoch()
    }

    /// The tab's part: standalone, leader or follower (as it stood when the stream ended).
    pub fn role(&self) -> Role {
        self.sharing
            .as_ref()
            .map_or(Role::Standalone, Sharing::role)
    }

    /// The tab's id on the channel, when sharing.
    pub fn tab(&self) -> Option<&str> {
        self.sharing.as_ref().map(|s| s.me.as_str())
    }

    /// The headers of this tab's `fetch` connections.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Counters so far, the cross-tab ones included.
    pub fn stats(&self) -> Stats {
        let mut stats = self.session.stats();
        if let Some(sharing) = &self.sharing {
            stats.leader_changes = sharing.leader_changes;
            stats.rejected_messages = sharing.rejected;
        }
        stats
    }

    /// Whether the `fetch` body is paused now.
    pub fn body_paused(&self) -> bool {
        self.body_paused
    }

    // -----------------------------------------------------------------------------------------
    // Internals

    fn is_own(&self, connection: ConnectionId) -> bool {
        matches!(&self.link, Some(Link { id, source: Source::Own }) if *id == connection)
    }

    fn parser_of(&mut self, connection: ConnectionId) -> Option<&mut (ConnectionId, SseParser)> {
        if !self.is_own(connection) {
            return None;
        }
        self.parser.as_mut().filter(|(of, _)| *of == connection)
    }

    /// Hands what the `fetch` parser holds to the session until `limit` frames wait for the
    /// application; the rest stays parsed in the parser for [`Peer::refill`].
    fn drain(&mut self, limit: usize, now: Timestamp) {
        let Some((id, parser)) = self.parser.as_mut() else {
            return;
        };
        let id = *id;
        let room = limit.saturating_sub(self.reader.len()) as u64;
        let before = self.session.stats().delivered;
        while self.session.stats().delivered - before < room {
            let Some(item) = parser.poll() else {
                break;
            };
            match item {
                Parsed::Event(raw) => self.session.handle_frame(id, raw, now),
                Parsed::Comment => self.session.handle_heartbeat(id, now),
                Parsed::Retry(delay) => self.session.handle_retry(delay),
                Parsed::Error(error) => self.session.handle_parse_error(id, error),
            }
        }
        if self.body_ended && !parser.pending() {
            self.body_ended = false;
            self.session.handle_closed(id, Disconnect::Ended, now);
        }
    }

    /// Whether the current `fetch` connection's parser holds events the queue had no room for
    /// (or the end of a body that had some).
    fn backlog(&self) -> bool {
        self.parser.as_ref().is_some_and(|(of, parser)| {
            self.link.as_ref().is_some_and(|l| l.id == *of) && (parser.pending() || self.body_ended)
        })
    }

    /// The application made room: the `fetch` parser's backlog goes to the session, or a paused
    /// link may resume. Returns whether the peer has something new to pump.
    fn refill(&mut self, now: Timestamp) -> bool {
        if self.session.reader_paused() {
            return self.reader.len() <= self.limits.unpausable_low;
        }
        if self.reader.len() > self.limits.body_low || !self.backlog() {
            return self.body_paused && self.reader.len() <= self.limits.body_low;
        }
        self.drain(self.drain_limit(), now);
        true
    }

    /// Drops this tab's transport for `connection`, if it has one.
    fn drop_transport(&mut self, connection: ConnectionId) {
        self.actions.push_back(Action::Disconnect(connection));
        if self
            .parser
            .as_ref()
            .is_some_and(|(of, _)| *of == connection)
        {
            self.parser = None;
        }
    }

    /// Gives the session's current connection a transport of this tab's own.
    fn connect_own(&mut self) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        link.source = Source::Own;
        let connection = link.id;
        let last_event_id = match self.transport {
            Transport::Fetch => {
                self.parser = Some((connection, SseParser::new()));
                self.body_ended = false;
                let cursor = self.session.cursor_id().map(str::to_owned);
                cursor.filter(|_| self.session.sends_last_event_id())
            }
            Transport::EventSource => None,
        };
        self.actions.push_back(Action::Connect(Connect {
            connection,
            query: self.session.connect_query(),
            last_event_id,
        }));
    }

    /// Performs the session's commands and routes its events until nothing changes, then sets
    /// the bounds of the application's queue.
    fn pump(&mut self, now: Timestamp) {
        loop {
            let mut progressed = false;
            while let Some(command) = self.session.poll_command() {
                progressed = true;
                match command {
                    Command::Open(request) => {
                        self.link = Some(Link {
                            id: request.connection,
                            source: Source::Leader { welcomed: false },
                        });
                        let following = self.sharing.as_ref().is_some_and(|s| !s.leading);
                        if following {
                            self.follow(now);
                        } else {
                            self.connect_own();
                        }
                    }
                    Command::Close(id) => {
                        if let Some(link) = self.link.take_if(|l| l.id == id) {
                            if link.source == Source::Own {
                                self.drop_transport(id);
                            }
                        }
                    }
                }
            }
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                self.route(event, now);
            }
            if !progressed && !self.pause_or_resume(now) {
                break;
            }
        }
        self.arriving = None;
        if self.over_bound_while_serving() {
            self.behind_since.get_or_insert(now);
        } else {
            self.behind_since = None;
        }
        // A leader serving followers reads on for them (see `pause_or_resume`).
        let pause =
            !self.serving() && (self.reader.len() >= self.limits.body_high || self.backlog());
        let resume = self.reader.len() <= self.limits.body_low;
        if (pause && !self.body_paused) || (self.body_paused && !pause && resume) {
            self.body_paused = pause;
            self.actions.push_back(Action::PauseBody(pause));
        }
    }

    /// One event of the session: frames to the application's queue (and the followers), the
    /// rest to listeners, after acting on what it means for this tab.
    fn route(&mut self, event: Event, now: Timestamp) {
        match event {
            Event::Frame(frame) => {
                self.finished |= frame.event == self.done_event;
                // Frames follow a `ready`, which set the epoch.
                let epoch = self.session.shared_epoch().unwrap_or_else(|| Arc::from(""));
                if let Some(sharing) = self.sharing.as_mut() {
                    let start = self.session.start();
                    sharing.delivered(&frame, &epoch, start, now, &mut self.actions);
                }
                let payload = self
                    .arriving
                    .take()
                    .filter(|(id, _)| *id == frame.id)
                    .map(|(_, payload)| payload);
                self.reader.push(Queued {
                    frame,
                    epoch,
                    payload,
                });
                return;
            }
            Event::Ready(ref info) => {
                if self.opened.is_none() {
                    self.opened = Some(Ok(()));
                    self.warn_guarantee();
                }
                self.leader_ready(&info.epoch, now);
            }
            Event::Reset { .. } => {
                if let Some(sharing) = self.sharing.as_mut() {
                    sharing.reset();
                }
            }
            Event::Failed(ref e) => {
                if self.opened.is_none() {
                    self.opened = Some(Err(e.clone()));
                } else {
                    self.ending = Some(Ending::Failed(e.clone()));
                }
            }
            Event::Malformed(_) | Event::Gap { .. } | Event::Filtered { .. } => {
                self.warn_once(&event)
            }
            Event::StateChanged(State::Closed) => {
                self.ending.get_or_insert(Ending::Closed);
                self.link = None;
                self.parser = None;
                self.end_sharing(now);
                self.flush_cursor();
            }
            _ => {}
        }
        self.events.push_back(event);
    }

    /// Backpressure for what cannot pause (this tab's own `EventSource`, the leader's channel):
    /// the session closes it while the application is `unpausable_high` frames behind and
    /// resumes from the last frame delivered at `unpausable_low`. A leader serving followers must
    /// not pause for its own application (they would stall with it): once it has held at least
    /// the larger of its bounds for [`READER_STUCK`], it hands the lead to another tab and
    /// follows, bounded like any follower. Returns whether the session got
    /// something to do.
    fn pause_or_resume(&mut self, now: Timestamp) -> bool {
        // A Durable Stream's catch-up comes before its join: once it fills the queue, it counts
        // as joined, so the page can read (and the connection pause) before the tail is reached.
        // The one place this is decided: every input ends in a pump, which ends here.
        let full = self.limits.body_high.min(self.limits.unpausable_high);
        let own = matches!(
            &self.link,
            Some(Link {
                source: Source::Own,
                ..
            })
        );
        if own && self.reader.len() >= full && self.session.join_early(now) {
            return true;
        }
        let behind_too_long = self
            .behind_since
            .is_some_and(|since| now >= since.saturating_add(READER_STUCK));
        if behind_too_long && self.over_bound_while_serving() {
            self.behind_since = None;
            self.hand_over(now);
            return true;
        }
        if self.session.reader_paused() {
            if self.reader.len() <= self.limits.unpausable_low {
                self.session.resume_reader(now);
                return true;
            }
            return false;
        }
        let serving = self.serving();
        let unpausable = self.link.as_ref().is_some_and(|l| match l.source {
            Source::Own => self.transport == Transport::EventSource,
            Source::Leader { .. } => true,
            Source::Refreshing { .. } => false,
        });
        if unpausable && !serving && self.reader.len() >= self.limits.unpausable_high {
            self.session.pause_reader(now);
            return self.session.reader_paused();
        }
        false
    }

    /// A stream that cannot promise exactly once says so when it opens: frames it misses are
    /// never seen, so they cannot be counted one by one.
    fn warn_guarantee(&mut self) {
        let guarantee = self.session.stats().guarantee;
        if guarantee == Guarantee::ExactlyOnce {
            return;
        }
        let mut text = String::from("sse-relay: this stream is ");
        text.push_str(guarantee.as_str());
        text.push_str(
            " (`serverProfile: \"plain\"`): no frame twice and none out of order, but a frame \
             sent before the server subscribed this connection, or while none was open if the \
             server does not replay after Last-Event-ID, is missed; `contiguousIds` reports \
             missing numeric ids as `gap` events. `stream.stats.guarantee` says which holds.",
        );
        self.actions.push_back(Action::Warn(text));
    }

    /// The first frame of each kind that is not delivered gets a warning for the developer.
    fn warn_once(&mut self, event: &Event) {
        let (kind, what, counter, listener) = match event {
            Event::Malformed(_) => (
                "malformed",
                "a malformed input was not delivered",
                "malformed",
                "malformed",
            ),
            Event::Gap { .. } => (
                "gap",
                "ids are missing that the journal could not supply",
                "gaps",
                "gap",
            ),
            Event::Filtered { .. } => (
                "filtered",
                "a frame of an event type not in `events` was not delivered",
                "filtered",
                "filtered",
            ),
            _ => return,
        };
        if self.warned.contains(&kind) {
            return;
        }
        self.warned.push(kind);
        let mut text = String::from("sse-relay: ");
        text.push_str(what);
        text.push_str(" (");
        text.push_str(&event_detail(event));
        text.push_str("). `stream.stats.");
        text.push_str(counter);
        text.push_str("` counts every such frame and the `");
        text.push_str(listener);
        text.push_str("` event reports each; this warning is not repeated.");
        self.actions.push_back(Action::Warn(text));
    }

    /// Whether this tab leads and serves followers (it then reads on for them while its own
    /// application is behind, for at most [`READER_STUCK`]).
    pub fn serving(&self) -> bool {
        self.sharing
            .as_ref()
            .is_some_and(|s| s.leading && s.followers)
    }

    /// How many frames a `fetch` body's parser hands on before the rest waits in it: the bound,
    /// except for a leader serving followers.
    fn drain_limit(&self) -> usize {
        if self.serving() {
            usize::MAX
        } else {
            self.limits.body_high
        }
    }

    /// Whether this tab leads, serves followers, and holds at least the larger of its bounds.
    fn over_bound_while_serving(&self) -> bool {
        let high = self.limits.body_high.max(self.limits.unpausable_high);
        self.serving() && self.reader.len() >= high
    }

    /// Asks for the consumed cursor to be stored now, if it changed.
    fn flush_cursor(&mut self) {
        let Some(persist) = self.persist.as_mut() else {
            return;
        };
        persist.flush_at = None;
        if !persist.dirty {
            return;
        }
        persist.dirty = false;
        // Once `done` is taken a new open starts afresh: the stored cursor goes.
        let over = self.finished && self.reader.len() == 0;
        let cursor = if over { None } else { self.cursor() };
        self.actions.push_back(Action::SaveCursor(cursor));
    }
}

/// `text/event-stream`, with or without parameters, in any case.
fn is_event_stream(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("text/event-stream")
}

/// What an undelivered-frame event says, briefly.
fn event_detail(event: &Event) -> String {
    match event {
        Event::Malformed(m) => m.to_string(),
        Event::Gap { after, next } => {
            let mut s = String::from("after ");
            s.push_str(after);
            s.push_str(", next ");
            s.push_str(next);
            s
        }
        Event::Filtered { id, event } => {
            let mut s = String::from("id ");
            s.push_str(id);
            s.push_str(", event ");
            s.push_str(event);
            s
        }
        _ => String::new(),
    }
}
