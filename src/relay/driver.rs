//! The driver: runs one core [`Peer`] against the browser adapters, and decides nothing.
//!
//! Every browser callback goes the same way: borrow the driver, hand the input to the peer with
//! the time, then [`Handle::drive`]: perform each [`Action`] with its adapter, re-arm the one
//! timer, and, after the borrow is released, call listeners and wake readers (a listener may call
//! back into the stream, e.g. `close()`, so nothing user-supplied runs while the driver is
//! borrowed).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use wasm_bindgen::JsValue;
use web_sys::RequestCredentials;

use super::{Hooks, Listener, UnauthorizedHook};
use crate::core::{
    Action, Connect, Cursor, Frame, LockTicket, Peer, PeerConfig, RawEvent, Role, State, Stats,
    TabMessage,
};
use crate::error::Error;
use crate::options::{Credentials, Options, PersistCursor, Transport};
use crate::web::abort::AbortListener;
use crate::web::broadcast::{self, Channel};
use crate::web::clock;
use crate::web::event_source::{EventSourceConnection, SourceEvent};
use crate::web::fetch::{FetchConnection, FetchEvent, FetchRequest, ReadGate};
use crate::web::locks::{self, LockRequest};
use crate::web::page_hide::PageHideListener;
use crate::web::storage::CursorStore;
use crate::web::timer::Timer;
use crate::web::url;

/// A clonable handle on one running stream. Dropping handles does not close the stream; the
/// public `RelayStream` closes it on drop.
#[derive(Clone)]
pub(crate) struct Handle(Rc<Inner>);

pub(crate) struct Inner {
    driver: RefCell<Driver>,
    listeners: RefCell<Vec<(u64, Listener)>>,
    next_listener: Cell<u64>,
}

/// What [`Handle::show_unread`] found.
#[cfg(feature = "js")]
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

/// This tab's own connection, held for its `Drop` (which closes it).
enum OwnConnection {
    EventSource { _held: EventSourceConnection },
    Fetch { _held: FetchConnection },
}

struct Driver {
    /// The driver's own handle, for the closures it gives to adapters.
    weak: Weak<Inner>,
    peer: Peer<JsValue>,
    base_url: String,
    listened: Vec<String>,
    with_credentials: bool,
    transport: Transport,
    /// A `fetch` connection's method, body and cookie mode (its headers are the peer's).
    request: FetchRequest,
    on_unauthorized: Option<UnauthorizedHook>,
    connection: Option<(crate::core::ConnectionId, OwnConnection)>,
    read_gate: Rc<ReadGate>,
    tabs_name: String,
    channel: Option<Channel>,
    lock: Option<LockRequest>,
    timer: Timer,
    store: Option<CursorStore>,
    /// `open()` was answered (the readers were woken for it).
    opened_told: bool,
    wakers: Vec<Waker>,
    /// One-shot callbacks for when there is something to read (the JavaScript reader's wake-up).
    readable: Vec<Box<dyn FnOnce()>>,
    _page_hide: Option<PageHideListener>,
    _abort: Option<AbortListener>,
}

