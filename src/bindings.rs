//! Every `#[wasm_bindgen]` export: the JavaScript API (see `docs/js-api.md`).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::core::{quoted, CursorOrder, Event, MalformedKind, ServerProfile, StartFrom, Stats};
use crate::error::Error;
use crate::options::{Credentials, Options, OptionsError, PersistCursor, Transport};
use crate::relay::{Handle, Hooks, Listener, RelayStream, UnauthorizedHook, Unread};
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** A journaled frame, delivered exactly once and in order. */
export interface Frame { id: string; event: string; data: string; }
export type RelayState = "connecting" | "live" | "reconnecting" | "closed";
export type RelayRole = "leader" | "follower" | "standalone";
export interface Cursor { id: string; epoch: string; }
export interface RelayStats {
  delivered: number; duplicates: number; reconnects: number; resets: number;
  gaps: number; malformed: number; stalls: number; connections: number;
  leaderChanges: number; rejectedMessages: number; filtered: number;
  guarantee: "exactly-once" | "at-most-once";
}
export interface RelayOptions {
  key?: string;
  /** "relay" (protocol v1, default) or "plain" (no ready frame: at most once). */
  serverProfile?: "relay" | "plain" | "durable-streams";
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
  /** Share one connection per key across the browser's tabs (default true). */
  shareAcrossTabs?: boolean;
  signal?: AbortSignal;
  /** Listeners registered before the first connection: they also see what happens while open() is pending. */
  on?: { [K in keyof RelayEventMap]?: (event: RelayEventMap[K]) => void };
  /** "eventsource" (default) or "fetch": headers, POST, the HTTP status, and the core's parser. */
  transport?: "eventsource" | "fetch";
  /** fetch only */
  headers?: Record<string, string>;
  /** fetch only */
  method?: string;
  /** fetch only */
  body?: string;
  /** fetch only */
  credentials?: "omit" | "same-origin" | "include";
  /** fetch only: on 401/403, return fresh headers to retry at once, or null to stop. */
  onUnauthorized?: (status: number) => Record<string, string> | null | undefined | Promise<Record<string, string> | null | undefined>;
}
export interface RelayEventMap {
  ready: { tail: string | null; epoch: string };
  state: RelayState;
  reset: { previousEpoch: string; epoch: string };
  reconnecting: { attempt: number; delayMs: number; cause: string };
  gap: { after: string; next: string };
  malformed: { kind: "missing-id" | "bad-id" | "bad-ready" | "bad-tail" | "before-ready" | "before-start" | "unparsable" | "bad-control"; message: string; event: string; id: string | null; data: string };
  error: RelayError;
}
export type RelayErrorName =
  | "RelayTimeoutError" | "RelayOptionsError" | "AbortError" | "RelayConnectError"
  | "RelayUnauthorizedError" | "RelayStoppedError" | "RelayContentTypeError" | "RelayGoneError";
export interface RelayError extends Error { name: RelayErrorName; option?: string; }
/** What `stream[Symbol.asyncIterator]()` returns; leaving a `for await` loop early closes the stream. */
export interface FrameIterator extends AsyncIterableIterator<Frame, undefined, undefined> {
  return(): Promise<IteratorResult<Frame, undefined>>;
}
/** What `stream.batches()` returns: every frame that arrived since the last step, in order. */
export interface BatchIterator extends AsyncIterableIterator<Frame[], undefined, undefined> {
  return(): Promise<IteratorResult<Frame[], undefined>>;
}
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

// The JavaScript half of `for await`: the iterator and the batch decoder (src/bindings.js).
#[wasm_bindgen(module = "/src/bindings.js")]
extern "C" {
    #[wasm_bindgen(js_name = frameIterator)]
    fn frame_iterator(source: FrameSource) -> JsValue;
    #[wasm_bindgen(js_name = batchIterator)]
    fn batch_iterator(source: FrameSource) -> JsValue;
    #[wasm_bindgen(js_name = framesFromText)]
    fn frames_from_text(text: &str, lengths: &[u32], made: JsValue) -> JsValue;
    #[wasm_bindgen(js_name = makeError)]
    fn make_error(name: &str, message: &str, option: &JsValue) -> JsValue;
}

