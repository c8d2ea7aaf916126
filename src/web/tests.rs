//! The adapters in headless Chromium (`wasm-bindgen-test`). The `EventSource` tests talk to the
//! real reference server, whose URL `scripts/wasm-test.sh` passes at build time.

use std::cell::RefCell;
use std::rc::Rc;

use futures::channel::mpsc;
use futures::StreamExt;
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

use super::abort::AbortListener;
use super::clock;
use super::event_source::{EventSourceConnection, SourceEvent};
use super::page_hide::PageHideListener;
use super::storage::CursorStore;
use super::timer::Timer;
use super::url;
use crate::core::{Cursor, Timestamp};

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// The reference server's URL, read at build time; without it the tests that need the server
/// fail (they never skip). Shared by every browser test module.
pub(super) fn server() -> &'static str {
    match option_env!("SSE_RELAY_TEST_SERVER") {
        Some(url) => url,
        None => {
            panic!("SSE_RELAY_TEST_SERVER names the reference server (run scripts/wasm-test.sh)")
        }
    }
}

/// A stream key no other test uses.
pub(super) fn unique_key(name: &str) -> String {
    format!("{name}-{}", (js_sys::Math::random() * 1e12) as u64)
}

/// POSTs `body` (a text/plain "simple" request, so no CORS preflight) and checks for a 2xx.
async fn post(url: &str, body: &str) -> JsValue {
    let fetch: js_sys::Function = js_sys::Reflect::get(&js_sys::global(), &"fetch".into())
        .unwrap()
        .unchecked_into();
    let init = js_sys::Object::new();
    js_sys::Reflect::set(&init, &"method".into(), &"POST".into()).unwrap();
    js_sys::Reflect::set(&init, &"body".into(), &body.into()).unwrap();
    let response = JsFuture::from(js_sys::Promise::from(
        fetch.call2(&JsValue::NULL, &url.into(), &init).unwrap(),
    ))
    .await
    .unwrap();
    let status = js_sys::Reflect::get(&response, &"status".into()).unwrap();
    assert!(
        status.as_f64().is_some_and(|s| (200.0..300.0).contains(&s)),
        "POST {url}: {status:?}"
    );
    response
}

/// What an `EventSourceConnection` reported, owned.
#[derive(Debug, PartialEq)]
enum Seen {
    Open,
    Message {
        event: String,
        id: String,
        data: String,
    },
    /// A message whose page object did not hold the same id, event and data.
    PageFrameDiffers,
    Error {
        retrying: bool,
    },
}

fn record(tx: mpsc::UnboundedSender<Seen>) -> impl FnMut(SourceEvent<'_>) {
    move |event| {
        let seen = match event {
            SourceEvent::Open => Seen::Open,
            SourceEvent::Message {
                event,
                last_event_id,
                data,
                page_frame,
            } => {
                let field = |name: &str| {
                    js_sys::Reflect::get(&page_frame, &name.into())
                        .ok()
                        .and_then(|v| v.as_string())
                };
                let page = (field("id"), field("event"), field("data"));
                if page
                    != (
                        Some(last_event_id.into()),
                        Some(event.into()),
                        Some(data.into()),
                    )
                {
                    Seen::PageFrameDiffers
                } else {
                    Seen::Message {
                        event: event.into(),
                        id: last_event_id.into(),
                        data: data.into(),
                    }
                }
            }
            SourceEvent::Error { retrying } => Seen::Error { retrying },
        };
        let _ = tx.unbounded_send(seen);
    }
}

/// The next item of `rx`, or `None` if none comes within `ms`.
pub(super) async fn next_within<T>(rx: &mut mpsc::UnboundedReceiver<T>, ms: u32) -> Option<T> {
    let timeout = TimeoutFuture::new(ms);
    futures::pin_mut!(timeout);
    match futures::future::select(rx.next(), timeout).await {
        futures::future::Either::Left((item, _)) => item,
        futures::future::Either::Right(_) => None,
    }
}

#[wasm_bindgen_test]
async fn event_source_reports_open_frames_and_a_server_end_as_retrying() {
    let key = unique_key("adapter");
    post(
        &format!("{}/streams/{key}/append", server()),
        r#"{"data":"hello"}"#,
    )
    .await;
    let (tx, mut rx) = mpsc::unbounded();
    let url = format!("{}/streams/{key}/events?dropAfter=1", server());
    let types = [
        "message".to_string(),
        "ready".to_string(),
        "ping".to_string(),
    ];
    let connection = EventSourceConnection::open(&url, false, &types, record(tx)).unwrap();
    assert_eq!(next_within(&mut rx, 5_000).await, Some(Seen::Open));
    match next_within(&mut rx, 5_000).await {
        Some(Seen::Message { event, id, data }) => {
            assert_eq!(
                (event.as_str(), id.as_str()),
                ("ready", ""),
                "ready carries no id"
            );
            assert!(data.contains("\"epoch\""), "{data}");
        }
        other => panic!("expected ready, got {other:?}"),
    }
    match next_within(&mut rx, 5_000).await {
        Some(Seen::Message { event, id, data }) => {
            assert_eq!(
                (event.as_str(), id.as_str(), data.as_str()),
                ("message", "1", "hello")
            )
        }
        other => panic!("expected the journaled frame, got {other:?}"),
    }
    // dropAfter=1 ends the response: the browser goes back to CONNECTING to retry by itself.
    assert_eq!(
        next_within(&mut rx, 5_000).await,
        Some(Seen::Error { retrying: true })
    );
    drop(connection);
    // Closed and unlistened: nothing more arrives, not even the browser's own retry.
    assert_eq!(next_within(&mut rx, 1_500).await, None);
}

