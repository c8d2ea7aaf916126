//! The shell: runs one core [`Session`] against the browser adapters.
//!
//! Every browser callback goes the same way: borrow the shell, hand the input to the session with
//! the time, then [`drive`]: perform the session's commands, queue its frames, re-arm the timer,
//! and, after the borrow is released, call listeners and wake readers (a listener may call back
//! into the stream, e.g. `close()`, so nothing user-supplied runs while the shell is borrowed).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use std::time::Duration;

use super::tabs::{Role, Tabs};
use crate::core::{
    Command, ConnectionId, Cursor, Disconnect, Event, Frame, RawEvent, Session, State, Stats,
};
use crate::core::{Parsed, SseParser, StartFrom};
use crate::error::Error;
use crate::options::{Credentials, Options, PersistCursor, Transport};
use crate::web::abort::AbortListener;
use crate::web::clock;
use crate::web::event_source::{EventSourceConnection, SourceEvent};
use crate::web::fetch::{FetchConnection, FetchEvent, FetchRequest, ReadGate};
use crate::web::page_hide::PageHideListener;
use crate::web::storage::CursorStore;
use crate::web::timer::Timer;
use crate::web::url;
use futures::future::LocalBoxFuture;
use gloo_timers::callback::Timeout;
use web_sys::RequestCredentials;

/// How long a leader whose stream finished keeps the lock (see `Shell::finished_lead`).
const FINISHED_LEADER_HOLD_MS: u32 = 1000;

/// Queued frames at which this tab's own `EventSource`, or a follower's link to its leader, is
/// closed (neither can pause), and at which the session reconnects from the last frame
/// delivered. Higher than for `fetch`: each pause costs a reconnect and a replay.
const EVENT_SOURCE_QUEUE_HIGH: usize = 8192;
const EVENT_SOURCE_QUEUE_LOW: usize = 2048;

/// Queued frames at which a `fetch` body pauses, and at which it resumes. The queue never holds
/// more than `QUEUE_HIGH`: the rest of a slice of the body waits, parsed but not turned into
/// frames, in the connection's parser, and the rest of the body in JavaScript and the network.
pub(crate) const QUEUE_HIGH: usize = 2048;
const QUEUE_LOW: usize = 512;

/// A listener of the session's non-frame events.
pub type Listener = Rc<dyn Fn(&Event)>;

/// A clonable handle on one running stream. Dropping handles does not close the stream; the
/// public `RelayStream` closes it on drop.
#[derive(Clone)]
pub(crate) struct Handle(Rc<Inner>);

pub(super) struct Inner {
    shell: RefCell<Shell>,
    listeners: RefCell<Vec<(u64, Listener)>>,
    next_listener: Cell<u64>,
}

pub(super) struct Shell {
    /// The shell's own handle, for the closures it gives to timers and connections.
    pub(super) weak_self: Weak<Inner>,
    pub(super) session: Session,
    base_url: String,
    listened: Vec<String>,
    done_event: String,
    pub(super) ready_event: String,
    pub(super) heartbeat: Duration,
    with_credentials: bool,
    transport: Transport,
    cursor_param: String,
    /// What a `fetch` connection sends; `onUnauthorized` may replace headers.
    request: FetchRequest,
    on_unauthorized: Option<UnauthorizedHook>,
    /// The session's current connection and where its frames come from.
    pub(super) link: Option<Link>,
    /// Sharing the stream with other tabs, when enabled and available.
    pub(super) tabs: Option<Tabs>,
    /// The role and cross-tab counters as they stood when the stream ended (and `tabs` went).
    ended_tabs: Option<(Role, u64, u64)>,
    /// The session delivered the `done` frame: the stream finished.
    finished: bool,
    /// A finished leader's part, held (with its lock) for `FINISHED_LEADER_HOLD_MS`.
    finished_lead: Option<(Tabs, Timeout)>,
    timer: Timer,
    /// Frames the session delivered that the reader has not taken yet.
    queue: VecDeque<Queued>,
    /// How many frames at the front of `queue` the reader has been shown (in a batch) but has not
    /// taken yet: a batch crosses to JavaScript in one go, the cursor still moves frame by frame.
    shown: usize,
    /// Pauses a `fetch` body while the queue is long (backpressure; `EventSource` cannot pause).
    read_gate: Rc<ReadGate>,
    /// The current `fetch` connection's parser, with the events of its last chunks that the queue
    /// had no room for yet.
    fetch_parser: Option<(ConnectionId, SseParser)>,
    epoch: Rc<str>,
    opened: Option<Result<(), Error>>,
    ending: Option<Ending>,
    wakers: Vec<Waker>,
    /// One-shot callbacks for when there is something to read (the JavaScript reader's wake-up).
    readable: Vec<Box<dyn FnOnce()>>,
    /// The id and epoch of the last frame the reader took: what `cursor` reports and what a
    /// reload resumes after.
    consumed: Option<(String, Rc<str>)>,
    /// The `EventSource` event being handled, with its frame object for the page: if the session
    /// delivers it, the page gets that object instead of a copy of the frame out of wasm.
    arriving: Option<(String, wasm_bindgen::JsValue)>,
    persist: Option<Persist>,
    _abort: Option<AbortListener>,
}

