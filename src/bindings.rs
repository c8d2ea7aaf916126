//! Every `#[wasm_bindgen]` export: the JavaScript API of DESIGN.md §4 (see `docs/js-api.md`).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::core::{Event, Frame, MalformedKind, Stats};
use crate::error::Error;
use crate::options::{Options, OptionsError};
use crate::relay::{Handle, RelayStream};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** A journaled frame, delivered exactly once and in order. */
export interface Frame { id: string; event: string; data: string; }
export type RelayState = "connecting" | "live" | "reconnecting" | "closed";
export interface Cursor { id: string; epoch: string; }
export interface RelayStats {
  delivered: number; duplicates: number; reconnects: number; resets: number;
  gaps: number; malformed: number; stalls: number; connections: number;
}
export interface RelayOptions {
  key?: string;
  events?: string[];
  from?: "start" | "now";
  readyEvent?: string; doneEvent?: string; pingEvent?: string;
  cursorParam?: string; epochParam?: string;
  cursorOrder?: "auto" | "numeric" | "redis" | "opaque";
  contiguousIds?: boolean;
  dedupWindow?: number;
  readyTimeoutMs?: number; heartbeatTimeoutMs?: number;
  backoffBaseMs?: number; backoffMaxMs?: number;
  persistCursor?: "none" | "session";
  withCredentials?: boolean;
  signal?: AbortSignal;
}
export interface RelayEventMap {
  ready: { tail: string | null; epoch: string };
  state: RelayState;
  reset: { previousEpoch: string; epoch: string };
  reconnecting: { attempt: number; delayMs: number; cause: string };
  gap: { after: string; next: string };
  malformed: { kind: "missing-id" | "bad-id" | "bad-ready" | "bad-tail" | "before-ready"; message: string; event: string; id: string | null; data: string };
  error: RelayError;
}
export type RelayErrorName = "RelayTimeoutError" | "RelayOptionsError" | "AbortError" | "RelayConnectError";
export interface RelayError extends Error { name: RelayErrorName; option?: string; }
export interface RelayStream {
  on<K extends keyof RelayEventMap>(type: K, listener: (event: RelayEventMap[K]) => void): void;
  off<K extends keyof RelayEventMap>(type: K, listener: (event: RelayEventMap[K]) => void): void;
}
"#;

/// A stream of journaled frames: exactly once, in order, across reconnects.
#[wasm_bindgen(js_name = RelayStream)]
pub struct JsRelayStream {
    stream: RelayStream,
    listeners: RefCell<Vec<(String, Function, u64)>>,
}

/// The async iterator over a stream's frames (`for await (const frame of stream)`).
#[wasm_bindgen]
pub struct FrameIterator {
    handle: Handle,
}

const EVENT_TYPES: [&str; 7] = [
    "ready",
    "state",
    "reset",
    "reconnecting",
    "gap",
    "malformed",
    "error",
];

#[wasm_bindgen(js_class = RelayStream)]
impl JsRelayStream {
    /// Opens `url` and resolves once the server's `ready` frame confirms its join; rejects with
    /// a `RelayTimeoutError` if it does not come within `readyTimeoutMs` (then do not dispatch).
    #[wasm_bindgen(unchecked_return_type = "RelayStream")]
    pub async fn open(
        url: String,
        #[wasm_bindgen(unchecked_param_type = "RelayOptions")] options: JsValue,
    ) -> Result<JsRelayStream, JsValue> {
        let (options, signal) = read_options(&options).map_err(|e| to_js_error(&e))?;
        let stream = RelayStream::open_with_signal(&url, &options, signal)
            .await
            .map_err(|e| to_js_error(&e))?;
        Ok(JsRelayStream {
            stream,
            listeners: RefCell::new(Vec::new()),
        })
    }

