//! `sse-relay-proxy` (the binary) in front of the reference server and of a small echo server:
//! what passes through unchanged (method, headers, body, status, bytes, chunk timing), each fault
//! knob, the control endpoint, and bad input (400 naming the knob, 502 when the upstream is down).

mod support;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sse_relay_tools::framing::{classify, FrameClass, FrameSplitter};
use sse_relay_tools::net::{self, Client};
use support::{run_tool, Listening};

fn proxy(upstream: &str) -> Listening {
    Listening::start(
        &support::tool("sse-relay-proxy"),
        &[
            "--upstream",
            upstream,
            "--port",
            "0",
            "--lifetime-secs",
            "300",
        ],
    )
}

/// An HTTP client for the tests.
fn client() -> Client<Full<Bytes>> {
    net::client()
}

/// One response, read whole (at most `limit`): status, headers, body chunks with their arrival
/// time after the request, and whether the body ended (rather than the limit passing).
struct Got {
    status: StatusCode,
    headers: http::HeaderMap,
    head_ms: u128,
    chunks: Vec<(u128, Bytes)>,
    ended: bool,
}

impl Got {
    fn body(&self) -> Vec<u8> {
        self.chunks.iter().flat_map(|(_, c)| c.to_vec()).collect()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body()).into_owned()
    }

    /// The body's frames, classified.
    fn frames(&self) -> Vec<FrameClass> {
        let mut splitter = FrameSplitter::new();
        splitter
            .push(&self.body())
            .iter()
            .map(|b| classify(&b.frame))
            .collect()
    }

    fn ids(&self) -> Vec<String> {
        self.frames()
            .iter()
            .filter_map(|f| f.id().map(str::to_owned))
            .collect()
    }
}

async fn send(request: Request<Full<Bytes>>, limit: Duration) -> Got {
    let started = Instant::now();
    let response = tokio::time::timeout(limit, client().request(request))
        .await
        .expect("response headers in time")
        .expect("response");
    let head_ms = started.elapsed().as_millis();
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = response.into_body();
    let mut chunks = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let ended = loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => break false,
            Ok(None) => break true,
            Ok(Some(Err(_))) => break true,
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    chunks.push((started.elapsed().as_millis(), data));
                }
            }
        }
    };
    Got {
        status,
        headers,
        head_ms,
        chunks,
        ended,
    }
}

async fn get(url: &str, limit: Duration) -> Got {
    send(Request::get(url).body(Full::default()).unwrap(), limit).await
}

async fn post(url: &str, body: &str) -> Got {
    send(
        Request::post(url)
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap(),
        Duration::from_secs(5),
    )
    .await
}

async fn append(base: &str, key: &str, event: &str, data: &str) {
    let got = post(
        &format!("{base}/streams/{key}/append"),
        &json!({"event": event, "data": data}).to_string(),
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.text());
}

/// A key with `n` tokens and `done` in its journal (through the reference server directly).
async fn finished_key(base: &str, key: &str, n: usize) {
    for i in 0..n {
        append(base, key, "token", &format!("t{i}")).await;
    }
    append(base, key, "done", "").await;
}

const SHORT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------------
// An echo upstream: says what it received; `/drip` streams three frames 300 ms apart.

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), Value::from(v.to_str().unwrap_or("?"))))
        .collect();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let status = parts
        .uri
        .query()
        .and_then(|q| q.strip_prefix("status="))
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let answer = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
        .headers_mut()
        .insert("x-echo", "yes".parse().unwrap());
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    Ok(response)
}

/// Starts the echo upstream on this runtime; returns its URL.
async fn echo_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    if req.uri().path() == "/drip" {
                        return Ok::<_, Infallible>(drip());
                    }
                    echo(req)
                        .await
                        .map(|r| r.map(|b| b.map_err(|e| match e {}).boxed_unsync()))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    url
}

type Unsync = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