/// A frame waiting for the reader.
struct Queued {
    frame: Frame,
    epoch: Rc<str>,
    /// The frame as the page's object already, when the transport made one (`EventSource`).
    page_frame: Option<wasm_bindgen::JsValue>,
}

/// The session's current connection.
pub(super) struct Link {
    pub(super) id: ConnectionId,
    pub(super) source: Source,
}

/// Where a connection's frames come from: the session cannot tell the difference.
pub(super) enum Source {
    /// A connection of this tab (held for its `Drop`, which closes it).
    Own { _connection: OwnConnection },
    /// A `fetch` refused with 401/403 while `onUnauthorized` looks for fresh credentials.
    Refreshing,
    /// The leader tab, through the channel; `welcomed` once it answered this tab's hello.
    Leader { welcomed: bool },
}

/// A transport this tab opened, held for its `Drop` (which closes it).
pub(super) enum OwnConnection {
    EventSource { _held: EventSourceConnection },
    Fetch { _held: FetchConnection },
}

/// `onUnauthorized`: given the status, fresh headers to retry with, or `None` to stop.
pub type UnauthorizedHook =
    Rc<dyn Fn(u16) -> LocalBoxFuture<'static, Option<Vec<(String, String)>>>>;

/// The options that are behaviour rather than data.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Aborting it closes the stream (and rejects a pending open).
    pub signal: Option<web_sys::AbortSignal>,
    /// Called on 401/403 with the `fetch` transport.
    pub on_unauthorized: Option<UnauthorizedHook>,
    /// Called with every non-frame event from the very start, so retries before the first
    /// `ready` (while `open` is pending) can be observed too.
    pub on_event: Option<Listener>,
}

enum Ending {
    /// Ended normally (`done`, `close()`, abort): the reader sees the end of the stream.
    Closed,
    /// Failed: the reader gets the error once, then the end.
    Failed(Error),
}

/// `persistCursor: "session"`: the consumed cursor, written at most every
/// [`Persist::FLUSH_MS`], on `pagehide` and when the stream ends.
struct Persist {
    store: CursorStore,
    dirty: bool,
    /// The stream finished (`done` consumed): the stored cursor is removed, a new open starts afresh.
    finished: bool,
    flush: Option<Timeout>,
    _page_hide: Option<PageHideListener>,
}

impl Persist {
    const FLUSH_MS: u32 = 200;

    fn flush(&mut self, cursor: Option<&Cursor>) {
        if self.dirty {
            self.store.save(if self.finished { None } else { cursor });
            self.dirty = false;
        }
        self.flush = None;
    }
}

