//! Smoke test in headless Chromium: the core runs inside wasm, and the browser offers the APIs
//! the adapters are built on.
#![cfg(target_arch = "wasm32")]

use sse_relay::core::{Command, Event, RawEvent, Session, SessionConfig, State, Timestamp};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn the_core_session_runs_in_wasm() {
    let mut s = Session::new(SessionConfig::default(), Timestamp::from_millis(0)).unwrap();
    let Some(Command::Open(open)) = s.poll_command() else {
        panic!("no open command")
    };
    let c = open.connection;
    let t = Timestamp::from_millis(1);
    s.handle_frame(
        c,
        RawEvent {
            event: "ready",
            id: None,
            data: r#"{"tail":null,"epoch":"e1"}"#,
        },
        t,
    );
    for id in ["1", "2", "2", "1", "3"] {
        s.handle_frame(
            c,
            RawEvent {
                event: "token",
                id: Some(id),
                data: id,
            },
            t,
        );
    }
    let delivered: Vec<String> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::Frame(f) => Some(f.id),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, ["1", "2", "3"]);
    assert_eq!(s.state(), State::Live);
    assert_eq!(s.stats().duplicates, 2);
}

#[wasm_bindgen_test]
fn the_browser_has_the_apis_the_adapters_use() {
    let global = js_sys::global();
    for api in [
        "EventSource",
        "BroadcastChannel",
        "performance",
        "sessionStorage",
    ] {
        let present = js_sys::Reflect::has(&global, &JsValue::from_str(api)).unwrap_or(false);
        assert!(present, "{api} is missing");
    }
    let navigator = js_sys::Reflect::get(&global, &JsValue::from_str("navigator")).unwrap();
    let locks = js_sys::Reflect::get(&navigator, &JsValue::from_str("locks")).unwrap();
    assert!(!locks.is_undefined(), "navigator.locks is missing");
}
