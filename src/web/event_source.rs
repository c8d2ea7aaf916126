//! The native `EventSource` transport.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{EventSource, EventSourceInit, MessageEvent};

/// What a native `EventSource` reports.
pub(crate) enum SourceEvent<'a> {
    /// The response started (HTTP 200 with the right content type): not a join.
    Open,
    /// A named event: its type, the browser's last-event-id buffer, and its data.
    Message {
        event: &'a str,
        last_event_id: &'a str,
        data: &'a str,
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
            connection.listen(event_type, move |event| {
                let Some(message) = event.dyn_ref::<MessageEvent>() else {
                    return;
                };
                let data = message.data().as_string().unwrap_or_default();
                let last_event_id = message.last_event_id();
                let event = message.type_();
                (on_message.borrow_mut())(SourceEvent::Message {
                    event: &event,
                    last_event_id: &last_event_id,
                    data: &data,
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
