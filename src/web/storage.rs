//! `sessionStorage` for `persistCursor: "session"`: a reload resumes after the last frame the
//! page consumed.

use wasm_bindgen::JsValue;

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
        let value = js_sys::JSON::parse(&text).ok()?;
        let field = |name: &str| {
            js_sys::Reflect::get(&value, &JsValue::from_str(name))
                .ok()?
                .as_string()
        };
        let (id, epoch) = (field("id")?, field("epoch")?);
        (!id.is_empty() && !epoch.is_empty()).then_some(Cursor { id, epoch })
    }

    /// Stores `cursor`, or removes the entry for `None` (a finished stream starts afresh).
    pub(crate) fn save(&self, cursor: Option<&Cursor>) {
        let Some(storage) = storage() else { return };
        match cursor {
            Some(cursor) => {
                let object = js_sys::Object::new();
                let _ = js_sys::Reflect::set(&object, &"id".into(), &JsValue::from_str(&cursor.id));
                let _ = js_sys::Reflect::set(
                    &object,
                    &"epoch".into(),
                    &JsValue::from_str(&cursor.epoch),
                );
                if let Ok(text) = js_sys::JSON::stringify(&object) {
                    // Quota errors leave the previous value; resuming a little earlier is safe.
                    let _ = storage.set_item(&self.item, &String::from(text));
                }
            }
            None => {
                let _ = storage.remove_item(&self.item);
            }
        }
    }
}
