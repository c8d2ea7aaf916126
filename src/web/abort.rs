//! An `AbortSignal` listener.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

/// Calls a function once when the signal aborts. Dropping it removes the listener.
#[must_use = "dropping the listener stops watching the signal"]
pub(crate) struct AbortListener {
    signal: AbortSignal,
    closure: Closure<dyn FnMut()>,
}

impl AbortListener {
    pub(crate) fn new(signal: AbortSignal, on_abort: impl FnOnce() + 'static) -> AbortListener {
        let mut on_abort = Some(on_abort);
        let closure = Closure::<dyn FnMut()>::new(move || {
            if let Some(f) = on_abort.take() {
                f();
            }
        });
        let _ = signal.add_event_listener_with_callback("abort", closure.as_ref().unchecked_ref());
        AbortListener { signal, closure }
    }
}

impl Drop for AbortListener {
    fn drop(&mut self) {
        let _ = self
            .signal
            .remove_event_listener_with_callback("abort", self.closure.as_ref().unchecked_ref());
    }
}