impl Handle {
    /// Validates the options, creates the peer and starts it.
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
        let session = match options.session_config(resume, seed) {
            Err(e) if e.option == "resume" => options.session_config(None, seed)?,
            other => other?,
        };
        let tabs_name = crate::core::tabs_name(&key, options.events.as_deref());
        let sharing = options.share_across_tabs && locks::available() && broadcast::available();
        let config = PeerConfig {
            session,
            transport: options.transport(),
            tab: sharing.then(|| crate::core::hex16((js_sys::Math::random() * 1.8e19) as u64)),
            persist_cursor: store.is_some(),
            refresh_credentials: on_unauthorized.is_some(),
            headers: options.headers.clone(),
            limits: Default::default(),
        };
        let peer = Peer::new(config, clock::now()).map_err(|e| Error::Options(e.into()))?;
        let inner = Rc::new_cyclic(|weak: &Weak<Inner>| {
            let channel = sharing
                .then(|| {
                    let weak = weak.clone();
                    Channel::open(&tabs_name, move |text| {
                        let message = text.as_deref().and_then(|t| TabMessage::decode(t).ok());
                        with_driver(&weak, |d| d.peer.handle_tab_message(message, clock::now()));
                    })
                })
                .flatten();
            let page_hide = store.as_ref().and_then(|_| {
                let weak = weak.clone();
                PageHideListener::new(move || with_driver(&weak, |d| d.peer.handle_page_hide()))
            });
            let abort = signal.map(|signal| {
                let weak = weak.clone();
                AbortListener::new(signal, move || {
                    if let Some(inner) = weak.upgrade() {
                        Handle(inner).close();
                    }
                })
            });
            Inner {
                driver: RefCell::new(Driver {
                    weak: weak.clone(),
                    peer,
                    base_url,
                    listened: options.listened_events(),
                    with_credentials: options.with_credentials,
                    transport: options.transport(),
                    request: FetchRequest {
                        method: options.method.clone(),
                        headers: Vec::new(),
                        body: options.body.clone(),
                        credentials: match options.credentials {
                            Credentials::Omit => RequestCredentials::Omit,
                            Credentials::SameOrigin => RequestCredentials::SameOrigin,
                            Credentials::Include => RequestCredentials::Include,
                        },
                    },
                    on_unauthorized,
                    connection: None,
                    read_gate: Rc::default(),
                    tabs_name,
                    channel,
                    lock: None,
                    timer: Timer::default(),
                    store,
                    opened_told: false,
                    wakers: Vec::new(),
                    readable: Vec::new(),
                    _page_hide: page_hide,
                    _abort: abort,
                }),
                // Registered before the first connection, so nothing before `ready` is missed.
                listeners: RefCell::new(on_event.into_iter().map(|l| (0, l)).collect()),
                next_listener: Cell::new(1),
            }
        });
        let handle = Handle(inner);
        handle.drive();
        Ok(handle)
    }

    /// Resolves when the server's first `ready` arrived, or with why it never will.
    pub(crate) fn poll_opened(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut driver = self.0.driver.borrow_mut();
        match driver.peer.opened() {
            Some(result) => Poll::Ready(result.clone().map_err(Error::from)),
            None => {
                driver.register(cx.waker());
                Poll::Pending
            }
        }
    }

    /// The next frame, the failure, or the end.
    pub(crate) fn poll_frame(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame, Error>>> {
        let taken = self.0.driver.borrow_mut().peer.take(clock::now());
        if let Some((frame, _)) = taken {
            self.drive();
            return Poll::Ready(Some(Ok(frame)));
        }
        let mut driver = self.0.driver.borrow_mut();
        match driver.peer.take_ending() {
            Some(ending) => Poll::Ready(ending.err().map(|e| Err(e.into()))),
            None => {
                driver.register(cx.waker());
                Poll::Pending
            }
        }
    }

    #[cfg(feature = "js")]
    /// Shows the reader, in order, every queued frame it has not been shown yet, without taking
    /// them: the reader calls [`Handle::take_shown`] as it hands each one on. With nothing to
    /// show, says whether the stream failed (once) or ended, or that there is nothing yet.
    /// `each` also gets the frame's page object when the transport made one.
    pub(crate) fn show_unread(&self, mut each: impl FnMut(&Frame, Option<&JsValue>)) -> Unread {
        let mut driver = self.0.driver.borrow_mut();
        let peer = &mut driver.peer;
        if peer.unshown() {
            for (frame, page_frame) in peer.show() {
                each(frame, page_frame);
            }
            return Unread::Frames;
        }
        if peer.holds_shown() {
            return Unread::Nothing; // the reader still holds shown frames
        }
        match peer.take_ending() {
            Some(Ok(())) => Unread::Ended,
            Some(Err(e)) => Unread::Failed(e.into()),
            None => Unread::Nothing,
        }
    }

    #[cfg(feature = "js")]
    /// The reader handed on the `count` oldest frames it was shown: the cursor moves past them.
    pub(crate) fn take_shown(&self, count: u32) {
        {
            let now = clock::now();
            let peer = &mut self.0.driver.borrow_mut().peer;
            for _ in 0..count {
                if peer.take(now).is_none() {
                    break;
                }
            }
        }
        self.drive();
    }

    #[cfg(feature = "js")]
    /// Calls `wake` once there is something to read (a frame, the failure or the end); at once if
    /// there already is.
    pub(crate) fn when_readable(&self, wake: Box<dyn FnOnce()>) {
        {
            let mut driver = self.0.driver.borrow_mut();
            if !driver.peer.readable() {
                driver.readable.push(wake);
                return;
            }
        }
        wake();
    }

    /// Closes the stream: the connection, the timer, and the reader's end.
    pub(crate) fn close(&self) {
        self.0.driver.borrow_mut().peer.close(clock::now());
        self.drive();
    }

    pub(crate) fn state(&self) -> State {
        self.0.driver.borrow().peer.state()
    }

    pub(crate) fn stats(&self) -> Stats {
        self.0.driver.borrow().peer.stats()
    }

    pub(crate) fn role(&self) -> Role {
        self.0.driver.borrow().peer.role()
    }

    pub(crate) fn cursor(&self) -> Option<Cursor> {
        self.0.driver.borrow().peer.cursor()
    }

    pub(crate) fn epoch(&self) -> Option<String> {
        self.0.driver.borrow().peer.epoch().map(str::to_owned)
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

    /// Performs what the peer asked for, then notifies listeners and readers.
    fn drive(&self) {
        let (events, wakers, readable) = {
            let mut driver = self.0.driver.borrow_mut();
            driver.perform();
            let mut events = Vec::new();
            while let Some(event) = driver.peer.poll_event() {
                events.push(event);
            }
            let newly_opened = driver.peer.opened().is_some() && !driver.opened_told;
            driver.opened_told |= newly_opened;
            if newly_opened || driver.peer.readable() {
                (
                    events,
                    std::mem::take(&mut driver.wakers),
                    std::mem::take(&mut driver.readable),
                )
            } else {
                (events, Vec::new(), Vec::new())
            }
        };
        if !events.is_empty() {
            let listeners: Vec<Listener> = self
                .0
                .listeners
                .borrow()
                .iter()
                .map(|(_, l)| Rc::clone(l))
                .collect();
            for event in &events {
                for listener in &listeners {
                    listener(event);
                }
            }
        }
        for waker in wakers {
            waker.wake();
        }
        for wake in readable {
            wake();
        }
    }
}

impl Driver {
    fn register(&mut self, waker: &Waker) {
        if !self.wakers.iter().any(|w| w.will_wake(waker)) {
            self.wakers.push(waker.clone());
        }
    }

    /// Performs every action of the peer (some report back at once), then arms its timer.
    fn perform(&mut self) {
        while let Some(action) = self.peer.poll_action() {
            match action {
                Action::Connect(connect) => self.connect(connect),
                Action::Disconnect(id) => {
                    if self.connection.as_ref().is_some_and(|(of, _)| *of == id) {
                        self.connection = None; // drop closes it and removes its listeners
                    }
                }
                Action::PauseBody(paused) => self.read_gate.set_closed(paused),
                Action::RefreshCredentials { connection, status } => {
                    let Some(hook) = self.on_unauthorized.clone() else {
                        continue;
                    };
                    let weak = self.weak.clone();
                    wasm_bindgen_futures::spawn_local(async move {
                        let fresh = hook(status).await;
                        with_driver(&weak, |d| {
                            d.peer.handle_credentials(connection, fresh, clock::now())
                        });
                    });
                }
                Action::Post(message) => {
                    if let Some(channel) = &self.channel {
                        channel.post(&message.encode());
                    }
                }
                Action::RequestLock(ticket) => self.request_lock(ticket),
                Action::ReleaseLock => self.lock = None,
                Action::LeaveTabs => {
                    self.lock = None;
                    self.channel = None;
                }
                Action::Warn(text) => crate::web::console::warn(&text),
                Action::SaveCursor(cursor) => {
                    if let Some(store) = &self.store {
                        store.save(cursor.as_ref());
                    }
                }
            }
        }
        let weak = self.weak.clone();
        self.timer
            .set(self.peer.poll_timeout(), clock::now, move || {
                with_driver(&weak, |d| {
                    d.timer.fired();
                    d.peer.handle_timeout(clock::now());
                })
            });
    }

    fn request_lock(&mut self, ticket: LockTicket) {
        let (granted, lost) = (self.weak.clone(), self.weak.clone());
        // Replacing the request drops the previous one, which releases or withdraws it.
        self.lock = LockRequest::request(
            &self.tabs_name,
            move || {
                with_driver(&granted, |d| {
                    d.peer.handle_lock_granted(ticket, clock::now())
                })
            },
            move || with_driver(&lost, |d| d.peer.handle_lock_lost(ticket, clock::now())),
        );
    }

    /// Opens a connection of this tab's own, as the peer asked.
    fn connect(&mut self, connect: Connect) {
        let Connect {
            connection: id,
            query,
            last_event_id,
        } = connect;
        let now = clock::now();
        let Ok(url) = url::with_query(&self.base_url, &query) else {
            return self.peer.handle_failed(id, now);
        };
        let weak = self.weak.clone();
        let opened = match self.transport {
            Transport::EventSource => EventSourceConnection::open(
                &url,
                self.with_credentials,
                &self.listened,
                move |event| {
                    with_driver(&weak, |d| {
                        let now = clock::now();
                        match event {
                            SourceEvent::Open => d.peer.handle_open(id, now),
                            SourceEvent::Message {
                                event,
                                last_event_id,
                                data,
                                page_frame,
                            } => {
                                let raw = RawEvent {
                                    event,
                                    id: (!last_event_id.is_empty()).then_some(last_event_id),
                                    data,
                                };
                                d.peer.handle_event(id, raw, Some(page_frame), now)
                            }
                            SourceEvent::Error { retrying: true } => {
                                d.peer.handle_retrying(id, now)
                            }
                            SourceEvent::Error { retrying: false } => d.peer.handle_failed(id, now),
                        }
                    });
                },
            )
            .map(|held| OwnConnection::EventSource { _held: held }),
            Transport::Fetch => {
                let mut request = self.request.clone();
                request.headers = self.peer.headers().to_vec();
                if let Some(cursor) = last_event_id {
                    request
                        .headers
                        .retain(|(name, _)| !name.eq_ignore_ascii_case("last-event-id"));
                    request.headers.push(("Last-Event-ID".to_owned(), cursor));
                }
                let gate = Rc::clone(&self.read_gate);
                FetchConnection::open(&url, &request, gate, move |event| {
                    with_driver(&weak, |d| {
                        let now = clock::now();
                        match event {
                            FetchEvent::Response {
                                status,
                                content_type,
                                retry_after_ms,
                            } => {
                                let retry_after = retry_after_ms.map(Duration::from_millis);
                                d.peer
                                    .handle_response(id, status, content_type, retry_after, now)
                            }
                            FetchEvent::Chunk(bytes) => d.peer.handle_chunk(id, bytes, now),
                            FetchEvent::End => d.peer.handle_end(id, now),
                            FetchEvent::Failed(_) => d.peer.handle_failed(id, now),
                        }
                    });
                })
                .map(|held| OwnConnection::Fetch { _held: held })
            }
        };
        match opened {
            Ok(connection) => self.connection = Some((id, connection)),
            Err(_) => self.peer.handle_failed(id, now),
        }
    }
}

/// Runs `f` on the driver if the stream still exists, then drives it: the way every browser
/// callback that brings an input enters.
fn with_driver(weak: &Weak<Inner>, f: impl FnOnce(&mut Driver)) {
    if let Some(inner) = weak.upgrade() {
        f(&mut inner.driver.borrow_mut());
        Handle(inner).drive();
    }
}

/// A readable message from a thrown JavaScript value.
fn describe(value: &JsValue) -> String {
    js_sys::Reflect::get(value, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "an exception without a message".to_owned())
}
