//! A small raw-TCP HTTP/1.1 client and SSE parser for the integration tests, so the tests see
//! exactly the bytes the server sends (including the malformed frames of `garbage=1`).

#![allow(dead_code)] // each test binary uses its own part of this module

mod redis;

pub use self::redis::RedisServer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sse_relay_server::{bind, Config, IdMode, JournalConfig, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// How long a test waits for anything that should happen promptly.
pub const PROMPT: Duration = Duration::from_secs(5);

/// The journal a test runs on: the protocol and fault tests run on both (see [`matrix!`]).
#[derive(Clone, Debug)]
pub enum Engine {
    /// The in-memory journal.
    Memory,
    /// A Redis journal on this redis-server (which lives as long as any clone).
    Redis(Arc<RedisServer>),
}

impl Engine {
    /// A fresh redis-server of its own.
    pub fn redis() -> Engine {
        Engine::Redis(Arc::new(RedisServer::start()))
    }

    pub fn is_redis(&self) -> bool {
        matches!(self, Engine::Redis(_))
    }

    /// The `--journal` of a server on this engine.
    pub fn journal(&self) -> JournalConfig {
        match self {
            Engine::Memory => JournalConfig::Memory,
            Engine::Redis(redis) => JournalConfig::Redis(redis.url()),
        }
    }
}

/// Declares each named `async fn(Engine)` as two tests, `<name>::memory` and `<name>::redis`
/// (the latter on a redis-server of its own).
#[macro_export]
macro_rules! matrix {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn memory() {
                    super::$name($crate::support::Engine::Memory).await
                }

                #[tokio::test]
                async fn redis() {
                    super::$name($crate::support::Engine::redis()).await
                }
            }
        )*
    };
}

/// Starts a server on `engine` on a free loopback port with `tweak` applied to the default
/// config (numeric ids on both engines, so the tests read the same ids).
pub async fn start_with(engine: &Engine, tweak: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config {
        port: 0,
        ids: Some(IdMode::Numeric),
        journal: engine.journal(),
        ..Config::default()
    };
    tweak(&mut config);
    bind(config).await.expect("bind")
}

/// Starts a server on `engine` with the default config on a free port.
pub async fn start(engine: &Engine) -> Server {
    start_with(engine, |_| {}).await
}

/// A complete HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Incremental reader of an HTTP/1.1 response: head, then a chunked or length-delimited or
/// read-to-close body, decoded as it arrives.
pub struct Conn {
    tcp: TcpStream,
    raw: Vec<u8>,
    eof: bool,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    framing: Framing,
}

enum Framing {
    Chunked { left: usize, finished: bool },
    Length(usize),
    UntilClose,
}

impl Conn {
    /// Sends a request and reads the response head.
    pub async fn open(
        addr: SocketAddr,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Conn {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).unwrap();
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        tcp.write_all(body).await.unwrap();
        let mut conn = Conn {
            tcp,
            raw: Vec::new(),
            eof: false,
            status: 0,
            headers: Vec::new(),
            framing: Framing::UntilClose,
        };
        conn.read_head().await;
        conn
    }

