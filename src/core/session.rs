//! The session: one logical stream across any number of connections, in the sans-IO style.
//!
//! It ties the ready gate, the cursor, the dedup window, epochs, the reconnect policy and the
//! heartbeat watchdog together. It performs no IO and reads no clock: the shell reports what
//! happened through `handle_*`, then drains `poll_*` for what to do and what to tell the app.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::backoff::{Backoff, BackoffPolicy};
use super::cursor::{CursorError, CursorOrder, ResolvedOrder};
use super::dedup::{DedupWindow, Verdict, DEFAULT_DEDUP_WINDOW};
use super::durable::{self, Read, Reading};
use super::frame::{EventNames, Frame, FrameKind, RawEvent, ReadyError, ReadyInfo};
use super::parser::ParseError;
use super::profile::{Guarantee, ServerProfile};
use super::time::Timestamp;

/// Largest dedup window accepted, so a typo cannot reserve gigabytes.
const MAX_DEDUP_WINDOW: usize = 1 << 20;

/// How long a joined connection must last, if it delivers nothing, before losing it starts the
/// reconnect backoff over.
const HEALTHY_AFTER: Duration = Duration::from_secs(1);

/// Where a stream without a cursor starts (`docs/PROTOCOL.md`, "Where a stream starts").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartFrom {
    /// Replay the whole retained journal (a late attach still sees the whole turn).
    #[default]
    Start,
    /// Replay nothing; start at the tail the server snapshots when it joins.
    Now,
}

/// A position to resume from: the id of the last delivered frame and the epoch it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The last delivered id.
    pub id: String,
    /// The journal incarnation the id belongs to.
    pub epoch: String,
}

/// How a session behaves. Field names map one to one to the JavaScript options (camelCase).
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// What the server speaks: protocol v1 (the default) or plain SSE.
    pub server_profile: ServerProfile,
    /// Where to start without a cursor.
    pub from: StartFrom,
    /// A cursor to resume from (e.g. restored from storage); wins over `from`.
    pub resume: Option<Cursor>,
    /// How ids compare.
    pub cursor_order: CursorOrder,
    /// How many opaque ids the dedup window remembers.
    pub dedup_window: usize,
    /// Numeric ids are consecutive from 1 in each epoch (1, 2, 3, ...): a hole after the cursor
    /// (or an id above 1 after joining an empty journal) means frames went missing (a server
    /// that sent `ready` before joining), so the session reconnects from its cursor to have the
    /// journal fill it, and reports a gap if the journal cannot.
    pub contiguous_ids: bool,
    /// How long to wait for `ready`: on first open the stream then fails closed; on a
    /// reconnect the connection is abandoned and retried.
    pub ready_timeout: Duration,
    /// How long a live connection may stay silent (no frame, no ping) before it counts as stalled.
    pub heartbeat_timeout: Duration,
    /// Reconnect delays.
    pub backoff: BackoffPolicy,
    /// The protocol's event names.
    pub names: EventNames,
    /// The journaled event types the application takes; `None`: every type. A journaled frame of
    /// another type is not delivered: it is counted ([`Stats::filtered`]) and reported
    /// ([`Event::Filtered`]), never dropped silently. `done` is always delivered.
    pub events: Option<Vec<String>>,
    /// Query parameter that carries the cursor on connections the session opens.
    pub cursor_param: String,
    /// Query parameter that carries the cursor's epoch.
    pub epoch_param: String,
    /// Seed of the reconnect jitter.
    pub seed: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            server_profile: ServerProfile::Relay,
            from: StartFrom::Start,
            resume: None,
            cursor_order: CursorOrder::Auto,
            dedup_window: DEFAULT_DEDUP_WINDOW,
            contiguous_ids: false,
            ready_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(45),
            backoff: BackoffPolicy::default(),
            names: EventNames::default(),
            events: None,
            cursor_param: "lastEventId".into(),
            epoch_param: "epoch".into(),
            seed: 0,
        }
    }
}

/// An option that cannot work, named as the JavaScript API spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `option` has a value that cannot work, for `reason`.
    Invalid {
        /// The option's name (camelCase, as in the JavaScript API).
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid { option, reason } => {
                f.write_str("option `")?;
                f.write_str(option)?;
                f.write_str("`: ")?;
                f.write_str(reason)
            }
        }
    }
}

impl std::error::Error for ConfigError {}

fn invalid(option: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        option,
        reason: reason.into(),
    }
}

