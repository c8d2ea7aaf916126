//! `BroadcastChannel`: the stream's channel between tabs.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, MessageEvent};

/// One channel and its `message` listener. Dropping it closes the channel.
/// Whether this browser has `BroadcastChannel`.
pub(crate) fn available() -> bool {
    js_sys::Reflect::has(&js_sys::global(), &"BroadcastChannel".into()).unwrap_or(false)
}

#[must_use = "dropping the channel closes it"]
pub(crate) struct Channel {
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl Channel {
    /// Opens the channel `name`; `None` where the browser has no `BroadcastChannel`. Each message
    /// reaches `on_message` as text, or `None` when it is not a string (never trusted either way).
    pub(crate) fn open(
        name: &str,
        mut on_message: impl FnMut(Option<String>) + 'static,
    ) -> Option<Channel> {
        if !available() {
            return None;
        }
        let channel = BroadcastChannel::new(name).ok()?;
        let closure = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            on_message(event.data().as_string())
        });
        channel.set_onmessage(Some(closure.as_ref().unchecked_ref()));
        Some(Channel {
            channel,
            _on_message: closure,
        })
    }

    /// Posts `text` to every other tab's channel of the same name.
    pub(crate) fn post(&self, text: &str) {
        // Posting only fails on a closed channel, which this type never holds.
        let _ = self.channel.post_message(&text.into());
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}
