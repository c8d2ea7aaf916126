//! `GET /streams/{key}/events`: the SSE endpoint of protocol v1.
//!
//! Each connection runs as its own task that writes pre-rendered bytes into a small channel
//! feeding the response body. The order of work is what makes the `ready` frame honest:
//!
//! 1. join the key's live path (after `joinDelayMs`, if given),
//! 2. snapshot the tail, so that live entries are exactly those after it ([`Journal::join`]),
//! 3. send `ready` with that tail and the epoch,
//! 4. replay retained entries after the cursor up to the tail, in chunks of about 64 KiB,
//! 5. tail live entries after the tail, skipping anything already sent.
//!
//! `readyEarly=1` swaps this for the join race (open-is-not-joined): snapshot, `ready`, wait, then join.
//! Entries appended in that window are never delivered on that connection.
//!
//! Live faults (`POST /streams/{key}/faults`) reach every open connection on the key's fault
//! channel: a connection acts on them wherever it waits (the join delay, the live tail, a
//! stall) and between replay chunks.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::error::ApiError;
use crate::faults::{authorized, garbage_frames, unauthorized, Knobs, LineEnd, LiveFault, Taken};
use crate::id::{CursorError, Id};
use crate::journal::{Entry, Head, Journal, JournalError, Live, ReadLimits, StreamKey};
use crate::params::{self, Pairs};
use crate::state::{shutdown_requested, App};
use crate::streams::ConnectionGuard;

/// Replay and live writes are gathered into body chunks of about this size.
pub const CHUNK: usize = 64 * 1024;

/// Body chunks in flight between a connection task and the HTTP connection.
const CHANNEL_CHUNKS: usize = 4;

/// With `chunk=1`, the pause after each byte (about 1 KB/s: a knob for short streams).
const BYTE_PAUSE: Duration = Duration::from_millis(1);

/// Where a connection starts when it has no (usable) cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum From {
    /// Replay the whole retained journal.
    Start,
    /// Replay nothing; deliver only entries after the tail snapshotted at join time.
    Now,
}

/// The protocol parameters of one events request, before the journal is consulted.
#[derive(Debug)]
struct EventsRequest {
    cursor: Option<String>,
    epoch: Option<String>,
    from: From,
    knobs: Knobs,
}

/// Where replay starts, resolved against the journal.
#[derive(Clone, Debug)]
enum Start {
    /// After this cursor, which was parsed in `epoch`.
    After { cursor: Id, epoch: String },
    /// From the oldest retained entry.
    Beginning,
    /// Nothing replayed.
    Now,
}

impl EventsRequest {
    /// Parses the request; the fault knobs only when `faults` is on (otherwise they are
    /// unknown parameters, ignored).
    fn parse(pairs: &Pairs, headers: &HeaderMap, faults: bool) -> Result<EventsRequest, ApiError> {
        let header_cursor = match headers.get("last-event-id") {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| {
                ApiError::bad_request("the Last-Event-ID header is not visible ASCII")
            })?),
        };
        // The header wins: it is the browser's own automatic reconnect, fresher than the
        // cursor baked into the URL the EventSource was created with. Empty means absent.
        let cursor = header_cursor
            .filter(|c| !c.is_empty())
            .or_else(|| params::last(pairs, "lastEventId").filter(|c| !c.is_empty()))
            .map(str::to_owned);
        let from = params::choice(pairs, "from", "start or now", |v| match v {
            "start" => Some(From::Start),
            "now" => Some(From::Now),
            _ => None,
        })?
        .unwrap_or(From::Start);
        Ok(EventsRequest {
            cursor,
            epoch: params::last(pairs, "epoch")
                .filter(|e| !e.is_empty())
                .map(str::to_owned),
            from,
            knobs: if faults {
                Knobs::parse(pairs)?
            } else {
                Knobs::default()
            },
        })
    }

    /// Resolves the start against the journal: a cursor from another epoch is ignored (its ids
    /// may have restarted); otherwise it must parse in the journal's id mode.
    fn start(&self, head: &Head) -> Result<Start, CursorError> {
        if self.epoch.as_deref().is_some_and(|e| e != head.epoch) {
            return Ok(Start::Beginning);
        }
        Ok(match (&self.cursor, self.from) {
            (Some(cursor), _) => Start::After {
                cursor: Id::parse(cursor, head.mode)?,
                epoch: head.epoch.clone(),
            },
            (None, From::Start) => Start::Beginning,
            (None, From::Now) => Start::Now,
        })
    }
}