impl SessionConfig {
    /// Checks every option; the first bad one is named in the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.dedup_window == 0 || self.dedup_window > MAX_DEDUP_WINDOW {
            return Err(invalid(
                "dedupWindow",
                format!("must be between 1 and {MAX_DEDUP_WINDOW}"),
            ));
        }
        if self.ready_timeout.is_zero() {
            return Err(invalid("readyTimeoutMs", "must be positive"));
        }
        if self.heartbeat_timeout.is_zero() {
            return Err(invalid("heartbeatTimeoutMs", "must be positive"));
        }
        if self.backoff.base < Duration::from_millis(1) {
            return Err(invalid("backoffBaseMs", "must be at least 1 ms"));
        }
        if self.backoff.cap < self.backoff.base {
            return Err(invalid("backoffMaxMs", "must not be below backoffBaseMs"));
        }
        let names = [
            ("readyEvent", &self.names.ready),
            ("doneEvent", &self.names.done),
            ("pingEvent", &self.names.ping),
        ];
        for (option, name) in names {
            if name.is_empty() || name.contains(['\r', '\n']) {
                return Err(invalid(
                    option,
                    "must be a non-empty event name without line breaks",
                ));
            }
        }
        if self.names.ready == self.names.done
            || self.names.ready == self.names.ping
            || self.names.done == self.names.ping
        {
            return Err(invalid(
                "readyEvent",
                "readyEvent, doneEvent and pingEvent must differ",
            ));
        }
        if self.server_profile == ServerProfile::DurableStreams {
            if !matches!(self.cursor_order, CursorOrder::Auto | CursorOrder::Opaque) {
                return Err(invalid(
                    "cursorOrder",
                    "a Durable Stream's ids are positions the client names: leave it out",
                ));
            }
            if self.contiguous_ids {
                return Err(invalid(
                    "contiguousIds",
                    "a Durable Stream's offsets are not consecutive numbers",
                ));
            }
            if self
                .events
                .as_ref()
                .is_some_and(|e| e.iter().any(|e| e != durable::DATA_EVENT))
            {
                return Err(invalid(
                    "events",
                    "a Durable Stream's messages are all `data` frames: leave it out",
                ));
            }
        }
        if let Some(events) = &self.events {
            if events.is_empty() {
                return Err(invalid("events", "must name at least one event type"));
            }
            for event in events {
                if event.is_empty() || event.contains(['\r', '\n']) {
                    return Err(invalid(
                        "events",
                        super::text::quoted(event) + " is not an event type",
                    ));
                }
                if *event == self.names.ready || *event == self.names.ping {
                    return Err(invalid(
                        "events",
                        super::text::quoted(event) + " is a protocol event, not a journaled one",
                    ));
                }
            }
        }
        if self.cursor_param.is_empty() {
            return Err(invalid("cursorParam", "must not be empty"));
        }
        if self.epoch_param.is_empty() || self.epoch_param == self.cursor_param {
            return Err(invalid(
                "epochParam",
                "must be non-empty and differ from cursorParam",
            ));
        }
        if self.server_profile == ServerProfile::Plain && self.from == StartFrom::Now {
            return Err(invalid(
                "from",
                "\"now\" needs a server that snapshots its tail (protocol v1); a plain SSE \
                 server starts where it starts: leave `from` out",
            ));
        }
        if let Some(resume) = &self.resume {
            if resume.epoch.is_empty() {
                return Err(invalid("resume", "the cursor's epoch must not be empty"));
            }
            if let Some(epoch) = self.server_profile.fixed_epoch() {
                if resume.epoch != epoch {
                    return Err(invalid(
                        "resume",
                        format!(
                            "a cursor of a {} server has the epoch \"{epoch}\"",
                            self.server_profile
                        ),
                    ));
                }
            }
            let mut probe = DedupWindow::new(self.cursor_order, 1);
            probe
                .admit(&resume.id)
                .map_err(|e| invalid("resume", e.to_string()))?;
        }
        Ok(())
    }
}

/// Names one connection the session asked for; inputs about older connections are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(u64);

impl ConnectionId {
    /// The number, for logs and maps in the shell.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("#")?;
        f.write_str(&super::text::decimal(self.0))
    }
}

/// A connection to open: the stream URL plus these query parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenRequest {
    /// The id to report its events under.
    pub connection: ConnectionId,
    /// Parameters to append to the URL (cursor and epoch, or `from=now`), in order.
    pub query: Vec<(String, String)>,
}

/// IO the shell performs for the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Open a connection.
    Open(OpenRequest),
    /// Close a connection and drop its listeners. Issued exactly once per opened connection;
    /// closing one the transport already lost is a no-op for the shell.
    Close(ConnectionId),
}

/// What the application sees of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Waiting for the first `ready`; nothing may be dispatched yet.
    Connecting,
    /// Joined: the server's subscription is live.
    Live,
    /// Was live, lost the connection, recovering from the cursor.
    Reconnecting,
    /// Ended: `done` delivered, closed by the app, or failed.
    Closed,
}

impl State {
    /// `connecting`, `live`, `reconnecting` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Live => "live",
            State::Reconnecting => "reconnecting",
            State::Closed => "closed",
        }
    }
}

/// Why a transport stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disconnect {
    /// The response ended.
    Ended,
    /// The transport failed and will not retry (a native `EventSource` after a non-200 status, a
    /// wrong content type or a network error it gave up on).
    Failed,
    /// The server answered with this HTTP status instead of a stream (a transport that can see it,
    /// like `fetch`). 204 stops for good; 401 and 403 fail (the shell may refresh credentials
    /// first and report [`Disconnect::CredentialsRefreshed`]); anything else backs off, at least
    /// `retry_after` when the server sent `Retry-After`.
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// A 2xx answer that is not `text/event-stream`: retrying would get the same, so it fails.
    NotEventStream,
    /// The shell obtained fresh credentials after a 401/403: reconnect at once (the first time
    /// since the last `ready`; after that, with backoff).
    CredentialsRefreshed,
}

/// Why the session is reconnecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interruption {
    /// The transport stopped.
    Closed(Disconnect),
    /// The transport lost the connection (and would have retried by itself).
    TransportRetrying,
    /// A live connection sent nothing, not even a ping, within the heartbeat timeout.
    Stalled,
    /// A reconnect did not get `ready` within the ready timeout.
    NoReady,
    /// The server's epoch changed while a cursor of the old one was in use.
    EpochChanged,
    /// Consecutive ids skipped some: the journal is asked to replay them.
    Gap,
    /// The application fell behind and the connection was paused (closed) until it caught up:
    /// the stream resumes from the last frame delivered.
    ReaderBehind,
    /// The stream moved between this tab's own connection and the leader tab's channel.
    Handover,
}

impl fmt::Display for Interruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interruption::Closed(Disconnect::Ended) => "the response ended",
            Interruption::Closed(Disconnect::Failed) => "the connection failed",
            Interruption::Closed(Disconnect::Status { .. }) => {
                "the server answered with an error status"
            }
            Interruption::Closed(Disconnect::NotEventStream) => {
                "the server answered with another content type"
            }
            Interruption::Closed(Disconnect::CredentialsRefreshed) => {
                "the credentials were refreshed"
            }
            Interruption::TransportRetrying => "the connection was lost",
            Interruption::Stalled => "no frame or ping within the heartbeat timeout",
            Interruption::NoReady => "no ready frame within the ready timeout",
            Interruption::EpochChanged => "the journal epoch changed",
            Interruption::Gap => "ids are missing after the cursor",
            Interruption::ReaderBehind => {
                "the application fell behind; the connection paused until it caught up"
            }
            Interruption::Handover => "the stream moved between this tab and the leader tab",
        })
    }
}

