//! The session's clock: `performance.now()` (monotonic, in windows and workers).

use wasm_bindgen::JsCast;

use crate::core::Timestamp;

thread_local! {
    static PERFORMANCE: Option<web_sys::Performance> =
        js_sys::Reflect::get(&js_sys::global(), &"performance".into())
            .ok()
            .and_then(|p| p.dyn_into::<web_sys::Performance>().ok());
}

/// Now, in whole milliseconds since the page's time origin.
pub(crate) fn now() -> Timestamp {
    let ms = PERFORMANCE.with(|p| p.as_ref().map_or_else(js_sys::Date::now, |p| p.now()));
    Timestamp::from_millis(ms.max(0.0) as u64)
}
