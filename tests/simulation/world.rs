//! The simulated browser: N tabs, each running a real [`Peer`], a lock manager with the Web Locks
//! semantics (requests queue in order; release, close and crash grant the next; a steal takes
//! the lock from its holder), a channel (in order from each sender, to every other tab), the
//! journal server, and the applications reading their streams. A seed fixes every choice.
//!
//! The invariants are checked as frames reach each application and at the end:
//! - every frame a tab's application takes is an entry of the journal, and within an epoch the
//!   entries a tab takes are consecutive (no duplicate, no hole, in order), starting at the epoch's
//!   first entry (or, for the first epoch of a `from=now` tab, anywhere: its start);
//! - a tab never goes back to an older epoch, so its cursor never moves back;
//! - no application's queue exceeds its bound;
//! - once the faults stop, there is one connection to the server, and a tab leads again soon
//!   after its leader leaves;
//! - at the end every tab still open has taken the last epoch whole, through `done`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use sse_relay::core::{
    Action, ConnectionId, Limits, LockTicket, Peer, PeerConfig, RawEvent, ServerProfile,
    SessionConfig, StartFrom, State, TabMessage, Timestamp, Transport, READER_STUCK,
};

use super::rng::Rng;
use super::server::{Conn, ConnFaults, IdMode, Journal, Request, Unit};

/// The shape of one schedule, drawn from its seed.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    /// Protocol v1; a plain SSE server (no `ready`, no epochs, so no resets) that replays after
    /// `Last-Event-ID`: with such a server the stream is still exactly once; or the same journal
    /// read as a Durable Stream, batched differently on every connection and every burst.
    pub profile: ServerProfile,
    pub ids: IdMode,
    /// Tabs opened at the start.
    pub initial_tabs: usize,
    /// Most tabs open at once.
    pub max_tabs: usize,
    /// How long faults are injected (ms).
    pub fault_ms: u64,
    /// Percent chance, per fault step, of each kind of trouble.
    pub fault_rate: u64,
    pub limits: Limits,
    pub ping_ms: u64,
    pub heartbeat_ms: u64,
}

impl Plan {
    pub fn from_seed(seed: u64) -> Plan {
        let mut rng = Rng::new(seed);
        let small = rng.chance(70);
        Plan {
            seed,
            // Decided apart from the draws below, so a protocol-v1 seed keeps its schedule.
            profile: match seed % 8 {
                3 => ServerProfile::Plain,
                7 => ServerProfile::DurableStreams,
                _ => ServerProfile::Relay,
            },
            ids: if rng.chance(50) {
                IdMode::Numeric
            } else {
                IdMode::Redis
            },
            initial_tabs: rng.range(1, 3) as usize,
            max_tabs: rng.range(2, 5) as usize,
            fault_ms: rng.range(1_000, 4_000),
            fault_rate: rng.range(5, 40),
            limits: if small {
                // Tiny bounds, so pauses, hand-overs and catch-ups past the buffer happen often.
                let body_high = rng.range(2, 12) as usize;
                let unpausable_high = rng.range(4, 24) as usize;
                Limits {
                    body_high,
                    body_low: rng.below(body_high as u64) as usize,
                    unpausable_high,
                    unpausable_low: rng.below(unpausable_high as u64) as usize,
                    tab_buffer: rng.range(1, 40) as usize,
                }
            } else {
                Limits::default()
            },
            ping_ms: 150,
            heartbeat_ms: 600,
        }
    }
}

/// What can happen, at a time.
#[derive(Debug)]
enum Ev {
    /// The tab's timer (its `poll_timeout`).
    Timer(usize),
    /// The server accepts or refuses a connection.
    Respond(usize, ConnectionId, u64),
    /// The server joins a connection and sends `ready`.
    Join(usize, ConnectionId, u64),
    /// The server sends what is due on a connection.
    Send(usize, ConnectionId, u64),
    LockGranted(usize, LockTicket),
    LockLost(usize, LockTicket),
    /// A channel message reaches a tab (`None` text: garbage).
    Message(usize, String),
    /// The application asked for fresh credentials; it answers.
    Credentials(usize, ConnectionId),
    /// The application reads.
    Read(usize),
    /// The next step of the schedule (faults, appends, tabs).
    Step,
    /// A stolen lock is released by its thief.
    ThiefLeaves,
    /// The end's deadline: every open tab should have finished by now.
    Deadline,
    /// A tab opens (after the stream's end: a late attach).
    OpenTab,
}

struct Scheduled {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Tab {
    peer: Peer<()>,
    alive: bool,
    transport: Transport,
    from_now: bool,
    /// Taken frames: `(epoch index, entry index)` of the last, per the invariant.
    position: Option<(usize, usize)>,
    taken: u64,
    armed: Option<u64>,
    /// The application reads every `read_ms`, up to `batch` frames; not before `slow_until`.
    read_ms: u64,
    batch: usize,
    slow_until: u64,
    reading: bool,
    finished: bool,
    /// Since when it has held more than its bound (a leader serving followers may, briefly),
    /// and how many it held at the last check.
    over_since: Option<u64>,
    last_queued: usize,
    dipped: bool,
}

/// Who holds the stream's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holder {
    Tab(usize, LockTicket),
    /// Another page stole it.
    Thief,
}

