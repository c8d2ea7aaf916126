//! The `fetch` transport: one HTTP request with the caller's method, headers, body and
//! credentials, reported as its response head, its body chunks and how it ended.
//!
//! It makes no protocol decisions (what a 401, a 204 or a wrong content type means is the
//! session's call) and does not parse the body (the shell feeds the chunks to the core's
//! `SseParser`). A body chunk crosses from JavaScript into wasm memory with one copy, into a
//! buffer reused for the whole response.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::task::{Poll, Waker};

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, Headers, ReadableStreamDefaultReader, ReadableStreamReadResult, RequestCache,
    RequestCredentials, RequestInit, Response,
};

use crate::core::retry_after_ms;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, so the adapter works in a window and in a worker alike.
    #[wasm_bindgen(js_name = fetch, catch)]
    fn global_fetch(url: &str, init: &RequestInit) -> Result<Promise, JsValue>;
}

/// What to send.
#[derive(Clone, Debug)]
pub(crate) struct FetchRequest {
    /// `GET`, `POST`, ...
    pub(crate) method: String,
    /// Request headers, in order; a name may repeat. `Accept: text/event-stream` is added when
    /// no `Accept` is given, as `EventSource` sends it.
    pub(crate) headers: Vec<(String, String)>,
    /// A text body (for `POST`; with `GET` or `HEAD` the browser fails the fetch).
    pub(crate) body: Option<String>,
    /// Whether cookies and HTTP auth go along (`omit`, `same-origin`, `include`).
    pub(crate) credentials: RequestCredentials,
}

impl Default for FetchRequest {
    fn default() -> Self {
        FetchRequest {
            method: "GET".to_owned(),
            headers: Vec::new(),
            body: None,
            credentials: RequestCredentials::SameOrigin,
        }
    }
}

/// What a fetch reports, in this order: `Response`, then any number of `Chunk`s, then `End` or
/// `Failed`; or `Failed` alone when no response arrived. Nothing after the connection is dropped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FetchEvent<'a> {
    /// The response head arrived (any status: the body follows even for errors).
    Response {
        /// The HTTP status.
        status: u16,
        /// The `Content-Type` header, if any.
        content_type: Option<&'a str>,
        /// `Retry-After` as a delay from now (delay-seconds or an HTTP-date), if present and
        /// valid. Cross-origin, the server must expose the header
        /// (`Access-Control-Expose-Headers`) for the page to see it.
        retry_after_ms: Option<u64>,
    },
    /// The next bytes of the body, as they came off the network (split anywhere).
    Chunk(&'a [u8]),
    /// The body ended normally.
    End,
    /// The request or the body failed (network error, CORS refusal, connection reset...).
    Failed(String),
}