/// The events handler: validates everything up front (so errors get a proper status), checks
/// `requireAuth`, reads the journal's head (503 if the journal is unavailable), applies the
/// `status`/`contentType` faults, then answers 200 at once and lets the connection task do the
/// join — a 200 is not a join, which is exactly what clients must not assume.
pub async fn events(
    State(app): State<App>,
    Path(key): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = StreamKey::parse(&key)?;
    let request = EventsRequest::parse(&pairs, &headers, app.faults)?;
    if let Some(token) = &request.knobs.require_auth {
        // Before the faults: an unauthenticated request does not count towards `failCount`.
        if !authorized(&headers, token) {
            return Ok(unauthorized());
        }
    }
    let head = app.journal.head(&key).await?;
    let start = request.start(&head)?;
    let stream = app.streams.get(&key);
    if let Some(fail) = &request.knobs.fail {
        if stream.count_fault_connection(&head.epoch) <= request.knobs.fail_count {
            return Ok(fail.response(request.knobs.retry_after));
        }
    }
    // This is an SSE connection: it takes its share of the armed faults, and from now on it
    // gets the key's live faults.
    let faults = stream.live_faults();
    let Taken {
        tail_seam,
        join_delay,
    } = stream.armed().take();
    let mut knobs = request.knobs;
    if let Some(delay) = join_delay {
        knobs.join_delay = delay;
    }

    // Byte by byte, the HTTP side takes each byte before the next is queued.
    let (tx, rx) = mpsc::channel(if knobs.chunk { 1 } else { CHANNEL_CHUNKS });
    let limit = limit(&knobs);
    let wire = Wire {
        chunk: knobs.chunk,
        line_end: knobs.line_end,
    };
    let connection = Connection {
        _guard: stream.connection(),
        journal: Arc::clone(&app.journal),
        key,
        knobs,
        tail_seam,
        start,
        out: Out::new(tx, limit, wire),
        ping: app.ping,
        shutdown: app.shutdown.clone(),
        faults,
        ready_sent: false,
    };
    tokio::spawn(connection.run());

    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(ChunkStream(rx)),
    )
        .into_response())
}

/// The per-connection frame limit from `dropAfter`/`stallAfter`: whichever comes first, and
/// `dropAfter` on a tie.
fn limit(knobs: &Knobs) -> Option<(u64, End)> {
    match (knobs.drop_after, knobs.stall_after) {
        (Some(d), Some(s)) if s < d => Some((s, End::Stall)),
        (Some(d), _) => Some((d, End::Dropped)),
        (None, Some(s)) => Some((s, End::Stall)),
        (None, None) => None,
    }
}

/// Why a connection task stops writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The client went away.
    ClientGone,
    /// The `done` entry was sent (or the cursor is already past it).
    Done,
    /// `dropAfter` was reached.
    Dropped,
    /// `stallAfter` was reached, or a live `stall`: stay open, silent.
    Stall,
    /// A live `cut`: the response ends; the client resumes from its cursor.
    Cut,
    /// The live subscription fell behind the channel's capacity; the client resumes from its
    /// cursor.
    Lagged,
    /// The journal was reset: the client reconnects into the new epoch.
    Reset,
    /// The journal became unavailable: the client backs off and resumes from its cursor.
    Unavailable,
    /// The server is shutting down.
    Shutdown,
}

/// The body side of a connection: a channel of chunks.
struct ChunkStream(mpsc::Receiver<Bytes>);

impl futures_core::Stream for ChunkStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(Ok))
    }
}

/// The shape of the bytes on the wire (`chunk`, `lineEnd`), applied to everything a connection
/// writes, so replay, seam, live frames, pings and noise all get it.
#[derive(Clone, Copy, Debug)]
struct Wire {
    /// Every byte its own body chunk.
    chunk: bool,
    line_end: LineEnd,
}

