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

use crate::core::{
    Command, ConnectionId, Cursor, Disconnect, Event, Frame, RawEvent, Session, State, Stats,
};
use crate::error::Error;
use crate::options::{Options, PersistCursor};
use crate::web::abort::AbortListener;
use crate::web::clock;
use crate::web::event_source::{EventSourceConnection, SourceEvent};
use crate::web::page_hide::PageHideListener;
use crate::web::storage::CursorStore;
use crate::web::timer::Timer;
use crate::web::url;

/// A listener of the session's non-frame events.
pub(crate) type Listener = Rc<dyn Fn(&Event)>;

/// A clonable handle on one running stream. Dropping handles does not close the stream; the
/// public `RelayStream` closes it on drop.
#[derive(Clone)]
pub(crate) struct Handle(Rc<Inner>);

struct Inner {
    shell: RefCell<Shell>,
    listeners: RefCell<Vec<(u64, Listener)>>,
    next_listener: Cell<u64>,
}

struct Shell {
    /// The shell's own handle, for the closures it gives to timers and connections.
    weak_self: Weak<Inner>,
    session: Session,
    base_url: String,
    listened: Vec<String>,
    done_event: String,
    with_credentials: bool,
    connection: Option<(ConnectionId, EventSourceConnection)>,
    timer: Timer,
    /// Frames the session delivered that the reader has not taken yet, with their epoch.
    queue: VecDeque<(Frame, Rc<str>)>,
    epoch: Rc<str>,
    opened: Option<Result<(), Error>>,
    ending: Option<Ending>,
    wakers: Vec<Waker>,
    /// The last frame the reader took: what `cursor` reports and what a reload resumes after.
    consumed: Option<Cursor>,
    persist: Option<Persist>,
    _abort: Option<AbortListener>,
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
    flush: Option<gloo_timers::callback::Timeout>,
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
    pub(crate) fn start(
        url: &str,
        options: &Options,
        signal: Option<web_sys::AbortSignal>,
    ) -> Result<Handle, Error> {
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
            Inner {
                shell: RefCell::new(Shell {
                    weak_self: weak.clone(),
                    session,
                    base_url,
                    listened: options.listened_events(),
                    done_event: options.done_event.clone(),
                    with_credentials: options.with_credentials,
                    connection: None,
                    timer: Timer::default(),
                    queue: VecDeque::new(),
                    epoch: Rc::from(""),
                    opened: None,
                    ending: None,
                    wakers: Vec::new(),
                    consumed: None,
                    persist,
                    _abort: abort,
                }),
                listeners: RefCell::new(Vec::new()),
                next_listener: Cell::new(0),
            }
        });
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
            return Poll::Ready(Some(Ok(frame)));
        }
        match shell.ending.take() {
            Some(Ending::Failed(e)) => {
                shell.ending = Some(Ending::Closed);
                Poll::Ready(Some(Err(e)))
            }
            Some(Ending::Closed) => {
                shell.ending = Some(Ending::Closed);
                Poll::Ready(None)
            }
            None => {
                shell.register(cx.waker());
                Poll::Pending
            }
        }
    }

    /// A frame if one is queued, without registering for wake-ups (the JavaScript fast path).
    pub(crate) fn try_frame(&self) -> Option<Frame> {
        self.0.shell.borrow_mut().take_frame()
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
        self.0.shell.borrow().session.stats()
    }

    pub(crate) fn cursor(&self) -> Option<Cursor> {
        self.0.shell.borrow().consumed.clone()
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
                std::mem::take(&mut shell.wakers)
            } else {
                Vec::new()
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
        for waker in wakers {
            waker.wake();
        }
    }
}

/// What one pump produced for the world outside the shell.
struct Notices {
    events: Vec<Event>,
    woke: bool,
}

impl Shell {
    fn register(&mut self, waker: &Waker) {
        if !self.wakers.iter().any(|w| w.will_wake(waker)) {
            self.wakers.push(waker.clone());
        }
    }

    fn take_frame(&mut self) -> Option<Frame> {
        let (frame, epoch) = self.queue.pop_front()?;
        let done = frame.event == self.done_event;
        self.consumed = Some(Cursor {
            id: frame.id.clone(),
            epoch: epoch.to_string(),
        });
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
                    Command::Open(request) => self.connect(request.connection, &request.query),
                    Command::Close(id) => {
                        if self.connection.as_ref().is_some_and(|(c, _)| *c == id) {
                            self.connection = None; // drop closes it and removes its listeners
                        }
                    }
                }
            }
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                match event {
                    Event::Frame(frame) => {
                        self.queue.push_back((frame, Rc::clone(&self.epoch)));
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
                    }
                    Event::Reset { ref epoch, .. } => self.epoch = Rc::from(epoch.as_str()),
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
                        self.connection = None;
                        self.flush_cursor();
                        notices.woke = true;
                    }
                    _ => {}
                }
                notices.events.push(event);
            }
            if !progressed {
                break;
            }
        }
        self.rearm();
        notices
    }

    fn connect(&mut self, id: ConnectionId, query: &[(String, String)]) {
        let now = clock::now();
        let url = match url::with_query(&self.base_url, query) {
            Ok(url) => url,
            Err(_) => return self.session.handle_closed(id, Disconnect::Failed, now),
        };
        let weak = self.weak_self.clone();
        let opened = EventSourceConnection::open(
            &url,
            self.with_credentials,
            &self.listened,
            move |event| {
                let Some(inner) = weak.upgrade() else { return };
                {
                    let mut shell = inner.shell.borrow_mut();
                    let now = clock::now();
                    let session = &mut shell.session;
                    match event {
                        SourceEvent::Open => session.handle_connected(id, now),
                        SourceEvent::Message {
                            event,
                            last_event_id,
                            data,
                        } => {
                            let id_field = (!last_event_id.is_empty()).then_some(last_event_id);
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
                }
                Handle(inner).drive();
            },
        );
        match opened {
            Ok(connection) => self.connection = Some((id, connection)),
            Err(_) => self.session.handle_closed(id, Disconnect::Failed, now),
        }
    }

    fn rearm(&mut self) {
        let weak = self.weak_self.clone();
        self.timer
            .set(self.session.poll_timeout(), clock::now(), move || {
                let Some(inner) = weak.upgrade() else { return };
                {
                    let mut shell = inner.shell.borrow_mut();
                    shell.timer.fired();
                    shell.session.handle_timeout(clock::now());
                }
                Handle(inner).drive();
            });
    }

    fn flush_timer(&self) -> gloo_timers::callback::Timeout {
        let weak = self.weak_self.clone();
        gloo_timers::callback::Timeout::new(Persist::FLUSH_MS, move || {
            with_shell(&weak, Shell::flush_cursor)
        })
    }

    /// Writes the consumed cursor to storage now, if it changed.
    fn flush_cursor(&mut self) {
        let cursor = self.consumed.clone();
        if let Some(persist) = self.persist.as_mut() {
            persist.flush(cursor.as_ref());
        }
    }
}

/// Runs `f` on the shell if the stream still exists.
fn with_shell(weak: &Weak<Inner>, f: impl FnOnce(&mut Shell)) {
    if let Some(inner) = weak.upgrade() {
        f(&mut inner.shell.borrow_mut());
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
