//! One connection to the events URL: opened with a timeout, read frame by frame with deadlines,
//! and recorded whole so the checks over every connection can read it afterwards.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::time::{timeout_at, Instant};

use crate::framing::{classify, preview, FrameClass, FrameSplitter};
use crate::net::{error_chain, is_event_stream, Client};

/// A dispatched event, as an `EventSource` would fire it, with the frame's own id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ev {
    /// The event type.
    pub event: String,
    /// The frame's own id (not the last-event-id carried over from an earlier frame).
    pub id: Option<String>,
    /// The data.
    pub data: String,
}

impl Ev {
    /// Whether this is a journaled frame (neither `ready` nor `ping`).
    pub fn journaled(&self) -> bool {
        self.event != "ready" && self.event != "ping"
    }
}

impl fmt::Display for Ev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.event)?;
        match &self.id {
            Some(id) => write!(f, " id={id}")?,
            None if self.journaled() => f.write_str(" (no id)")?,
            None => {}
        }
        if !self.data.is_empty() {
            write!(f, " {:?}", preview(self.data.as_bytes(), 60))?;
        }
        Ok(())
    }
}

/// Something the connection received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// A dispatched event.
    Event(Ev),
    /// A comment-only frame (`:` heartbeats, invisible to `EventSource`).
    Comment,
    /// A frame with fields but no `data:` line (an `EventSource` drops it).
    NoData {
        /// Its own id, if any.
        id: Option<String>,
        /// Its text, shortened.
        raw: String,
    },
    /// A frame too large to parse.
    Oversized,
}

/// A received item and when, in ms after the request was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Milliseconds since the request.
    pub at_ms: u64,
    /// What arrived.
    pub what: What,
}

/// Why a read stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The response ended.
    Ended,
    /// The deadline passed.
    TimedOut,
    /// No response, or the body failed.
    Failed(String),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Ended => f.write_str("the response ended"),
            Stop::TimedOut => f.write_str("nothing more arrived in time"),
            Stop::Failed(why) => f.write_str(why),
        }
    }
}

/// One connection and everything it received.
#[derive(Debug)]
pub struct Conn {
    /// What the checker used it for, for messages.
    pub label: String,
    /// The URL requested.
    pub url: String,
    /// Request headers beyond the defaults (e.g. `Last-Event-ID`), for messages.
    pub sent_headers: Vec<String>,
    /// The status, `None` when no response came.
    pub status: Option<u16>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The start of the body of an answer that is not a `200` event stream.
    pub body_preview: Option<String>,
    /// Everything received, in order.
    pub seen: Vec<Seen>,
    /// How the response stopped, once it did (`None` while open, or closed by the checker).
    pub end: Option<(u64, Stop)>,
    /// Journaled ids on this connection must be above this one (the `ready` tail of a `from=now`
    /// connection; whether a resume starts right after its cursor is the resume checks' rule).
    pub floor: Option<String>,
    opened: Instant,
    body: Option<Incoming>,
    splitter: FrameSplitter,
    taken: usize,
}

impl Conn {
    /// Sends a GET to `url`. `Err` only when the server cannot be reached at all; a missing or
    /// failed response is a `Conn` whose `end` says so.
    pub async fn open(
        client: &Client<Full<Bytes>>,
        label: String,
        url: String,
        headers: &[(HeaderName, HeaderValue)],
        timeout: Duration,
    ) -> Result<Conn, String> {
        let mut request = Request::get(&url)
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache");
        let mut sent_headers = Vec::new();
        for (name, value) in headers {
            request = request.header(name, value);
            if name != http::header::AUTHORIZATION {
                sent_headers.push(format!("{name}: {}", value.to_str().unwrap_or("…")));
            }
        }
        let request = request
            .body(Full::default())
            .map_err(|err| format!("cannot build a request to {url}: {err}"))?;
        let opened = Instant::now();
        let mut conn = Conn {
            label,
            url,
            sent_headers,
            status: None,
            content_type: None,
            body_preview: None,
            seen: Vec::new(),
            end: None,
            floor: None,
            opened,
            body: None,
            splitter: FrameSplitter::new(),
            taken: 0,
        };
        match timeout_at(opened + timeout, client.request(request)).await {
            Err(_) => {
                let why = format!("no response headers within {} ms", timeout.as_millis());
                conn.end = Some((conn.ms(), Stop::Failed(why)));
            }
            Ok(Err(err)) if err.is_connect() => {
                return Err(format!(
                    "cannot connect to {}: {}",
                    conn.url,
                    error_chain(&err)
                ))
            }
            Ok(Err(err)) => {
                let why = format!("the request failed: {}", error_chain(&err));
                conn.end = Some((conn.ms(), Stop::Failed(why)));
            }
            Ok(Ok(response)) => {
                conn.status = Some(response.status().as_u16());
                conn.content_type = response
                    .headers()
                    .get(CONTENT_TYPE)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                let mut body = response.into_body();
                if conn.status == Some(200) && is_event_stream(conn.content_type.as_deref()) {
                    conn.body = Some(body);
                } else {
                    // Enough of the answer to show what the server said.
                    let deadline = Instant::now() + timeout.min(Duration::from_secs(1));
                    let mut start = Vec::new();
                    while start.len() < 300 {
                        match timeout_at(deadline, body.frame()).await {
                            Ok(Some(Ok(frame))) => {
                                if let Some(data) = frame.data_ref() {
                                    start.extend_from_slice(data);
                                }
                            }
                            _ => break,
                        }
                    }
                    conn.body_preview = Some(preview(&start, 200));
                    conn.end = Some((conn.ms(), Stop::Ended));
                }
            }
        }
        Ok(conn)
    }