impl Handle {
    /// Validates the options, creates the session and opens the first connection.
    pub(crate) fn start(url: &str, options: &Options, hooks: Hooks) -> Result<Handle, Error> {
        let Hooks {
            signal,
            on_unauthorized,
            on_event,
        } = hooks;
        if signal.as_ref().is_some_and(|s| s.aborted()) {
            return Err(Error::Aborted);
        }
        let base_url = url::absolute(url).map_err(|e| Error::Connect(describe(&e)))?;
        let key = options.key.clone().unwrap_or_else(|| base_url.clone());
        let store =
            (options.persist_cursor == PersistCursor::Session).then(|| CursorStore::new(&key));
        let seed = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
        // A stored cursor that does not fit the configured order is stale: start without it.
        let resume = store.as_ref().and_then(CursorStore::load);
        let config = match options.session_config(resume, seed) {
            Err(e) if e.option == "resume" => options.session_config(None, seed)?,
            other => other?,
        };
        let resumed_from = config.resume.clone();
        let session = Session::new(config, clock::now()).map_err(|e| Error::Options(e.into()))?;
        let inner = Rc::new_cyclic(|weak: &Weak<Inner>| {
            let persist = store.map(|store| Persist {
                store,
                dirty: false,
                finished: false,
                flush: None,
                _page_hide: PageHideListener::new({
                    let weak = weak.clone();
                    move || with_shell(&weak, Shell::flush_cursor)
                }),
            });
            let abort = signal.map(|signal| {
                let weak = weak.clone();
                AbortListener::new(signal, move || {
                    if let Some(inner) = weak.upgrade() {
                        Handle(inner).close_with(Some(Error::Aborted));
                    }
                })
            });
            let tabs = if options.share_across_tabs {
                let from_epoch_start = resumed_from.is_none() && options.from == StartFrom::Start;
                let weak = weak.clone();
                Tabs::join(&key, from_epoch_start, move |text| {
                    with_handle(&weak, |shell| shell.on_tab_message(text));
                })
            } else {
                None
            };
            Inner {
                shell: RefCell::new(Shell {
                    weak_self: weak.clone(),
                    session,
                    base_url,
                    listened: options.listened_events(),
                    done_event: options.done_event.clone(),
                    ready_event: options.ready_event.clone(),
                    heartbeat: Duration::from_millis(options.heartbeat_timeout_ms.into()),
                    with_credentials: options.with_credentials,
                    transport: options.transport,
                    cursor_param: options.cursor_param.clone(),
                    request: FetchRequest {
                        method: options.method.clone(),
                        headers: options.headers.clone(),
                        body: options.body.clone(),
                        credentials: match options.credentials {
                            Credentials::Omit => RequestCredentials::Omit,
                            Credentials::SameOrigin => RequestCredentials::SameOrigin,
                            Credentials::Include => RequestCredentials::Include,
                        },
                    },
                    on_unauthorized,
                    link: None,
                    tabs,
                    ended_tabs: None,
                    finished: false,
                    finished_lead: None,
                    timer: Timer::default(),
                    queue: VecDeque::new(),
                    shown: 0,
                    read_gate: Rc::default(),
                    fetch_parser: None,
                    epoch: Rc::from(""),
                    opened: None,
                    ending: None,
                    wakers: Vec::new(),
                    readable: Vec::new(),
                    consumed: None,
                    arriving: None,
                    persist,
                    _abort: abort,
                }),
                // Registered before the first connection, so nothing before `ready` is missed.
                listeners: RefCell::new(on_event.into_iter().map(|l| (0, l)).collect()),
                next_listener: Cell::new(1),
            }
        });
        inner.shell.borrow_mut().request_lock();
        let handle = Handle(inner);
        handle.drive();
        Ok(handle)
    }

    /// Resolves when the server's first `ready` arrived, or with why it never will.
    pub(crate) fn poll_opened(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut shell = self.0.shell.borrow_mut();
        match &shell.opened {
            Some(result) => Poll::Ready(result.clone()),
            None => {
                shell.register(cx.waker());
                Poll::Pending
            }
        }
    }