/// Backpressure: while the page is behind (its queue of frames is long), the reader waits
/// before taking the next chunk, so memory stays bounded however fast the server sends.
#[derive(Default)]
pub(crate) struct ReadGate {
    closed: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl ReadGate {
    /// Closes (pauses reading) or opens (resumes it) the gate.
    pub(crate) fn set_closed(&self, closed: bool) {
        self.closed.set(closed);
        if !closed {
            if let Some(waker) = self.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }

    async fn wait_open(&self) {
        std::future::poll_fn(|cx| {
            if self.closed.get() {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
    }
}

/// One fetch in flight. Dropping it aborts the request (its `AbortController`), stops reading
/// the body and releases the sink; the sink is never called again, even when it is the sink
/// itself that drops the connection.
#[must_use = "dropping the connection aborts it"]
pub(crate) struct FetchConnection {
    controller: AbortController,
    closed: Rc<Closed>,
}

/// Set when the connection is dropped: the reading task then ends at its next poll, which the
/// stored waker schedules, so it lets go of the sink even while it waits on a closed gate. (A
/// hand-made `futures::future::Abortable`, which costs about 2 KB of wasm.)
#[derive(Default)]
struct Closed {
    closed: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Closed {
    fn get(&self) -> bool {
        self.closed.get()
    }

    fn set(&self) {
        self.closed.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Runs `task` until it ends or the connection is closed, whichever comes first.
    async fn run_until_closed(&self, task: impl Future<Output = ()>) {
        let mut task = std::pin::pin!(task);
        std::future::poll_fn(|cx| {
            if self.get() {
                return Poll::Ready(());
            }
            let mut waker = self.waker.borrow_mut();
            match waker.as_ref() {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
            drop(waker);
            task.as_mut().poll(cx)
        })
        .await
    }
}

impl FetchConnection {
    /// Starts `request` to `url`; what happens goes to `sink`. Fails at once (and calls nothing)
    /// for a request the browser refuses to build, such as an invalid header name.
    pub(crate) fn open(
        url: &str,
        request: &FetchRequest,
        gate: Rc<ReadGate>,
        sink: impl FnMut(FetchEvent<'_>) + 'static,
    ) -> Result<FetchConnection, JsValue> {
        let controller = AbortController::new()?;
        let headers = Headers::new()?;
        for (name, value) in &request.headers {
            headers.append(name, value)?;
        }
        if !headers.has("accept")? {
            headers.set("accept", "text/event-stream")?;
        }
        let init = RequestInit::new();
        init.set_method(&request.method);
        init.set_headers(&headers);
        if let Some(body) = &request.body {
            init.set_body(&JsValue::from_str(body));
        }
        init.set_credentials(request.credentials);
        // A stream must never come from the HTTP cache (`EventSource` uses `no-store` too).
        init.set_cache(RequestCache::NoStore);
        init.set_signal(Some(&controller.signal()));

        // Wrapped at once, so an early abort's rejection is always handled.
        let response = JsFuture::from(global_fetch(url, &init)?);
        let closed = Rc::new(Closed::default());
        let run = read(response, sink, Rc::clone(&closed), gate);
        let task = Rc::clone(&closed);
        wasm_bindgen_futures::spawn_local(async move { task.run_until_closed(run).await });
        Ok(FetchConnection { controller, closed })
    }
}

impl Drop for FetchConnection {
    fn drop(&mut self) {
        self.closed.set();
        self.controller.abort();
    }
}

/// Waits for the response, reports it, then reads the body to its end. Checks `closed` after
/// every call of the sink, which may have dropped the connection.
async fn read(
    response: JsFuture,
    mut sink: impl FnMut(FetchEvent<'_>),
    closed: Rc<Closed>,
    gate: Rc<ReadGate>,
) {
    let Some(response) = settled(response.await, &closed, &mut sink) else {
        return;
    };
    let response: Response = response.unchecked_into();
    let headers = response.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let content_type = header("content-type");
    let retry_after = header("retry-after")
        .and_then(|value| retry_after_ms(&value, js_sys::Date::now().max(0.0) as u64));
    sink(FetchEvent::Response {
        status: response.status(),
        content_type: content_type.as_deref(),
        retry_after_ms: retry_after,
    });
    if closed.get() {
        return;
    }

    // No body at all (204, 304, HEAD): the response is complete.
    let Some(body) = response.body() else {
        sink(FetchEvent::End);
        return;
    };
    let reader: ReadableStreamDefaultReader = match body.get_reader().dyn_into() {
        Ok(reader) => reader,
        Err(_) => {
            sink(FetchEvent::Failed("the response body has no reader".into()));
            return;
        }
    };
    let mut buffer = Vec::new();
    loop {
        gate.wait_open().await;
        if closed.get() {
            return;
        }
        let Some(result) = settled(JsFuture::from(reader.read()).await, &closed, &mut sink) else {
            return;
        };
        let result: ReadableStreamReadResult = result.unchecked_into();
        if result.get_done().unwrap_or(false) {
            sink(FetchEvent::End);
            return;
        }
        let value = result.get_value();
        let Some(bytes) = value.dyn_ref::<Uint8Array>() else {
            sink(FetchEvent::Failed(
                "a body chunk is not a Uint8Array".into(),
            ));
            return;
        };
        // One copy across the boundary per slice of at most `SLICE` bytes, into one buffer. A
        // chunk can be megabytes (the network fills while the page is busy): its later slices
        // stay in JavaScript until the gate opens, so wasm memory holds a slice, not a chunk.
        let length = bytes.length();
        let mut at = 0;
        while at < length {
            if at > 0 {
                gate.wait_open().await;
                if closed.get() {
                    return;
                }
            }
            let end = length.min(at.saturating_add(SLICE));
            buffer.resize((end - at) as usize, 0);
            if at == 0 && end == length {
                bytes.copy_to(&mut buffer);
            } else {
                bytes.subarray(at, end).copy_to(&mut buffer);
            }
            sink(FetchEvent::Chunk(&buffer));
            if closed.get() {
                return;
            }
            at = end;
        }
    }
}

/// What a promise of the fetch settled to, or `None` when reading must end: the connection was
/// dropped while it waited (then nothing more is reported), or it rejected (reported as failed).
fn settled(
    result: Result<JsValue, JsValue>,
    closed: &Closed,
    sink: &mut impl FnMut(FetchEvent<'_>),
) -> Option<JsValue> {
    if closed.get() {
        return None;
    }
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            sink(FetchEvent::Failed(describe(&error)));
            None
        }
    }
}

/// The most body bytes handed to the sink at once.
const SLICE: u32 = 64 * 1024;

/// A readable description of a rejection (`TypeError: Failed to fetch`).
fn describe(error: &JsValue) -> String {
    if let Some(error) = error.dyn_ref::<js_sys::Error>() {
        format!("{}: {}", error.name(), error.message())
    } else {
        error
            .as_string()
            .unwrap_or_else(|| "the request failed".to_owned())
    }
}
