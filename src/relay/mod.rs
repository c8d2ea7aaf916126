//! The browser stream for Rust front ends (Leptos, Yew, Dioxus): the same semantics as the
//! JavaScript `RelayStream`, as a [`futures::Stream`] of frames.

#[cfg(target_arch = "wasm32")]
mod driver;
#[cfg(not(target_arch = "wasm32"))]
mod unsupported;

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;

use crate::core::{Cursor, Event, Frame, Role, State, Stats};
use crate::error::Error;
use crate::options::Options;
#[cfg(target_arch = "wasm32")]
pub(crate) use driver::Handle;
#[cfg(all(target_arch = "wasm32", feature = "js"))]
pub(crate) use driver::Unread;
#[cfg(not(target_arch = "wasm32"))]
use unsupported::Handle;

/// A listener of the stream's non-frame events.
pub type Listener = std::rc::Rc<dyn Fn(&Event)>;

/// `onUnauthorized`: given the status, fresh headers to retry with, or `None` to stop.
pub type UnauthorizedHook = std::rc::Rc<
    dyn Fn(u16) -> futures::future::LocalBoxFuture<'static, Option<Vec<(String, String)>>>,
>;

/// The options that are behaviour rather than data.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Aborting it closes the stream (and rejects a pending open). Browser builds only.
    #[cfg(target_arch = "wasm32")]
    pub signal: Option<web_sys::AbortSignal>,
    /// Called on 401/403 with the `fetch` transport.
    pub on_unauthorized: Option<UnauthorizedHook>,
    /// Called with every non-frame event from the very start, so retries before the first
    /// `ready` (while `open` is pending) can be observed too.
    pub on_event: Option<Listener>,
}

/// One journaled stream: every frame exactly once, in order, across reconnects.
///
/// ```no_run
/// # async fn demo() -> Result<(), sse_relay::Error> {
/// use futures::StreamExt;
/// use sse_relay::{Options, RelayStream};
///
/// let options = Options { events: Some(vec!["token".into()]), ..Options::default() };
/// let mut stream = RelayStream::open("/streams/chat/events", options).await?;
/// // The server has joined: dispatching the job now cannot lose its first frames.
/// while let Some(frame) = stream.next().await {
///     let frame = frame?;
///     if frame.event == "done" { break; }
/// }
/// # Ok(()) }
/// ```
///
/// Dropping the stream closes it.
pub struct RelayStream {
    handle: Handle,
}

/// A listener registration; dropping it removes the listener.
#[must_use = "dropping the subscription removes the listener"]
pub struct Subscription {
    handle: Handle,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.handle.unlisten(self.id);
    }
}

impl RelayStream {
    /// Opens `url` and resolves once the server's `ready` frame confirms its join.
    ///
    /// Fails with [`Error::ReadyTimeout`] when no `ready` comes within `ready_timeout_ms` (the
    /// application must not dispatch then), or [`Error::Options`] for an option that cannot work.
    pub async fn open(url: &str, options: Options) -> Result<RelayStream, Error> {
        RelayStream::open_with(url, &options, Hooks::default()).await
    }

    /// [`RelayStream::open`] with behaviour: an `AbortSignal` that closes the stream, and
    /// `on_unauthorized` for the `fetch` transport.
    pub async fn open_with(
        url: &str,
        options: &Options,
        hooks: Hooks,
    ) -> Result<RelayStream, Error> {
        let stream = RelayStream {
            handle: Handle::start(url, options, hooks)?,
        };
        std::future::poll_fn(|cx| stream.handle.poll_opened(cx)).await?;
        Ok(stream)
    }

    /// `connecting`, `live`, `reconnecting` or `closed`.
    pub fn state(&self) -> State {
        self.handle.state()
    }

    /// The last frame taken from the stream, with its epoch.
    pub fn cursor(&self) -> Option<Cursor> {
        self.handle.cursor()
    }

    /// The journal epoch in force.
    pub fn epoch(&self) -> Option<String> {
        self.handle.epoch()
    }

    /// Counters: delivered, duplicates dropped, reconnects, resets, gaps, malformed inputs,
    /// stalls, leader changes and rejected cross-tab messages.
    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }

    /// [`Role::Leader`] (this tab owns the connection), [`Role::Follower`] (another tab does) or
    /// [`Role::Standalone`] (not sharing across tabs).
    pub fn role(&self) -> Role {
        self.handle.role()
    }

    /// Calls `listener` with every non-frame event (ready, state changes, resets, reconnects,
    /// gaps, malformed inputs, failures) until the subscription is dropped.
    // Outside a browser no stream exists (its handle is uninhabited): the body is unreachable.
    #[cfg_attr(not(target_arch = "wasm32"), allow(unused_variables))]
    pub fn subscribe(&self, listener: impl Fn(&Event) + 'static) -> Subscription {
        let id = self.handle.listen(std::rc::Rc::new(listener));
        Subscription {
            handle: self.handle.clone(),
            id,
        }
    }

    /// Closes the stream; the reader sees its end after the frames already queued.
    pub fn close(&self) {
        self.handle.close();
    }

    #[cfg(all(target_arch = "wasm32", feature = "js"))]
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Stream for RelayStream {
    type Item = Result<Frame, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.handle.poll_frame(cx)
    }
}

impl Drop for RelayStream {
    fn drop(&mut self) {
        self.handle.close();
    }
}
