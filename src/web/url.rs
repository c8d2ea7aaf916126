//! Building a connection URL: the stream URL plus the session's query parameters.

use wasm_bindgen::JsValue;

/// Resolves `base` against the document (relative URLs work) and sets each parameter, replacing a
/// parameter of the same name that the URL already carries.
pub(crate) fn with_query(base: &str, query: &[(String, String)]) -> Result<String, JsValue> {
    let url = match document_base() {
        Some(doc) => web_sys::Url::new_with_base(base, &doc)?,
        None => web_sys::Url::new(base)?,
    };
    let params = url.search_params();
    for (name, value) in query {
        params.set(name, value);
    }
    Ok(url.href())
}

/// The absolute form of `url`, used as the default stream key.
pub(crate) fn absolute(url: &str) -> Result<String, JsValue> {
    with_query(url, &[])
}

fn document_base() -> Option<String> {
    let location = js_sys::Reflect::get(&js_sys::global(), &"location".into()).ok()?;
    js_sys::Reflect::get(&location, &"href".into())
        .ok()?
        .as_string()
}