    /// The next frame, the failure, or the end.
    pub(crate) fn poll_frame(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame, Error>>> {
        let mut shell = self.0.shell.borrow_mut();
        if let Some(frame) = shell.take_frame() {
            if shell.refill() {
                drop(shell);
                self.drive();
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        match shell.take_ending() {
            Some(ending) => Poll::Ready(ending.err().map(Err)),
            None => {
                shell.register(cx.waker());
                Poll::Pending
            }
        }
    }

    /// Shows the reader, in order, every queued frame it has not been shown yet, without taking
    /// them: the reader calls [`Handle::take_shown`] as it hands each one on. With nothing to
    /// show, says whether the stream failed (once) or ended, or that there is nothing yet.
    /// `each` also gets the frame's page object when the transport made one.
    pub(crate) fn show_unread(
        &self,
        mut each: impl FnMut(&Frame, Option<&wasm_bindgen::JsValue>),
    ) -> Unread {
        let mut shell = self.0.shell.borrow_mut();
        let shell = &mut *shell;
        if shell.shown < shell.queue.len() {
            for queued in shell.queue.range(shell.shown..) {
                each(&queued.frame, queued.page_frame.as_ref());
            }
            shell.shown = shell.queue.len();
            return Unread::Frames;
        }
        if shell.shown > 0 {
            return Unread::Nothing; // the reader still holds shown frames
        }
        match shell.take_ending() {
            Some(Ok(())) => Unread::Ended,
            Some(Err(e)) => Unread::Failed(e),
            None => Unread::Nothing,
        }
    }

    /// The reader handed on the oldest frame it was shown: the cursor moves past it.
    pub(crate) fn take_shown(&self) {
        let refilled = {
            let mut shell = self.0.shell.borrow_mut();
            if shell.shown > 0 {
                let _ = shell.take_frame();
            }
            shell.refill()
        };
        if refilled {
            self.drive();
        }
    }

    /// Calls `wake` once there is something to read (a frame, the failure or the end); at once if
    /// there already is.
    pub(crate) fn when_readable(&self, wake: Box<dyn FnOnce()>) {
        let readable = {
            let mut shell = self.0.shell.borrow_mut();
            let readable = shell.shown < shell.queue.len() || shell.ending.is_some();
            if !readable {
                shell.readable.push(wake);
                return;
            }
            wake
        };
        readable();
    }

    /// Closes the stream: the connection, the timer, and the reader's end.
    pub(crate) fn close(&self) {
        self.close_with(None);
    }

    fn close_with(&self, error: Option<Error>) {
        {
            let mut shell = self.0.shell.borrow_mut();
            if shell.opened.is_none() {
                shell.opened = Some(Err(error.clone().unwrap_or(Error::Aborted)));
            }
            shell.session.close();
        }
        self.drive();
    }

    pub(crate) fn state(&self) -> State {
        self.0.shell.borrow().session.state()
    }

    pub(crate) fn stats(&self) -> Stats {
        let shell = self.0.shell.borrow();
        let mut stats = shell.session.stats();
        if let Some((_, leader_changes, rejected)) = shell.tab_counters() {
            stats.leader_changes = leader_changes;
            stats.rejected_messages = rejected;
        }
        stats
    }

    pub(crate) fn role(&self) -> Role {
        self.0
            .shell
            .borrow()
            .tab_counters()
            .map_or(Role::Standalone, |(role, _, _)| role)
    }

    pub(crate) fn cursor(&self) -> Option<Cursor> {
        self.0.shell.borrow().consumed_cursor()
    }

    pub(crate) fn epoch(&self) -> Option<String> {
        self.0.shell.borrow().session.epoch().map(str::to_owned)
    }

    /// Adds a listener of non-frame events; returns its id for [`Handle::unlisten`].
    pub(crate) fn listen(&self, listener: Listener) -> u64 {
        let id = self.0.next_listener.get();
        self.0.next_listener.set(id + 1);
        self.0.listeners.borrow_mut().push((id, listener));
        id
    }

    pub(crate) fn unlisten(&self, id: u64) {
        self.0.listeners.borrow_mut().retain(|(i, _)| *i != id);
    }

    /// Performs what the session asked for, then notifies listeners and readers.
    fn drive(&self) {
        let (notices, wakers) = {
            let mut shell = self.0.shell.borrow_mut();
            let notices = shell.pump();
            let wakers = if notices.woke {
                (
                    std::mem::take(&mut shell.wakers),
                    std::mem::take(&mut shell.readable),
                )
            } else {
                (Vec::new(), Vec::new())
            };
            (notices.events, wakers)
        };
        if !notices.is_empty() {
            let listeners: Vec<Listener> = self
                .0
                .listeners
                .borrow()
                .iter()
                .map(|(_, l)| Rc::clone(l))
                .collect();
            for event in &notices {
                for listener in &listeners {
                    listener(event);
                }
            }
        }
        let (wakers, readable) = wakers;
        for waker in wakers {
            waker.wake();
        }
        for wake in readable {
            wake();
        }
    }
}

/// What [`Handle::show_unread`] found.
pub(crate) enum Unread {
    /// Frames, shown in order.
    Frames,
    /// Nothing to read yet.
    Nothing,
    /// The stream failed; reported once, then [`Unread::Ended`].
    Failed(Error),
    /// The stream ended.
    Ended,
}

/// What one pump produced for the world outside the shell.
struct Notices {
    events: Vec<Event>,
    woke: bool,
}

impl Shell {
    /// The tab's role and cross-tab counters, live or as they stood when the stream ended.
    fn tab_counters(&self) -> Option<(Role, u64, u64)> {
        match &self.tabs {
            Some(tabs) => Some((tabs.role(), tabs.leader_changes, tabs.rejected)),
            None => self.ended_tabs,
        }
    }

    fn register(&mut self, waker: &Waker) {
        if !self.wakers.iter().any(|w| w.will_wake(waker)) {
            self.wakers.push(waker.clone());
        }
    }

    /// The end of the stream for a reader with nothing queued: `Err` once if it failed, then
    /// `Ok`; `None` while it runs.
    fn take_ending(&mut self) -> Option<Result<(), Error>> {
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

    fn take_frame(&mut self) -> Option<Frame> {
        let Queued { frame, epoch, .. } = self.queue.pop_front()?;
        self.shown = self.shown.saturating_sub(1);
        if self.queue.len() <= QUEUE_LOW && self.read_gate.is_closed() {
            self.update_gate();
        }
        let done = frame.event == self.done_event;
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
            persist.finished |= done;
            if done {
                persist.flush(None);
            } else if persist.flush.is_none() {
                let timer = self.flush_timer();
                if let Some(persist) = self.persist.as_mut() {
                    persist.flush = Some(timer);
                }
            }
        }
        Some(frame)
    }

    /// The cursor of the last frame the reader took.
    fn consumed_cursor(&self) -> Option<Cursor> {
        self.consumed.as_ref().map(|(id, epoch)| Cursor {
            id: id.clone(),
            epoch: String::from(&**epoch),
        })
    }

    /// Performs the session's commands and collects its events until it has nothing more.
    fn pump(&mut self) -> Notices {
        let mut notices = Notices {
            events: Vec::new(),
            woke: false,
        };
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
                        if self.tabs.as_ref().is_some_and(|t| !t.leading) {
                            self.follow();
                        } else {
                            self.open_own(&request.query);
                        }
                    }
                    Command::Close(id) => {
                        if self.link.as_ref().is_some_and(|l| l.id == id) {
                            self.link = None; // drop closes it and removes its listeners
                        }
                    }
                }
            }
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                match event {
                    Event::Frame(frame) => {
                        self.finished |= frame.event == self.done_event;
                        if let Some(tabs) = self.tabs.as_mut() {
                            tabs.delivered(&frame, &self.epoch);
                        }
                        // The EventSource event that brought it, if any, made its page object.
                        let page_frame = self
                            .arriving
                            .take()
                            .filter(|(id, _)| *id == frame.id)
                            .map(|(_, value)| value);
                        self.queue.push_back(Queued {
                            frame,
                            epoch: Rc::clone(&self.epoch),
                            page_frame,
                        });
                        notices.woke = true;
                        continue;
                    }
                    Event::Ready(ref info) => {
                        if *self.epoch != *info.epoch {
                            self.epoch = Rc::from(info.epoch.as_str());
                        }
                        if self.opened.is_none() {
                            self.opened = Some(Ok(()));
                            notices.woke = true;
                        }
                        self.leader_ready(&info.epoch);
                    }
                    Event::Reset { ref epoch, .. } => {
                        self.epoch = Rc::from(epoch.as_str());
                        if let Some(tabs) = self.tabs.as_mut() {
                            tabs.reset();
                        }
                    }
                    Event::Failed(ref e) => {
                        let error = Error::from(e.clone());
                        if self.opened.is_none() {
                            self.opened = Some(Err(error));
                        } else {
                            self.ending = Some(Ending::Failed(error));
                        }
                        notices.woke = true;
                    }
                    Event::StateChanged(State::Closed) => {
                        self.ending.get_or_insert(Ending::Closed);
                        self.link = None;
                        if let Some(mut tabs) = self.tabs.take() {
                            tabs.publish_now(); // the last frames, `done` among them
                            self.ended_tabs =
                                Some((tabs.role(), tabs.leader_changes, tabs.rejected));
                            // Dropping `tabs` releases the lock: the next tab leads. A leader
                            // whose stream finished holds it a moment longer, so the followers
                            // finish from the channel instead of one of them being granted the
                            // lock first and connecting once more for the tail it already has.
                            if tabs.leading && self.finished {
                                let weak = self.weak_self.clone();
                                let hold = Timeout::new(FINISHED_LEADER_HOLD_MS, move || {
                                    with_shell(&weak, |shell| shell.finished_lead = None)
                                });
                                self.finished_lead = Some((tabs, hold));
                            }
                        }
                        self.flush_cursor();
                        notices.woke = true;
                    }
                    _ => {}
                }
                notices.events.push(event);
            }
            if !progressed && !self.pause_or_resume_reader() {
                break;
            }
        }
        self.arriving = None;
        if let Some(tabs) = self.tabs.as_mut() {
            tabs.publish_soon(&self.weak_self);
        }
        self.update_gate();
        self.rearm();
        notices
    }

    /// Gives the current connection a transport of this tab's own, asking for `query`.
    pub(super) fn open_own(&mut self, query: &[(String, String)]) {
        let Some(id) = self.link.as_ref().map(|l| l.id) else {
            return;
        };
        let now = clock::now();
        let url = match url::with_query(&self.base_url, query) {
            Ok(url) => url,
            Err(_) => return self.session.handle_closed(id, Disconnect::Failed, now),
        };
        let weak = self.weak_self.clone();
        let opened = match self.transport {
            Transport::EventSource => EventSourceConnection::open(
                &url,
                self.with_credentials,
                &self.listened,
                move |event| {
                    with_handle(&weak, |shell| {
                        let now = clock::now();
                        let session = &mut shell.session;
                        match event {
                            SourceEvent::Open => session.handle_connected(id, now),
                            SourceEvent::Message {
                                event,
                                last_event_id,
                                data,
                                page_frame,
                            } => {
                                let id_field = (!last_event_id.is_empty()).then_some(last_event_id);
                                shell.arriving = Some((last_event_id.to_owned(), page_frame));
                                session.handle_frame(
                                    id,
                                    RawEvent {
                                        event,
                                        id: id_field,
                                        data,
                                    },
                                    now,
                                );
                            }
                            SourceEvent::Error { retrying: true } => session.handle_error(id, now),
                            SourceEvent::Error { retrying: false } => {
                                session.handle_closed(id, Disconnect::Failed, now)
                            }
                        }
                    });
                },
            )
            .map(|held| OwnConnection::EventSource { _held: held }),
            Transport::Fetch => {
                let mut request = self.request.clone();
                // The cursor rides in the Last-Event-ID header as well as in the query.
                if let Some((_, cursor)) = query.iter().find(|(name, _)| *name == self.cursor_param)
                {
                    request
                        .headers
                        .retain(|(name, _)| !name.eq_ignore_ascii_case("last-event-id"));
                    request
                        .headers
                        .push(("Last-Event-ID".to_owned(), cursor.clone()));
                }
                self.fetch_parser = Some((id, SseParser::new()));
                let gate = Rc::clone(&self.read_gate);
                FetchConnection::open(&url, &request, gate, move |event| match event {
                    FetchEvent::Response {
                        status,
                        content_type,
                        retry_after_ms,
                    } => {
                        let event_stream = content_type.is_some_and(is_event_stream);
                        with_handle(&weak, |shell| {
                            shell.on_response(id, status, event_stream, retry_after_ms)
                        });
                    }
                    FetchEvent::Chunk(bytes) => with_handle(&weak, |shell| {
                        if let Some((_, parser)) = shell.fetch_parser_of(id) {
                            parser.feed(bytes);
                        }
                        shell.drain(id, QUEUE_HIGH);
                    }),
                    FetchEvent::End => with_handle(&weak, |shell| {
                        if let Some((_, parser)) = shell.fetch_parser_of(id) {
                            parser.finish();
                        }
                        // The body is over: what it held goes to the session before its end.
                        shell.drain(id, usize::MAX);
                        shell
                            .session
                            .handle_closed(id, Disconnect::Ended, clock::now());
                    }),
                    FetchEvent::Failed(_) => with_handle(&weak, |shell| {
                        shell
                            .session
                            .handle_closed(id, Disconnect::Failed, clock::now())
                    }),
                })
                .map(|held| OwnConnection::Fetch { _held: held })
            }
        };
        match opened {
            Ok(connection) => {
                if let Some(link) = self.link.as_mut() {
                    link.source = Source::Own {
                        _connection: connection,
                    };
                }
            }
            Err(_) => self.session.handle_closed(id, Disconnect::Failed, now),
        }
    }

    fn fetch_parser_of(&mut self, id: ConnectionId) -> Option<&mut (ConnectionId, SseParser)> {
        self.fetch_parser.as_mut().filter(|(of, _)| *of == id)
    }

    /// Hands what the parser of connection `id` has to the session, in one go, until `limit`
    /// frames wait for the reader; the rest stays in the parser for [`Shell::refill`].
    fn drain(&mut self, id: ConnectionId, limit: usize) {
        let Shell {
            fetch_parser,
            session,
            queue,
            ..
        } = self;
        let Some((_, parser)) = fetch_parser.as_mut().filter(|(of, _)| *of == id) else {
            return;
        };
        let now = clock::now();
        let room = limit.saturating_sub(queue.len());
        let before = session.stats().delivered;
        while session.stats().delivered - before < room as u64 {
            let Some(item) = parser.poll() else {
                break;
            };
            match item {
                Parsed::Event(raw) => session.handle_frame(id, raw, now),
                Parsed::Comment => session.handle_heartbeat(id, now),
                Parsed::Retry(delay) => session.handle_retry(delay),
                Parsed::Error(error) => session.handle_parse_error(id, error),
            }
        }
    }

    /// Whether the current `fetch` connection's parser holds events the queue had no room for.
    fn backlog(&self) -> bool {
        self.fetch_parser.as_ref().is_some_and(|(of, parser)| {
            self.link.as_ref().is_some_and(|l| l.id == *of) && parser.pending()
        })
    }

    /// Backpressure for this tab's own `EventSource` or a follower's link to its leader, which
    /// cannot pause: the session closes it while the reader is `EVENT_SOURCE_QUEUE_HIGH` frames
    /// behind. Never while followers are served (they would stall with this tab's reader); a
    /// follower arriving resumes it. Returns whether the session got something to do.
    fn pause_or_resume_reader(&mut self) -> bool {
        let serving = self.tabs.as_ref().is_some_and(|t| t.leading && t.followers);
        if self.session.reader_paused() {
            if serving || self.queue.len() <= EVENT_SOURCE_QUEUE_LOW {
                self.session.resume_reader(clock::now());
                return true;
            }
            return false;
        }
        // What cannot pause: this tab's own `EventSource`, and the leader's channel (a follower
        // stops taking its frames, then says hello with its cursor and is caught up from the
        // leader's buffer or a replay of its own).
        let unpausable = self.link.as_ref().is_some_and(|l| match l.source {
            Source::Own { .. } => self.transport == Transport::EventSource,
            Source::Leader { .. } => true,
            Source::Refreshing => false,
        });
        if unpausable && !serving && self.queue.len() >= EVENT_SOURCE_QUEUE_HIGH {
            self.session.pause_reader();
            return self.session.reader_paused();
        }
        false
    }

    /// How many more frames the reader's queue takes before a link that cannot pause is paused.
    pub(super) fn room_for_reader(&self) -> u64 {
        EVENT_SOURCE_QUEUE_HIGH.saturating_sub(self.queue.len()) as u64
    }

    /// The reader made room: hands the `fetch` parser's backlog to the session, or finds that a
    /// paused link may resume (the pump resumes it). Returns whether the caller must drive,
    /// outside the borrow.
    fn refill(&mut self) -> bool {
        if self.session.reader_paused() {
            return self.queue.len() <= EVENT_SOURCE_QUEUE_LOW;
        }
        if self.queue.len() > QUEUE_LOW || !self.backlog() {
            return false;
        }
        if let Some(id) = self.link.as_ref().map(|l| l.id) {
            self.drain(id, QUEUE_HIGH);
        }
        true
    }

    /// Pauses the `fetch` body while the queue is full or the parser holds a backlog; resumes it
    /// once the reader brought the queue down to `QUEUE_LOW` and the backlog is gone.
    fn update_gate(&mut self) {
        if self.queue.len() >= QUEUE_HIGH || self.backlog() {
            self.read_gate.set_closed(true);
        } else if self.queue.len() <= QUEUE_LOW && self.read_gate.is_closed() {
            self.read_gate.set_closed(false);
        }
    }

    /// A `fetch` response head: a stream, or a status the session decides about. A 401/403 asks
    /// `onUnauthorized` first, if there is one.
    fn on_response(
        &mut self,
        id: ConnectionId,
        status: u16,
        event_stream: bool,
        retry_after_ms: Option<u64>,
    ) {
        let now = clock::now();
        match status {
            200..=299 if status != 204 && event_stream => self.session.handle_connected(id, now),
            200..=299 if status != 204 => {
                self.session
                    .handle_closed(id, Disconnect::NotEventStream, now)
            }
            401 | 403 if self.on_unauthorized.is_some() => {
                let Some(hook) = self.on_unauthorized.clone() else {
                    return;
                };
                if let Some(link) = self.link.as_mut().filter(|l| l.id == id) {
                    link.source = Source::Refreshing; // aborts this fetch
                }
                let weak = self.weak_self.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let fresh = hook(status).await;
                    with_handle(&weak, |shell| {
                        let now = clock::now();
                        match fresh {
                            Some(headers) => {
                                for (name, value) in headers {
                                    shell
                                        .request
                                        .headers
                                        .retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
                                    shell.request.headers.push((name, value));
                                }
                                shell.session.handle_closed(
                                    id,
                                    Disconnect::CredentialsRefreshed,
                                    now,
                                );
                            }
                            None => shell.session.handle_closed(
                                id,
                                Disconnect::Status {
                                    status,
                                    retry_after: None,
                                },
                                now,
                            ),
                        }
                    });
                });
            }
            _ => {
                let retry_after = retry_after_ms.map(Duration::from_millis);
                self.session.handle_closed(
                    id,
                    Disconnect::Status {
                        status,
                        retry_after,
                    },
                    now,
                );
            }
        }
    }

    fn rearm(&mut self) {
        let weak = self.weak_self.clone();
        self.timer
            .set(self.session.poll_timeout(), clock::now, move || {
                with_handle(&weak, |shell| {
                    shell.timer.fired();
                    shell.session.handle_timeout(clock::now());
                })
            });
    }

    fn flush_timer(&self) -> Timeout {
        let weak = self.weak_self.clone();
        Timeout::new(Persist::FLUSH_MS, move || {
            with_shell(&weak, Shell::flush_cursor)
        })
    }

    /// Writes the consumed cursor to storage now, if it changed.
    fn flush_cursor(&mut self) {
        let cursor = self.consumed_cursor();
        if let Some(persist) = self.persist.as_mut() {
            persist.flush(cursor.as_ref());
        }
    }
}

/// Runs `f` on the shell if the stream still exists.
pub(super) fn with_shell(weak: &Weak<Inner>, f: impl FnOnce(&mut Shell)) {
    if let Some(inner) = weak.upgrade() {
        f(&mut inner.shell.borrow_mut());
    }
}

/// Runs `f` on the shell if the stream still exists, then drives it: the way every browser
/// callback that brings an input enters.
pub(super) fn with_handle(weak: &Weak<Inner>, f: impl FnOnce(&mut Shell)) {
    if let Some(inner) = weak.upgrade() {
        f(&mut inner.shell.borrow_mut());
        Handle(inner).drive();
    }
}

/// A readable message from a thrown JavaScript value.
pub(crate) fn describe(value: &wasm_bindgen::JsValue) -> String {
    js_sys::Reflect::get(value, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "an exception without a message".to_owned())
}

/// `text/event-stream`, with or without parameters, in any case.
fn is_event_stream(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("text/event-stream")
}