/// Where the JavaScript iterator reads frames (the iterator itself lives in src/bindings.js).
///
/// Frames cross to JavaScript in batches: every frame queued since the last look, as one string
/// and its lengths, which JavaScript slices into frame objects. That keeps the per-frame cost of
/// the boundary at one call (`took`, which moves the cursor) when frames come in bursts, as they
/// do from `fetch` and from a leader tab; `batches()` hands a whole batch on with one `took`.
#[wasm_bindgen(skip_typescript)]
pub struct FrameSource {
    handle: Handle,
    /// Reused buffers for a batch: the frames' id, event and data back to back, and their lengths
    /// in UTF-16 code units (what JavaScript's `slice` counts).
    text: RefCell<String>,
    lengths: RefCell<Vec<u32>>,
}

const EVENT_TYPES: [&str; 8] = [
    "ready",
    "state",
    "reset",
    "reconnecting",
    "gap",
    "malformed",
    "filtered",
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
        let (options, hooks) = read_options(&options).map_err(|e| to_js_error(&e))?;
        let stream = RelayStream::open_with(&url, &options, hooks)
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
        unchecked_return_type = "FrameIterator"
    )]
    pub fn async_iterator(&self) -> JsValue {
        frame_iterator(self.frame_source())
    }

    /// The stream's frames in batches, for `for await`: each step gives every frame that has
    /// arrived since the last (at least one), in order, and the cursor moves past all of them.
    /// Leaving the loop early closes the stream. Read a stream through one iterator only.
    #[wasm_bindgen(unchecked_return_type = "BatchIterator")]
    pub fn batches(&self) -> JsValue {
        batch_iterator(self.frame_source())
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

    /// `"leader"`, `"follower"` or `"standalone"` (not sharing across tabs).
    #[wasm_bindgen(getter, unchecked_return_type = "RelayRole")]
    pub fn role(&self) -> String {
        self.stream.role().as_str().to_owned()
    }

    /// The journal epoch in force; `null` before the first `ready`.
    #[wasm_bindgen(getter)]
    pub fn epoch(&self) -> JsValue {
        optional(self.stream.epoch().as_deref())
    }

    /// Counters of what the stream did.
    #[wasm_bindgen(getter, unchecked_return_type = "RelayStats")]
    pub fn stats(&self) -> JsValue {
        stats_object(&self.stream.stats())
    }

    /// Adds a listener: `ready`, `state`, `reset`, `reconnecting`, `gap`, `malformed`, `error`.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, event_type: String, listener: Function) -> Result<(), JsValue> {
        check_event_type(&event_type)?;
        let id = self
            .stream
            .handle()
            .listen(js_listener(event_type.clone(), listener.clone()));
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

impl JsRelayStream {
    fn frame_source(&self) -> FrameSource {
        FrameSource {
            handle: self.stream.handle().clone(),
            text: RefCell::default(),
            lengths: RefCell::default(),
        }
    }
}

#[wasm_bindgen]
impl FrameSource {
    /// Every frame queued that the iterator has not been shown, as an array (each then `took`);
    /// `undefined` when there is nothing yet (then `wait`); `null` at the end; throws the
    /// stream's failure once.
    pub fn pull(&self) -> Result<JsValue, JsValue> {
        let mut text = self.text.borrow_mut();
        let mut lengths = self.lengths.borrow_mut();
        text.clear();
        lengths.clear();
        // Frames the transport made page objects of already (EventSource) skip the copy out:
        // their place in the batch holds their index in `made`.
        let mut made: Option<js_sys::Array> = None;
        let mut copied = false;
        let unread = self
            .handle
            .show_unread(|frame, page_frame| match page_frame {
                Some(object) => {
                    let made = made.get_or_insert_with(js_sys::Array::new);
                    lengths.extend([MADE | (made.push(object) - 1), 0, 0]);
                }
                None => {
                    copied = true;
                    for part in [&frame.id, &frame.event, &frame.data] {
                        text.push_str(part);
                        lengths.push(utf16_len(part));
                    }
                }
            });
        match unread {
            // Every frame made already: the array is the batch.
            Unread::Frames if !copied => Ok(made.map_or(JsValue::UNDEFINED, JsValue::from)),
            Unread::Frames => Ok(frames_from_text(
                &text,
                &lengths,
                made.map_or(JsValue::UNDEFINED, JsValue::from),
            )),
            Unread::Nothing => Ok(JsValue::UNDEFINED),
            Unread::Ended => Ok(JsValue::NULL),
            Unread::Failed(e) => Err(to_js_error(&e)),
        }
    }

    /// The iterator handed on the `count` oldest frames it pulled: the cursor moves past them.
    pub fn took(&self, count: u32) {
        self.handle.take_shown(count);
    }

    /// Calls `wake` once `pull` has something to return.
    pub fn wait(&self, wake: Function) {
        self.handle.when_readable(Box::new(move || {
            let _ = wake.call0(&JsValue::UNDEFINED);
        }));
    }

    /// The loop was left early: closes the stream.
    pub fn close(&self) {
        self.handle.close();
    }
}

/// Marks an id length that is an index into the frames made already (src/bindings.js checks the
/// same bit). Ids are at most 1 MiB, far below it.
const MADE: u32 = 1 << 31;

/// The length of `text` in UTF-16 code units.
fn utf16_len(text: &str) -> u32 {
    let units = if text.is_ascii() {
        text.len()
    } else {
        text.chars().map(char::len_utf16).sum()
    };
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// A listener that calls `listener` with the JavaScript argument of events of `event_type`.
fn js_listener(event_type: String, listener: Function) -> Listener {
    Rc::new(move |event: &Event| {
        if let Some((kind, argument)) = event_argument(event) {
            if kind == event_type {
                // A throwing listener must not break the stream; report it and go on.
                if let Err(e) = listener.call1(&JsValue::UNDEFINED, &argument) {
                    report_listener_error(&e);
                }
            }
        }
    })
}

/// Checks an event type given to `on`/`off` or the `on` option.
fn check_event_type(event_type: &str) -> Result<(), JsValue> {
    if EVENT_TYPES.contains(&event_type) {
        return Ok(());
    }
    let mut message = "unknown event type ".to_owned() + &quoted(event_type);
    message.push_str("; expected one of ");
    push_list(&mut message, &EVENT_TYPES, false);
    Err(js_sys::TypeError::new(&message).into())
}

/// `onUnauthorized` as the shell calls it: the page's function, awaited if it returns a promise;
/// `null`/`undefined` (or a throw, or a rejection) means no fresh credentials.
fn unauthorized_hook(hook: Function) -> UnauthorizedHook {
    Rc::new(move |status: u16| {
        let hook = hook.clone();
        Box::pin(async move {
            let returned = hook
                .call1(&JsValue::UNDEFINED, &JsValue::from(status))
                .ok()?;
            let value = JsFuture::from(Promise::resolve(&returned)).await.ok()?;
            if value.is_null() || value.is_undefined() {
                return None;
            }
            header_pairs("onUnauthorized", &value).ok()
        })
    })
}

/// Reads the options object field by field. `undefined` means the default; any other value of
/// the wrong type, and any unknown key, is an error naming the option.
fn read_options(value: &JsValue) -> Result<(Options, Hooks), Error> {
    let mut options = Options::default();
    let mut hooks = Hooks::default();
    if value.is_undefined() || value.is_null() {
        return Ok((options, hooks));
    }
    if !value.is_object() || value.is_function() || js_sys::Array::is_array(value) {
        return Err(bad("", "options must be an object"));
    }
    for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
        let name = key.as_string().unwrap_or_default();
        let v = Reflect::get(value, &key).unwrap_or(JsValue::UNDEFINED);
        if v.is_undefined() {
            continue;
        }
        let n = name.as_str();
        match n {
            "signal" => {
                hooks.signal = Some(
                    v.dyn_into::<web_sys::AbortSignal>()
                        .map_err(|_| bad(n, "must be an AbortSignal"))?,
                )
            }
            "on" => hooks.on_event = Some(event_listeners(n, &v)?),
            "onUnauthorized" => {
                let hook = v
                    .dyn_into::<Function>()
                    .map_err(|_| bad(n, "must be a function"))?;
                hooks.on_unauthorized = Some(unauthorized_hook(hook));
            }
            "transport" => {
                let transports = [
                    ("eventsource", Transport::EventSource),
                    ("fetch", Transport::Fetch),
                ];
                options.transport = Some(choice(n, &v, &transports)?);
            }
            "headers" => options.headers = header_pairs(n, &v)?,
            "method" => options.method = string(n, &v)?,
            "body" => options.body = Some(string(n, &v)?),
            "credentials" => {
                let modes = [
                    ("omit", Credentials::Omit),
                    ("same-origin", Credentials::SameOrigin),
                    ("include", Credentials::Include),
                ];
                options.credentials = choice(n, &v, &modes)?;
            }
            "serverProfile" => {
                let profiles = [
                    ("relay", ServerProfile::Relay),
                    ("plain", ServerProfile::Plain),
                    ("durable-streams", ServerProfile::DurableStreams),
                ];
                options.server_profile = choice(n, &v, &profiles)?;
            }
            "key" => options.key = Some(string(n, &v)?),
            "events" => options.events = Some(strings(n, &v)?),
            "from" => {
                options.from = choice(
                    n,
                    &v,
                    &[("start", StartFrom::Start), ("now", StartFrom::Now)],
                )?
            }
            "readyEvent" => options.ready_event = string(n, &v)?,
            "doneEvent" => options.done_event = string(n, &v)?,
            "pingEvent" => options.ping_event = string(n, &v)?,
            "cursorParam" => options.cursor_param = string(n, &v)?,
            "epochParam" => options.epoch_param = string(n, &v)?,
            "cursorOrder" => {
                let orders = [
                    ("auto", CursorOrder::Auto),
                    ("numeric", CursorOrder::Numeric),
                    ("redis", CursorOrder::Redis),
                    ("opaque", CursorOrder::Opaque),
                ];
                options.cursor_order = choice(n, &v, &orders)?;
            }
            "contiguousIds" => options.contiguous_ids = boolean(n, &v)?,
            "dedupWindow" => options.dedup_window = whole(n, &v)?,
            "readyTimeoutMs" => options.ready_timeout_ms = whole(n, &v)?,
            "heartbeatTimeoutMs" => options.heartbeat_timeout_ms = whole(n, &v)?,
            "backoffBaseMs" => options.backoff_base_ms = whole(n, &v)?,
            "backoffMaxMs" => options.backoff_max_ms = whole(n, &v)?,
            "persistCursor" => {
                let modes = [
                    ("none", PersistCursor::None),
                    ("session", PersistCursor::Session),
                ];
                options.persist_cursor = choice(n, &v, &modes)?;
            }
            "withCredentials" => options.with_credentials = boolean(n, &v)?,
            "shareAcrossTabs" => options.share_across_tabs = boolean(n, &v)?,
            _ => Options::check_name(n)?,
        }
    }
    Ok((options, hooks))
}

/// The `on` option, `{ reconnecting(e) {...}, state(s) {...} }`: listeners registered before the
/// first connection, so they also see what happens while `open` is pending.
fn event_listeners(option: &str, v: &JsValue) -> Result<Listener, Error> {
    if !v.is_object() || js_sys::Array::is_array(v) || v.is_function() {
        return Err(bad(option, "must be an object of event types to functions"));
    }
    let mut listeners = Vec::new();
    for entry in Object::entries(v.unchecked_ref::<Object>()).iter() {
        let pair: js_sys::Array = entry.unchecked_into();
        let event_type = pair.get(0).as_string().unwrap_or_default();
        if check_event_type(&event_type).is_err() {
            let mut message = quoted(&event_type) + " is not an event type (";
            push_list(&mut message, &EVENT_TYPES, false);
            message.push(')');
            return Err(bad(option, &message));
        }
        let listener = pair
            .get(1)
            .dyn_into::<Function>()
            .map_err(|_| bad(option, "must map event types to functions"))?;
        listeners.push(js_listener(event_type, listener));
    }
    Ok(Rc::new(move |event: &Event| {
        listeners.iter().for_each(|listener| listener(event))
    }))
}

/// Headers as a plain object of strings (`{ Authorization: "Bearer ..." }`).
fn header_pairs(option: &str, v: &JsValue) -> Result<Vec<(String, String)>, Error> {
    if !v.is_object() || js_sys::Array::is_array(v) || v.is_function() {
        return Err(bad(
            option,
            "must be an object of header names to string values",
        ));
    }
    Object::entries(v.unchecked_ref::<Object>())
        .iter()
        .map(|entry| {
            let pair: js_sys::Array = entry.unchecked_into();
            match (pair.get(0).as_string(), pair.get(1).as_string()) {
                (Some(name), Some(value)) => Ok((name, value)),
                _ => Err(bad(
                    option,
                    "must be an object of header names to string values",
                )),
            }
        })
        .collect()
}

fn bad(option: &str, reason: &str) -> Error {
    Error::Options(OptionsError {
        option: option.to_owned(),
        reason: reason.to_owned(),
    })
}

fn string(option: &str, v: &JsValue) -> Result<String, Error> {
    v.as_string().ok_or_else(|| bad(option, "must be a string"))
}

fn strings(option: &str, v: &JsValue) -> Result<Vec<String>, Error> {
    if !js_sys::Array::is_array(v) {
        return Err(bad(option, "must be an array of strings"));
    }
    let array: &js_sys::Array = v.unchecked_ref();
    array
        .iter()
        .map(|item| {
            item.as_string()
                .ok_or_else(|| bad(option, "must be an array of strings"))
        })
        .collect()
}

fn boolean(option: &str, v: &JsValue) -> Result<bool, Error> {
    v.as_bool()
        .ok_or_else(|| bad(option, "must be true or false"))
}

fn whole(option: &str, v: &JsValue) -> Result<u32, Error> {
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) => Ok(n as u32),
        _ => Err(bad(option, "must be a whole number from 0 to 4294967295")),
    }
}