#[wasm_bindgen_test]
async fn event_source_reports_a_refused_connection_as_closed() {
    let key = unique_key("refused");
    let (tx, mut rx) = mpsc::unbounded();
    let url = format!("{}/streams/{key}/events?status=500", server());
    let _connection =
        EventSourceConnection::open(&url, false, &["message".to_string()], record(tx)).unwrap();
    assert_eq!(
        next_within(&mut rx, 5_000).await,
        Some(Seen::Error { retrying: false })
    );
}

#[wasm_bindgen_test]
async fn timer_fires_once_keeps_an_earlier_deadline_and_cancels_on_drop() {
    let fired = Rc::new(RefCell::new(Vec::new()));
    let mut timer = Timer::default();
    let now = clock::now();
    let log = Rc::clone(&fired);
    timer.set(
        Some(Timestamp::from_millis(now.as_millis() + 30)),
        || now,
        move || log.borrow_mut().push("first"),
    );
    // A later deadline keeps the armed (earlier) timeout.
    let log = Rc::clone(&fired);
    timer.set(
        Some(Timestamp::from_millis(now.as_millis() + 10_000)),
        || now,
        move || log.borrow_mut().push("later"),
    );
    TimeoutFuture::new(120).await;
    assert_eq!(*fired.borrow(), ["first"]);
    timer.fired();

    let log = Rc::clone(&fired);
    timer.set(
        Some(Timestamp::from_millis(clock::now().as_millis() + 30)),
        clock::now,
        move || log.borrow_mut().push("cancelled"),
    );
    drop(timer);
    TimeoutFuture::new(120).await;
    assert_eq!(
        *fired.borrow(),
        ["first"],
        "dropping the timer cancelled it"
    );
}

#[wasm_bindgen_test]
fn cursor_store_round_trips_and_ignores_corrupt_entries() {
    let key = unique_key("store");
    let store = CursorStore::new(&key);
    assert_eq!(store.load(), None);
    let cursor = Cursor {
        id: "41".into(),
        epoch: "e\"1".into(),
    };
    store.save(Some(&cursor));
    assert_eq!(store.load(), Some(cursor));
    store.save(None);
    assert_eq!(store.load(), None);
    let storage: web_sys::Storage =
        js_sys::Reflect::get(&js_sys::global(), &"sessionStorage".into())
            .unwrap()
            .unchecked_into();
    storage
        .set_item(&format!("sse-relay/v1/{key}/cursor"), "{not json")
        .unwrap();
    assert_eq!(store.load(), None);
}

#[wasm_bindgen_test]
fn url_resolves_relative_and_replaces_parameters() {
    let built = url::with_query(
        "/streams/k/events?joinDelayMs=5&lastEventId=old",
        &[
            ("lastEventId".into(), "7".into()),
            ("epoch".into(), "e 1".into()),
        ],
    )
    .unwrap();
    assert!(built.starts_with("http://"), "{built}");
    assert!(
        built.ends_with("/streams/k/events?joinDelayMs=5&lastEventId=7&epoch=e+1"),
        "{built}"
    );
    assert!(url::with_query("http://[bad", &[]).is_err());
}

#[wasm_bindgen_test]
fn abort_listener_fires_once_and_page_hide_listens() {
    let controller = web_sys::AbortController::new().unwrap();
    let count = Rc::new(RefCell::new(0));
    let c = Rc::clone(&count);
    let _abort = AbortListener::new(controller.signal(), move || *c.borrow_mut() += 1);
    controller.abort();
    assert_eq!(*count.borrow(), 1);

    let hides = Rc::new(RefCell::new(0));
    let h = Rc::clone(&hides);
    let listener = PageHideListener::new(move || *h.borrow_mut() += 1).expect("a window");
    let window = web_sys::window().unwrap();
    window
        .dispatch_event(&web_sys::Event::new("pagehide").unwrap())
        .unwrap();
    drop(listener);
    window
        .dispatch_event(&web_sys::Event::new("pagehide").unwrap())
        .unwrap();
    assert_eq!(*hides.borrow(), 1, "dropping the listener removed it");
}