    /// The stream's frames, for `for await`. Leaving the loop early closes the stream.
    #[wasm_bindgen(
        js_name = "[Symbol.asyncIterator]",
        unchecked_return_type = "AsyncIterator<Frame, undefined>"
    )]
    pub fn async_iterator(&self) -> FrameIterator {
        FrameIterator {
            handle: self.stream.handle().clone(),
        }
    }

    /// `"connecting"`, `"live"`, `"reconnecting"` or `"closed"`.
    #[wasm_bindgen(getter, unchecked_return_type = "RelayState")]
    pub fn state(&self) -> String {
        self.stream.state().as_str().to_owned()
    }

    /// The last frame the page took, with its epoch; `null` before the first.
    #[wasm_bindgen(getter, unchecked_return_type = "Cursor | null")]
    pub fn cursor(&self) -> JsValue {
        match self.stream.cursor() {
            Some(c) => object(&[("id", c.id.into()), ("epoch", c.epoch.into())]),
            None => JsValue::NULL,
        }
    }

    /// The journal epoch in force; `null` before the first `ready`.
    #[wasm_bindgen(getter)]
    pub fn epoch(&self) -> Option<String> {
        self.stream.epoch()
    }

    /// Counters of what the stream did.
    #[wasm_bindgen(getter, unchecked_return_type = "RelayStats")]
    pub fn stats(&self) -> JsValue {
        stats_object(&self.stream.stats())
    }

    /// Adds a listener: `ready`, `state`, `reset`, `reconnecting`, `gap`, `malformed`, `error`.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, event_type: String, listener: Function) -> Result<(), JsValue> {
        if !EVENT_TYPES.contains(&event_type.as_str()) {
            return Err(js_sys::TypeError::new(&format!(
                "unknown event type {event_type:?}; expected one of {}",
                EVENT_TYPES.join(", ")
            ))
            .into());
        }
        let wanted = event_type.clone();
        let callback = listener.clone();
        let id = self.stream.handle().listen(Rc::new(move |event: &Event| {
            if let Some((kind, argument)) = event_argument(event) {
                if kind == wanted {
                    // A throwing listener must not break the stream; report it and go on.
                    if let Err(e) = callback.call1(&JsValue::UNDEFINED, &argument) {
                        report_listener_error(&e);
                    }
                }
            }
        }));
        self.listeners.borrow_mut().push((event_type, listener, id));
        Ok(())
    }

    /// Removes a listener added with `on`.
    #[wasm_bindgen(skip_typescript)]
    pub fn off(&self, event_type: String, listener: Function) {
        let mut listeners = self.listeners.borrow_mut();
        if let Some(at) = listeners
            .iter()
            .position(|(t, f, _)| *t == event_type && Object::is(f, &listener))
        {
            let (_, _, id) = listeners.remove(at);
            self.stream.handle().unlisten(id);
        }
    }

    /// Closes the stream. Frames already queued can still be read; then iteration ends.
    pub fn close(&self) {
        self.stream.close();
    }
}

#[wasm_bindgen]
impl FrameIterator {
    /// The next frame (`{ value, done }`).
    #[wasm_bindgen(unchecked_return_type = "Promise<IteratorResult<Frame, undefined>>")]
    pub fn next(&self) -> Promise {
        // Fast path: a queued frame needs no future.
        if let Some(frame) = self.handle.try_frame() {
            return Promise::resolve(&iterator_result(Some(&frame)));
        }
        let handle = self.handle.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            match std::future::poll_fn(|cx| handle.poll_frame(cx)).await {
                Some(Ok(frame)) => Ok(iterator_result(Some(&frame))),
                Some(Err(e)) => Err(to_js_error(&e)),
                None => Ok(iterator_result(None)),
            }
        })
    }

    /// Called when a `for await` loop exits early: closes the stream.
    #[wasm_bindgen(
        js_name = "return",
        unchecked_return_type = "Promise<IteratorResult<Frame, undefined>>"
    )]
    pub fn return_(&self) -> Promise {
        self.handle.close();
        Promise::resolve(&iterator_result(None))
    }
}

/// Reads the options object: the `signal` is taken aside (it is not data), the rest goes
/// through serde, which names the option in any error.
fn read_options(value: &JsValue) -> Result<(Options, Option<web_sys::AbortSignal>), Error> {
    let bad = |option: &str, reason: String| {
        Error::Options(OptionsError {
            option: option.to_owned(),
            reason,
        })
    };
    if value.is_undefined() || value.is_null() {
        return Ok((Options::default(), None));
    }
    if !value.is_object() || value.is_function() || js_sys::Array::is_array(value) {
        return Err(bad("", "options must be an object".into()));
    }
    let copy = Object::assign(&Object::new(), value.unchecked_ref());
    let signal = Reflect::get(&copy, &"signal".into()).unwrap_or(JsValue::UNDEFINED);
    let _ = Reflect::delete_property(&copy, &"signal".into());
    let signal = if signal.is_undefined() || signal.is_null() {
        None
    } else {
        Some(
            signal
                .dyn_into::<web_sys::AbortSignal>()
                .map_err(|_| bad("signal", "must be an AbortSignal".into()))?,
        )
    };
    for key in Object::keys(&copy).iter() {
        Options::check_name(&key.as_string().unwrap_or_default())?;
    }
    let deserializer = serde_wasm_bindgen::Deserializer::from(JsValue::from(copy));
    let options: Options = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let option = e.path().to_string();
        let option = if option == "." { String::new() } else { option };
        // serde-wasm-bindgen's messages carry the JavaScript "Error: " prefix.
        let reason = e.into_inner().to_string();
        bad(
            &option,
            reason.strip_prefix("Error: ").unwrap_or(&reason).to_owned(),
        )
    })?;
    Ok((options, signal))
}

fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (name, value) in fields {
        let _ = Reflect::set(&object, &JsValue::from_str(name), value);
    }
    object.into()
}

fn frame_object(frame: &Frame) -> JsValue {
    object(&[
        ("id", JsValue::from_str(&frame.id)),
        ("event", JsValue::from_str(&frame.event)),
        ("data", JsValue::from_str(&frame.data)),
    ])
}

fn iterator_result(frame: Option<&Frame>) -> JsValue {
    match frame {
        Some(frame) => object(&[("value", frame_object(frame)), ("done", JsValue::FALSE)]),
        None => object(&[("value", JsValue::UNDEFINED), ("done", JsValue::TRUE)]),
    }
}

fn stats_object(stats: &Stats) -> JsValue {
    let n = |v: u64| JsValue::from_f64(v as f64);
    object(&[
        ("delivered", n(stats.delivered)),
        ("duplicates", n(stats.duplicates)),
        ("reconnects", n(stats.reconnects)),
        ("resets", n(stats.resets)),
        ("gaps", n(stats.gaps)),
        ("malformed", n(stats.malformed)),
        ("stalls", n(stats.stalls)),
        ("connections", n(stats.connections)),
    ])
}

fn optional(value: Option<&str>) -> JsValue {
    value.map_or(JsValue::NULL, JsValue::from_str)
}

/// The listener type and argument of a non-frame event.
fn event_argument(event: &Event) -> Option<(&'static str, JsValue)> {
    Some(match event {
        Event::Ready(info) => (
            "ready",
            object(&[
                ("tail", optional(info.tail.as_deref())),
                ("epoch", JsValue::from_str(&info.epoch)),
            ]),
        ),
        Event::StateChanged(state) => ("state", JsValue::from_str(state.as_str())),
        Event::Reset {
            previous_epoch,
            epoch,
        } => (
            "reset",
            object(&[
                ("previousEpoch", JsValue::from_str(previous_epoch)),
                ("epoch", JsValue::from_str(epoch)),
            ]),
        ),
        Event::Reconnecting {
            attempt,
            delay,
            cause,
        } => (
            "reconnecting",
            object(&[
                ("attempt", JsValue::from_f64(f64::from(*attempt))),
                ("delayMs", JsValue::from_f64(delay.as_millis() as f64)),
                ("cause", JsValue::from_str(&cause.to_string())),
            ]),
        ),
        Event::Gap { after, next } => (
            "gap",
            object(&[
                ("after", JsValue::from_str(after)),
                ("next", JsValue::from_str(next)),
            ]),
        ),
        Event::Malformed(m) => {
            let kind = match m.kind {
                MalformedKind::MissingId => "missing-id",
                MalformedKind::BadId(_) => "bad-id",
                MalformedKind::BadReady(_) => "bad-ready",
                MalformedKind::BadTail(_) => "bad-tail",
                MalformedKind::BeforeReady => "before-ready",
            };
            (
                "malformed",
                object(&[
                    ("kind", JsValue::from_str(kind)),
                    ("message", JsValue::from_str(&m.to_string())),
                    ("event", JsValue::from_str(&m.event)),
                    ("id", optional(m.id.as_deref())),
                    ("data", JsValue::from_str(&m.data)),
                ]),
            )
        }
        Event::Failed(e) => ("error", to_js_error(&Error::from(e.clone()))),
        Event::Frame(_) => return None,
    })
}

/// A JavaScript `Error` with the stable `name` of `error` (and `option` for options errors).
fn to_js_error(error: &Error) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    js.set_name(error.name());
    if let Error::Options(e) = error {
        let _ = Reflect::set(&js, &"option".into(), &JsValue::from_str(&e.option));
    }
    js.into()
}

/// Reports an exception thrown by a listener the way the browser reports uncaught errors
/// (`reportError`), or on the console where that does not exist.
fn report_listener_error(error: &JsValue) {
    let global = js_sys::global();
    let method = |target: &JsValue, name: &str| {
        Reflect::get(target, &name.into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
    };
    if let Some(report) = method(&global, "reportError") {
        let _ = report.call1(&global, error);
    } else if let Ok(console) = Reflect::get(&global, &"console".into()) {
        if let Some(log) = method(&console, "error") {
            let _ = log.call2(&console, &"sse-relay: a listener threw".into(), error);
        }
    }
}