/// A terminal failure: the stream is closed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The server never confirmed its join: the application must not dispatch.
    ReadyTimeout {
        /// How long the session waited.
        waited: Duration,
    },
    /// The server refused the credentials (401 or 403) and none fresher were available.
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
    /// The server answered 204 No Content: it asks the client to stop.
    Stopped,
    /// The server answered 2xx with a content type other than `text/event-stream`.
    NotEventStream,
    /// The application closed the stream before the server's first `ready`.
    Closed,
    /// The server no longer has the stream's data at the cursor (HTTP 410: retention passed it,
    /// or the stream was deleted): resuming would skip frames.
    Gone,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ReadyTimeout { waited } => {
                f.write_str("no ready frame within ")?;
                f.write_str(&super::text::decimal(
                    u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                ))?;
                f.write_str(" ms: the server has not joined the stream, do not dispatch")
            }
            Error::Unauthorized { status } => {
                f.write_str("the server refused the credentials (HTTP ")?;
                f.write_str(&super::text::decimal(u64::from(*status)))?;
                f.write_str(")")
            }
            Error::Stopped => f.write_str("the server answered 204 No Content: the stream is over"),
            Error::NotEventStream => {
                f.write_str("the server answered with a content type other than text/event-stream")
            }
            Error::Closed => f.write_str("the stream was closed before the server joined it"),
            Error::Gone => f.write_str(
                "the server answered 410 Gone: it no longer has the stream's data at the cursor",
            ),
        }
    }
}

impl std::error::Error for Error {}

/// What was wrong with a malformed input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedKind {
    /// A journaled frame without an id: it cannot be deduplicated or resumed from.
    MissingId,
    /// A journaled frame whose id does not fit the stream's cursor order.
    BadId(CursorError),
    /// A `ready` frame with unusable data.
    BadReady(ReadyError),
    /// A `ready` frame whose tail does not fit the stream's cursor order.
    BadTail(CursorError),
    /// A journaled frame before the connection's `ready`: its epoch is unknown.
    BeforeReady,
    /// A journaled frame at or before the `ready.tail` a `from=now` stream started after: the
    /// source sent what `from=now` excludes (it is not a duplicate: it was never delivered).
    BeforeStart,
    /// Bytes the event-stream parser had to discard (a line or an event over its limits).
    Unparsable(ParseError),
    /// A Durable Streams event that is not a usable `data` or `control` event.
    BadControl(&'static str),
}

/// An input the session could not use. It is reported whole, so nothing is lost silently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// What was wrong.
    pub kind: MalformedKind,
    /// The frame's event type.
    pub event: String,
    /// The frame's id, if it had one.
    pub id: Option<String>,
    /// The frame's data.
    pub data: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed `")?;
        f.write_str(&self.event)?;
        f.write_str("` frame: ")?;
        match &self.kind {
            MalformedKind::MissingId => f.write_str("a journaled frame has no id"),
            MalformedKind::BadId(e) => fmt::Display::fmt(e, f),
            MalformedKind::BadReady(e) => fmt::Display::fmt(e, f),
            MalformedKind::BadTail(e) => {
                f.write_str("the ready frame's tail: ")?;
                fmt::Display::fmt(e, f)
            }
            MalformedKind::BeforeReady => f.write_str("a journaled frame arrived before ready"),
            MalformedKind::BeforeStart => f.write_str(
                "a journaled frame at or before the tail the from=now stream started after",
            ),
            MalformedKind::Unparsable(e) => fmt::Display::fmt(e, f),
            MalformedKind::BadControl(reason) => f.write_str(reason),
        }
    }
}

/// Something to tell the application, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The server confirmed its join. The first one means dispatching is safe.
    Ready(ReadyInfo),
    /// A journaled frame, exactly once and in order. A `done` frame is the last.
    Frame(Frame),
    /// The state changed.
    StateChanged(State),
    /// The journal's epoch changed: ids restarted, cursor and dedup state were cleared, and the
    /// new epoch's frames follow from its start.
    Reset {
        /// The epoch that ended.
        previous_epoch: String,
        /// The epoch now in force.
        epoch: String,
    },
    /// A connection was lost and the session is recovering.
    Reconnecting {
        /// Attempts since the last connection that delivered a frame or stayed joined for a
        /// second (1 for the first).
        attempt: u32,
        /// The delay before the session reconnects.
        delay: Duration,
        /// What happened.
        cause: Interruption,
    },
    /// Consecutive ids skipped some that a fresh replay from the cursor did not supply either
    /// (only with `contiguous_ids`); the stream goes on from `next`. Counted in [`Stats::gaps`].
    Gap {
        /// The last id delivered before the hole.
        after: String,
        /// The first id after the hole.
        next: String,
    },
    /// An input was malformed and was not delivered; counted in [`Stats::malformed`].
    Malformed(Malformed),
    /// A journaled frame of an event type the application did not ask for was not delivered;
    /// counted in [`Stats::filtered`].
    Filtered {
        /// Its id.
        id: String,
        /// Its event type.
        event: String,
    },
    /// The stream failed and is closed.
    Failed(Error),
}

/// Counters of what the session did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames delivered to the application.
    pub delivered: u64,
    /// Frames dropped because they had been delivered already.
    pub duplicates: u64,
    /// Connections lost and re-established (by the session or by the transport itself).
    pub reconnects: u64,
    /// Epoch changes.
    pub resets: u64,
    /// Holes in consecutive ids that the journal could not fill (`contiguous_ids` only).
    pub gaps: u64,
    /// Malformed inputs.
    pub malformed: u64,
    /// Live connections abandoned by the heartbeat watchdog.
    pub stalls: u64,
    /// Connections the session opened.
    pub connections: u64,
    /// Times the leading tab of the stream changed (counted by the cross-tab shell).
    pub leader_changes: u64,
    /// Channel messages ignored as malformed, stale or foreign (counted by the cross-tab shell).
    pub rejected_messages: u64,
    /// Journaled frames of an event type the application did not ask for (see
    /// [`SessionConfig::events`]).
    pub filtered: u64,
    /// What the stream promises, given the server's profile.
    pub guarantee: Guarantee,
}

#[derive(Clone, Debug)]
struct Connection {
    id: ConnectionId,
    ready: bool,
    /// When `ready` arrived (meaningful once `ready`).
    ready_at: Timestamp,
    /// A frame was delivered from it.
    delivered: bool,
    /// The server may have resumed after a cursor (query parameter or `Last-Event-ID` header).
    asked_with_cursor: bool,
    /// The connection's URL asks for `from=now`.
    from_now: bool,
    /// When a reconnecting connection gives up waiting for `ready`.
    ready_deadline: Timestamp,
    last_activity: Timestamp,
    /// How it reads a Durable Stream (that profile only).
    reading: Option<Reading>,
}

