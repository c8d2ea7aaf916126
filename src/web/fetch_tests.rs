//! The `fetch` adapter in headless Chromium (`wasm-bindgen-test`), against the real reference
//! server, whose URL `scripts/wasm-test.sh` passes at build time.

use std::cell::RefCell;
use std::rc::Rc;

use futures::channel::mpsc;
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;
use web_sys::{RequestInit, Response};

use super::fetch::{FetchConnection, FetchEvent, FetchRequest};
use super::tests::{next_within, reads_ids_once_in_order, server, unique_key};
use crate::core::{Parsed, SseParser};

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// One plain request with the browser's own `fetch` (not the adapter under test): status and
/// body text.
async fn http(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(body) = body {
        init.set_body(&body.into());
    }
    let window = web_sys::window().unwrap();
    let response: Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .unwrap()
        .unchecked_into();
    let text = JsFuture::from(response.text().unwrap()).await.unwrap();
    (response.status(), text.as_string().unwrap())
}

/// Appends one frame to `key` (a text/plain POST: no CORS preflight).
async fn append(key: &str, json: &str) {
    let (status, text) = http(
        "POST",
        &format!("{}/streams/{key}/append", server()),
        Some(json),
    )
    .await;
    assert_eq!(status, 200, "append: {text}");
}

/// The number of SSE connections of `key` open at the server now.
async fn open_connections(key: &str) -> f64 {
    let (_, text) = http("GET", &format!("{}/streams/{key}/stats", server()), None).await;
    let stats = js_sys::JSON::parse(&text).unwrap();
    js_sys::Reflect::get(&stats, &"connections".into())
        .unwrap()
        .as_f64()
        .unwrap()
}

/// Waits until the server counts `n` open connections for `key`, or panics after 5 s.
async fn wait_for_connections(key: &str, n: f64) {
    for _ in 0..100 {
        if open_connections(key).await == n {
            return;
        }
        TimeoutFuture::new(50).await;
    }
    panic!("{key}: the server never counted {n} open connections");
}

/// What a `FetchConnection` reported, owned.
#[derive(Debug, PartialEq)]
enum Seen {
    Response {
        status: u16,
        content_type: Option<String>,
        retry_after_ms: Option<u64>,
    },
    Chunk(Vec<u8>),
    End,
    Failed(String),
}

fn record(tx: mpsc::UnboundedSender<Seen>) -> impl FnMut(FetchEvent<'_>) {
    move |event| {
        let seen = match event {
            FetchEvent::Response {
                status,
                content_type,
                retry_after_ms,
            } => Seen::Response {
                status,
                content_type: content_type.map(str::to_owned),
                retry_after_ms,
            },
            FetchEvent::Chunk(bytes) => Seen::Chunk(bytes.to_vec()),
            FetchEvent::End => Seen::End,
            FetchEvent::Failed(why) => Seen::Failed(why),
        };
        let _ = tx.unbounded_send(seen);
    }
}

/// Reads chunks until `End`; returns them (panics on anything else).
async fn chunks_to_end(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    loop {
        match next_within(rx, 10_000).await {
            Some(Seen::Chunk(bytes)) => chunks.push(bytes),
            Some(Seen::End) => return chunks,
            other => panic!("expected a chunk or the end, got {other:?}"),
        }
    }
}

fn open(url: &str, request: &FetchRequest) -> (FetchConnection, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded();
    let connection = FetchConnection::open(url, request, Rc::default(), record(tx)).unwrap();
    (connection, rx)
}

