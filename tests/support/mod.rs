//! A simulated protocol-v1 server that drives the real `Session` through its sans-IO interface.
//!
//! It plays the journal side faithfully: a connection replays the entries after its cursor (taken
//! from the session's query, or from the browser-style `Last-Event-ID` on a transport retry), then
//! gets live entries, and faults (drops, stalls, seam duplicates, transport retries) are injected
//! on demand. Every check is made against the journal, not against the session's own view.
#![allow(dead_code)]

use std::time::Duration;

use sse_relay::core::{
    Command, ConnectionId, Disconnect, Event, Frame, RawEvent, Session, SessionConfig, State,
    Timestamp,
};

/// How the simulated journal names its entries.
#[derive(Clone, Copy, Debug)]
pub enum IdStyle {
    /// 1, 2, 3, ... with gaps of `step`.
    Numeric { step: u64 },
    /// `<ms>-<seq>`, several per millisecond.
    Redis,
    /// Unique strings with no order.
    Opaque,
}

impl IdStyle {
    pub fn id(self, index: usize) -> String {
        match self {
            IdStyle::Numeric { step } => (1 + index as u64 * step).to_string(),
            IdStyle::Redis => format!("{}-{}", 1_700_000_000_000u64 + index as u64 / 3, index % 3),
            IdStyle::Opaque => format!(
                "msg_{:x}",
                (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ),
        }
    }
}

pub struct SimConn {
    pub id: ConnectionId,
    /// Index of the next journal entry this connection would get live.
    pub live_from: usize,
    /// The query the session opened it with.
    pub query: Vec<(String, String)>,
}

pub struct Sim {
    pub session: Session,
    pub now: u64,
    pub style: IdStyle,
    pub journal: Vec<Frame>,
    pub epoch: String,
    pub conn: Option<SimConn>,
    pub delivered: Vec<Frame>,
    pub events: Vec<Event>,
    pub opens: Vec<ConnectionId>,
    pub closes: Vec<ConnectionId>,
    pub failures: usize,
    /// Journal length when the first ready was sent (the `from=now` starting point).
    pub first_ready_at: Option<usize>,
    /// Seam duplicates to send after the next replay.
    pub dup_seam: usize,
    /// Whether the server answers new connections (false: they hang without ready).
    pub answering: bool,
    /// Index in `delivered` where the current epoch began (ids restart at a reset).
    pub epoch_start: usize,
    /// While set, appends are journaled but not sent live (a subscriber that joined late).
    pub deaf: bool,
}

impl Sim {
    /// A session whose first connection the server answers at once.
    pub fn new(config: SessionConfig, style: IdStyle) -> Sim {
        Sim::with_server(config, style, true)
    }

    /// A session whose connections hang until [`Sim::answer`] (or `answering` is set).
    pub fn silent(config: SessionConfig, style: IdStyle) -> Sim {
        Sim::with_server(config, style, false)
    }

    fn with_server(config: SessionConfig, style: IdStyle, answering: bool) -> Sim {
        let session = Session::new(config, Timestamp::from_millis(0)).expect("valid config");
        let mut sim = Sim {
            session,
            now: 0,
            style,
            journal: Vec::new(),
            epoch: "e1".into(),
            conn: None,
            delivered: Vec::new(),
            events: Vec::new(),
            opens: Vec::new(),
            closes: Vec::new(),
            failures: 0,
            first_ready_at: None,
            dup_seam: 0,
            answering,
            epoch_start: 0,
            deaf: false,
        };
        sim.pump();
        sim
    }

    pub fn ts(&self) -> Timestamp {
        Timestamp::from_millis(self.now)
    }

