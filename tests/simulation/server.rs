//! A protocol-v1 journal server, simulated: epochs of entries, and connections that join, send
//! `ready` with the tail they snapshotted, replay after the cursor, then tail live entries, with
//! faults decided per connection (a status instead of a stream, a slow join, a seam that repeats
//! frames, a response cut after some frames, a stall). The same journal can be read as a Durable
//! Stream (`render_durable`): offsets after each message, batches of `data` and a `control`.

use std::collections::VecDeque;

use sse_relay::core::{ConnectionId, Transport};

/// How the journal names its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdMode {
    /// 1, 2, 3, ... restarting in every epoch.
    Numeric,
    /// `<ms>-<seq>`, several per millisecond, increasing across epochs too.
    Redis,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub event: String,
    pub data: String,
}

#[derive(Debug)]
pub struct Epoch {
    pub name: String,
    pub entries: Vec<Entry>,
}

#[derive(Debug)]
pub struct Journal {
    pub epochs: Vec<Epoch>,
    pub mode: IdMode,
    pub done: bool,
    /// The `<ms>` of the next redis-style id and how many ids it has had.
    redis_clock: (u64, u64),
}

impl Journal {
    pub fn new(mode: IdMode) -> Journal {
        Journal {
            epochs: vec![Epoch {
                name: "e0".into(),
                entries: Vec::new(),
            }],
            mode,
            done: false,
            redis_clock: (1_700_000_000_000, 0),
        }
    }

    pub fn current(&self) -> &Epoch {
        self.epochs.last().expect("an epoch")
    }

    pub fn current_index(&self) -> usize {
        self.epochs.len() - 1
    }

    /// Appends an entry to the current epoch; `None` once the stream is done.
    pub fn append(&mut self, event: &str, data: String, now: u64) -> Option<usize> {
        if self.done {
            return None;
        }
        let index = self.current().entries.len();
        let id = match self.mode {
            IdMode::Numeric => (index + 1).to_string(),
            IdMode::Redis => {
                let ms = now + 1_700_000_000_000;
                if ms > self.redis_clock.0 {
                    self.redis_clock = (ms, 0);
                } else {
                    self.redis_clock.1 += 1;
                }
                format!("{}-{}", self.redis_clock.0, self.redis_clock.1)
            }
        };
        self.done = event == "done";
        let epoch = self.epochs.last_mut().expect("an epoch");
        epoch.entries.push(Entry {
            id,
            event: event.to_owned(),
            data,
        });
        Some(index)
    }

    /// A new epoch: the journal is wiped and ids restart (numeric).
    pub fn reset(&mut self) {
        let name = format!("e{}", self.epochs.len());
        self.epochs.push(Epoch {
            name,
            entries: Vec::new(),
        });
        self.done = false;
    }

    /// Where a connection asking `request` starts in the current epoch, and the tail its `ready`
    /// announces.
    pub fn start(&self, request: &Request) -> (usize, Option<String>) {
        let epoch = self.current();
        let len = epoch.entries.len();
        let tail = |at: usize| (at > 0).then(|| epoch.entries[at - 1].id.clone());
        let same_epoch = request.epoch.as_deref().is_none_or(|e| e == epoch.name);
        if let Some(offset) = &request.offset {
            // A Durable Stream: `-1`, `now`, or the offset after that many messages. On a closed
            // stream the read ends with the close (the `done` entry) at the latest.
            let last = if self.done { len - 1 } else { len };
            let at = match offset.as_str() {
                "-1" => 0,
                "now" => last,
                o => o
                    .strip_prefix('o')
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
            };
            return (at.min(last), None);
        }
        let start = match &request.cursor {
            Some(cursor) if same_epoch => epoch
                .entries
                .iter()
                .position(|e| order(&e.id) > order(cursor))
                .unwrap_or(len),
            Some(_) => 0,
            // A live-only attach to a finished journal gets `done` (protocol v1).
            None if request.from_now && self.done => len - 1,
            None if request.from_now => len,
            None => 0,
        };
        let announced = if request.from_now && request.cursor.is_none() {
            tail(start)
        } else {
            tail(len)
        };
        (start, announced)
    }
}

/// An id as a comparable pair (numeric ids are `(n, 0)`).
pub fn order(id: &str) -> (u64, u64) {
    match id.split_once('-') {
        Some((ms, seq)) => (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0)),
        None => (id.parse().unwrap_or(0), 0),
    }
}

/// What a connection asked for, read from its query.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub cursor: Option<String>,
    pub epoch: Option<String>,
    pub from_now: bool,
    /// Durable Streams: the `offset` parameter.
    pub offset: Option<String>,
}

impl Request {
    pub fn from_query(query: &[(String, String)]) -> Request {
        let mut request = Request::default();
        for (name, value) in query {
            match name.as_str() {
                "lastEventId" => request.cursor = Some(value.clone()),
                "epoch" => request.epoch = Some(value.clone()),
                "from" => request.from_now = value == "now",
                "offset" => request.offset = Some(value.clone()),
                _ => {}
            }
        }
        request
    }
}

/// Faults of one connection, decided when it opens.
#[derive(Clone, Debug, Default)]
pub struct ConnFaults {
    /// Answer this status instead of a stream.
    pub status: Option<u16>,
    /// Join (and send `ready`) this long after the response started.
    pub join_delay: u64,
    /// End the response after this many journaled frames.
    pub drop_after: Option<u32>,
    /// Go silent (no frame, no ping) after this many journaled frames.
    pub stall_after: Option<u32>,
    /// Repeat the last `seam` replayed frames at the replay/live seam.
    pub seam: usize,
}

/// One unit a connection sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unit {
    Ready {
        tail: Option<String>,
        epoch: String,
    },
    Entry(usize),
    Ping,
    /// An SSE comment (`fetch` only: `EventSource` hides them).
    Comment,
}

