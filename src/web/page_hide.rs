//! `pagehide`: the last moment a reloading or closing page can save its cursor.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// Calls a function on every `pagehide`. Dropping it removes the listener.
#[must_use = "dropping the listener removes it"]
pub(crate) struct PageHideListener {
    target: web_sys::EventTarget,
    closure: Closure<dyn FnMut()>,
}

impl PageHideListener {
    /// `None` outside a window (a worker has no pagehide).
    pub(crate) fn new(on_hide: impl FnMut() + 'static) -> Option<PageHideListener> {
        let target: web_sys::EventTarget = web_sys::window()?.unchecked_into();
        let closure = Closure::<dyn FnMut()>::new(on_hide);
        target
            .add_event_listener_with_callback("pagehide", closure.as_ref().unchecked_ref())
            .ok()?;
        Some(PageHideListener { target, closure })
    }
}

impl Drop for PageHideListener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback("pagehide", self.closure.as_ref().unchecked_ref());
    }
}