#[derive(Clone, Debug)]
enum Link {
    /// Waiting out a reconnect delay.
    Waiting { until: Timestamp },
    /// A connection is opening or open.
    Active(Connection),
    /// No connection while the application catches up with the frames delivered (backpressure
    /// for a transport that cannot pause): nothing is lost, the next connection resumes after
    /// the last frame delivered.
    Paused,
    /// Ended for good.
    Stopped,
}

/// One logical stream: every journaled frame exactly once, in order, across reconnects.
///
/// # Call order
///
/// 1. [`Session::new`] validates the options and queues the first [`Command::Open`].
/// 2. Whenever the shell learns something, it calls the matching input with the current time:
///    [`handle_connected`](Session::handle_connected) (the response started; not a join),
///    [`handle_frame`](Session::handle_frame) (one event),
///    [`handle_error`](Session::handle_error) (the transport lost the connection and would retry),
///    [`handle_closed`](Session::handle_closed) (the transport stopped for good),
///    [`handle_timeout`](Session::handle_timeout) (the deadline from `poll_timeout` passed), or
///    [`close`](Session::close) (the application is done).
/// 3. After any input the shell drains, in this order, [`poll_command`](Session::poll_command)
///    (perform each), [`poll_event`](Session::poll_event) (hand each to the app), and then reads
///    [`poll_timeout`](Session::poll_timeout) and arms one timer for that instant (replacing the
///    previous one; `None` means no timer).
///
/// Inputs naming a connection other than the current one are ignored, so a late event from a
/// connection the session already abandoned can never be delivered.
#[derive(Debug)]
pub struct Session {
    profile: ServerProfile,
    names: EventNames,
    /// The journaled event types the application takes (`None`: all).
    wanted: Option<Vec<String>>,
    cursor_param: String,
    epoch_param: String,
    ready_timeout: Duration,
    heartbeat_timeout: Duration,
    contiguous_ids: bool,
    /// The cursor after which the last hole was seen: a hole after it again, once resumed from
    /// it, is a real gap (the replay did not have the next id; a server without a journal sends a
    /// later id each time).
    last_hole: Option<u64>,
    /// The last `ready` found the journal empty: with consecutive ids the next one is 1.
    joined_empty: bool,
    /// Credentials were refreshed since the last `ready`: a second refusal in a row backs off
    /// instead of retrying at once (a hook that keeps handing out refused tokens must not spin).
    refreshed_since_ready: bool,
    dedup: DedupWindow,
    backoff: Backoff,
    /// The last delivered id (or the `from=now` tail), in `epoch`.
    cursor: Option<String>,
    /// The `from=now` tail the stream started after, in `epoch`.
    start: Option<String>,
    /// Shared with every frame queued for the reader, so a frame carries its epoch without a copy.
    epoch: Option<Arc<str>>,
    /// Connections without a cursor ask `from=now` until the first `ready`.
    from_now_pending: bool,
    /// Durable Streams: the cursor, the last offset a `control` gave at or before it, and how many
    /// messages after that offset the cursor covers (a reconnect then starts there instead of
    /// re-reading from the offset the cursor is named from).
    resume_offset: Option<(String, String, u64)>,
    /// Durable Streams: the server's last `streamCursor`, echoed on the next request.
    server_cursor: Option<String>,
    ever_ready: bool,
    started: Timestamp,
    link: Link,
    next_connection: u64,
    commands: VecDeque<Command>,
    events: VecDeque<Event>,
    reported_state: State,
    stats: Stats,
}

impl Session {
    /// Starts a session at `now` and queues its first connection.
    pub fn new(config: SessionConfig, now: Timestamp) -> Result<Session, ConfigError> {
        config.validate()?;
        // A Durable Stream's ids name positions from several offsets: only exact ids compare.
        let order = match config.server_profile {
            ServerProfile::DurableStreams => CursorOrder::Opaque,
            _ => config.cursor_order,
        };
        let mut dedup = DedupWindow::new(order, config.dedup_window);
        let (cursor, epoch) = match config.resume {
            Some(Cursor { id, epoch }) => {
                dedup
                    .admit(&id)
                    .map_err(|e| invalid("resume", e.to_string()))?;
                (Some(id), Some(Arc::from(epoch)))
            }
            None => (
                None,
                // Frames of a Durable Stream may come before its join: their epoch is known.
                (config.server_profile == ServerProfile::DurableStreams)
                    .then(|| Arc::from(durable::DURABLE_EPOCH)),
            ),
        };
        let mut session = Session {
            from_now_pending: config.from == StartFrom::Now && cursor.is_none(),
            profile: config.server_profile,
            resume_offset: None,
            server_cursor: None,
            names: config.names,
            wanted: config.events,
            cursor_param: config.cursor_param,
            epoch_param: config.epoch_param,
            ready_timeout: config.ready_timeout,
            heartbeat_timeout: config.heartbeat_timeout,
            contiguous_ids: config.contiguous_ids,
            last_hole: None,
            joined_empty: false,
            refreshed_since_ready: false,
            dedup,
            backoff: Backoff::new(config.backoff, config.seed),
            cursor,
            start: None,
            epoch,
            ever_ready: false,
            started: now,
            link: Link::Stopped,
            next_connection: 0,
            commands: VecDeque::new(),
            events: VecDeque::new(),
            reported_state: State::Connecting,
            stats: Stats {
                guarantee: config.server_profile.guarantee(),
                ..Stats::default()
            },
        };
        session.open_connection(now);
        Ok(session)
    }

    /// The transport's response started (HTTP 200, `open`). With protocol v1 this is not a join:
    /// the session stays unready until the server's `ready` frame. A plain SSE server sends no
    /// `ready`: its open response is all the join there is.
    pub fn handle_connected(&mut self, connection: ConnectionId, now: Timestamp) {
        let Some(c) = self.active_mut(connection) else {
            return;
        };
        c.last_activity = now;
        let joined = c.ready;
        if let (true, false, Some(epoch)) = (
            self.profile.joins_at_open(),
            joined,
            self.profile.fixed_epoch(),
        ) {
            let info = ReadyInfo {
                tail: None,
                epoch: epoch.to_owned(),
            };
            self.on_ready(info, now);
            self.report_state();
        }
    }

