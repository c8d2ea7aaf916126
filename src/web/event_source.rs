//! The native `EventSource` transport.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{EventSource, EventSourceInit};

#[wasm_bindgen]
extern "C" {
    /// The `MessageEvent` an `EventSource` dispatches for a named event (its `data` is a string).
    #[wasm_bindgen(extends = web_sys::Event)]
    type SseMessageEvent;
    #[wasm_bindgen(method, getter)]
    fn data(this: &SseMessageEvent) -> JsValue;
    #[wasm_bindgen(method, getter, js_name = lastEventId)]
    fn last_event_id(this: &SseMessageEvent) -> JsValue;
}

#[wasm_bindgen(module = "/src/web/event_source.js")]
extern "C" {
    /// `{ id, event, data }` (the shape of a delivered frame) from strings the browser made.
    #[wasm_bindgen(js_name = pageFrame)]
    fn page_frame(id: &JsValue, event: &JsValue, data: &JsValue) -> JsValue;
}

/// What a native `EventSource` reports.
pub(crate) enum SourceEvent<'a> {
    /// The response started (HTTP 200 with the right content type): not a join.
    Open,
    /// A named event: its type, the browser's last-event-id buffer, and its data; and the same
    /// as a frame object for the page, made of the browser's own strings (no copy out of wasm).
    Message {
        event: &'a str,
        last_event_id: &'a str,
        data: &'a str,
        page_frame: JsValue,
    },
    /// An error. `retrying` is true while the browser reconnects by itself (`CONNECTING`): that is
    /// not a failure. Otherwise the source is `CLOSED` and will not come back.
    Error { retrying: bool },
}

type Listener = Closure<dyn FnMut(web_sys::Event)>;

/// One `EventSource` and its listeners. Dropping it closes the source and removes every listener.
#[must_use = "dropping the connection closes it"]
pub(crate) struct EventSourceConnection {
    source: EventSource,
    listeners: Vec<(String, Listener)>,
}

impl EventSourceConnection {
    /// Opens `url`, listening to `open`, `error` and each of `event_types`; every event goes to
    /// `sink`.
    pub(crate) fn open(
        url: &str,
        with_credentials: bool,
        event_types: &[String],
        sink: impl FnMut(SourceEvent<'_>) + 'static,
    ) -> Result<EventSourceConnection, JsValue> {
        let init = EventSourceInit::new();
        init.set_with_credentials(with_credentials);
        let source = EventSource::new_with_event_source_init_dict(url, &init)?;
        let sink = Rc::new(RefCell::new(sink));
        let mut connection = EventSourceConnection {
            source,
            listeners: Vec::new(),
        };

        let on_open = Rc::clone(&sink);
        connection.listen("open", move |_| (on_open.borrow_mut())(SourceEvent::Open))?;

        let on_error = Rc::clone(&sink);
        connection.listen("error", move |event| {
            let retrying = event
                .target()
                .and_then(|t| t.dyn_into::<EventSource>().ok())
                .is_some_and(|s| s.ready_state() == EventSource::CONNECTING);
            (on_error.borrow_mut())(SourceEvent::Error { retrying });
        })?;

        for event_type in event_types {
            let on_message = Rc::clone(&sink);
            let name = event_type.clone();
            let name_value = JsValue::from_str(event_type);
            // Only this source, which is not shared, dispatches to these listeners, and it only
            // dispatches message events for them: no type check on the hot path.
            connection.listen(event_type, move |event| {
                let message: &SseMessageEvent = event.unchecked_ref();
                let (id_value, data_value) = (message.last_event_id(), message.data());
                let last_event_id = id_value.as_string().unwrap_or_default();
                let data = data_value.as_string().unwrap_or_default();
                (on_message.borrow_mut())(SourceEvent::Message {
                    event: &name,
                    last_event_id: &last_event_id,
                    data: &data,
                    page_frame: page_frame(&id_value, &name_value, &data_value),
                });
            })?;
        }
        Ok(connection)
    }

    fn listen(
        &mut self,
        event_type: &str,
        handler: impl FnMut(web_sys::Event) + 'static,
    ) -> Result<(), JsValue> {
        let closure: Listener = Closure::new(handler);
        self.source
            .add_event_listener_with_callback(event_type, closure.as_ref().unchecked_ref())?;
        self.listeners.push((event_type.to_owned(), closure));
        Ok(())
    }
}

impl Drop for EventSourceConnection {
    fn drop(&mut self) {
        self.source.close();
        for (event_type, closure) in &self.listeners {
            let _ = self
                .source
                .remove_event_listener_with_callback(event_type, closure.as_ref().unchecked_ref());
        }
    }
}