fn choice<T: Copy>(option: &str, v: &JsValue, choices: &[(&str, T)]) -> Result<T, Error> {
    let text = v.as_string();
    choices
        .iter()
        .find(|(name, _)| text.as_deref() == Some(*name))
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            let mut message = "must be one of ".to_owned();
            push_list(&mut message, &names, true);
            bad(option, &message)
        })
}

/// Appends `items` separated by `, `, each in quotes if `quote` (messages without `format!`,
/// whose machinery costs wasm bytes).
fn push_list(out: &mut String, items: &[&str], quote: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if quote {
            out.push_str(&quoted(item));
        } else {
            out.push_str(item);
        }
    }
}

fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (name, value) in fields {
        let _ = Reflect::set(&object, &JsValue::from_str(name), value);
    }
    object.into()
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
        ("leaderChanges", n(stats.leader_changes)),
        ("rejectedMessages", n(stats.rejected_messages)),
        ("filtered", n(stats.filtered)),
        ("guarantee", JsValue::from_str(stats.guarantee.as_str())),
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
                MalformedKind::BeforeStart => "before-start",
                MalformedKind::Unparsable(_) => "unparsable",
                MalformedKind::BadControl(_) => "bad-control",
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
        Event::Filtered { id, event } => (
            "filtered",
            object(&[
                ("id", JsValue::from_str(id)),
                ("event", JsValue::from_str(event)),
            ]),
        ),
        Event::Failed(e) => ("error", to_js_error(&Error::from(e.clone()))),
        Event::Frame(_) => return None,
    })
}