    /// One event from `connection`.
    pub fn handle_frame(&mut self, connection: ConnectionId, raw: RawEvent<'_>, now: Timestamp) {
        let Some(c) = self.active_mut(connection) else {
            return;
        };
        c.last_activity = now;
        let ready = c.ready;
        if self.profile == ServerProfile::DurableStreams {
            self.on_durable(raw, now);
            self.report_state();
            return;
        }
        let kind = match self.names.classify(raw.event) {
            // Without join confirmations, an event named like `ready` is the server's own.
            FrameKind::Ready if self.profile.joins_at_open() => FrameKind::Journaled,
            kind => kind,
        };
        match kind {
            FrameKind::Ping => {}
            FrameKind::Ready => match ReadyInfo::parse(raw.data) {
                Ok(info) => self.on_ready(info, now),
                Err(e) => self.malformed(MalformedKind::BadReady(e), raw),
            },
            _ if !ready => self.malformed(MalformedKind::BeforeReady, raw),
            kind => self.on_journaled(kind, raw, now),
        }
        self.report_state();
    }

    /// A journaled frame already read and named (a tab relaying its leader's frames): the same as
    /// [`Session::handle_frame`], except that a Durable Stream's frame is not read as the wire's
    /// `data` event again.
    pub fn handle_relayed(&mut self, connection: ConnectionId, raw: RawEvent<'_>, now: Timestamp) {
        if self.profile != ServerProfile::DurableStreams {
            return self.handle_frame(connection, raw, now);
        }
        let Some(c) = self.active_mut(connection) else {
            return;
        };
        c.last_activity = now;
        let kind = match self.names.classify(raw.event) {
            FrameKind::Done => FrameKind::Done,
            _ => FrameKind::Journaled,
        };
        self.on_journaled(kind, raw, now);
        self.report_state();
    }

    /// A `ready` already read (a tab relaying its leader's join): the same as a `ready` frame
    /// with this payload on `connection`.
    pub fn handle_ready(&mut self, connection: ConnectionId, info: ReadyInfo, now: Timestamp) {
        let Some(c) = self.active_mut(connection) else {
            return;
        };
        c.last_activity = now;
        self.on_ready(info, now);
        self.report_state();
    }

    /// The transport lost `connection` and is retrying by itself (a native `EventSource` in
    /// `CONNECTING`). That is not a failure and nothing is reported as an error; but the session
    /// runs the reconnect itself: the browser's retry waits a fixed delay without jitter, and the
    /// URL it retries cannot carry the current epoch or drop a stale `from=now`.
    pub fn handle_error(&mut self, connection: ConnectionId, now: Timestamp) {
        if self.active_mut(connection).is_some() {
            // `EventSource` shows a Durable Streams server's periodic close as an error.
            let at_once = (self.profile == ServerProfile::DurableStreams && self.healthy(now))
                .then_some(Duration::ZERO);
            self.abandon(Interruption::TransportRetrying, now, at_once);
            self.report_state();
        }
    }

    /// The transport stopped `connection` for good; the session reconnects after a backoff delay.
    pub fn handle_closed(&mut self, connection: ConnectionId, why: Disconnect, now: Timestamp) {
        if self.active_mut(connection).is_none() {
            return;
        }
        let durable = self.profile == ServerProfile::DurableStreams;
        match why {
            Disconnect::Status { status: 204, .. } => self.fail(Error::Stopped),
            Disconnect::Status { status: 410, .. } if durable => self.fail(Error::Gone),
            // A Durable Streams server closes its responses every minute or so: go on at once.
            Disconnect::Ended if durable && self.healthy(now) => {
                self.abandon(Interruption::Closed(why), now, Some(Duration::ZERO));
            }
            Disconnect::Status {
                status: status @ (401 | 403),
                ..
            } => self.fail(Error::Unauthorized { status }),
            Disconnect::NotEventStream => self.fail(Error::NotEventStream),
            Disconnect::CredentialsRefreshed => {
                let delay = (!self.refreshed_since_ready).then_some(Duration::ZERO);
                self.refreshed_since_ready = true;
                self.abandon(Interruption::Closed(why), now, delay);
            }
            Disconnect::Status {
                retry_after: Some(at_least),
                ..
            } => {
                let delay = self.backoff.next_delay().max(at_least);
                self.abandon(Interruption::Closed(why), now, Some(delay));
            }
            Disconnect::Status { .. } | Disconnect::Ended | Disconnect::Failed => {
                self.abandon(Interruption::Closed(why), now, None);
            }
        }
        self.report_state();
    }

    /// The connection is alive without sending a frame (an SSE comment line): the heartbeat
    /// watchdog counts it like a ping.
    pub fn handle_heartbeat(&mut self, connection: ConnectionId, now: Timestamp) {
        if let Some(c) = self.active_mut(connection) {
            c.last_activity = now;
        }
    }

    /// The event-stream parser discarded input on `connection` (over its limits): counted and
    /// reported as malformed; the stream goes on.
    pub fn handle_parse_error(&mut self, connection: ConnectionId, error: ParseError) {
        if self.active_mut(connection).is_some() {
            self.malformed(
                MalformedKind::Unparsable(error),
                RawEvent {
                    event: "",
                    id: None,
                    data: "",
                },
            );
        }
    }

    /// The server's `retry:` field: the base of the reconnect backoff from now on.
    pub fn handle_retry(&mut self, retry: Duration) {
        self.backoff.set_base(retry.max(Duration::from_millis(1)));
    }