#[wasm_bindgen_test]
async fn fetch_reports_status_content_type_and_retry_after() {
    let key = unique_key("status");
    let url = format!("{}/streams/{key}/events?status=429&retryAfter=3", server());
    let (_failed, mut rx) = open(&url, &FetchRequest::default());
    assert_eq!(
        next_within(&mut rx, 5_000).await,
        Some(Seen::Response {
            status: 429,
            content_type: Some("text/plain; charset=utf-8".into()),
            retry_after_ms: Some(3_000),
        })
    );
    // The body of an error comes too: the adapter does not judge statuses.
    let body = chunks_to_end(&mut rx).await.concat();
    assert_eq!(body, b"injected fault: status 429\n");

    // failCount=1: the next connection of the key is the stream.
    let (_stream, mut rx) = open(&url, &FetchRequest::default());
    assert_eq!(
        next_within(&mut rx, 5_000).await,
        Some(Seen::Response {
            status: 200,
            content_type: Some("text/event-stream".into()),
            retry_after_ms: None,
        })
    );
    assert!(matches!(
        next_within(&mut rx, 5_000).await,
        Some(Seen::Chunk(_))
    ));

    let url = format!(
        "{}/streams/{}/events?status=503&retryAfter=0",
        server(),
        unique_key("s503")
    );
    let (_failed, mut rx) = open(&url, &FetchRequest::default());
    assert!(matches!(
        next_within(&mut rx, 5_000).await,
        Some(Seen::Response {
            status: 503,
            retry_after_ms: Some(0),
            ..
        })
    ));

    // 204: no content type, no body, the end at once.
    let url = format!(
        "{}/streams/{}/events?status=204",
        server(),
        unique_key("s204")
    );
    let (_empty, mut rx) = open(&url, &FetchRequest::default());
    assert_eq!(
        next_within(&mut rx, 5_000).await,
        Some(Seen::Response {
            status: 204,
            content_type: None,
            retry_after_ms: None,
        })
    );
    assert_eq!(next_within(&mut rx, 5_000).await, Some(Seen::End));
}