    /// Milliseconds since the request was sent.
    pub fn ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// Whether the response is a `200` event stream (its body is being read).
    pub fn is_ok(&self) -> bool {
        self.status == Some(200) && is_event_stream(self.content_type.as_deref())
    }

    /// How the response ended, if it did.
    pub fn stopped(&self) -> Option<&Stop> {
        self.end.as_ref().map(|(_, stop)| stop)
    }

    /// Reads the next chunk of the body (or waits for it until `deadline`) and records the frames
    /// it completes.
    async fn read_more(&mut self, deadline: Instant) -> Result<(), Stop> {
        let Some(body) = self.body.as_mut() else {
            return Err(self.stopped().cloned().unwrap_or(Stop::Ended));
        };
        let stop = match timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(Stop::TimedOut),
            Ok(Some(Ok(frame))) => {
                if let Some(chunk) = frame.data_ref() {
                    let at_ms = self.ms();
                    for boundary in self.splitter.push(chunk) {
                        let what = match classify(&boundary.frame) {
                            FrameClass::Event { event, id, data } => {
                                What::Event(Ev { event, id, data })
                            }
                            FrameClass::Comment => What::Comment,
                            FrameClass::NoData { id } => What::NoData {
                                id,
                                raw: preview(&boundary.frame.bytes, 120),
                            },
                            FrameClass::Empty => continue,
                            FrameClass::Oversized => What::Oversized,
                        };
                        self.seen.push(Seen { at_ms, what });
                    }
                }
                return Ok(());
            }
            Ok(Some(Err(err))) => Stop::Failed(format!("the body failed: {}", error_chain(&err))),
            Ok(None) => Stop::Ended,
        };
        self.body = None;
        self.end = Some((self.ms(), stop.clone()));
        Err(stop)
    }

    /// The next event not handed out yet, waiting until `deadline`.
    pub async fn next_event(&mut self, deadline: Instant) -> Result<Ev, Stop> {
        loop {
            while let Some(seen) = self.seen.get(self.taken) {
                self.taken += 1;
                if let What::Event(ev) = &seen.what {
                    return Ok(ev.clone());
                }
            }
            self.read_more(deadline).await?;
        }
    }

    /// The next journaled event with an id not handed out yet, waiting until `deadline`. Frames
    /// without an id are skipped here (they cannot be entries a client resumes from); the
    /// `journaled-frames` check reports them.
    pub async fn next_journaled(&mut self, deadline: Instant) -> Result<Ev, Stop> {
        loop {
            let ev = self.next_event(deadline).await?;
            if ev.journaled() && ev.id.is_some() {
                return Ok(ev);
            }
        }
    }

    /// Waits until an event with `data` was received on this connection (whenever it came).
    pub async fn wait_for_data(&mut self, data: &str, deadline: Instant) -> Result<(), Stop> {
        let mut scanned = 0;
        loop {
            let found = self.seen[scanned..]
                .iter()
                .any(|s| matches!(&s.what, What::Event(ev) if ev.data == data));
            if found {
                return Ok(());
            }
            scanned = self.seen.len();
            self.read_more(deadline).await?;
        }
    }

    /// Records whatever arrives until `deadline`; `Some` if the response stopped before.
    pub async fn pump_until(&mut self, deadline: Instant) -> Option<Stop> {
        loop {
            match self.read_more(deadline).await {
                Ok(()) => {}
                Err(Stop::TimedOut) => return None,
                Err(stop) => return Some(stop),
            }
        }
    }

    /// Stops reading and closes the connection.
    pub fn close(&mut self) {
        self.body = None;
    }

    /// Every event received, in order.
    pub fn events(&self) -> impl Iterator<Item = &Ev> {
        self.seen.iter().filter_map(|s| match &s.what {
            What::Event(ev) => Some(ev),
            _ => None,
        })
    }

    /// The first `ready` event, if any.
    pub fn ready(&self) -> Option<&Ev> {
        self.events().find(|ev| ev.event == "ready")
    }

    /// The connection for a message: its label, URL and extra headers.
    pub fn describe(&self) -> String {
        let mut text = format!("{} (GET {}", self.label, self.url);
        for header in &self.sent_headers {
            text.push_str(", ");
            text.push_str(header);
        }
        text.push(')');
        text
    }

    /// What came after item `from`, shortened: `[ping, token id=3 "x", end]`.
    pub fn received_since(&self, from: usize) -> String {
        let mut items: Vec<String> = self
            .seen
            .iter()
            .skip(from)
            .map(|s| match &s.what {
                What::Event(ev) => ev.to_string(),
                What::Comment => "`:` comment".to_owned(),
                What::NoData { raw, .. } => format!("frame without data {raw:?}"),
                What::Oversized => "oversized frame".to_owned(),
            })
            .collect();
        if items.len() > 8 {
            let more = items.len() - 8;
            items.truncate(8);
            items.push(format!("{more} more"));
        }
        if let Some((at, stop)) = &self.end {
            items.push(format!("{stop} at {at} ms"));
        }
        if items.is_empty() {
            "nothing".to_owned()
        } else {
            items.join(", ")
        }
    }
}