/// Why a schedule failed.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub at: u64,
    pub what: String,
    pub trace: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {} failed at {} ms: {}",
            self.seed, self.at, self.what
        )?;
        writeln!(
            f,
            "replay: SIM_SEED={} cargo test --test simulation replay -- --nocapture",
            self.seed
        )?;
        writeln!(f, "last {} steps:", self.trace.len())?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// What a schedule did, for the report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    pub steps: u64,
    pub sim_ms: u64,
    pub frames: u64,
    pub failover_ms: Option<u64>,
}

pub struct World {
    plan: Plan,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    tabs: Vec<Tab>,
    journal: Journal,
    conns: BTreeMap<(usize, u64), Conn>,
    /// Numbers every server connection (a connection id may get a new transport).
    serial: u64,
    holder: Option<Holder>,
    waiting: VecDeque<(usize, LockTicket)>,
    /// When the last message from one tab to another arrives (the channel keeps each sender's order).
    channel_clock: BTreeMap<(usize, usize), u64>,
    /// Recent channel messages, to replay as forgeries.
    recent: VecDeque<String>,
    calm: bool,
    ending: bool,
    /// Tabs still to open after the end.
    late_tabs: usize,
    steps: u64,
    trace: VecDeque<String>,
    keep_trace: usize,
    failover: Option<(u64, Option<u64>)>,
}

const CALM_MS: u64 = 4_000;
/// Most units a connection sends at once (a Durable Stream's batch is at most this many).
const MAX_BURST: u64 = 12;
/// Once faults stopped, a tab joins the server again this soon after the leader leaves (the
/// silence window and a backoff draw or two, with a follower catching up first).
const FAILOVER_BOUND_MS: u64 = 3_000;
const END_MS: u64 = 30_000;