    /// Drains the session's commands and events, performing the commands like a transport would.
    pub fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(command) = self.session.poll_command() {
                progressed = true;
                match command {
                    Command::Open(request) => {
                        assert!(
                            self.conn.is_none(),
                            "a second connection opened before the first was closed"
                        );
                        self.opens.push(request.connection);
                        self.conn = Some(SimConn {
                            id: request.connection,
                            live_from: self.journal.len(),
                            query: request.query.clone(),
                        });
                        if self.answering {
                            self.join(request.query);
                        }
                    }
                    Command::Close(id) => {
                        assert!(self.opens.contains(&id), "closed a connection never opened");
                        assert!(!self.closes.contains(&id), "closed a connection twice");
                        self.closes.push(id);
                        if self.conn.as_ref().is_some_and(|c| c.id == id) {
                            self.conn = None;
                        }
                    }
                }
            }
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                match &event {
                    Event::Frame(f) => {
                        assert!(
                            !self.delivered[self.epoch_start..]
                                .iter()
                                .any(|d| d.id == f.id),
                            "frame {} delivered twice",
                            f.id
                        );
                        self.delivered.push(f.clone());
                    }
                    Event::Failed(_) => self.failures += 1,
                    Event::Reset { .. } => self.epoch_start = self.delivered.len(),
                    _ => {}
                }
                self.events.push(event);
            }
            if !progressed {
                break;
            }
        }
    }

    /// The server side of a new connection: join, ready, replay after the cursor, seam dups.
    fn join(&mut self, query: Vec<(String, String)>) {
        let cursor = query
            .iter()
            .find(|(k, _)| k == "lastEventId")
            .map(|(_, v)| v.clone());
        let from_now = query.iter().any(|(k, v)| k == "from" && v == "now");
        let start = match &cursor {
            Some(c) => self.index_after(c),
            None if from_now => self.journal.len(),
            None => 0,
        };
        self.ready_and_replay(start);
    }

    /// Answers the pending connection as the server would have when it opened.
    pub fn answer(&mut self) {
        if let Some(query) = self.conn.as_ref().map(|c| c.query.clone()) {
            self.join(query);
        }
    }

    fn index_after(&self, cursor: &str) -> usize {
        self.journal
            .iter()
            .position(|f| f.id == cursor)
            .map_or(0, |i| i + 1)
    }

    fn ready_and_replay(&mut self, start: usize) {
        let Some(conn_id) = self.conn.as_ref().map(|c| c.id) else {
            return;
        };
        let now = self.ts();
        self.session.handle_connected(conn_id, now);
        let tail = self
            .journal
            .last()
            .map(|f| format!("\"{}\"", f.id))
            .unwrap_or_else(|| "null".into());
        let data = format!("{{\"tail\":{tail},\"epoch\":\"{}\"}}", self.epoch);
        self.session.handle_frame(
            conn_id,
            RawEvent {
                event: "ready",
                id: None,
                data: &data,
            },
            now,
        );
        self.first_ready_at.get_or_insert(self.journal.len());
        let end = self.journal.len();
        for i in start..end {
            self.send(i);
        }
        let k = std::mem::take(&mut self.dup_seam).min(end - start.min(end));
        for i in end - k..end {
            self.send(i);
        }
        if let Some(c) = self.conn.as_mut() {
            c.live_from = end;
        }
        self.pump();
    }

    /// Sends journal entry `i` on the current connection.
    pub fn send(&mut self, i: usize) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let f = self.journal[i].clone();
        let id = conn.id;
        self.session.handle_frame(
            id,
            RawEvent {
                event: &f.event,
                id: Some(&f.id),
                data: &f.data,
            },
            Timestamp::from_millis(self.now),
        );
    }

    /// Appends an entry; a joined connection gets it live.
    pub fn append(&mut self, event: &str) {
        let id = self.style.id(self.journal.len());
        self.journal.push(Frame {
            id,
            event: event.into(),
            data: format!("payload {}", self.journal.len()),
        });
        if self.deaf {
            if let Some(c) = self.conn.as_mut() {
                c.live_from = self.journal.len();
            }
        } else if self.answering {
            if let Some(c) = &self.conn {
                if c.live_from < self.journal.len() {
                    let from = c.live_from;
                    for i in from..self.journal.len() {
                        self.send(i);
                    }
                    if let Some(c) = self.conn.as_mut() {
                        c.live_from = self.journal.len();
                    }
                }
            }
        }
        self.pump();
    }

    /// The transport stops the connection (a native EventSource after a failure).
    pub fn drop_connection(&mut self) {
        self.close_connection(Disconnect::Failed);
    }

    /// The transport stops the connection for `why` (a fetch transport sees statuses).
    pub fn close_connection(&mut self, why: Disconnect) {
        if let Some(c) = self.conn.take() {
            self.session.handle_closed(c.id, why, self.ts());
            self.pump();
        }
    }

    /// The transport loses the connection (a native EventSource would retry by itself).
    pub fn transport_retry(&mut self) {
        let Some(id) = self.conn.as_ref().map(|c| c.id) else {
            return;
        };
        self.session.handle_error(id, self.ts());
        self.pump();
    }

    /// Advances the clock by `ms` and fires the session's timer if it is due.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        if let Some(deadline) = self.session.poll_timeout() {
            if deadline.as_millis() <= self.now {
                self.session.handle_timeout(self.ts());
                self.pump();
            }
        }
    }

    /// Jumps to the session's next deadline and fires it.
    pub fn fire_next_timer(&mut self) -> bool {
        match self.session.poll_timeout() {
            Some(deadline) => {
                self.now = self.now.max(deadline.as_millis());
                self.session.handle_timeout(self.ts());
                self.pump();
                true
            }
            None => false,
        }
    }

    /// Runs timers until the session is live (or closed), within a bound.
    pub fn settle(&mut self) {
        for _ in 0..64 {
            if matches!(self.session.state(), State::Live | State::Closed) {
                return;
            }
            if !self.fire_next_timer() {
                return;
            }
        }
        panic!("the session did not settle");
    }

    pub fn delivered_ids(&self) -> Vec<String> {
        self.delivered.iter().map(|f| f.id.clone()).collect()
    }

    pub fn journal_ids(&self, from: usize) -> Vec<String> {
        self.journal[from..].iter().map(|f| f.id.clone()).collect()
    }
}

/// A config with short timers, so simulated runs stay small.
pub fn quick_config() -> SessionConfig {
    SessionConfig {
        ready_timeout: Duration::from_millis(1_000),
        heartbeat_timeout: Duration::from_millis(5_000),
        ..SessionConfig::default()
    }
}
