//! The developer console.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(text: &str);
}

/// `console.warn(text)`.
pub(crate) fn warn(text: &str) {
    console_warn(text);
}