impl World {
    pub fn new(plan: Plan, keep_trace: usize) -> World {
        let rng = Rng::new(plan.seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let journal = Journal::new(plan.ids);
        let mut world = World {
            plan,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            tabs: Vec::new(),
            journal,
            conns: BTreeMap::new(),
            serial: 0,
            holder: None,
            waiting: VecDeque::new(),
            channel_clock: BTreeMap::new(),
            recent: VecDeque::new(),
            calm: false,
            ending: false,
            late_tabs: 0,
            steps: 0,
            trace: VecDeque::new(),
            keep_trace,
            failover: None,
        };
        for _ in 0..world.plan.initial_tabs {
            world.open_tab();
        }
        world.at(0, Ev::Step);
        world
    }

    fn at(&mut self, delay: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at: self.now + delay,
            seq: self.seq,
            ev,
        }));
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if self.keep_trace == 0 {
            return;
        }
        if self.trace.len() == self.keep_trace {
            self.trace.pop_front();
        }
        let line = line();
        self.trace.push_back(format!("{:>6} {line}", self.now));
    }

    fn fail(&self, what: String) -> Failure {
        Failure {
            seed: self.plan.seed,
            at: self.now,
            what,
            trace: self.trace.iter().cloned().collect(),
        }
    }

    fn ts(&self) -> Timestamp {
        Timestamp::from_millis(self.now)
    }

    /// Runs the schedule to its end.
    pub fn run(mut self) -> Result<Outcome, Failure> {
        while let Some(Reverse(next)) = self.queue.pop() {
            self.now = next.at;
            self.steps += 1;
            if self.steps > 3_000_000 {
                return Err(self.fail("the schedule does not end (over 3,000,000 steps)".into()));
            }
            self.handle(next.ev)?;
            let all_finished = self.tabs.iter().all(|t| !t.alive || t.finished);
            if self.ending && self.late_tabs == 0 && all_finished {
                break;
            }
        }
        if let Some((_, Some(took))) = self.failover {
            if took > FAILOVER_BOUND_MS {
                return Err(self.fail(format!(
                    "after the leader left in the calm, {took} ms passed before a tab joined again \
                     (bound {FAILOVER_BOUND_MS} ms)"
                )));
            }
        }
        let last = self.journal.current_index();
        for (i, tab) in self.tabs.iter().enumerate() {
            if !tab.alive {
                continue;
            }
            let want = self.journal.epochs[last].entries.len();
            if tab.position != Some((last, want - 1)) || !tab.finished {
                return Err(self.fail(format!(
                    "tab {i} did not take the last epoch through done: at {:?} of epoch {last} \
                     ({want} entries), finished {}, state {:?}, role {:?}, queued {}",
                    tab.position,
                    tab.finished,
                    tab.peer.state(),
                    tab.peer.role(),
                    tab.peer.queued()
                )));
            }
        }
        Ok(Outcome {
            steps: self.steps,
            sim_ms: self.now,
            frames: self.tabs.iter().map(|t| t.taken).sum(),
            failover_ms: self.failover.and_then(|(_, done)| done),
        })
    }

    fn open_tab(&mut self) {
        let index = self.tabs.len();
        let transport = if self.rng.chance(50) {
            Transport::Fetch
        } else {
            Transport::EventSource
        };
        let from_now = self.rng.chance(40) && self.plan.profile != ServerProfile::Plain;
        let config = PeerConfig {
            session: SessionConfig {
                server_profile: self.plan.profile,
                from: if from_now {
                    StartFrom::Now
                } else {
                    StartFrom::Start
                },
                ready_timeout: Duration::from_millis(60_000),
                heartbeat_timeout: Duration::from_millis(self.plan.heartbeat_ms),
                seed: self.rng.next_u64(),
                ..SessionConfig::default()
            },
            transport,
            tab: Some(format!("tab{index}")),
            persist_cursor: false,
            refresh_credentials: true,
            headers: Vec::new(),
            limits: self.plan.limits,
        };
        let peer = Peer::new(config, self.ts()).expect("valid config");
        let read_ms = self.rng.range(1, 20);
        let batch = self.rng.range(1, 16) as usize;
        self.tabs.push(Tab {
            peer,
            alive: true,
            transport,
            from_now,
            position: None,
            taken: 0,
            armed: None,
            read_ms,
            batch,
            slow_until: 0,
            reading: false,
            finished: false,
            over_since: None,
            last_queued: 0,
            dipped: false,
        });
        self.note(|| format!("open tab {index} ({transport:?}, from_now {from_now})"));
        self.after_input(index);
    }

    /// Removes a tab: closed by its page (`clean`) or gone at once (a crash, a navigation).
    fn remove_tab(&mut self, index: usize, clean: bool) {
        if clean {
            let now = self.ts();
            self.tabs[index].peer.close(now);
            self.actions(index);
        }
        self.tabs[index].alive = false;
        self.note(|| format!("{} tab {index}", if clean { "close" } else { "crash" }));
        self.conns.retain(|(tab, _), _| *tab != index);
        self.release(index);
    }

    fn handle(&mut self, ev: Ev) -> Result<(), Failure> {
        match ev {
            Ev::Timer(i) => {
                if !self.tabs[i].alive || self.tabs[i].armed != Some(self.now) {
                    return Ok(());
                }
                self.tabs[i].armed = None;
                let now = self.ts();
                self.tabs[i].peer.handle_timeout(now);
                self.after_input(i);
            }
            // A transport the tab dropped reports nothing more (its adapter removed its listeners),
            // even when a later transport of the same connection took its place.
            Ev::Respond(i, id, serial) if self.current(i, id, serial) => self.respond(i, id),
            Ev::Join(i, id, serial) if self.current(i, id, serial) => self.join(i, id),
            Ev::Send(i, id, serial) if self.current(i, id, serial) => self.send(i, id),
            Ev::Respond(..) | Ev::Join(..) | Ev::Send(..) => {}
            Ev::LockGranted(i, ticket) => {
                if self.tabs[i].alive {
                    self.note(|| format!("tab {i}: lock granted {ticket:?}"));
                    let now = self.ts();
                    self.tabs[i].peer.handle_lock_granted(ticket, now);
                    self.after_input(i);
                }
            }
            Ev::LockLost(i, ticket) => {
                if self.tabs[i].alive {
                    self.note(|| format!("tab {i}: lock lost {ticket:?}"));
                    let now = self.ts();
                    self.tabs[i].peer.handle_lock_lost(ticket, now);
                    self.after_input(i);
                }
            }
            Ev::Message(i, text) => {
                if self.tabs[i].alive {
                    let now = self.ts();
                    let message = TabMessage::decode(&text).ok();
                    self.tabs[i].peer.handle_tab_message(message, now);
                    self.after_input(i);
                }
            }
            Ev::Credentials(i, id) => {
                if self.tabs[i].alive {
                    let now = self.ts();
                    let headers =
                        vec![("Authorization".to_owned(), format!("Bearer {}", self.now))];
                    self.tabs[i].peer.handle_credentials(id, Some(headers), now);
                    self.after_input(i);
                }
            }
            Ev::Read(i) => self.read(i)?,
            Ev::Step => self.step(),
            Ev::Deadline => self.queue.clear(),
            Ev::OpenTab => {
                self.late_tabs -= 1;
                self.open_tab();
            }
            Ev::ThiefLeaves => {
                if self.holder == Some(Holder::Thief) {
                    self.holder = None;
                    self.grant();
                }
            }
        }
        self.check_bounds()
    }

    /// After any input to tab `i`: its actions, its timer, its reader.
    fn after_input(&mut self, i: usize) {
        self.actions(i);
        let tab = &mut self.tabs[i];
        if !tab.alive {
            return;
        }
        if let Some(at) = tab.peer.poll_timeout() {
            let at = at.as_millis().max(self.now);
            if tab.armed.is_none_or(|armed| at < armed) {
                tab.armed = Some(at);
                let delay = at - self.now;
                self.at(delay, Ev::Timer(i));
            }
        }
        let tab = &mut self.tabs[i];
        if tab.peer.readable() && !tab.reading {
            tab.reading = true;
            let delay = tab.read_ms.max(tab.slow_until.saturating_sub(self.now));
            self.at(delay, Ev::Read(i));
        }
    }

    fn actions(&mut self, i: usize) {
        while let Some(action) = self.tabs[i].peer.poll_action() {
            match action {
                Action::Connect(connect) => {
                    let faults = self.conn_faults();
                    let transport = self.tabs[i].transport;
                    self.note(|| {
                        format!(
                            "tab {i}: connect {} {:?} {faults:?}",
                            connect.connection, connect.query
                        )
                    });
                    let request = Request::from_query(&connect.query);
                    let key = (i, connect.connection.get());
                    let mut conn = Conn::new(i, connect.connection, transport, request, faults);
                    self.serial += 1;
                    conn.serial = self.serial;
                    self.conns.insert(key, conn);
                    let latency = self.rng.range(1, 10);
                    let serial = self.serial;
                    self.at(latency, Ev::Respond(i, connect.connection, serial));
                }
                Action::Disconnect(id) => {
                    self.conns.remove(&(i, id.get()));
                }
                Action::PauseBody(paused) => {
                    for conn in self.conns.values_mut().filter(|c| c.tab == i) {
                        conn.paused = paused;
                    }
                    if !paused {
                        let ids: Vec<_> = self
                            .conns
                            .values()
                            .filter(|c| c.tab == i)
                            .map(|c| c.id)
                            .collect();
                        for id in ids {
                            let ending = self.conns.get(&(i, id.get())).is_some_and(|c| c.ending);
                            self.flush_body(i, id, ending);
                            self.schedule_more(i, id);
                        }
                    }
                }
                Action::RefreshCredentials { connection, .. } => {
                    self.at(5, Ev::Credentials(i, connection));
                }
                Action::Post(message) => {
                    let text = message.encode();
                    self.note(|| format!("tab {i} posts {}", short(&text)));
                    self.broadcast(i, text);
                }
                Action::RequestLock(ticket) => {
                    self.release(i);
                    self.waiting.push_back((i, ticket));
                    self.grant();
                }
                Action::ReleaseLock | Action::LeaveTabs => self.release(i),
                Action::SaveCursor(_) | Action::Warn(_) => {}
            }
        }
    }

    fn broadcast(&mut self, from: usize, text: String) {
        if self.recent.len() == 32 {
            self.recent.pop_front();
        }
        self.recent.push_back(text.clone());
        for to in 0..self.tabs.len() {
            if to == from || !self.tabs[to].alive {
                continue;
            }
            let at = (self.now + self.rng.range(0, 3))
                .max(*self.channel_clock.get(&(from, to)).unwrap_or(&0));
            self.channel_clock.insert((from, to), at);
            let delay = at - self.now;
            self.at(delay, Ev::Message(to, text.clone()));
        }
    }

    fn release(&mut self, i: usize) {
        self.waiting.retain(|(t, _)| *t != i);
        if matches!(self.holder, Some(Holder::Tab(t, _)) if t == i) {
            self.holder = None;
        }
        self.grant();
    }

    fn grant(&mut self) {
        if self.holder.is_some() {
            return;
        }
        while let Some((t, ticket)) = self.waiting.pop_front() {
            if self.tabs[t].alive {
                self.holder = Some(Holder::Tab(t, ticket));
                let delay = self.rng.range(0, 5);
                self.at(delay, Ev::LockGranted(t, ticket));
                return;
            }
        }
    }

    fn conn_faults(&mut self) -> ConnFaults {
        if self.calm || !self.rng.chance(self.plan.fault_rate) {
            return ConnFaults {
                join_delay: self.rng.range(0, 20),
                ..ConnFaults::default()
            };
        }
        let mut faults = ConnFaults {
            join_delay: self.rng.range(0, 200),
            ..ConnFaults::default()
        };
        match self.rng.below(6) {
            0 => faults.status = Some([500, 503, 429, 404, 401][self.rng.pick(5)]),
            1 => faults.drop_after = Some(self.rng.range(0, 30) as u32),
            2 => faults.stall_after = Some(self.rng.range(0, 30) as u32),
            // A Durable Streams server reads a log: it has no replay/live seam.
            3 if self.plan.profile != ServerProfile::DurableStreams => {
                faults.seam = self.rng.range(1, 8) as usize
            }
            _ => {}
        }
        faults
    }

    fn current(&self, i: usize, id: ConnectionId, serial: u64) -> bool {
        self.conns
            .get(&(i, id.get()))
            .is_some_and(|c| c.serial == serial)
    }

    fn respond(&mut self, i: usize, id: ConnectionId) {
        let Some(conn) = self.conns.get(&(i, id.get())) else {
            return;
        };
        let (transport, status, join_delay, serial) = (
            conn.transport,
            conn.faults.status,
            conn.faults.join_delay,
            conn.serial,
        );
        let now = self.ts();
        let peer = &mut self.tabs[i].peer;
        match (transport, status) {
            (Transport::EventSource, Some(_)) => {
                self.conns.remove(&(i, id.get()));
                peer.handle_failed(id, now);
            }
            (Transport::Fetch, Some(status)) => {
                self.conns.remove(&(i, id.get()));
                let retry_after =
                    (status == 429 || status == 503).then(|| Duration::from_millis(50));
                peer.handle_response(id, status, Some("text/plain"), retry_after, now);
            }
            (Transport::EventSource, None) => {
                peer.handle_open(id, now);
                self.at(join_delay, Ev::Join(i, id, serial));
            }
            (Transport::Fetch, None) => {
                peer.handle_response(id, 200, Some("text/event-stream; charset=utf-8"), None, now);
                self.at(join_delay, Ev::Join(i, id, serial));
            }
        }
        self.after_input(i);
    }

    fn join(&mut self, i: usize, id: ConnectionId) {
        let ping = self.plan.ping_ms;
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&(i, id.get())) else {
            return;
        };
        let ready = conn.join(&self.journal, now, ping);
        self.note(|| format!("tab {i}: {id} joins: {ready:?}"));
        // A plain server joins without saying so.
        let units = match self.plan.profile {
            ServerProfile::Plain => Vec::new(),
            _ => vec![ready],
        };
        self.deliver(i, id, units);
    }

    /// Makes connection `id` of tab `i` send what is due `delay` ms from now (or sooner, if it is
    /// due sooner already).
    fn schedule_send(&mut self, i: usize, id: ConnectionId, delay: u64) {
        let at = self.now + delay;
        if let Some(conn) = self.conns.get_mut(&(i, id.get())) {
            if conn.scheduled.is_none_or(|s| at < s) {
                conn.scheduled = Some(at);
                let serial = conn.serial;
                self.at(delay, Ev::Send(i, id, serial));
            }
        }
    }

    fn send(&mut self, i: usize, id: ConnectionId) {
        let (ping, now) = (self.plan.ping_ms, self.now);
        let burst = self.rng.range(1, MAX_BURST);
        let Some(conn) = self.conns.get_mut(&(i, id.get())) else {
            return;
        };
        if conn.scheduled != Some(now) {
            return; // superseded by an earlier send
        }
        conn.scheduled = None;
        let mut units = Vec::new();
        for _ in 0..burst {
            if conn.stalled {
                break;
            }
            match conn.next_unit(&self.journal, now, ping) {
                Some(unit) => {
                    if let Unit::Entry(_) = unit {
                        conn.sent += 1;
                    }
                    units.push(unit);
                }
                None => break,
            }
            if conn.faults.stall_after.is_some_and(|n| conn.sent >= n) {
                conn.stalled = true;
            }
        }
        self.deliver(i, id, units);
    }

    /// Hands `units` of connection `id` to tab `i`'s peer, the way its transport would, then
    /// schedules what comes next on it.
    fn deliver(&mut self, i: usize, id: ConnectionId, units: Vec<Unit>) {
        let now = self.ts();
        let key = (i, id.get());
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let (epoch, transport) = (conn.epoch, conn.transport);
        for unit in &units {
            if let Unit::Entry(e) = unit {
                if self.journal.epochs[epoch].entries[*e].event == "done" {
                    conn.ending = true;
                }
            }
        }
        let cut = conn.faults.drop_after.is_some_and(|n| conn.sent >= n);
        let ends = conn.ending || cut;
        let texts: Vec<String> = if self.plan.profile == ServerProfile::DurableStreams {
            let split = self.rng.chance(50);
            Conn::render_durable(&self.journal, epoch, &units, conn.next, split)
        } else {
            units
                .iter()
                .map(|unit| Conn::render(&self.journal, epoch, unit))
                .collect()
        };
        self.note(|| {
            format!(
                "tab {i}: {id} gets {}",
                short(&texts.concat().replace("\n", " "))
            )
        });
        match transport {
            Transport::EventSource => {
                for text in &texts {
                    // The peer may have dropped the connection while handling an event.
                    if !self.conns.contains_key(&key) {
                        break;
                    }
                    if text.starts_with(':') {
                        continue; // `EventSource` hides comments
                    }
                    let (event, id_field, data) = parse_one(text);
                    let raw = RawEvent {
                        event: &event,
                        id: id_field.as_deref(),
                        data: &data,
                    };
                    self.tabs[i].peer.handle_event(id, raw, None, now);
                    self.actions(i);
                }
                // The response ended: `EventSource` would retry on its own.
                if ends && self.conns.remove(&key).is_some() {
                    self.tabs[i].peer.handle_retrying(id, now);
                }
            }
            Transport::Fetch => {
                let mut bytes = Vec::new();
                for text in &texts {
                    if self.rng.chance(5) {
                        bytes.extend_from_slice(
                            Conn::render(&self.journal, epoch, &Unit::Comment).as_bytes(),
                        );
                    }
                    bytes.extend_from_slice(text.as_bytes());
                }
                if let Some(conn) = self.conns.get_mut(&key) {
                    conn.bytes.extend_from_slice(&bytes);
                }
                self.flush_body(i, id, ends);
            }
        }
        self.after_input(i);
        self.schedule_more(i, id);
    }

    /// Hands a `fetch` body's pending bytes over in random chunks while it is not paused; ends
    /// the body once everything is out if `ends`.
    fn flush_body(&mut self, i: usize, id: ConnectionId, ends: bool) {
        let key = (i, id.get());
        let now = self.ts();
        loop {
            let Some(conn) = self.conns.get_mut(&key) else {
                return;
            };
            if conn.paused {
                return;
            }
            if conn.bytes.is_empty() {
                if ends {
                    self.conns.remove(&key);
                    self.tabs[i].peer.handle_end(id, now);
                    self.actions(i);
                }
                return;
            }
            let cut = self.rng.range(1, conn.bytes.len() as u64) as usize;
            let chunk: Vec<u8> = conn.bytes.drain(..cut).collect();
            self.tabs[i].peer.handle_chunk(id, &chunk, now);
            self.actions(i);
        }
    }

    /// What is due next on a connection: more entries soon, else its next ping.
    fn schedule_more(&mut self, i: usize, id: ConnectionId) {
        let Some(conn) = self.conns.get(&(i, id.get())) else {
            return;
        };
        if conn.stalled || conn.paused || !conn.joined {
            return;
        }
        let pending = conn.next < self.journal.epochs[conn.epoch].entries.len() || conn.ending;
        let delay = if pending {
            self.rng.range(0, 3)
        } else {
            conn.next_ping.saturating_sub(self.now).max(1)
        };
        self.schedule_send(i, id, delay);
    }

    fn read(&mut self, i: usize) -> Result<(), Failure> {
        self.tabs[i].reading = false;
        if !self.tabs[i].alive {
            return Ok(());
        }
        if self.now < self.tabs[i].slow_until {
            let delay = self.tabs[i].slow_until - self.now;
            self.tabs[i].reading = true;
            self.at(delay, Ev::Read(i));
            return Ok(());
        }
        let now = self.ts();
        let bound = self
            .plan
            .limits
            .body_high
            .max(self.plan.limits.unpausable_high);
        for _ in 0..self.tabs[i].batch {
            // What the queue holds once this frame is out, before a refill.
            let left = self.tabs[i].peer.queued().saturating_sub(1);
            let Some((frame, _)) = self.tabs[i].peer.take(now) else {
                break;
            };
            self.tabs[i].dipped |= left < bound;
            let epoch = self.tabs[i]
                .peer
                .cursor()
                .map(|c| c.epoch)
                .unwrap_or_default();
            self.check_frame(i, &epoch, &frame.id, &frame.event, &frame.data)?;
        }
        if self.tabs[i].peer.queued() == 0 {
            if let Some(ending) = self.tabs[i].peer.take_ending() {
                if let Err(e) = ending {
                    return Err(self.fail(format!("tab {i} failed: {e}")));
                }
                self.tabs[i].finished =
                    self.tabs[i].finished || self.tabs[i].peer.state() == State::Closed;
            }
        }
        self.after_input(i);
        Ok(())
    }

    /// The invariant, frame by frame.
    fn check_frame(
        &mut self,
        i: usize,
        epoch: &str,
        id: &str,
        event: &str,
        data: &str,
    ) -> Result<(), Failure> {
        // A plain server or a Durable Stream has one journal, no epochs: its frames carry the
        // client's constant.
        let fixed = self.plan.profile.fixed_epoch() == Some(epoch);
        let found = if fixed {
            Some(0)
        } else {
            self.journal.epochs.iter().position(|x| x.name == epoch)
        };
        let Some(e) = found else {
            return Err(self.fail(format!("tab {i} took {id} of an unknown epoch {epoch:?}")));
        };
        let entries = &self.journal.epochs[e].entries;
        let position = if self.plan.profile == ServerProfile::DurableStreams {
            durable_entry(id, entries.len())
        } else {
            entries.iter().position(|x| x.id == id)
        };
        let Some(k) = position else {
            return Err(self.fail(format!(
                "tab {i} took {id} which epoch {epoch} does not hold"
            )));
        };
        let entry = &self.journal.epochs[e].entries[k];
        let durable = self.plan.profile == ServerProfile::DurableStreams;
        // A Durable Stream's messages are `data` frames; its close is the `done` frame.
        let wire_event = match entry.event.as_str() {
            "done" => "done",
            _ if durable => "data",
            other => other,
        };
        let wire_data = if durable && entry.event == "done" {
            ""
        } else {
            &entry.data
        };
        if wire_event != event || wire_data != data {
            return Err(self.fail(format!("tab {i} took {id} with other content")));
        }
        let tab = &self.tabs[i];
        let ok = match tab.position {
            Some((pe, pk)) if pe == e => k == pk + 1,
            Some((pe, _)) if pe > e => false,
            Some(_) => k == 0,
            None => k == 0 || tab.from_now,
        };
        if !ok {
            return Err(self.fail(format!(
                "tab {i} took entry {k} ({id}) of epoch {e} after {:?} (stats {:?}): {}",
                tab.position,
                tab.peer.stats(),
                match tab.position {
                    Some((pe, pk)) if pe == e && k <= pk => "a duplicate or out of order",
                    Some((pe, _)) if pe > e => "an older epoch",
                    _ => "a hole",
                }
            )));
        }
        self.note(|| format!("tab {i} takes {epoch}/{id}"));
        let tab = &mut self.tabs[i];
        tab.position = Some((e, k));
        tab.taken += 1;
        if event == "done" {
            tab.finished = true;
        }
        Ok(())
    }

    /// A leader again, joined on its own connection, after the leader left in the calm.
    fn note_failover(&mut self) {
        if let Some((left, None)) = self.failover {
            let led = self.tabs.iter().any(|t| {
                t.alive
                    && t.peer.role() == sse_relay::core::Role::Leader
                    && t.peer.state() == State::Live
            });
            if led {
                self.failover = Some((left, Some(self.now - left)));
            }
        }
    }

    fn check_bounds(&mut self) -> Result<(), Failure> {
        self.note_failover();
        let limits = self.plan.limits;
        // A leader serving followers reads on for them while its application is slow, for at
        // most READER_STUCK after its application last took a frame; then it hands over.
        let grace = READER_STUCK.as_millis() as u64 + 100;
        for i in 0..self.tabs.len() {
            let tab = &mut self.tabs[i];
            let bound = limits.body_high.max(limits.unpausable_high);
            // Its application brought it below the bound since the last check (frames taken, then
            // more handed in within the same step): a new period over the bound starts.
            let dipped = std::mem::take(&mut tab.dipped);
            let queued = tab.peer.queued();
            let before = tab.last_queued;
            let grew = queued > before;
            tab.last_queued = queued;
            // A Durable Streams `data` event is a batch of messages, taken whole: the one that
            // crosses the bound may carry it over by its size, and nothing comes after it.
            let one_batch_over = self.plan.profile == ServerProfile::DurableStreams
                && (before <= bound || dipped)
                && queued <= bound + MAX_BURST as usize;
            if !tab.alive || queued <= bound {
                tab.over_since = None;
                continue;
            }
            // Over the bound, a tab takes in nothing more until it is below, but for a leader in
            // its grace period (the frames it holds then are read, or handed over with the lead).
            let leading = tab.peer.serving();
            if !leading || dipped {
                tab.over_since = None;
            }
            let since = *tab.over_since.get_or_insert(self.now);
            if grew && !one_batch_over && !(leading && self.now - since <= grace) {
                let tab = &self.tabs[i];
                return Err(self.fail(format!(
                    "tab {i} ({:?}, {:?}) holds {} frames for its application, over its bound {bound}, since {since} ms",
                    tab.transport,
                    tab.peer.role(),
                    tab.peer.queued()
                )));
            }
        }
        if self.calm && !self.ending && self.now >= self.calm_check_at() {
            let open = self
                .conns
                .values()
                .filter(|c| c.joined && !c.ending)
                .count();
            if open > 1 {
                let owners: Vec<_> = self
                    .conns
                    .values()
                    .map(|c| (c.tab, self.tabs[c.tab].peer.role()))
                    .collect();
                return Err(self.fail(format!(
                    "{open} connections to the server in the calm: {owners:?}"
                )));
            }
        }
        Ok(())
    }

    fn calm_check_at(&self) -> u64 {
        self.plan.fault_ms + CALM_MS - 500
    }

    /// The schedule: every few ms until the faults stop, something happens.
    fn step(&mut self) {
        let alive: Vec<usize> = (0..self.tabs.len())
            .filter(|&i| self.tabs[i].alive)
            .collect();
        if self.now >= self.plan.fault_ms + CALM_MS {
            // The end: the stream is done; every open tab must finish (`run` reports who did not).
            self.ending = true;
            if alive.is_empty() {
                self.open_tab();
            }
            self.append("done");
            // Late attaches: tabs that open after the end must finish too (from=now ones with
            // `done` alone), while the finished leader still holds the lock or after.
            for _ in 0..self.rng.below(3) {
                let delay = self.rng.range(0, 2_000);
                self.late_tabs += 1;
                self.at(delay, Ev::OpenTab);
            }
            self.at(END_MS, Ev::Deadline);
            return;
        }
        if self.now >= self.plan.fault_ms && !self.calm {
            self.calm = true;
            self.note(|| "calm".to_owned());
            // Applications that keep up: a tab far behind rightly replays on its own connection.
            for tab in &mut self.tabs {
                tab.slow_until = 0;
                tab.read_ms = 1;
                tab.batch = 64;
            }
            if self.holder == Some(Holder::Thief) {
                self.holder = None;
                self.grant();
            }
            if alive.is_empty() {
                self.open_tab();
            }
        }
        if self.calm {
            // A third into the calm, the leader leaves: a tab must lead again soon.
            let leave_at = self.plan.fault_ms + CALM_MS / 3;
            if self.failover.is_none() && alive.len() >= 2 && self.now >= leave_at {
                if let Some(Holder::Tab(leader, _)) = self.holder {
                    self.failover = Some((self.now, None));
                    self.remove_tab(leader, true);
                }
            }
            for _ in 0..self.rng.range(1, 4) {
                self.append("token");
            }
            let next = self.rng.range(20, 120);
            self.at(next, Ev::Step);
            return;
        }
        let rate = self.plan.fault_rate;
        for _ in 0..self.rng.range(0, 5) {
            self.append("token");
        }
        if self.rng.chance(rate / 4) && alive.len() < self.plan.max_tabs {
            self.open_tab();
        }
        if self.rng.chance(rate / 6) && !alive.is_empty() {
            let i = alive[self.rng.pick(alive.len())];
            let clean = self.rng.chance(50);
            self.remove_tab(i, clean);
        }
        if self.rng.chance(rate / 10) && self.plan.profile == ServerProfile::Relay {
            self.note(|| "reset".to_owned());
            self.journal.reset();
            // The server ends every open stream of the key.
            let keys: Vec<_> = self.conns.keys().copied().collect();
            for key in keys {
                if let Some(conn) = self.conns.remove(&key) {
                    let now = self.ts();
                    match conn.transport {
                        Transport::EventSource => {
                            self.tabs[conn.tab].peer.handle_retrying(conn.id, now)
                        }
                        Transport::Fetch => self.tabs[conn.tab].peer.handle_end(conn.id, now),
                    }
                    self.after_input(conn.tab);
                }
            }
        }
        if self.rng.chance(rate / 8) {
            if let Some(Holder::Tab(t, ticket)) = self.holder {
                self.note(|| format!("a thief steals the lock from tab {t}"));
                self.holder = Some(Holder::Thief);
                self.at(0, Ev::LockLost(t, ticket));
                let hold = self.rng.range(10, 400);
                self.at(hold, Ev::ThiefLeaves);
            }
        }
        if self.rng.chance(rate / 3) && !alive.is_empty() {
            let i = alive[self.rng.pick(alive.len())];
            // Mostly brief; sometimes long enough that a leader hands over.
            let slow = if self.rng.chance(20) {
                self.rng.range(600, 2_500)
            } else {
                self.rng.range(50, 600)
            };
            self.tabs[i].slow_until = self.now + slow;
        }
        if self.rng.chance(rate / 3) && !alive.is_empty() {
            let to = alive[self.rng.pick(alive.len())];
            let text = self.forgery();
            self.note(|| format!("forged to tab {to}: {}", short(&text)));
            self.at(0, Ev::Message(to, text));
        }
        let next = self.rng.range(5, 60);
        self.at(next, Ev::Step);
    }

    /// A hostile or stale message: noise, a replay of a recent message, or a leader claim.
    fn forgery(&mut self) -> String {
        match self.rng.below(4) {
            0 => "{\"v\":1,\"t\":\"frames\"".to_owned(),
            1 => format!(
                "{{\"v\":2,\"t\":\"ping\",\"from\":\"x\",\"term\":{},\"seq\":1}}",
                self.rng.below(9)
            ),
            2 if !self.recent.is_empty() => {
                // A replay from the same epoch only: an impersonator replaying another epoch's
                // frames is the documented limit of a channel any same-origin script can post to.
                let epoch = self.journal.current().name.clone();
                let candidates: Vec<&String> = self
                    .recent
                    .iter()
                    .filter(|m| {
                        m.contains(&format!("\"epoch\":\"{epoch}\"")) || !m.contains("\"epoch\"")
                    })
                    .collect();
                if candidates.is_empty() {
                    return "null".to_owned();
                }
                candidates[self.rng.pick(candidates.len())].clone()
            }
            _ => format!(
                "{{\"v\":1,\"t\":\"leader\",\"from\":\"forged{}\",\"term\":{},\"seq\":{}}}",
                self.rng.below(3),
                self.rng.range(1, 50),
                self.rng.range(1, 5)
            ),
        }
    }

    fn append(&mut self, event: &str) {
        let data = format!("{{\"n\":{}}}", self.rng.below(1_000_000));
        if self.journal.append(event, data, self.now).is_none() {
            return;
        }
        let live: Vec<(usize, ConnectionId)> = self
            .conns
            .values()
            .filter(|c| c.joined && c.epoch == self.journal.current_index())
            .map(|c| (c.tab, c.id))
            .collect();
        for (i, id) in live {
            let delay = self.rng.range(0, 3);
            self.schedule_send(i, id, delay);
        }
    }
}