/// A server connection of one tab.
#[derive(Debug)]
pub struct Conn {
    /// Unique among all connections of the simulation.
    pub serial: u64,
    pub tab: usize,
    pub id: ConnectionId,
    pub transport: Transport,
    pub request: Request,
    pub faults: ConnFaults,
    /// The epoch it joined (ended by a reset).
    pub epoch: usize,
    pub joined: bool,
    pub next: usize,
    replay_end: usize,
    seam: VecDeque<usize>,
    seam_sent: bool,
    pub sent: u32,
    pub stalled: bool,
    /// A `fetch` body the client paused.
    pub paused: bool,
    /// `fetch` bytes not handed over yet.
    pub bytes: Vec<u8>,
    pub next_ping: u64,
    /// When its next delivery is scheduled.
    pub scheduled: Option<u64>,
    /// `done` was sent: the response ends once the bytes are out.
    pub ending: bool,
}

impl Conn {
    pub fn new(
        tab: usize,
        id: ConnectionId,
        transport: Transport,
        request: Request,
        faults: ConnFaults,
    ) -> Conn {
        Conn {
            serial: 0,
            tab,
            id,
            transport,
            request,
            faults,
            epoch: 0,
            joined: false,
            next: 0,
            replay_end: 0,
            seam: VecDeque::new(),
            seam_sent: false,
            sent: 0,
            stalled: false,
            paused: false,
            bytes: Vec::new(),
            next_ping: 0,
            scheduled: None,
            ending: false,
        }
    }

    /// The join: the tail is snapshotted and the ready frame is the first unit.
    pub fn join(&mut self, journal: &Journal, now: u64, ping: u64) -> Unit {
        let (start, tail) = journal.start(&self.request);
        self.joined = true;
        self.epoch = journal.current_index();
        self.next = start;
        self.replay_end = journal.current().entries.len();
        self.next_ping = now + ping;
        Unit::Ready {
            tail,
            epoch: journal.current().name.clone(),
        }
    }

    /// The next unit to send, if any is due now.
    pub fn next_unit(&mut self, journal: &Journal, now: u64, ping: u64) -> Option<Unit> {
        if self.stalled || self.ending || !self.joined {
            return None;
        }
        if !self.seam_sent && self.next >= self.replay_end {
            self.seam_sent = true;
            let from = self.replay_end.saturating_sub(self.faults.seam);
            self.seam.extend(from..self.replay_end);
        }
        if let Some(i) = self.seam.pop_front() {
            return Some(Unit::Entry(i));
        }
        let epoch = &journal.epochs[self.epoch];
        if self.next < epoch.entries.len() {
            self.next += 1;
            return Some(Unit::Entry(self.next - 1));
        }
        if now >= self.next_ping {
            self.next_ping = now + ping;
            return Some(Unit::Ping);
        }
        None
    }

    /// The offset of the position after `messages` messages.
    pub fn offset(messages: usize) -> String {
        format!("o{messages:08}")
    }

    /// `units` as a Durable Streams server sends them: each burst is one batch, its messages in
    /// one or several `data` events (`split`), then a `control`; the `done` entry is the close.
    pub fn render_durable(
        journal: &Journal,
        epoch: usize,
        units: &[Unit],
        next: usize,
        split: bool,
    ) -> Vec<String> {
        let entries = &journal.epochs[epoch].entries;
        if units.is_empty() {
            return Vec::new(); // a stalled connection sends nothing, not even a control
        }
        let control = |offset: usize, extra: &str| {
            format!(
                "event: control\ndata: {{\"streamNextOffset\":\"{}\",\"streamCursor\":\"7\"{extra}}}\n\n",
                Conn::offset(offset)
            )
        };
        let mut out = Vec::new();
        let mut batch: Vec<&str> = Vec::new();
        let flush = |batch: &mut Vec<&str>, out: &mut Vec<String>| {
            if batch.is_empty() {
                return;
            }
            if split {
                out.extend(
                    batch
                        .iter()
                        .map(|m| format!("event: data\ndata: [{m}]\n\n")),
                );
            } else {
                out.push(format!("event: data\ndata: [{}]\n\n", batch.join(",")));
            }
            batch.clear();
        };
        let up_to_date = next >= entries.len();
        for unit in units {
            match unit {
                Unit::Entry(i) if entries[*i].event == "done" => {
                    flush(&mut batch, &mut out);
                    out.push(control(*i, ",\"streamClosed\":true"));
                    return out;
                }
                Unit::Entry(i) => batch.push(&entries[*i].data),
                Unit::Comment => out.push(": keep-alive\n\n".to_owned()),
                Unit::Ready { .. } | Unit::Ping => {}
            }
        }
        flush(&mut batch, &mut out);
        let flag = if up_to_date { ",\"upToDate\":true" } else { "" };
        out.push(control(next.min(entries.len()), flag));
        out
    }

    /// The bytes of `unit` on the wire.
    pub fn render(journal: &Journal, epoch: usize, unit: &Unit) -> String {
        match unit {
            Unit::Ready { tail, epoch } => {
                let tail = tail
                    .as_ref()
                    .map_or("null".to_owned(), |t| format!("\"{t}\""));
                format!("event: ready\ndata: {{\"tail\":{tail},\"epoch\":\"{epoch}\"}}\n\n")
            }
            Unit::Entry(i) => {
                let e = &journal.epochs[epoch].entries[*i];
                format!("id: {}\nevent: {}\ndata: {}\n\n", e.id, e.event, e.data)
            }
            Unit::Ping => "event: ping\ndata:\n\n".to_owned(),
            Unit::Comment => ": keep-alive\n\n".to_owned(),
        }
    }
}
