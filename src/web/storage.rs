//! `sessionStorage` for `persistCursor: "session"`: a reload resumes after the last frame the
//! page consumed.

use crate::core::Cursor;

fn storage() -> Option<web_sys::Storage> {
    let storage = js_sys::Reflect::get(&js_sys::global(), &"sessionStorage".into()).ok()?;
    // Accessing sessionStorage can throw (opaque origins, disabled storage): then there is none.
    (!storage.is_undefined() && !storage.is_null())
        .then(|| wasm_bindgen::JsCast::unchecked_into(storage))
}

/// Where one stream's cursor is kept.
pub(crate) struct CursorStore {
    item: String,
}

impl CursorStore {
    pub(crate) fn new(stream_key: &str) -> CursorStore {
        CursorStore {
            item: format!("sse-relay/v1/{stream_key}/cursor"),
        }
    }

    /// The stored cursor, if any and readable. A corrupt entry is ignored (and replaced later).
    pub(crate) fn load(&self) -> Option<Cursor> {
        let text = storage()?.get_item(&self.item).ok()??;
        crate::core::cursor_from_json(&text)
    }

    /// Stores `cursor`, or removes the entry for `None` (a finished stream starts afresh).
    pub(crate) fn save(&self, cursor: Option<&Cursor>) {
        let Some(storage) = storage() else { return };
        match cursor {
            Some(cursor) => {
                // The core's JSON, as JSON.stringify wrote it before (no JSON import needed).
                // Quota errors leave the previous value; resuming a little earlier is safe.
                let _ = storage.set_item(&self.item, &crate::core::cursor_to_json(cursor));
            }
            None => {
                let _ = storage.remove_item(&self.item);
            }
        }
    }
}