    async fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut buf = vec![0u8; 256 * 1024];
        let n = self.tcp.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            self.eof = true;
            return false;
        }
        self.raw.extend_from_slice(&buf[..n]);
        true
    }

    async fn read_head(&mut self) {
        let end = loop {
            if let Some(at) = find(&self.raw, b"\r\n\r\n") {
                break at;
            }
            assert!(
                timeout(PROMPT, self.fill()).await.expect("response head"),
                "connection closed before the response head"
            );
        };
        let head = String::from_utf8(self.raw[..end].to_vec()).unwrap();
        self.raw.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        self.status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        for line in lines {
            let (k, v) = line.split_once(':').unwrap();
            self.headers
                .push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let header = |name: &str| {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        self.framing = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            Framing::Chunked {
                left: 0,
                finished: false,
            }
        } else if let Some(len) = header("content-length") {
            Framing::Length(len.parse().unwrap())
        } else if self.status == 204 || self.status == 304 {
            Framing::Length(0)
        } else {
            Framing::UntilClose
        };
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The next piece of decoded body; `None` at the end of the body.
    pub async fn body_chunk(&mut self) -> Option<Vec<u8>> {
        loop {
            match &mut self.framing {
                Framing::Length(0) => return None,
                Framing::Length(left) => {
                    if !self.raw.is_empty() {
                        let n = (*left).min(self.raw.len());
                        *left -= n;
                        return Some(self.raw.drain(..n).collect());
                    }
                }
                Framing::UntilClose => {
                    if !self.raw.is_empty() {
                        return Some(std::mem::take(&mut self.raw));
                    }
                }
                Framing::Chunked { finished: true, .. } => return None,
                Framing::Chunked { left, finished } => {
                    if *left > 0 {
                        if !self.raw.is_empty() {
                            let n = (*left).min(self.raw.len());
                            *left -= n;
                            let data: Vec<u8> = self.raw.drain(..n).collect();
                            return Some(data);
                        }
                    } else if let Some(at) = find(&self.raw, b"\r\n") {
                        if at == 0 {
                            // The CRLF that ends a chunk's data.
                            self.raw.drain(..2);
                            continue;
                        }
                        let line = String::from_utf8(self.raw[..at].to_vec()).unwrap();
                        let size = usize::from_str_radix(line.split(';').next().unwrap(), 16)
                            .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
                        self.raw.drain(..at + 2);
                        if size == 0 {
                            *finished = true;
                            return None;
                        }
                        *left = size;
                        continue;
                    }
                }
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The rest of the body.
    pub async fn read_to_end(mut self) -> Response {
        let mut body = Vec::new();
        while let Some(chunk) = timeout(PROMPT, self.body_chunk()).await.expect("body") {
            body.extend_from_slice(&chunk);
        }
        Response {
            status: self.status,
            headers: self.headers,
            body,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One complete request.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    Conn::open(addr, method, target, headers, body)
        .await
        .read_to_end()
        .await
}

/// `POST path` with no body; returns the response.
pub async fn post(addr: SocketAddr, target: &str) -> Response {
    request(addr, "POST", target, &[], b"").await
}

/// Starts the server binary with `args` (after `--port 0`); returns the child (killed when
/// dropped) and the address from its first line.
pub async fn spawn_binary(args: &[&str]) -> (tokio::process::Child, SocketAddr) {
    use tokio::io::AsyncBufReadExt;

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sse-relay-server"))
        .args(["--port", "0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the server binary");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = timeout(PROMPT, lines.next_line())
        .await
        .expect("first line in time")
        .unwrap()
        .expect("a first line");
    let port: u16 = first
        .strip_prefix("listening on http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    assert_ne!(port, 0);
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// `POST /streams/{key}/append` of one frame, whatever the answer.
pub async fn try_append(addr: SocketAddr, key: &str, event: &str, data: &str) -> Response {
    let body = serde_json::json!({ "event": event, "data": data }).to_string();
    request(
        addr,
        "POST",
        &format!("/streams/{key}/append"),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await
}

/// Appends one frame; returns its id.
pub async fn append(addr: SocketAddr, key: &str, event: &str, data: &str) -> String {
    let response = try_append(addr, key, event, data).await;
    assert_eq!(response.status, 200, "append: {}", response.text());
    response.json()["id"].as_str().unwrap().to_owned()
}

/// `GET /streams/{key}/stats` as JSON.
pub async fn stats(addr: SocketAddr, key: &str) -> Value {
    let response = request(addr, "GET", &format!("/streams/{key}/stats"), &[], b"").await;
    assert_eq!(response.status, 200);
    response.json()
}

/// Polls stats until `check` holds, or panics after [`PROMPT`].
pub async fn wait_for_stats(addr: SocketAddr, key: &str, check: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + PROMPT;
    loop {
        let now = stats(addr, key).await;
        if check(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "stats never matched: {now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One parsed SSE frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// `None` when the frame has no `id:` line; `Some("")` for an empty one.
    pub id: Option<String>,
    pub event: String,
    /// `None` when the frame has no `data:` line at all.
    pub data: Option<String>,
}

impl Frame {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().unwrap_or(""))
            .unwrap_or_else(|e| panic!("frame data is not JSON ({e}): {self:?}"))
    }
}

/// What reading the next frame gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Frame(Frame),
    /// The server ended the response.
    End,
    /// Nothing within the timeout.
    Silent,
}

/// An SSE connection.
pub struct Sse {
    pub conn: Conn,
    body: Vec<u8>,
    ended: bool,
}

impl Sse {
    /// Opens `GET target` with extra headers; asserts nothing about the status.
    pub async fn open(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Sse {
        Sse {
            conn: Conn::open(addr, "GET", target, headers, b"").await,
            body: Vec::new(),
            ended: false,
        }
    }

    /// Opens the events of `key` with `query` and checks it is an event stream.
    pub async fn connect(addr: SocketAddr, key: &str, query: &str) -> Sse {
        Sse::connect_with(addr, key, query, &[]).await
    }

    pub async fn connect_with(
        addr: SocketAddr,
        key: &str,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Sse {
        let target = format!("/streams/{key}/events?{query}");
        let sse = Sse::open(addr, &target, headers).await;
        assert_eq!(sse.conn.status, 200, "{target}");
        assert_eq!(sse.conn.header("content-type"), Some("text/event-stream"));
        sse
    }

    /// The next frame, waiting at most `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Next {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(at) = find(&self.body, b"\n\n") {
                let block: Vec<u8> = self.body.drain(..at + 2).collect();
                return Next::Frame(parse_frame(&block[..at]));
            }
            if self.ended {
                return Next::End;
            }
            match tokio::time::timeout_at(deadline, self.conn.body_chunk()).await {
                Err(_) => return Next::Silent,
                Ok(None) => self.ended = true,
                Ok(Some(chunk)) => self.body.extend_from_slice(&chunk),
            }
        }
    }

    /// The next frame other than `ping`; panics on end or silence.
    pub async fn frame(&mut self) -> Frame {
        loop {
            match self.next_within(PROMPT).await {
                Next::Frame(frame) if frame.event == "ping" => continue,
                Next::Frame(frame) => return frame,
                other => panic!("expected a frame, got {other:?}"),
            }
        }
    }

    /// Reads `ready` and returns its data (`{"tail","epoch"}`).
    pub async fn ready(&mut self) -> Value {
        let frame = self.frame().await;
        assert_eq!(frame.event, "ready", "{frame:?}");
        assert_eq!(frame.id, None, "ready must not carry an id");
        frame.json()
    }

    /// Reads frames (skipping pings) until the server ends the response.
    pub async fn rest(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            match self.next_within(PROMPT).await {
                Next::Frame(frame) if frame.event == "ping" => {}
                Next::Frame(frame) => frames.push(frame),
                Next::End => return frames,
                Next::Silent => panic!("stream neither ended nor sent anything; got {frames:?}"),
            }
        }
    }

    /// Asserts that no frame other than pings arrives within `wait`.
    pub async fn expect_quiet(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_within(left).await {
                Next::Frame(frame) if frame.event == "ping" => {}
                Next::Silent => return,
                other => panic!("expected silence, got {other:?}"),
            }
        }
    }
}

/// Parses one SSE block the way a browser does (field, optional single space, value).
pub fn parse_frame(block: &[u8]) -> Frame {
    let text = String::from_utf8_lossy(block);
    let mut frame = Frame {
        id: None,
        event: "message".to_owned(),
        data: None,
    };
    for line in text.split('\n') {
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "id" => frame.id = Some(value.to_owned()),
            "event" => frame.event = value.to_owned(),
            "data" => {
                frame.data = Some(match frame.data.take() {
                    Some(before) => format!("{before}\n{value}"),
                    None => value.to_owned(),
                })
            }
            _ => {}
        }
    }
    frame
}

/// The ids of frames, in order.
pub fn ids(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f.id.clone().expect("journaled frame without id"))
        .collect()
}

/// `["1", "2", …]` for a numeric range.
pub fn numeric(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    range.map(|n| n.to_string()).collect()
}
