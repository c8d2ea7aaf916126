//! A small journal server speaking protocol v1 (`/s/{key}/events`, `/s/{key}/append`,
//! `/s/{key}/reset`), written for the tests with one deliberate bug switched on at a time. With no
//! bug it passes every check, so each broken variant differs from a conforming server by its bug
//! alone.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep, sleep_until, Instant};

/// The one thing this server gets wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// None: a conforming server.
    None,
    /// Its live loop re-reads the tail at every poll (XREAD `$`): it waits 50 ms for entries
    /// after the tail it just read, and after an empty poll spends 150 ms before reading the tail
    /// again. Entries appended in those 150 ms are never sent (incident 002).
    ReResolveTail,
    /// A connection without a cursor to a finished stream gets `ready` and `done` only
    /// (incident 001).
    LateAttachDoneOnly,
    /// After its replay, a connection sends the last 3 replayed entries again without their id
    /// (incident 003).
    SeamWithoutIds,
    /// After its replay, a connection sends the last 3 replayed entries again under other ids.
    SeamOtherIds,
}

/// A running server; stops when dropped.
pub struct Mini {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Mini {
    /// Starts a server with `bug` on its own thread and runtime.
    pub fn start(bug: Bug) -> Mini {
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let addr = listener.local_addr().expect("addr");
                url_tx.send(format!("http://{addr}")).expect("url");
                let state = Arc::new(State {
                    bug,
                    keys: Mutex::new(HashMap::new()),
                    epochs: Mutex::new(0),
                });
                let accept = async {
                    loop {
                        let Ok((socket, _)) = listener.accept().await else {
                            continue;
                        };
                        let state = state.clone();
                        tokio::spawn(async move {
                            let service = service_fn(move |req| handle(state.clone(), req));
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(socket), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
            runtime.shutdown_background();
        });
        let url = url_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("mini server url");
        Mini {
            url,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Mini {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const PING: Duration = Duration::from_millis(200);

struct Entry {
    id: u64,
    event: String,
    data: String,
}

struct Journal {
    epoch: String,
    entries: Vec<Entry>,
    done: bool,
}

struct Key {
    journal: Mutex<Journal>,
    changed: watch::Sender<u64>,
}

struct State {
    bug: Bug,
    keys: Mutex<HashMap<String, Arc<Key>>>,
    epochs: Mutex<u64>,
}

impl State {
    fn new_epoch(&self) -> String {
        let mut n = self.epochs.lock().unwrap();
        *n += 1;
        format!("mini-{n}")
    }

    fn key(&self, name: &str) -> Arc<Key> {
        let mut keys = self.keys.lock().unwrap();
        if let Some(key) = keys.get(name) {
            return key.clone();
        }
        let key = Arc::new(Key {
            journal: Mutex::new(Journal {
                epoch: self.new_epoch(),
                entries: Vec::new(),
                done: false,
            }),
            changed: watch::channel(0).0,
        });
        keys.insert(name.to_owned(), key.clone());
        key
    }
}

type Out = BoxBody<Bytes, Infallible>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Out> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response
}

/// A response body fed by a channel: every message is one chunk, sent as it comes.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Out>, Infallible> {
    let path: Vec<&str> = req.uri().path().split('/').collect();
    let (name, action) = match path.as_slice() {
        ["", "s", name, action] => ((*name).to_owned(), (*action).to_owned()),
        _ => return Ok(text(StatusCode::NOT_FOUND, "not found")),
    };
    let key = state.key(&name);
    Ok(match (req.method().clone(), action.as_str()) {
        (Method::GET, "events") => events(state, key, &req),
        (Method::POST, "append") => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return Ok(text(StatusCode::BAD_REQUEST, "bad json"));
            };
            let event = json["event"].as_str().unwrap_or("message").to_owned();
            let data = json["data"].as_str().unwrap_or("").to_owned();
            let mut journal = key.journal.lock().unwrap();
            if journal.done {
                return Ok(text(StatusCode::CONFLICT, "done"));
            }
            let id = journal.entries.len() as u64 + 1;
            journal.done = event == "done";
            journal.entries.push(Entry { id, event, data });
            drop(journal);
            key.changed.send_modify(|v| *v += 1);
            text(StatusCode::OK, format!("{{\"id\":\"{id}\"}}"))
        }
        (Method::POST, "reset") => {
            let mut journal = key.journal.lock().unwrap();
            journal.epoch = state.new_epoch();
            journal.entries.clear();
            journal.done = false;
            drop(journal);
            key.changed.send_modify(|v| *v += 1);
            text(StatusCode::OK, "{}")
        }
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "no"),
    })
}

fn render(id: Option<u64>, event: &str, data: &str) -> Bytes {
    let mut out = String::new();
    if let Some(id) = id {
        out.push_str(&format!("id: {id}\n"));
    } else {
        out.push_str("id:\n");
    }
    out.push_str(&format!("event: {event}\n"));
    for line in data.split('\n') {
        out.push_str(&format!("data: {line}\n"));
    }
    out.push('\n');
    Bytes::from(out)
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .next_back()
}

fn events(state: Arc<State>, key: Arc<Key>, req: &Request<Incoming>) -> Response<Out> {
    let query = req.uri().query().unwrap_or("");
    let header = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let cursor_text = header.or(query_param(query, "lastEventId").filter(|v| !v.is_empty()));
    let epoch = query_param(query, "epoch").map(str::to_owned);
    let from_now = query_param(query, "from") == Some("now");
    let cursor = match cursor_text.map(str::parse::<u64>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "bad cursor"),
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(stream(state.bug, key, cursor, epoch, from_now, tx));
    let mut response = Response::new(ChannelBody(rx).boxed());
    response
        .headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    response
}

async fn stream(
    bug: Bug,
    key: Arc<Key>,
    cursor: Option<u64>,
    epoch: Option<String>,
    from_now: bool,
    tx: mpsc::Sender<Bytes>,
) {
    // Join first, then snapshot the tail: everything after it comes through `changed`.
    let mut changed = key.changed.subscribe();
    let (ready, mut out, tail, finished) = {
        let journal = key.journal.lock().unwrap();
        let tail = journal.entries.last().map_or(0, |e| e.id);
        let cursor = cursor.filter(|_| epoch.as_deref().is_none_or(|e| e == journal.epoch));
        let tail_json = if tail == 0 {
            "null".to_owned()
        } else {
            format!("\"{tail}\"")
        };
        let ready = Bytes::from(format!(
            "event: ready\ndata: {{\"tail\":{tail_json},\"epoch\":\"{}\"}}\n\n",
            journal.epoch
        ));
        let replay: Vec<&Entry> = match (cursor, from_now) {
            (Some(c), _) => journal.entries.iter().filter(|e| e.id > c).collect(),
            (None, true) => Vec::new(),
            (None, false) if bug == Bug::LateAttachDoneOnly && journal.done => journal
                .entries
                .iter()
                .filter(|e| e.event == "done")
                .collect(),
            (None, false) => journal.entries.iter().collect(),
        };
        let mut out: Vec<Bytes> = replay
            .iter()
            .map(|e| render(Some(e.id), &e.event, &e.data))
            .collect();
        let seam = replay.iter().rev().take(3).rev();
        match bug {
            Bug::SeamWithoutIds => out.extend(seam.map(|e| render(None, &e.event, &e.data))),
            Bug::SeamOtherIds => {
                out.extend(seam.map(|e| render(Some(e.id + 1000), &e.event, &e.data)))
            }
            _ => {}
        }
        let finished = replay.iter().any(|e| e.event == "done");
        (ready, out, tail, finished)
    };
    out.insert(0, ready);
    for chunk in out {
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
    if finished {
        return;
    }
    let mut sent = tail;
    let mut next_ping = Instant::now() + PING;
    loop {
        if bug == Bug::ReResolveTail {
            // The bug: the cursor is re-read from the tail at every poll.
            sent = key
                .journal
                .lock()
                .unwrap()
                .entries
                .last()
                .map_or(0, |e| e.id);
        }
        let poll_until = Instant::now() + Duration::from_millis(50);
        let mut sent_any = false;
        loop {
            let (fresh, done) = {
                let journal = key.journal.lock().unwrap();
                let fresh: Vec<Bytes> = journal
                    .entries
                    .iter()
                    .filter(|e| e.id > sent)
                    .map(|e| render(Some(e.id), &e.event, &e.data))
                    .collect();
                sent = journal.entries.last().map_or(sent, |e| e.id.max(sent));
                (fresh, journal.done)
            };
            for chunk in fresh {
                sent_any = true;
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
            if done {
                return;
            }
            if Instant::now() >= next_ping {
                next_ping += PING;
                if tx
                    .send(Bytes::from_static(b"event: ping\ndata:\n\n"))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let wake = if bug == Bug::ReResolveTail {
                poll_until.min(next_ping)
            } else {
                next_ping
            };
            tokio::select! {
                result = changed.changed() => if result.is_err() { return },
                _ = sleep_until(wake) => {}
                _ = tx.closed() => return,
            }
            if bug == Bug::ReResolveTail && Instant::now() >= poll_until {
                break;
            }
        }
        if bug == Bug::ReResolveTail && !sent_any {
            // The idle work between two polls.
            sleep(Duration::from_millis(150)).await;
        }
    }
}