#[wasm_bindgen_test]
async fn chunks_reassemble_into_the_exact_bytes_and_the_body_ends_after_done() {
    let key = unique_key("bytes");
    for data in ["h\u{e9}llo \u{1F600}", "two\nlines", "{\"i\":3}"] {
        let json = format!(r#"{{"event":"token","data":{}}}"#, json_string(data));
        append(&key, &json).await;
    }
    append(&key, r#"{"event":"done"}"#).await;

    // The same stream unchunked, read whole by the browser: the bytes to expect.
    let (_, expected) = http(
        "GET",
        &format!("{}/streams/{key}/events?lineEnd=crlf", server()),
        None,
    )
    .await;

    // Every byte its own chunk at the server, CRLF line ends split between chunks.
    let url = format!("{}/streams/{key}/events?chunk=1&lineEnd=crlf", server());
    let (_connection, mut rx) = open(&url, &FetchRequest::default());
    assert!(matches!(
        next_within(&mut rx, 5_000).await,
        Some(Seen::Response { status: 200, .. })
    ));
    let chunks = chunks_to_end(&mut rx).await;
    let body = chunks.concat();
    // Paced a millisecond apart, most bytes reach the page on their own (209 chunks for 245
    // bytes when measured; 2 chunks without the pacing); a burst of several in one read is the
    // browser's right on a loaded machine, hence the margin.
    assert!(
        chunks.len() * 10 > body.len(),
        "the server wrote {} bytes one by one; the browser saw {} chunks",
        body.len(),
        chunks.len()
    );
    assert_eq!(String::from_utf8(body).unwrap(), expected);

    // And the core's parser, fed the chunks as they came, reads the frames back.
    let mut parser = SseParser::new();
    let mut frames = Vec::new();
    for chunk in &chunks {
        parser.feed(chunk);
        while let Some(item) = parser.poll() {
            if let Parsed::Event(event) = item {
                frames.push((
                    event.event.to_owned(),
                    event.id.map(str::to_owned),
                    event.data.to_owned(),
                ));
            }
        }
    }
    parser.finish();
    let summary: Vec<(&str, Option<&str>, &str)> = frames
        .iter()
        .map(|(e, i, d)| (e.as_str(), i.as_deref(), d.as_str()))
        .collect();
    assert_eq!(summary[0].0, "ready");
    assert_eq!(
        &summary[1..],
        [
            ("token", Some("1"), "h\u{e9}llo \u{1F600}"),
            ("token", Some("2"), "two\nlines"),
            ("token", Some("3"), "{\"i\":3}"),
            ("done", Some("4"), ""),
        ]
    );
}

/// A JSON string literal for `text`.
fn json_string(text: &str) -> String {
    js_sys::JSON::stringify(&text.into())
        .unwrap()
        .as_string()
        .unwrap()
}

#[wasm_bindgen_test]
async fn dropping_the_connection_aborts_the_request_and_releases_the_sink() {
    let key = unique_key("abort");
    let url = format!("{}/streams/{key}/events?from=now", server());
    let (connection, mut rx) = open(&url, &FetchRequest::default());
    assert!(matches!(
        next_within(&mut rx, 5_000).await,
        Some(Seen::Response { status: 200, .. })
    ));
    // The ready frame: the server is streaming to us.
    assert!(matches!(
        next_within(&mut rx, 5_000).await,
        Some(Seen::Chunk(_))
    ));
    wait_for_connections(&key, 1.0).await;

    drop(connection);
    wait_for_connections(&key, 0.0).await;
    append(&key, r#"{"data":"after the drop"}"#).await;
    TimeoutFuture::new(200).await;
    // Nothing was reported, and the sink (holding the sender) is gone: the channel is closed,
    // not merely empty.
    assert!(matches!(rx.try_recv(), Err(e) if e.is_closed()));
}

#[wasm_bindgen_test]
async fn the_sink_may_drop_its_own_connection() {
    let key = unique_key("selfdrop");
    let url = format!("{}/streams/{key}/events?from=now", server());
    let slot: Rc<RefCell<Option<FetchConnection>>> = Rc::default();
    let calls = Rc::new(RefCell::new(Vec::new()));
    let (sink_slot, sink_calls) = (Rc::clone(&slot), Rc::clone(&calls));
    let connection = FetchConnection::open(
        &url,
        &FetchRequest::default(),
        Rc::default(),
        move |event| {
            sink_calls.borrow_mut().push(format!("{event:?}"));
            // Like a shell closing the stream on the status it just learned.
            drop(sink_slot.borrow_mut().take());
        },
    )
    .unwrap();
    *slot.borrow_mut() = Some(connection);
    TimeoutFuture::new(500).await;
    wait_for_connections(&key, 0.0).await;
    let calls = calls.borrow();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].starts_with("Response { status: 200"), "{calls:?}");
}

#[wasm_bindgen_test]
async fn headers_method_and_body_reach_the_server() {
    let key = unique_key("auth");
    let url = format!("{}/streams/{key}/events?requireAuth=t0k3n", server());
    let (_refused, mut rx) = open(&url, &FetchRequest::default());
    assert!(matches!(
        next_within(&mut rx, 5_000).await,
        Some(Seen::Response { status: 401, .. })
    ));

    let authorized = FetchRequest {
        headers: vec![("Authorization".into(), "Bearer t0k3n".into())],
        ..FetchRequest::default()
    };
    let (_stream, mut rx) = open(&url, &authorized);
    assert_eq!(
        next_within(&mut rx, 5_000).await,
        Some(Seen::Response {
            status: 200,
            content_type: Some("text/event-stream".into()),
            retry_after_ms: None,
        })
    );
    match next_within(&mut rx, 5_000).await {
        Some(Seen::Chunk(bytes)) => assert!(bytes.starts_with(b"event: ready")),
        other => panic!("expected the ready frame, got {other:?}"),
    }

    // A POST with a JSON body (and the preflight its content type needs).
    let post = FetchRequest {
        method: "POST".into(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: Some(r#"{"event":"token","data":"posted"}"#.into()),
        ..FetchRequest::default()
    };
    let (_post, mut rx) = open(&format!("{}/streams/{key}/append", server()), &post);
    assert!(matches!(
        next_within(&mut rx, 5_000).await,
        Some(Seen::Response { status: 200, .. })
    ));
    let answer = String::from_utf8(chunks_to_end(&mut rx).await.concat()).unwrap();
    assert!(answer.contains(r#""id":"1""#), "{answer}");
}

#[wasm_bindgen_test]
async fn network_failures_and_bad_requests_are_reported() {
    // Nothing listens on port 9 (discard) here: the fetch itself fails.
    let (_failed, mut rx) = open("http://127.0.0.1:9/events", &FetchRequest::default());
    match next_within(&mut rx, 10_000).await {
        Some(Seen::Failed(why)) => assert!(why.starts_with("TypeError"), "{why}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(next_within(&mut rx, 300).await, None);

    // A header the browser refuses to build fails at once, and nothing is reported.
    let (tx, mut rx) = mpsc::unbounded();
    let bad = FetchRequest {
        headers: vec![("bad header".into(), "x".into())],
        ..FetchRequest::default()
    };
    let opened = FetchConnection::open(&format!("{}/", server()), &bad, Rc::default(), record(tx));
    assert!(opened.is_err());
    assert!(matches!(rx.try_recv(), Err(e) if e.is_closed()));
}

#[wasm_bindgen_test]
async fn a_closed_gate_pauses_the_body_until_it_opens() {
    let key = unique_key("gate");
    append(&key, r#"{"event":"token","data":"one"}"#).await;
    let gate = Rc::new(super::fetch::ReadGate::default());
    gate.set_closed(true);
    let (tx, mut rx) = mpsc::unbounded();
    let url = format!("{}/streams/{key}/events", server());
    let _connection =
        FetchConnection::open(&url, &FetchRequest::default(), Rc::clone(&gate), record(tx))
            .unwrap();
    assert!(
        matches!(
            next_within(&mut rx, 5_000).await,
            Some(Seen::Response { .. })
        ),
        "the head arrives"
    );
    assert_eq!(
        next_within(&mut rx, 500).await,
        None,
        "no chunk is read while the gate is closed"
    );
    gate.set_closed(false);
    assert!(
        matches!(next_within(&mut rx, 5_000).await, Some(Seen::Chunk(_))),
        "reading resumes"
    );
}

/// Backpressure through the whole shell: a reader that does not read holds at most `QUEUE_HIGH`
/// frames inside sse-relay however large the body's chunks (the rest waits in the parser, in
/// JavaScript and in the network), and once it reads it gets all 50,001 frames, once each, in
/// order.
#[wasm_bindgen_test]
async fn a_reader_that_does_not_read_holds_a_bounded_queue_and_loses_nothing() {
    use crate::options::Transport;
    use crate::{Options, RelayStream};
    let key = unique_key("bounded");
    let (status, text) = http(
        "POST",
        &format!("{}/streams/{key}/fill?frames=50000&bytes=60", server()),
        None,
    )
    .await;
    assert_eq!(status, 200, "fill: {text}");
    let options = Options {
        events: Some(vec!["token".into()]),
        transport: Some(Transport::Fetch),
        share_across_tabs: false,
        ..Options::default()
    };
    let mut stream = RelayStream::open(&format!("{}/streams/{key}/events", server()), options)
        .await
        .unwrap();
    // The body is ~4 MB: far more than the queue may hold. Let it arrive unread.
    TimeoutFuture::new(1500).await;
    let held = stream.stats().delivered;
    let bound = crate::core::BODY_HIGH as u64;
    assert!(
        (bound / 2..=bound).contains(&held),
        "frames held for a reader that does not read: {held} (bound {bound})"
    );
    reads_ids_once_in_order(&mut stream, 50_001).await;
}