    /// The deadline from [`Session::poll_timeout`] passed (calling it early or late is harmless).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if !self.ever_ready && !matches!(self.link, Link::Stopped) {
            let deadline = self.started.saturating_add(self.ready_timeout);
            if now >= deadline {
                self.fail(Error::ReadyTimeout {
                    waited: now.saturating_since(self.started),
                });
                self.report_state();
                return;
            }
        }
        match &self.link {
            Link::Waiting { until } if now >= *until => self.open_connection(now),
            Link::Active(c) if !c.ready && self.ever_ready && now >= c.ready_deadline => {
                self.abandon(Interruption::NoReady, now, None);
            }
            // A Durable Stream's catch-up streams before its join: its silence is a stall too.
            Link::Active(c)
                if (c.ready || c.reading.is_some())
                    && now >= c.last_activity.saturating_add(self.heartbeat_timeout) =>
            {
                self.stats.stalls += 1;
                self.abandon(Interruption::Stalled, now, None);
            }
            _ => {}
        }
        self.report_state();
    }

    /// The application is done: close the connection and stop.
    pub fn close(&mut self) {
        self.stop();
        self.report_state();
    }

    /// The application has too many delivered frames still to take: close the connection (a
    /// transport that cannot pause, like `EventSource`) until [`Session::resume_reader`]. Only a
    /// live connection pauses; otherwise this does nothing. The state stays `live`: every frame
    /// so far is delivered, the rest waits at the server.
    pub fn pause_reader(&mut self, now: Timestamp) {
        if let Link::Active(c) = &self.link {
            if c.ready {
                self.commands.push_back(Command::Close(c.id));
                self.settle_backoff(now);
                self.link = Link::Paused;
            }
        }
    }

    /// The stream must move to another transport (a tab taking over from its leader, or handing
    /// over to another): the current connection is closed and a new one opened at once, from the
    /// cursor, not ready until its own `ready`. Does nothing once the session is stopped or paused.
    pub fn reconnect(&mut self, now: Timestamp) {
        if matches!(self.link, Link::Stopped | Link::Paused) {
            return;
        }
        self.abandon(Interruption::Handover, now, Some(Duration::ZERO));
        // A handover is not a lost connection: counted in `connections`, not in `reconnects`.
        self.open_connection_counted(now, false);
        self.report_state();
    }

    /// Whether the current connection has joined (its `ready` came).
    pub fn joined(&self) -> bool {
        matches!(&self.link, Link::Active(c) if c.ready)
    }

    /// A Durable Streams connection still catching up is taken as joined now (the application's
    /// queue is full: it must read before the tail is reached). Returns whether it joined.
    pub fn join_early(&mut self, now: Timestamp) -> bool {
        let catching_up = self.profile == ServerProfile::DurableStreams
            && matches!(&self.link, Link::Active(c) if !c.ready);
        if catching_up {
            self.join_durable(now);
            self.report_state();
        }
        catching_up
    }

    /// Whether the connection is paused for the application (see [`Session::pause_reader`]).
    pub fn reader_paused(&self) -> bool {
        matches!(self.link, Link::Paused)
    }

    /// The application caught up: reconnect from the last frame delivered, at once.
    pub fn resume_reader(&mut self, now: Timestamp) {
        if matches!(self.link, Link::Paused) {
            self.events.push_back(Event::Reconnecting {
                attempt: 1,
                delay: Duration::ZERO,
                cause: Interruption::ReaderBehind,
            });
            self.open_connection(now);
            self.report_state();
        }
    }

    /// The next IO to perform.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// The next thing to tell the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Session::handle_timeout`] next; `None` when nothing is pending.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let initial = (!self.ever_ready).then(|| self.started.saturating_add(self.ready_timeout));
        let own = match &self.link {
            Link::Stopped | Link::Paused => return None,
            Link::Waiting { until } => *until,
            Link::Active(c) if c.ready => c.last_activity.saturating_add(self.heartbeat_timeout),
            Link::Active(c) if c.reading.is_some() => c
                .ready_deadline
                .min(c.last_activity.saturating_add(self.heartbeat_timeout)),
            Link::Active(c) => c.ready_deadline,
        };
        Some(initial.map_or(own, |initial| initial.min(own)))
    }

    /// The current state.
    pub fn state(&self) -> State {
        match &self.link {
            Link::Stopped => State::Closed,
            Link::Active(c) if c.ready => State::Live,
            Link::Paused => State::Live,
            _ if self.ever_ready => State::Reconnecting,
            _ => State::Connecting,
        }
    }

    /// The last delivered id and its epoch: where a new session would resume.
    pub fn cursor(&self) -> Option<Cursor> {
        let id = self.cursor.clone()?;
        let epoch = String::from(&**self.epoch.as_ref()?);
        Some(Cursor { id, epoch })
    }

    /// The epoch in force, once a `ready` was seen (or restored with a cursor).
    pub fn epoch(&self) -> Option<&str> {
        self.epoch.as_deref()
    }

    /// The epoch in force, shared (a frame queued for the reader keeps it without a copy).
    pub fn shared_epoch(&self) -> Option<Arc<str>> {
        self.epoch.clone()
    }

    /// The id of the last delivered frame (or the `from=now` start): the cursor without its epoch.
    pub fn cursor_id(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Ids held by the dedup window (1 for ordered ids; at most `dedupWindow` for opaque ones).
    pub fn dedup_retained(&self) -> usize {
        self.dedup.retained()
    }

    fn active_mut(&mut self, connection: ConnectionId) -> Option<&mut Connection> {
        match &mut self.link {
            Link::Active(c) if c.id == connection => Some(c),
            _ => None,
        }
    }

    /// The query a connection opened now would carry: the cursor and its epoch, or `from=now`
    /// before the first `ready`, or nothing. A shell that moves the current connection to another
    /// transport (a tab taking over as leader) opens it with this.
    pub fn resume_query(&self) -> Vec<(String, String)> {
        let mut query = Vec::new();
        if self.profile == ServerProfile::DurableStreams {
            // Sorted by name, as the protocol recommends for caches.
            if let Some(cursor) = &self.server_cursor {
                query.push(("cursor".to_owned(), cursor.clone()));
            }
            query.push(("live".to_owned(), "sse".to_owned()));
            query.push(("offset".to_owned(), self.reading().offset().to_owned()));
            return query;
        }
        if let Some(cursor) = &self.cursor {
            query.push((self.cursor_param.clone(), cursor.clone()));
            if let Some(epoch) = self.epoch.as_ref().filter(|_| self.profile.has_epochs()) {
                query.push((self.epoch_param.clone(), String::from(&**epoch)));
            }
        } else if self.from_now_pending {
            query.push(("from".to_owned(), "now".to_owned()));
        }
        query
    }

    /// How a Durable Streams connection opened now reads: from the offset right after the cursor
    /// when a `control` gave it, else from the cursor's own offset, skipping what it names.
    fn reading(&self) -> Reading {
        match (&self.cursor, &self.resume_offset) {
            (Some(cursor), Some((at, offset, skip))) if cursor == at => {
                Reading::at(offset.clone(), *skip)
            }
            (Some(cursor), _) => Reading::after(Some(cursor)),
            (None, _) if self.from_now_pending => Reading::live_only(),
            (None, _) => Reading::after(None),
        }
    }

    /// Whether connections carry the cursor in a `Last-Event-ID` header too (not to a Durable
    /// Streams server: it reads only `offset`, and the header costs a CORS preflight).
    pub fn sends_last_event_id(&self) -> bool {
        self.profile != ServerProfile::DurableStreams
    }

    /// The query of a transport the shell opens now for the current connection (the first, or a
    /// tab taking over from the leader tab's channel on the same connection): a Durable Streams
    /// connection reads from where the stream stands now, not from where it stood when the
    /// connection was first asked for.
    pub fn connect_query(&mut self) -> Vec<(String, String)> {
        if self.profile == ServerProfile::DurableStreams {
            let reading = self.reading();
            if let Link::Active(c) = &mut self.link {
                c.reading = Some(reading);
            }
        }
        self.resume_query()
    }

    /// Whether a connection opened now would ask for `from=now`: no cursor and no `ready` yet.
    pub fn starts_now(&self) -> bool {
        self.cursor.is_none() && self.from_now_pending
    }

    /// The `ready.tail` this stream started after without delivering it (a `from=now` join), in
    /// the current epoch; `None` when it started at the beginning or from a cursor.
    pub fn start(&self) -> Option<&str> {
        self.start.as_deref()
    }

    fn open_connection(&mut self, now: Timestamp) {
        self.open_connection_counted(now, true);
    }

    /// Opens the next connection; `recovery`: it replaces one that was lost (`stats.reconnects`).
    fn open_connection_counted(&mut self, now: Timestamp, recovery: bool) {
        let id = ConnectionId(self.next_connection);
        self.next_connection += 1;
        let query = self.resume_query();
        let from_now = self.cursor.is_none() && self.from_now_pending;
        if self.stats.connections > 0 && recovery {
            self.stats.reconnects += 1;
        }
        self.stats.connections += 1;
        self.link = Link::Active(Connection {
            id,
            ready: false,
            ready_at: now,
            delivered: false,
            asked_with_cursor: self.cursor.is_some(),
            from_now,
            ready_deadline: now.saturating_add(self.ready_timeout),
            last_activity: now,
            reading: (self.profile == ServerProfile::DurableStreams).then(|| self.reading()),
        });
        self.commands.push_back(Command::Open(OpenRequest {
            connection: id,
            query,
        }));
    }

    /// Drops the current connection and schedules the next one after `delay` (a backoff draw
    /// when `None`).
    fn abandon(&mut self, cause: Interruption, now: Timestamp, delay: Option<Duration>) {
        if let Link::Active(c) = &self.link {
            self.commands.push_back(Command::Close(c.id));
            self.settle_backoff(now);
        }
        let delay = delay.unwrap_or_else(|| self.backoff.next_delay());
        let attempt = self.backoff.attempt().max(1);
        self.link = Link::Waiting {
            until: now.saturating_add(delay),
        };
        self.events.push_back(Event::Reconnecting {
            attempt,
            delay,
            cause,
        });
    }

    /// The current connection is going: only one that proved useful starts the backoff over (it
    /// delivered a frame or stayed joined a while). A server that answers `ready` and hangs up at
    /// once (a cursor it will never serve past) must meet a growing delay, not a loop.
    fn settle_backoff(&mut self, now: Timestamp) {
        if self.healthy(now) {
            self.backoff.reset();
        }
    }

    /// Whether the current connection proved useful: joined, and it delivered a frame or lasted;
    /// or a Durable Stream's catch-up that delivered a frame before its join.
    fn healthy(&self, now: Timestamp) -> bool {
        matches!(&self.link, Link::Active(c)
            if (c.ready && (c.delivered || now >= c.ready_at.saturating_add(HEALTHY_AFTER)))
                || (c.reading.is_some() && c.delivered))
    }

    fn stop(&mut self) {
        if let Link::Active(c) = &self.link {
            self.commands.push_back(Command::Close(c.id));
        }
        self.link = Link::Stopped;
    }

    fn fail(&mut self, error: Error) {
        self.stop();
        self.events.push_back(Event::Failed(error));
    }

    fn on_ready(&mut self, info: ReadyInfo, now: Timestamp) {
        let Link::Active(c) = &self.link else { return };
        // `from=now` places the start once: at the session's first join, on the connection that
        // asked for it. Any later `ready` (a leader tab's reconnect relayed on the same link, a new
        // epoch) leaves the start alone: a new epoch is delivered from its beginning.
        let (asked_with_cursor, starts_now) =
            (c.asked_with_cursor, c.from_now && self.from_now_pending);
        if let Some(previous) = self.epoch.take_if(|e| **e != *info.epoch) {
            self.stats.resets += 1;
            self.dedup.clear();
            self.last_hole = None;
            self.cursor = None;
            self.start = None;
            self.from_now_pending = false;
            self.epoch = Some(Arc::from(info.epoch.as_str()));
            self.events.push_back(Event::Reset {
                previous_epoch: String::from(&*previous),
                epoch: info.epoch.clone(),
            });
            if asked_with_cursor {
                // The server may have replayed after an id of the old epoch (a server that ignores
                // `epoch`); only a connection without a cursor surely starts the new epoch whole.
                self.abandon(Interruption::EpochChanged, now, Some(Duration::ZERO));
                return;
            }
        }
        if self.epoch.as_deref() != Some(info.epoch.as_str()) {
            self.epoch = Some(Arc::from(info.epoch.as_str()));
        }
        // Only a `ready` says the journal is empty; a plain server's join says nothing of it.
        self.joined_empty = self.profile == ServerProfile::Relay && info.tail.is_none();
        if starts_now && self.cursor.is_none() {
            if let Some(tail) = &info.tail {
                // The start is where reconnects resume, not a delivery: the dedup window keeps it
                // apart, so it can never make an undelivered frame pass for a duplicate.
                match self.dedup.start_after(tail) {
                    Ok(()) => {
                        self.cursor = Some(tail.clone());
                        self.start = Some(tail.clone());
                    }
                    Err(e) => {
                        let event = self.names.ready.clone();
                        self.malformed(
                            MalformedKind::BadTail(e),
                            RawEvent {
                                event: &event,
                                id: None,
                                data: tail,
                            },
                        );
                    }
                }
            }
        }
        if let Link::Active(c) = &mut self.link {
            c.ready = true;
            c.ready_at = now;
        }
        self.from_now_pending = false;
        self.ever_ready = true;
        self.refreshed_since_ready = false;
        self.events.push_back(Event::Ready(info));
    }

    /// An event of a Durable Streams connection: messages become frames named by position, a
    /// `control` moves the read on and may be the join or the end.
    fn on_durable(&mut self, raw: RawEvent<'_>, now: Timestamp) {
        match raw.event {
            durable::DATA_EVENT => {
                self.durable_progress(now);
                for message in durable::messages(raw.data) {
                    let read = match &mut self.link {
                        Link::Active(Connection {
                            reading: Some(reading),
                            ..
                        }) => reading.message(),
                        _ => return, // the connection ended on an earlier message (`done`)
                    };
                    match read {
                        Read::Message(id) => self.on_journaled(
                            FrameKind::Journaled,
                            RawEvent {
                                event: raw.event,
                                id: Some(&id),
                                data: message,
                            },
                            now,
                        ),
                        Read::Delivered => self.stats.duplicates += 1,
                        // Before a live-only stream's start, as a protocol v1 server's tail.
                        Read::BeforeStart => {}
                    }
                }
            }
            durable::CONTROL_EVENT => match durable::parse_control(raw.data) {
                Ok(control) => self.on_control(control, now),
                Err(reason) => self.malformed(MalformedKind::BadControl(reason), raw),
            },
            _ => self.malformed(
                MalformedKind::BadControl("an event that is neither `data` nor `control`"),
                raw,
            ),
        }
    }

    /// A Durable Stream's catch-up is progress, not a missing join: the ready deadlines move on.
    fn durable_progress(&mut self, now: Timestamp) {
        if let Link::Active(c) = &mut self.link {
            c.ready_deadline = now.saturating_add(self.ready_timeout);
        }
        if !self.ever_ready {
            self.started = now;
        }
    }

    fn on_control(&mut self, control: durable::Control, now: Timestamp) {
        let Link::Active(c) = &mut self.link else {
            return;
        };
        let Some(reading) = c.reading.as_mut() else {
            return;
        };
        let (skip, started) = reading.control(&control);
        let joined = c.ready;
        self.durable_progress(now);
        if control.cursor.is_some() {
            self.server_cursor = control.cursor.clone();
        }
        let offset = control.next_offset;
        if started && self.cursor.is_none() {
            // A live-only read starts at its first control's offset, as at a `ready.tail`.
            if self.dedup.start_after(&offset).is_ok() {
                self.cursor = Some(offset.clone());
                self.start = Some(offset.clone());
            }
        }
        if let Some(cursor) = &self.cursor {
            self.resume_offset = Some((cursor.clone(), offset.clone(), skip));
        }
        if control.closed {
            let id = durable::closed_id(&offset);
            let event = self.names.done.clone();
            let raw = RawEvent {
                event: &event,
                id: Some(&id),
                data: "",
            };
            if !joined {
                self.join_durable(now);
            }
            self.on_journaled(FrameKind::Done, raw, now);
        } else if control.up_to_date && !joined {
            self.join_durable(now);
        }
    }

    /// The first `control` that reached the live tail: the join.
    fn join_durable(&mut self, now: Timestamp) {
        let info = ReadyInfo {
            tail: None,
            epoch: durable::DURABLE_EPOCH.to_owned(),
        };
        self.on_ready(info, now);
    }

    /// For consecutive numeric ids: the hole between the cursor and `id`, if there is one.
    fn hole_before(&self, id: &str) -> Option<(u64, u64)> {
        if !self.contiguous_ids
            || self
                .dedup
                .order()
                .is_some_and(|o| o != ResolvedOrder::Numeric)
        {
            return None;
        }
        // Consecutive ids start at 1: after joining an empty journal, the cursor is in effect 0.
        let cursor: u64 = match self.cursor.as_deref() {
            Some(cursor) => cursor.parse().ok()?,
            None if self.joined_empty => 0,
            None => return None,
        };
        let next: u64 = id.parse().ok()?;
        (next > cursor.saturating_add(1)).then_some((cursor, next))
    }

    fn on_journaled(&mut self, kind: FrameKind, raw: RawEvent<'_>, now: Timestamp) {
        let Some(id) = raw.id.filter(|id| !id.is_empty()) else {
            self.malformed(MalformedKind::MissingId, raw);
            return;
        };
        if let Some(hole) = self.hole_before(id) {
            if self.last_hole != Some(hole.0) {
                // First sight: the journal may still have the missing entries; resume from the
                // cursor so the replay fills the hole.
                self.last_hole = Some(hole.0);
                self.abandon(Interruption::Gap, now, None);
                return;
            }
            // The replay from the cursor skipped the same ids: the journal does not have them.
            self.stats.gaps += 1;
            self.events.push_back(Event::Gap {
                after: super::text::decimal(hole.0),
                next: super::text::decimal(hole.1),
            });
        }
        match self.dedup.admit(id) {
            Err(e) => self.malformed(MalformedKind::BadId(e), raw),
            Ok(Verdict::Duplicate) => self.stats.duplicates += 1,
            Ok(Verdict::BeforeStart) => self.malformed(MalformedKind::BeforeStart, raw),
            Ok(Verdict::New) => {
                if let Link::Active(c) = &mut self.link {
                    c.delivered = true;
                }
                self.cursor = Some(id.to_owned());
                let wanted = kind == FrameKind::Done
                    || self
                        .wanted
                        .as_ref()
                        .is_none_or(|events| events.iter().any(|e| e == raw.event));
                if !wanted {
                    // Past it (a reconnect does not fetch it again), but not the application's.
                    self.stats.filtered += 1;
                    self.events.push_back(Event::Filtered {
                        id: id.to_owned(),
                        event: raw.event.to_owned(),
                    });
                    return;
                }
                self.stats.delivered += 1;
                self.events.push_back(Event::Frame(Frame {
                    id: id.to_owned(),
                    event: raw.event.to_owned(),
                    data: raw.data.to_owned(),
                }));
                if kind == FrameKind::Done {
                    self.stop();
                }
            }
        }
    }

    fn malformed(&mut self, kind: MalformedKind, raw: RawEvent<'_>) {
        self.stats.malformed += 1;
        self.events.push_back(Event::Malformed(Malformed {
            kind,
            event: raw.event.to_owned(),
            id: raw.id.map(str::to_owned),
            data: raw.data.to_owned(),
        }));
    }

    fn report_state(&mut self) {
        let state = self.state();
        if state != self.reported_state {
            self.reported_state = state;
            self.events.push_back(Event::StateChanged(state));
        }
    }
}