/// The fields of one rendered event.
/// The journal entry a Durable Stream's frame id names: `<offset>,<k>` is the k-th message after
/// the offset (`o<n>`: after n messages; `-1`: the beginning), `<offset>,closed` the close.
fn durable_entry(id: &str, len: usize) -> Option<usize> {
    let (offset, k) = id.rsplit_once(',')?;
    if k == "closed" {
        return len.checked_sub(1);
    }
    let base: usize = match offset {
        "-1" => 0,
        o => o.strip_prefix('o')?.parse().ok()?,
    };
    let k: usize = k.parse().ok()?;
    (base + k).checked_sub(1).filter(|&i| i < len)
}

fn parse_one(text: &str) -> (String, Option<String>, String) {
    let (mut event, mut id, mut data) = ("message".to_owned(), None, String::new());
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event: ") {
            event = v.to_owned();
        } else if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            data = v.strip_prefix(' ').unwrap_or(v).to_owned();
        }
    }
    (event, id, data)
}

fn short(text: &str) -> String {
    const LIMIT: usize = 300;
    let mut out = String::new();
    for c in text.chars().take(LIMIT) {
        out.push(c);
    }
    if text.len() > LIMIT {
        let _ = write!(out, "… ({} bytes)", text.len());
    }
    out
}

/// Runs one seed.
pub fn run_seed(seed: u64, keep_trace: usize) -> Result<Outcome, Failure> {
    World::new(Plan::from_seed(seed), keep_trace).run()
}