fn drip() -> Response<Unsync> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        for i in 1..=3 {
            let frame = format!("id: {i}\nevent: token\ndata: drip {i}\n\n");
            if tx.send(Bytes::from(frame)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let stream = futures_body(rx);
    let mut response = Response::new(stream);
    response
        .headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    response
}

/// A body that sends each message of `rx` as one chunk.
fn futures_body(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Unsync {
    struct Rx(tokio::sync::mpsc::Receiver<Bytes>);
    impl http_body::Body for Rx {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
            self.0
                .poll_recv(cx)
                .map(|c| c.map(|c| Ok(http_body::Frame::data(c))))
        }
    }
    Rx(rx).boxed_unsync()
}

// ---------------------------------------------------------------------------------------------
// Pass-through

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_headers_body_and_status_pass_through_and_knobs_are_stripped() {
    let upstream = echo_server().await;
    let proxy = proxy(&format!("{upstream}/base"));
    let request = Request::put(format!(
        "{}/some/path?a=1&proxy.delayMs=0&b=%20x",
        proxy.url
    ))
    .header("x-custom", "kept")
    .header("last-event-id", "41")
    .header("connection", "keep-alive, x-hop")
    .header("x-hop", "dropped")
    .body(Full::new(Bytes::from_static(b"the body")))
    .unwrap();
    let got = send(request, SHORT).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["x-echo"], "yes");
    let seen: Value = serde_json::from_slice(&got.body()).unwrap();
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["path"], "/base/some/path");
    assert_eq!(
        seen["query"], "a=1&b=%20x",
        "proxy knobs stripped, the rest byte for byte"
    );
    assert_eq!(seen["body"], "the body");
    assert_eq!(seen["headers"]["x-custom"], "kept");
    assert_eq!(seen["headers"]["last-event-id"], "41");
    assert_eq!(
        seen["headers"]["host"],
        upstream.trim_start_matches("http://")
    );
    assert!(
        seen["headers"].get("x-hop").is_none(),
        "hop-by-hop headers stay on their hop"
    );

    let got = get(&format!("{}/x?status=418", proxy.url), SHORT).await;
    assert_eq!(got.status, 418, "the upstream's status passes");

    let dropped = Request::get(format!("{}/y?proxy.dropLastEventId=1", proxy.url))
        .header("last-event-id", "41")
        .body(Full::default())
        .unwrap();
    let seen: Value = serde_json::from_slice(&send(dropped, SHORT).await.body()).unwrap();
    assert!(seen["headers"].get("last-event-id").is_none(), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_go_out_as_they_come_not_buffered() {
    let upstream = echo_server().await;
    let proxy = proxy(&upstream);
    let got = get(&format!("{}/drip", proxy.url), SHORT).await;
    assert!(got.ended);
    assert_eq!(got.ids(), ["1", "2", "3"]);
    // Three chunks, ~300 ms apart: the first reached the client long before the last was sent.
    let times: Vec<u128> = got.chunks.iter().map(|(t, _)| *t).collect();
    assert_eq!(times.len(), 3, "{times:?}");
    assert!(times[0] < 250, "first chunk at {} ms", times[0]);
    assert!(times[2] - times[0] >= 500, "{times:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_passes_byte_for_byte() {
    let server = Listening::reference(&[]);
    let proxy = proxy(&server.url);
    finished_key(&server.url, "bytes", 50).await;
    append_multiline(&server.url).await;
    let direct = get(&format!("{}/streams/bytes/events", server.url), SHORT).await;
    let through = get(
        &format!("{}/streams/bytes/events?proxy.garbage=0", proxy.url),
        SHORT,
    )
    .await;
    assert!(direct.ended && through.ended);
    assert_eq!(through.headers["content-type"], "text/event-stream");
    assert_eq!(direct.body(), through.body());
    let lines = get(
        &format!("{}/streams/lines/events?lineEnd=crlf&chunk=1", proxy.url),
        Duration::from_secs(10),
    )
    .await;
    let direct = get(
        &format!("{}/streams/lines/events?lineEnd=crlf", server.url),
        SHORT,
    )
    .await;
    assert_eq!(
        lines.body(),
        direct.body(),
        "one-byte chunks and CRLF line ends pass unchanged"
    );
}

async fn append_multiline(base: &str) {
    append(base, "lines", "token", "a\nb").await;
    append(base, "lines", "done", "").await;
}

// ---------------------------------------------------------------------------------------------
// Frame faults

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_after_and_stall_after_act_after_the_nth_journaled_frame() {
    let server = Listening::reference(&[]);
    let proxy = proxy(&server.url);
    finished_key(&server.url, "cut", 20).await;
    let got = get(
        &format!("{}/streams/cut/events?proxy.cutAfter=7", proxy.url),
        SHORT,
    )
    .await;
    assert!(got.ended);
    assert_eq!(
        got.ids(),
        (1..=7).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    assert!(got.text().starts_with("event: ready\n"), "{}", got.text());

    let got = get(
        &format!("{}/streams/cut/events?proxy.stallAfter=4", proxy.url),
        Duration::from_millis(1200),
    )
    .await;
    assert!(!got.ended, "a stalled response stays open");
    assert_eq!(got.ids(), ["1", "2", "3", "4"]);

    // A stalled stream ends on a live cut.
    let url = format!("{}/streams/cut/events?proxy.stallAfter=2", proxy.url);
    let reader = tokio::spawn(async move { get(&url, Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let answer: Value = serde_json::from_slice(
        &post(&format!("{}/_proxy/live?cut=1&match=/cut/", proxy.url), "")
            .await
            .body(),
    )
    .unwrap();
    assert_eq!(answer["affected"], 1);
    let got = reader.await.unwrap();
    assert!(got.ended);
    assert_eq!(got.ids(), ["1", "2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dup_seam_resends_the_last_frames_of_earlier_connections_byte_for_byte() {
    let server = Listening::reference(&[]);
    let proxy = proxy(&server.url);
    finished_key(&server.url, "seam", 10).await;
    let first = get(
        &format!("{}/streams/seam/events?proxy.cutAfter=6", proxy.url),
        SHORT,
    )
    .await;
    assert_eq!(first.ids().len(), 6);
    let second = get(
        &format!(
            "{}/streams/seam/events?lastEventId=6&proxy.dupSeam=3",
            proxy.url
        ),
        SHORT,
    )
    .await;
    assert_eq!(second.ids(), ["4", "5", "6", "7", "8", "9", "10", "11"]);
    let body = second.text();
    let first_text = first.text();
    let seam_start = body.find("id: 4\n").unwrap();
    let seam_end = body.find("id: 7\n").unwrap();
    assert!(
        first_text.contains(&body[seam_start..seam_end]),
        "the seam frames are the bytes sent before"
    );
    assert!(body.starts_with("event: ready\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_comes_after_the_first_event_and_carries_no_id() {
    let server = Listening::reference(&[]);
    let proxy = proxy(&server.url);
    finished_key(&server.url, "noise", 3).await;
    let got = get(
        &format!(
            "{}/streams/noise/events?proxy.garbage=1&proxy.garbageEvent=token",
            proxy.url
        ),
        SHORT,
    )
    .await;
    let frames = got.frames();
    assert!(matches!(&frames[0], FrameClass::Event { event, .. } if event == "ready"));
    assert!(frames[1..5].iter().all(|f| f.id().is_none()), "{frames:?}");
    assert!(frames[1..5]
        .iter()
        .any(|f| matches!(f, FrameClass::Event { event, .. } if event == "token")));
    assert_eq!(got.ids(), ["1", "2", "3", "4"]);
}

// ---------------------------------------------------------------------------------------------
// Slow joins and statuses

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_holds_the_response_and_early_open_answers_before_the_upstream_is_asked() {
    let server = Listening::reference(&[]);
    let proxy = proxy(&server.url);
    let got = get(
        &format!("{}/streams/slow/events?proxy.delayMs=600", proxy.url),
        Duration::from_millis(1500),
    )
    .await;
    assert!(got.head_ms >= 600, "headers after {} ms", got.head_ms);

    // Early open: 200 at once, then nothing until the upstream joined (its ready).
    let url = format!(
        "{}/streams/early/events?from=now&proxy.delayMs=600&proxy.earlyOpen=1",
        proxy.url
    );
    let reader = tokio::spawn(async move { get(&url, Duration::from_millis(1500)).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Appended after the client's open but before the upstream join: a from=now stream never gets it.
    append(&server.url, "early", "token", "lost").await;
    let got = reader.await.unwrap();
    assert_eq!(got.status, 200);
    assert!(got.head_ms < 400, "headers after {} ms", got.head_ms);
    assert!(got.chunks[0].0 >= 600, "ready after {} ms", got.chunks[0].0);
    assert!(got.ids().is_empty(), "{}", got.text());
    let stats: Value = serde_json::from_slice(
        &get(&format!("{}/streams/early/stats", server.url), SHORT)
            .await
            .body(),
    )
    .unwrap();
    assert_eq!(stats["length"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_are_injected_for_the_first_requests_then_forwarded() {
    let server = Listening::reference(&[]);
    let proxy = proxy(&server.url);
    let url = format!(
        "{}/streams/st/events?proxy.status=503&proxy.failCount=2&proxy.retryAfter=3",
        proxy.url
    );
    for _ in 0..2 {
        let got = get(&url, SHORT).await;
        assert_eq!(got.status, 503);
        assert_eq!(got.headers["retry-after"], "3");
        assert_eq!(got.text(), "sse-relay-proxy: injected status 503\n");
    }
    let got = get(&url, Duration::from_millis(500)).await;
    assert_eq!(got.status, 200, "the third request is forwarded");

    let got = get(
        &format!("{}/streams/auth/events?proxy.status=401", proxy.url),
        SHORT,
    )
    .await;
    assert_eq!(got.status, 401);
    assert_eq!(got.headers["www-authenticate"], "Bearer");
    let got = get(
        &format!("{}/streams/gone/events?proxy.status=204", proxy.url),
        SHORT,
    )
    .await;
    assert_eq!((got.status, got.body().len()), (StatusCode::NO_CONTENT, 0));
}

// ---------------------------------------------------------------------------------------------
// The control endpoint

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn armed_knobs_apply_to_the_next_matching_requests() {
    let server = Listening::reference(&[]);
    let proxy = proxy(&server.url);
    finished_key(&server.url, "armed", 10).await;
    let armed = post(
        &format!(
            "{}/_proxy/arm?status=429&retryAfter=1&next=2&match=/armed/",
            proxy.url
        ),
        "",
    )
    .await;
    assert_eq!(armed.status, 200, "{}", armed.text());
    // Another path is not matched.
    assert_eq!(
        get(&format!("{}/streams/other/stats", proxy.url), SHORT)
            .await
            .status,
        200
    );
    let url = format!("{}/streams/armed/events", proxy.url);
    assert_eq!(get(&url, SHORT).await.status, 429);
    assert_eq!(get(&url, SHORT).await.status, 429);
    assert_eq!(get(&url, SHORT).await.status, 200);

    post(&format!("{}/_proxy/arm?cutAfter=3", proxy.url), "").await;
    assert_eq!(get(&url, SHORT).await.ids().len(), 3);
    post(&format!("{}/_proxy/arm?cutAfter=3&next=5", proxy.url), "").await;
    let disarmed: Value = serde_json::from_slice(
        &post(&format!("{}/_proxy/disarm", proxy.url), "")
            .await
            .body(),
    )
    .unwrap();
    assert_eq!(disarmed["disarmed"], 1);
    assert_eq!(get(&url, SHORT).await.ids().len(), 11);

    let stats: Value = serde_json::from_slice(
        &get(&format!("{}/_proxy/stats", proxy.url), SHORT)
            .await
            .body(),
    )
    .unwrap();
    let log = stats["log"].as_array().unwrap();
    assert!(
        log.iter()
            .any(|e| e["note"] == "cut after 3 journaled frames"),
        "{stats:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_garbage_reaches_only_the_matching_open_streams() {
    let server = Listening::reference(&["--ping-ms", "100"]);
    let proxy = proxy(&server.url);
    let urls = ["one", "two"].map(|k| format!("{}/streams/{k}/events", proxy.url));
    let readers =
        urls.map(|url| tokio::spawn(async move { get(&url, Duration::from_millis(1500)).await }));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let answer: Value = serde_json::from_slice(
        &post(
            &format!("{}/_proxy/live?garbage=1&match=/one/", proxy.url),
            "",
        )
        .await
        .body(),
    )
    .unwrap();
    assert_eq!(answer["affected"], 1);
    let [one, two] = readers;
    assert!(one
        .await
        .unwrap()
        .text()
        .contains("sse-relay-proxy garbage"));
    assert!(!two
        .await
        .unwrap()
        .text()
        .contains("sse-relay-proxy garbage"));
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_knobs_and_control_requests_are_400s_naming_them() {
    let upstream = echo_server().await;
    let proxy = proxy(&upstream);
    let cases = [
        ("/x?proxy.cutAfter=zero", 400, "proxy.cutAfter"),
        ("/x?proxy.nope=1", 400, "unknown proxy knob \"proxy.nope\""),
        (
            "/x?proxy.status=500&proxy.retryAfter=2",
            400,
            "proxy.retryAfter needs status=429 or status=503",
        ),
    ];
    for (path, status, says) in cases {
        let got = get(&format!("{}{path}", proxy.url), SHORT).await;
        assert_eq!(got.status, status, "{path}");
        assert!(got.text().contains(says), "{path}: {}", got.text());
        assert_eq!(got.text().lines().count(), 1);
    }
    let post_cases = [
        ("/_proxy/live", 400, "nothing asked"),
        (
            "/_proxy/live?cut=1&stall=1",
            400,
            "cannot be asked together",
        ),
        ("/_proxy/live?explode=1", 400, "unknown live fault"),
        ("/_proxy/arm", 400, "nothing to arm"),
        ("/_proxy/arm?cutAfter=-1", 400, "cutAfter"),
        ("/_proxy/arm?status=503&next=0", 400, "next"),
        ("/_proxy/nothing", 404, "no control endpoint"),
    ];
    for (path, status, says) in post_cases {
        let got = post(&format!("{}{path}", proxy.url), "").await;
        assert_eq!(got.status, status, "{path}");
        assert!(got.text().contains(says), "{path}: {}", got.text());
    }
    assert_eq!(
        get(&format!("{}/_proxy/live", proxy.url), SHORT)
            .await
            .status,
        405
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_is_down_is_a_502_with_a_one_line_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = proxy(&format!("http://127.0.0.1:{port}"));
    let got = get(&format!("{}/streams/k/events", proxy.url), SHORT).await;
    assert_eq!(got.status, 502);
    let text = got.text();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("unreachable") && text.contains("refused"),
        "{text}"
    );
}

#[test]
fn bad_usage_exits_2_and_help_and_version_exit_0() {
    let run = |args: &[&str]| {
        run_tool(
            "sse-relay-proxy",
            &args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            Duration::from_secs(10),
        )
    };
    let out = run(&["--port", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--upstream is required"));
    let out = run(&["--upstream", "https://example.test"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("proxy.cutAfter=N"));
    let out = run(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("sse-relay-proxy {}", env!("CARGO_PKG_VERSION"))
    );
}

// ---------------------------------------------------------------------------------------------
// The checker through the proxy

#[test]
fn the_checker_passes_through_the_plain_proxy_and_names_a_dropped_last_event_id() {
    let server = Listening::reference(&[]);
    let proxy = proxy(&server.url);
    let run = |query: &str| {
        let args: Vec<String> = [
            "--events".to_owned(),
            format!("{}/streams/{{key}}/events{query}", proxy.url),
            "--append".to_owned(),
            format!("{}/streams/{{key}}/append", proxy.url),
            "--reset".to_owned(),
            format!("{}/streams/{{key}}/reset", proxy.url),
            "--keys=4".to_owned(),
            "--idle-ms=200".to_owned(),
            "--timeout-ms=1500".to_owned(),
            "--ping-within-ms=1000".to_owned(),
            "--json".to_owned(),
        ]
        .into();
        let out = run_tool("sse-relay-conform", &args, Duration::from_secs(90));
        let report: Value = serde_json::from_slice(&out.stdout).expect("report");
        let failed: Vec<String> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "fail")
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect();
        (out.status.code(), failed, report)
    };
    let (status, failed, report) = run("");
    assert_eq!((status, failed.len()), (Some(0), 0), "{report:#}");
    let (status, failed, report) = run("?proxy.dropLastEventId=1");
    assert_eq!(status, Some(1));
    assert_eq!(failed, ["resume-header", "header-wins"], "{report:#}");
}