#[wasm_bindgen_test]
async fn relay_stream_delivers_a_turn_exactly_once_through_drops() {
    use crate::{Options, RelayStream};
    let key = unique_key("relay");
    let url = format!(
        "{}/streams/{key}/events?joinDelayMs=200&dropAfter=4",
        server()
    );
    let options = Options {
        events: Some(vec!["token".into()]),
        from: crate::core::StartFrom::Now,
        ..Options::default()
    };
    let stream = RelayStream::open(&url, options).await.unwrap();
    post(
        &format!("{}/streams/{key}/turns?tokens=25&rateHz=0", server()),
        "",
    )
    .await;
    let frames: Vec<_> = stream.map(|f| f.unwrap()).collect().await;
    let ids: Vec<u64> = frames.iter().map(|f| f.id.parse().unwrap()).collect();
    assert_eq!(
        ids,
        (1..=26).collect::<Vec<_>>(),
        "every token and done, once, in order"
    );
    assert_eq!(frames.last().unwrap().event, "done");
}

/// Reads `stream` to its end and checks it yields ids 1, 2, 3… `last`, each once, in order.
pub(super) async fn reads_ids_once_in_order(stream: &mut crate::RelayStream, last: u64) {
    let mut expected = 1u64;
    while let Some(frame) = stream.next().await {
        assert_eq!(
            frame.unwrap().id,
            expected.to_string(),
            "ids 1, 2, 3... once each"
        );
        expected += 1;
    }
    assert_eq!(expected, last + 1, "every frame up to {last}");
}

/// Backpressure for the transport that cannot pause: a reader that does not read gets its
/// `EventSource` closed once 8192 frames wait, so memory stays bounded; when it reads, the stream
/// reconnects from the last frame delivered and every one of 50,001 frames arrives once, in order.
#[wasm_bindgen_test]
async fn an_event_source_pauses_for_a_reader_that_does_not_read_and_loses_nothing() {
    use crate::{Options, RelayStream};
    let key = unique_key("paused");
    post(
        &format!("{}/streams/{key}/fill?frames=50000&bytes=60", server()),
        "",
    )
    .await;
    let options = Options {
        events: Some(vec!["token".into()]),
        share_across_tabs: false,
        ..Options::default()
    };
    let mut stream = RelayStream::open(&format!("{}/streams/{key}/events", server()), options)
        .await
        .unwrap();
    // ~4 MB of frames at the browser's pace: far more than the queue may hold. Leave them unread.
    TimeoutFuture::new(3000).await;
    let held = stream.stats().delivered;
    assert!(
        (4096..=8192).contains(&held),
        "frames held for a reader that does not read: {held} (bound 8192)"
    );
    reads_ids_once_in_order(&mut stream, 50_001).await;
    let stats = stream.stats();
    assert!(
        stats.reconnects >= 1,
        "resumed on a new connection: {stats:?}"
    );
    assert_eq!(stats.duplicates, 0, "{stats:?}");
}

/// The same backpressure for a follower, whose leader's channel cannot pause either: a follower
/// tab (here a second stream on the key in the same page) served through the channel that does
/// not read stops taking the leader's frames at 8192; when it reads, it is caught up (from the leader's buffer or a replay
/// of its own) and gets every one of 50,001 frames once, in order. The leader is not held back.
#[wasm_bindgen_test]
async fn a_follower_that_does_not_read_holds_a_bounded_queue_and_loses_nothing() {
    use crate::{Options, RelayStream};
    let key = unique_key("paused-follower");
    let options = Options {
        key: Some(key.clone()),
        events: Some(vec!["token".into()]),
        ..Options::default()
    };
    let url = format!("{}/streams/{key}/events", server());
    let leader = RelayStream::open(&url, options.clone()).await.unwrap();
    assert_eq!(leader.role(), crate::Role::Leader);
    let leader_done = Rc::new(RefCell::new(None));
    let seen = Rc::clone(&leader_done);
    wasm_bindgen_futures::spawn_local(async move {
        let count = leader.count().await;
        *seen.borrow_mut() = Some(count);
    });
    let mut follower = RelayStream::open(&url, options).await.unwrap();
    assert_eq!(follower.role(), crate::Role::Follower);
    // Filled live once both joined, so the follower is served through the channel.
    post(
        &format!("{}/streams/{key}/fill?frames=50000&bytes=60", server()),
        "",
    )
    .await;
    TimeoutFuture::new(4000).await;
    assert_eq!(
        *leader_done.borrow(),
        Some(50_001),
        "the leader read on, unhindered"
    );
    let held = follower.stats().delivered;
    assert!(
        held <= 8192,
        "frames held for a follower that does not read: {held} (bound 8192)"
    );
    reads_ids_once_in_order(&mut follower, 50_001).await;
}
