//! Web Locks (`navigator.locks`): the lock that makes one tab the leader of a stream.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// A queued or held exclusive lock. The browser releases it when the tab closes or crashes;
/// dropping this releases it (or withdraws the request) too.
/// Whether this browser has Web Locks (`navigator.locks`).
pub(crate) fn available() -> bool {
    Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|navigator| Reflect::get(&navigator, &"locks".into()))
        .is_ok_and(|locks| !locks.is_undefined() && !locks.is_null())
}

#[must_use = "dropping the request releases the lock"]
pub(crate) struct LockRequest {
    /// Resolving the promise the lock callback returned releases the lock.
    release: Rc<RefCell<Option<Function>>>,
    abort: web_sys::AbortController,
}

impl LockRequest {
    /// Requests `name` exclusively. `on_acquired` runs when the tab gets it; `on_lost` when the
    /// request fails or a held lock is taken away (`steal`). `None` without `navigator.locks`.
    pub(crate) fn request(
        name: &str,
        on_acquired: impl FnOnce() + 'static,
        on_lost: impl FnOnce() + 'static,
    ) -> Option<LockRequest> {
        let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
        let locks = Reflect::get(&navigator, &"locks".into())
            .ok()
            .filter(|l| !l.is_undefined() && !l.is_null())?;
        let request: Function = Reflect::get(&locks, &"request".into())
            .ok()?
            .dyn_into()
            .ok()?;
        let abort = web_sys::AbortController::new().ok()?;
        let options = Object::new();
        Reflect::set(&options, &"mode".into(), &"exclusive".into()).ok()?;
        Reflect::set(&options, &"signal".into(), &abort.signal()).ok()?;

        let release = Rc::new(RefCell::new(None::<Function>));
        let slot = Rc::clone(&release);
        let mut on_acquired = Some(on_acquired);
        // The browser may call these after `self` is gone (a steal, an aborted request), so they
        // are handed to the JavaScript garbage collector instead of being owned here.
        let granted = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |_lock: JsValue| {
            let hold = Promise::new(&mut |resolve, _reject| *slot.borrow_mut() = Some(resolve));
            if let Some(f) = on_acquired.take() {
                f();
            }
            hold.into()
        })
        .into_js_value();
        let mut on_lost = Some(on_lost);
        let failed = Closure::<dyn FnMut(JsValue)>::new(move |_error: JsValue| {
            if let Some(f) = on_lost.take() {
                f();
            }
        })
        .into_js_value();
        let outcome = request
            .call3(&locks, &name.into(), &options, &granted)
            .ok()?;
        let catch: Function = Reflect::get(&outcome, &"catch".into())
            .ok()?
            .dyn_into()
            .ok()?;
        let _ = catch.call1(&outcome, &failed);
        Some(LockRequest { release, abort })
    }
}

impl Drop for LockRequest {
    fn drop(&mut self) {
        match self.release.borrow_mut().take() {
            Some(resolve) => {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
            None => self.abort.abort(),
        }
    }
}