/// The JavaScript error of `error`: an instance of its class (src/bindings.js, exported by the
/// package), whose stable `name` is [`Error::name`] (and `option` for options errors).
fn to_js_error(error: &Error) -> JsValue {
    let option = match error {
        Error::Options(e) => JsValue::from_str(&e.option),
        _ => JsValue::UNDEFINED,
    };
    make_error(error.name(), &error.to_string(), &option)
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

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn options_from(json: &str) -> Result<Options, Error> {
        read_options(&js_sys::JSON::parse(json).unwrap()).map(|(options, _)| options)
    }

    /// A valid value for every option, so each documented name is proven to be read.
    const SAMPLES: &[(&str, &str)] = &[
        ("serverProfile", "\"plain\""),
        ("key", "\"k\""),
        ("events", "[\"token\"]"),
        ("from", "\"now\""),
        ("readyEvent", "\"joined\""),
        ("doneEvent", "\"end\""),
        ("pingEvent", "\"beat\""),
        ("cursorParam", "\"c\""),
        ("epochParam", "\"e\""),
        ("cursorOrder", "\"redis\""),
        ("contiguousIds", "true"),
        ("dedupWindow", "16"),
        ("readyTimeoutMs", "500"),
        ("heartbeatTimeoutMs", "900"),
        ("backoffBaseMs", "10"),
        ("backoffMaxMs", "20"),
        ("persistCursor", "\"session\""),
        ("withCredentials", "true"),
        ("shareAcrossTabs", "false"),
        ("transport", "\"fetch\""),
        ("headers", "{\"Authorization\":\"Bearer t\"}"),
        ("method", "\"POST\""),
        ("body", "\"{}\""),
        ("credentials", "\"include\""),
        ("onUnauthorized", ""),
        ("on", ""),
    ];

    #[wasm_bindgen_test]
    fn every_option_name_is_read() {
        let names: Vec<&str> = SAMPLES.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, Options::NAMES, "SAMPLES covers every option");
        let json = SAMPLES
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| format!("\"{n}\":{v}"));
        let value =
            js_sys::JSON::parse(&format!("{{{}}}", json.collect::<Vec<_>>().join(","))).unwrap();
        let hook = Function::new_with_args("status", "return null");
        Reflect::set(&value, &"onUnauthorized".into(), &hook).unwrap();
        let listeners = js_sys::Object::new();
        Reflect::set(&listeners, &"state".into(), &Function::new_no_args("")).unwrap();
        Reflect::set(&value, &"on".into(), &listeners).unwrap();
        let (o, hooks) = read_options(&value).unwrap();
        assert!(hooks.on_unauthorized.is_some());
        assert!(hooks.on_event.is_some());
        assert_eq!(o.transport, Some(Transport::Fetch));
        assert!(!o.share_across_tabs);
        assert_eq!(
            o.headers,
            [("Authorization".to_string(), "Bearer t".to_string())]
        );
        assert_eq!((o.method.as_str(), o.body.as_deref()), ("POST", Some("{}")));
        assert_eq!(o.credentials, Credentials::Include);
        assert_eq!(o.key.as_deref(), Some("k"));
        assert_eq!(o.server_profile, ServerProfile::Plain);
        assert_eq!(o.events.as_deref(), Some(&["token".to_owned()][..]));
        assert_eq!(o.from, StartFrom::Now);
        assert_eq!(
            (
                o.ready_event.as_str(),
                o.done_event.as_str(),
                o.ping_event.as_str()
            ),
            ("joined", "end", "beat")
        );
        assert_eq!(
            (o.cursor_param.as_str(), o.epoch_param.as_str()),
            ("c", "e")
        );
        assert_eq!(o.cursor_order, CursorOrder::Redis);
        assert!(o.contiguous_ids && o.with_credentials);
        assert_eq!(
            (o.dedup_window, o.ready_timeout_ms, o.heartbeat_timeout_ms),
            (16, 500, 900)
        );
        assert_eq!((o.backoff_base_ms, o.backoff_max_ms), (10, 20));
        assert_eq!(o.persist_cursor, PersistCursor::Session);
    }

    #[wasm_bindgen_test]
    fn wrong_values_name_their_option() {
        for (json, option) in [
            (r#"{"dedupWindow":1.5}"#, "dedupWindow"),
            (r#"{"readyTimeoutMs":-1}"#, "readyTimeoutMs"),
            (r#"{"from":"later"}"#, "from"),
            (r#"{"events":"token"}"#, "events"),
            (r#"{"events":["token",3]}"#, "events"),
            (r#"{"contiguousIds":"yes"}"#, "contiguousIds"),
            (r#"{"signal":{}}"#, "signal"),
            (r#"{"shareAcrossTab":true}"#, "shareAcrossTab"),
            (r#"{"transport":"websocket"}"#, "transport"),
            (r#"{"serverProfile":"durable"}"#, "serverProfile"),
            (r#"{"headers":{"A":1}}"#, "headers"),
            (r#"{"headers":["A"]}"#, "headers"),
            (r#"{"credentials":"all"}"#, "credentials"),
            (r#"{"onUnauthorized":"refresh"}"#, "onUnauthorized"),
            (r#"{"on":{"stat":null}}"#, "on"),
            (r#"{"on":{"state":1}}"#, "on"),
        ] {
            match options_from(json) {
                Err(Error::Options(e)) => assert_eq!(e.option, option, "{json}"),
                other => panic!("{json}: expected an options error, got {other:?}"),
            }
        }
        assert!(read_options(&JsValue::from_str("x")).is_err());
        assert!(read_options(&JsValue::UNDEFINED).is_ok());
    }
}
