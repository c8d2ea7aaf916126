//! The session's clock: `performance.now()` (monotonic, in windows and workers).

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use crate::core::Timestamp;

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`; an error where the global has no `performance`. Imported directly
    /// rather than looked up once into a `thread_local!`, whose machinery costs wasm bytes.
    #[wasm_bindgen(js_namespace = performance, js_name = now, catch)]
    fn performance_now() -> Result<f64, JsValue>;
}

/// Now, in whole milliseconds since the page's time origin (`Date.now()` where there is no
/// `performance`).
pub(crate) fn now() -> Timestamp {
    let ms = performance_now().unwrap_or_else(|_| js_sys::Date::now());
    Timestamp::from_millis(ms.max(0.0) as u64)
}