/// The writing side of a connection: gathers bytes into chunks and counts journaled frames.
struct Out {
    tx: mpsc::Sender<Bytes>,
    buf: BytesMut,
    journaled: u64,
    limit: Option<(u64, End)>,
    wire: Wire,
}

impl Out {
    fn new(tx: mpsc::Sender<Bytes>, limit: Option<(u64, End)>, wire: Wire) -> Out {
        Out {
            tx,
            // Grown on demand: an idle live connection holds no chunk-sized buffer (that is most
            // of a connection's memory when thousands are held); replay reserves a whole chunk.
            buf: BytesMut::new(),
            journaled: 0,
            limit,
            wire,
        }
    }

    /// Journaled frames this connection may still send before its limit acts.
    fn budget(&self) -> usize {
        match self.limit {
            Some((n, _)) => usize::try_from(n.saturating_sub(self.journaled)).unwrap_or(usize::MAX),
            None => usize::MAX,
        }
    }

    /// Makes room for a whole chunk (before a replay batch), so it is gathered without
    /// reallocating.
    fn reserve_chunk(&mut self) {
        self.buf.reserve(CHUNK + 1024);
    }

    /// Queues bytes that are not a journal entry (ready, ping, noise).
    fn unjournaled(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Queues one journal entry; flushes when the chunk is full, and ends the connection after
    /// `done` or when the frame limit is reached.
    async fn journaled(&mut self, entry: &Entry) -> Result<(), End> {
        self.buf.extend_from_slice(&entry.bytes);
        self.journaled += 1;
        if entry.done {
            self.flush().await?;
            return Err(End::Done);
        }
        if let Some((n, end)) = self.limit {
            if self.journaled >= n {
                self.flush().await?;
                return Err(end);
            }
        }
        if self.buf.len() >= CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Hands the queued bytes to the HTTP connection.
    async fn flush(&mut self) -> Result<(), End> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut chunk = self.buf.split();
        self.wire.line_end.apply(&mut chunk);
        let chunk = chunk.freeze();
        if !self.wire.chunk {
            return self.tx.send(chunk).await.map_err(|_| End::ClientGone);
        }
        for at in 0..chunk.len() {
            self.tx
                .send(chunk.slice(at..at + 1))
                .await
                .map_err(|_| End::ClientGone)?;
            // The pause lets the HTTP connection write this byte as its own chunk and flush it
            // (it finds the body pending), and lets the client read it, before the next one
            // exists. Without it a browser reads the whole burst at once and sees no split.
            tokio::time::sleep(BYTE_PAUSE).await;
        }
        Ok(())
    }

    /// Resolves when the HTTP connection dropped the body (the client went away).
    async fn closed(&self) {
        self.tx.closed().await
    }
}

/// One SSE connection, run as its own task.
struct Connection {
    journal: Arc<dyn Journal>,
    key: StreamKey,
    /// Counts the connection as open while the task lives.
    _guard: ConnectionGuard,
    knobs: Knobs,
    /// An armed `dupSeam`: after the replay, send the last this-many entries up to the tail
    /// again, whether this connection replayed them or its client had them already.
    tail_seam: usize,
    start: Start,
    out: Out,
    ping: Duration,
    shutdown: watch::Receiver<bool>,
    /// The key's live faults.
    faults: broadcast::Receiver<LiveFault>,
    /// Whether `ready` went out (live garbage before it waits for it).
    ready_sent: bool,
}

/// The next live fault. Faults skipped because the connection fell behind are not worth
/// ending it for; the channel never closes while a connection holds its stream.
async fn next_fault(faults: &mut broadcast::Receiver<LiveFault>) -> LiveFault {
    loop {
        match faults.recv().await {
            Ok(fault) => return fault,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// How a connection ends when the journal fails it: a reset (the epoch it served is gone) or
/// an outage; both end the response and the client resumes from its cursor.
fn journal_end(err: JournalError) -> End {
    match err {
        JournalError::EpochChanged { .. } => End::Reset,
        _ => End::Unavailable,
    }
}

/// The shared noise of `garbage=1` and live garbage.
fn noise() -> &'static Bytes {
    static NOISE: OnceLock<Bytes> = OnceLock::new();
    NOISE.get_or_init(|| Bytes::from(garbage_frames()))
}

impl Connection {
    async fn run(mut self) {
        let end = match self.serve().await {
            Ok(never) => match never {},
            Err(end) => end,
        };
        if end == End::Stall {
            // Silent but open: no frames, no pings, until the client gives up (or a live cut).
            loop {
                tokio::select! {
                    _ = self.out.closed() => break,
                    _ = shutdown_requested(&mut self.shutdown) => break,
                    fault = next_fault(&mut self.faults) => if fault == LiveFault::Cut {
                        break;
                    },
                }
            }
        }
        // Returning drops the sender, which ends the response body.
    }

    async fn serve(&mut self) -> Result<Infallible, End> {
        let (mut live, snap) = if self.knobs.ready_early {
            let snap = self.journal.head(&self.key).await.map_err(journal_end)?;
            let tail = self.announced_tail(&snap).await?;
            self.send_ready(&snap.epoch, tail).await?;
            self.pause(self.knobs.join_delay).await?;
            let live: Live = self
                .journal
                .subscribe(&self.key, &snap.epoch)
                .await
                .map_err(journal_end)?;
            (live, snap)
        } else {
            self.pause(self.knobs.join_delay).await?;
            let (live, snap) = self.journal.join(&self.key).await.map_err(journal_end)?;
            let tail = self.announced_tail(&snap).await?;
            self.send_ready(&snap.epoch, tail).await?;
            (live, snap)
        };

        // A cursor parsed in an epoch that has since been reset is meaningless: start over.
        let (replay, after, mut floor) = match &self.start {
            Start::After { cursor, epoch } if *epoch == snap.epoch => {
                (true, Some(*cursor), snap.tail.max(Some(*cursor)))
            }
            Start::After { .. } | Start::Beginning => (true, None, snap.tail),
            Start::Now => (false, None, snap.tail),
        };

        let mut seam = VecDeque::new();
        if let (true, Some(upto)) = (replay, snap.tail) {
            self.replay(&snap.epoch, after, upto, &mut seam).await?;
        }
        if snap.done {
            // The done entry was replayed above (which already ended the connection), or the
            // cursor is at or past it: nothing more will ever come.
            self.out.flush().await?;
            return Err(End::Done);
        }
        self.pending_faults()?;
        for entry in seam.drain(..) {
            self.out.journaled(&entry).await?;
        }
        if let (true, Some(upto)) = (self.tail_seam > 0, snap.tail) {
            let mut again = Vec::new();
            self.journal
                .read_last(&self.key, &snap.epoch, upto, self.tail_seam, &mut again)
                .await
                .map_err(journal_end)?;
            for entry in &again {
                self.out.journaled(entry).await?;
            }
        }
        self.out.flush().await?;

        let mut ping = tokio::time::interval_at(Instant::now() + self.ping, self.ping);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                batch = live.recv() => match batch {
                    Ok(batch) => {
                        for entry in batch.iter() {
                            if Some(entry.id) > floor {
                                floor = Some(entry.id);
                                self.out.journaled(entry).await?;
                            }
                        }
                        self.out.flush().await?;
                    }
                    Err(RecvError::Lagged(_)) => return Err(End::Lagged),
                    Err(RecvError::Closed) => return Err(End::Reset),
                },
                _ = ping.tick() => {
                    self.out.unjournaled(b"event: ping\ndata:\n\n");
                    self.out.flush().await?;
                }
                fault = next_fault(&mut self.faults) => {
                    self.live_fault(fault)?;
                    self.out.flush().await?;
                }
                _ = self.out.closed() => return Err(End::ClientGone),
                _ = shutdown_requested(&mut self.shutdown) => return Err(End::Shutdown),
            }
        }
    }

    /// Sends retained entries with `after < id <= upto`, reading the journal in chunks of about
    /// [`CHUNK`] bytes. Keeps the last `dupSeam` of them in `seam`.
    async fn replay(
        &mut self,
        epoch: &str,
        mut after: Option<Id>,
        upto: Id,
        seam: &mut VecDeque<Entry>,
    ) -> Result<(), End> {
        let keep = self.knobs.dup_seam;
        let mut batch = Vec::new();
        loop {
            self.pending_faults()?;
            batch.clear();
            let limits = ReadLimits {
                entries: self.out.budget(),
                bytes: CHUNK,
            };
            self.journal
                .read_range(&self.key, epoch, after, upto, limits, &mut batch)
                .await
                .map_err(journal_end)?;
            let Some(last) = batch.last() else {
                return Ok(());
            };
            after = Some(last.id);
            self.out.reserve_chunk();
            for entry in &batch {
                if keep > 0 {
                    if seam.len() == keep {
                        seam.pop_front();
                    }
                    seam.push_back(entry.clone());
                }
                self.out.journaled(entry).await?;
            }
        }
    }

    /// The tail `ready` announces. It is the snapshot's, except for `from=now` on a stream that is
    /// done: then nothing will ever come after the tail, so the connection starts just before the
    /// `done` entry and replays it, and a late live-only client learns the stream is over instead
    /// of waiting forever.
    async fn announced_tail(&mut self, snap: &Head) -> Result<Option<Id>, End> {
        let (Start::Now, true, Some(done)) = (&self.start, snap.done, snap.tail) else {
            return Ok(snap.tail);
        };
        let mut last = Vec::new();
        self.journal
            .read_last(&self.key, &snap.epoch, done, 2, &mut last)
            .await
            .map_err(journal_end)?;
        let before = (last.len() == 2).then(|| last[0].id);
        self.start = match before {
            Some(cursor) => Start::After {
                cursor,
                epoch: snap.epoch.clone(),
            },
            None => Start::Beginning,
        };
        Ok(before)
    }

    /// Sends `ready` (and, with `garbage=1`, the noise right after it) and flushes.
    async fn send_ready(&mut self, epoch: &str, tail: Option<Id>) -> Result<(), End> {
        let data = serde_json::json!({
            "tail": tail.map(|t| t.to_string()),
            "epoch": epoch,
        });
        self.out
            .unjournaled(format!("event: ready\ndata: {data}\n\n").as_bytes());
        self.ready_sent = true;
        if self.knobs.garbage {
            self.out.unjournaled(noise());
        }
        self.out.flush().await
    }

    /// Acts on one live fault: a cut or a stall ends the serving loop; garbage is queued (or,
    /// before `ready`, sent right after it, so that `ready` stays the first frame).
    fn live_fault(&mut self, fault: LiveFault) -> Result<(), End> {
        match fault {
            LiveFault::Cut => Err(End::Cut),
            LiveFault::Stall => Err(End::Stall),
            LiveFault::Garbage if self.ready_sent => {
                self.out.unjournaled(noise());
                Ok(())
            }
            LiveFault::Garbage => {
                self.knobs.garbage = true;
                Ok(())
            }
        }
    }

    /// Acts on the live faults received so far, where the task does not wait (between replay
    /// chunks). Queued garbage goes out with the next flush.
    fn pending_faults(&mut self) -> Result<(), End> {
        loop {
            match self.faults.try_recv() {
                Ok(fault) => self.live_fault(fault)?,
                Err(TryRecvError::Lagged(_)) => continue,
                Err(TryRecvError::Empty | TryRecvError::Closed) => return Ok(()),
            }
        }
    }

    /// Waits `delay`, unless the client leaves, the server stops, or a live cut or stall comes
    /// first.
    async fn pause(&mut self, delay: Duration) -> Result<(), End> {
        if delay.is_zero() {
            return Ok(());
        }
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return Ok(()),
                fault = next_fault(&mut self.faults) => self.live_fault(fault)?,
                _ = self.out.closed() => return Err(End::ClientGone),
                _ = shutdown_requested(&mut self.shutdown) => return Err(End::Shutdown),
            }
        }
    }
}
