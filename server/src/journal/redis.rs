//! The Redis Streams journal: several server processes over one Redis serve one stream.
//!
//! Layout, per stream key `K` (the `{K}` hash tag keeps a key's data in one cluster slot):
//!
//! - `<prefix>:{K}:meta`, a hash: `epoch`, `ids` (`numeric` or `redis`), `done` (`0`/`1`);
//! - `<prefix>:{K}:e:<epoch>`, the stream of entries of that epoch, fields `e` (event) and
//!   `d` (data). Ids are assigned by Redis: `XADD … *` (`<ms>-<seq>`, the `redis` id mode) or
//!   `XADD … 0-*` (`0-1`, `0-2`, …, shown to clients as `1`, `2`, …: the `numeric` id mode).
//!
//! Every step that must be atomic is one Lua script: create the key in a fresh epoch on first
//! use, append (epoch and `done` checked in the same script as the `XADD`s, so an append after
//! `done` is refused and an append racing a reset lands in exactly one epoch), snapshot the head
//! (`XREVRANGE … COUNT 1` with the epoch), reset. A read of a range is a `MULTI` of the epoch
//! check and the `XRANGE`. Retention is `XADD … MAXLEN ~ N`.
//!
//! **Reset** writes a marker entry (field `r`) into the old epoch's stream, gives that stream a
//! minute to live (`PEXPIRE`), and switches the hash to a new epoch whose stream starts empty
//! (ids restart). The marker is how every process notices: its live reader reads the marker
//! in order, right after the old epoch's last entry, and closes the subscriptions of that epoch.
//! A reader idle for a whole block period also checks the hash (a backstop for a marker it
//! could not read, e.g. after the old stream expired).
//!
//! **Live path.** One reader task per key per process, on its own connection (a blocking read
//! holds its connection), loops `XREAD BLOCK <ms> STREAMS <stream> <last id>` from an explicit
//! id, never `$`: it starts at the tail it snapshotted when it started and then only advances by
//! the ids it read. It fans every batch out to this process's connections of the key through a
//! [`broadcast`] channel. A connection joins by subscribing to that channel *first*, then
//! waiting until the reader has its starting tail, then snapshotting the head: the reader's
//! start is at or below the connection's tail, so every entry after the connection's tail is
//! read after the connection subscribed and reaches it.
//!
//! **Failures.** A command that fails to reach Redis is [`JournalError::Unavailable`]; the
//! reader ends on such an error (its subscriptions close, so connections end and their clients
//! resume later) and a new one starts with the next join. A Redis that restarted without its
//! data has no hash for the key: the next use creates it in a **new epoch**, so clients see a
//! reset; ids never restart silently under an old epoch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, Client, RedisError, Script, Value};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::{
    new_epoch, render_entries, validate_event, Appended, BoxFuture, Entry, Frame, Head, Journal,
    JournalError, Live, Published, ReadLimits, StreamKey, LIVE_CAPACITY,
};
use crate::id::{Id, IdMode};

const ENGINE: &str = "redis";

/// Entries one live read or one replay read asks Redis for at most.
const READ_COUNT: usize = 4096;

/// How long a joining connection keeps trying when the key is reset under it.
const JOIN_PATIENCE: Duration = Duration::from_secs(5);

/// How long the old epoch's stream lives after a reset (for readers still reading it).
const OLD_EPOCH_TTL_MS: u64 = 60_000;

/// Settings of a [`RedisJournal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisOptions {
    /// Prefix of every Redis key this journal writes (default `sse-relay`).
    pub prefix: String,
    /// Id mode of keys created by this process (a key's mode is stored in Redis; the first
    /// process to use a key decides it).
    pub ids: IdMode,
    /// Entries kept per key, approximately (`MAXLEN ~`: at least this many; Redis trims
    /// whole internal nodes, 100 entries each by default).
    pub retention: usize,
    /// How long a live read blocks before it checks on its key (default 2 s).
    pub block: Duration,
    /// How long any other command may take before Redis counts as unavailable (default 2 s).
    pub timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: "sse-relay".to_owned(),
            ids: IdMode::Redis,
            retention: 1_000_000,
            block: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
        }
    }
}

/// Creates the key's hash in the candidate epoch `ARGV[1]`, mode `ARGV[2]`, when it is missing
/// (first use, or a Redis that lost its data), and returns epoch, mode and done.
const PRELUDE: &str = r"
local function head()
  local m = redis.call('HMGET', KEYS[1], 'epoch', 'ids', 'done')
  if not m[1] then
    redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'ids', ARGV[2], 'done', '0')
    return ARGV[1], ARGV[2], false
  end
  return m[1], m[2], m[3] == '1'
end
local function spec(mode)
  if mode == 'redis' then return '*' end
  return '0-*'
end
";

/// `{epoch, mode, done, tail or '', length}`. ARGV[3]: the prefix of the key's streams.
const HEAD: &str = r"
local epoch, mode, done = head()
local stream = ARGV[3] .. epoch
local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
local tail = ''
if #last > 0 then tail = last[1][1] end
return {epoch, mode, done and '1' or '0', tail, redis.call('XLEN', stream)}
";

/// ARGV[4]: the epoch the caller expects ('' for any); ARGV[5]: retention; ARGV[6..]: event,
/// data pairs. `{'ok'|'done'|'epoch', epoch, mode, ids…}`.
const APPEND: &str = r"
local epoch, mode, done = head()
if ARGV[4] ~= '' and ARGV[4] ~= epoch then return {'epoch', epoch, mode} end
if done then return {'done', epoch, mode} end
local stream = ARGV[3] .. epoch
local out = {'ok', epoch, mode}
for i = 6, #ARGV, 2 do
  if done then
    out[1] = 'done'
    return out
  end
  out[#out + 1] = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[5], spec(mode), 'e', ARGV[i], 'd', ARGV[i + 1])
  if ARGV[i] == 'done' then
    done = true
    redis.call('HSET', KEYS[1], 'done', '1')
  end
end
return out
";

/// ARGV[4]: the new mode ('' keeps it); ARGV[5]: how long the old stream lives, in ms.
/// `{epoch, mode}` of the new epoch (ARGV[1]).
const RESET: &str = r"
local m = redis.call('HMGET', KEYS[1], 'epoch', 'ids')
local mode = ARGV[4]
if mode == '' then mode = m[2] or ARGV[2] end
if m[1] then
  local old = ARGV[3] .. m[1]
  redis.call('XADD', old, spec(m[2]), 'r', '1')
  redis.call('PEXPIRE', old, ARGV[5])
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'ids', mode, 'done', '0')
return {ARGV[1], mode}
";

/// The scripts, compiled once (their SHA1 computed; `EVALSHA`, falling back to `EVAL`).
#[derive(Debug)]
struct Scripts {
    head: Script,
    append: Script,
    reset: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let script = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Scripts {
            head: script(HEAD),
            append: script(APPEND),
            reset: script(RESET),
        }
    }
}

/// The live path of one key in this process: the fan-out channel and how its reader is doing.
#[derive(Debug)]
struct Hub {
    tx: broadcast::Sender<Published>,
    state: watch::Receiver<HubState>,
}

#[derive(Clone, Debug)]
enum HubState {
    /// The reader is snapshotting its starting tail.
    Starting,
    /// The reader reads this epoch from its starting tail on.
    Running { epoch: String },
    /// The reader could not start.
    Failed(JournalError),
}

#[derive(Debug)]
struct Inner {
    client: Client,
    conn: ConnectionManager,
    options: RedisOptions,
    scripts: Scripts,
    hubs: Mutex<HashMap<StreamKey, Arc<Hub>>>,
}

/// A [`Journal`] on Redis Streams (Redis 7 or later). Cheap to clone; clones share the
/// connection and the live readers. See the module documentation for the layout.
#[derive(Clone, Debug)]
pub struct RedisJournal {
    inner: Arc<Inner>,
}

fn unavailable(err: RedisError) -> JournalError {
    use redis::{ErrorKind, ServerErrorKind};
    let detail = err.to_string().replace('\n', " ");
    // A Redis still loading its data after a restart, or a failing-over one, is unavailable too.
    let passing = matches!(
        err.kind(),
        ErrorKind::Io
            | ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
            )
    );
    if passing
        || err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
    {
        JournalError::Unavailable {
            engine: ENGINE,
            detail,
        }
    } else {
        JournalError::Engine {
            engine: ENGINE,
            detail,
        }
    }
}

fn bad_reply(what: &str) -> JournalError {
    JournalError::Engine {
        engine: ENGINE,
        detail: format!("unexpected reply to {what}"),
    }
}

/// A cursor as a Redis stream id: numeric `n` is `0-n`.
fn redis_id(id: Id) -> String {
    match id {
        Id::Numeric(n) => format!("0-{n}"),
        Id::Redis { ms, seq } => format!("{ms}-{seq}"),
    }
}

/// A Redis stream id as a cursor of `mode`.
fn parse_id(raw: &str, mode: IdMode) -> Option<Id> {
    let id = Id::parse(raw, IdMode::Redis).ok()?;
    match (mode, id) {
        (IdMode::Redis, id) => Some(id),
        (IdMode::Numeric, Id::Redis { ms: 0, seq }) => Some(Id::Numeric(seq)),
        (IdMode::Numeric, _) => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn array(value: Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

/// Parsed stream entries: rendered journal entries, the raw id of the last one read, and
/// whether a reset marker ended them.
struct Read {
    entries: Vec<Entry>,
    last: Option<String>,
    reset: bool,
}

/// Parses `[[id, [field, value, …]], …]` into entries of `mode`, stopping at a reset marker.
fn parse_entries(items: Vec<Value>, mode: IdMode) -> Result<Read, JournalError> {
    let mut frames = Vec::with_capacity(items.len());
    let mut last = None;
    let mut reset = false;
    for item in items {
        let mut parts = array(item).ok_or_else(|| bad_reply("a stream read"))?;
        let fields = parts.pop().and_then(array);
        let raw = parts.pop().as_ref().and_then(text);
        let (Some(fields), Some(raw)) = (fields, raw) else {
            return Err(bad_reply("a stream read"));
        };
        let (mut event, mut data) = (None, String::new());
        for pair in fields.chunks(2) {
            match (pair.first().and_then(text).as_deref(), pair.get(1)) {
                (Some("e"), Some(v)) => event = text(v),
                (Some("d"), Some(v)) => data = text(v).unwrap_or_default(),
                (Some("r"), _) => reset = true,
                _ => {}
            }
        }
        if reset {
            break;
        }
        let id = parse_id(&raw, mode).ok_or_else(|| bad_reply("a stream read (id)"))?;
        let event = event.ok_or_else(|| bad_reply("a stream read (no event)"))?;
        last = Some(raw);
        frames.push((id, event, data));
    }
    let entries = render_entries(
        frames
            .iter()
            .map(|(id, e, d)| (*id, e.as_str(), d.as_str())),
    );
    Ok(Read {
        entries,
        last,
        reset,
    })
}

fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RedisJournal {
    /// A journal on the Redis at `url` (`redis://host:port/db`). Connects lazily: a Redis that
    /// is down now makes calls fail with [`JournalError::Unavailable`] until it is up. Must be
    /// called inside a tokio runtime. Fails only for a URL that does not parse.
    pub fn open(url: &str, options: RedisOptions) -> Result<RedisJournal, RedisError> {
        let client = Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(RedisJournal {
            inner: Arc::new(Inner {
                client,
                conn,
                options,
                scripts: Scripts::new(),
                hubs: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Checks that Redis answers (a `PING`).
    pub async fn ping(&self) -> Result<(), JournalError> {
        let mut conn = self.inner.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

impl Inner {
    fn meta_key(&self, key: &StreamKey) -> String {
        format!("{}:{{{key}}}:meta", self.options.prefix)
    }

    fn stream_prefix(&self, key: &StreamKey) -> String {
        format!("{}:{{{key}}}:e:", self.options.prefix)
    }

    /// A script invocation on `key` with the common arguments (candidate epoch, default mode,
    /// stream prefix) in ARGV[1..3].
    fn invocation<'s>(&self, script: &'s Script, key: &StreamKey) -> redis::ScriptInvocation<'s> {
        let mut invocation = script.key(self.meta_key(key));
        invocation
            .arg(new_epoch())
            .arg(self.options.ids.as_str())
            .arg(self.stream_prefix(key));
        invocation
    }

    /// Runs a script. A connection that broke while Redis was away fails its next command and
    /// reconnects; a script that only reads (or creates the key) is tried once more then, so
    /// the first request after an outage does not fail for nothing. Writes are never retried
    /// here: whether a lost answer's write landed is the caller's to find out.
    async fn run(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
        retry: bool,
    ) -> Result<Value, JournalError> {
        let mut conn = self.conn.clone();
        match invocation.invoke_async::<Value>(&mut conn).await {
            Err(err) if retry && (err.is_io_error() || err.is_connection_dropped()) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                invocation.invoke_async::<Value>(&mut conn).await
            }
            other => other,
        }
        .map_err(unavailable)
    }

    async fn head(&self, key: &StreamKey) -> Result<Head, JournalError> {
        let reply = self
            .run(&self.invocation(&self.scripts.head, key), true)
            .await?;
        let bad = || bad_reply("the head script");
        let items = array(reply).ok_or_else(bad)?;
        let field = |i: usize| items.get(i).and_then(text).ok_or_else(bad);
        let epoch = field(0)?;
        let mode: IdMode = field(1)?.parse().map_err(|_| bad())?;
        let tail = match field(3)?.as_str() {
            "" => None,
            raw => Some(parse_id(raw, mode).ok_or_else(bad)?),
        };
        Ok(Head {
            epoch,
            mode,
            tail,
            done: field(2)? == "1",
            length: field(4)?.parse().map_err(|_| bad())?,
        })
    }

    async fn append(
        &self,
        key: &StreamKey,
        frames: &[Frame<'_>],
        epoch: Option<&str>,
    ) -> Result<Appended, JournalError> {
        for frame in frames {
            validate_event(frame.event)?;
        }
        let mut invocation = self.invocation(&self.scripts.append, key);
        invocation
            .arg(epoch.unwrap_or(""))
            .arg(self.options.retention.max(1));
        for frame in frames {
            invocation.arg(frame.event).arg(frame.data);
        }
        let reply = self.run(&invocation, false).await?;
        let bad = || bad_reply("the append script");
        let items = array(reply).ok_or_else(bad)?;
        let mut items = items.iter().map(text);
        let status = items.next().flatten().ok_or_else(bad)?;
        let epoch = items.next().flatten().ok_or_else(bad)?;
        let mode: IdMode = items
            .next()
            .flatten()
            .and_then(|m| m.parse().ok())
            .ok_or_else(bad)?;
        let last = items.next_back().flatten();
        let key_name = || key.as_str().to_owned();
        match status.as_str() {
            "epoch" => Err(JournalError::EpochChanged { key: key_name() }),
            "done" => Err(JournalError::Done { key: key_name() }),
            "ok" => {
                let last = match last {
                    Some(raw) => Some(parse_id(&raw, mode).ok_or_else(bad)?),
                    None => None,
                };
                Ok(Appended { epoch, last })
            }
            _ => Err(bad()),
        }
    }

    /// XRANGE (or XREVRANGE with `rev`) of `epoch` between the raw bounds.
    async fn read(
        &self,
        key: &StreamKey,
        epoch: &str,
        bounds: (&str, &str),
        count: usize,
        rev: bool,
    ) -> Result<Vec<Value>, JournalError> {
        // A transaction, not a script: the entries come back as Redis sends them, without a
        // round trip through Lua tables (several times faster for a replay).
        let stream = format!("{}{epoch}", self.stream_prefix(key));
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HGET")
            .arg(self.meta_key(key))
            .arg("epoch")
            .cmd(if rev { "XREVRANGE" } else { "XRANGE" })
            .arg(&stream)
            .arg(bounds.0)
            .arg(bounds.1)
            .arg("COUNT")
            .arg(count.max(1));
        let mut conn = self.conn.clone();
        let reply: (Option<String>, Value) = match pipe.query_async(&mut conn).await {
            Err(err) if err.is_io_error() || err.is_connection_dropped() => {
                // See `run`: a read is tried once more on a fresh connection.
                tokio::time::sleep(Duration::from_millis(50)).await;
                pipe.query_async(&mut conn).await
            }
            other => other,
        }
        .map_err(unavailable)?;
        match reply {
            (Some(now), entries) if now == epoch => {
                array(entries).ok_or_else(|| bad_reply("XRANGE"))
            }
            _ => Err(JournalError::EpochChanged {
                key: key.as_str().to_owned(),
            }),
        }
    }

    async fn reset(&self, key: &StreamKey, mode: Option<IdMode>) -> Result<Head, JournalError> {
        let mut invocation = self.invocation(&self.scripts.reset, key);
        invocation
            .arg(mode.map_or("", IdMode::as_str))
            .arg(OLD_EPOCH_TTL_MS);
        let reply = self.run(&invocation, false).await?;
        let bad = || bad_reply("the reset script");
        let items = array(reply).ok_or_else(bad)?;
        let epoch = items.first().and_then(text).ok_or_else(bad)?;
        let mode: IdMode = items
            .get(1)
            .and_then(text)
            .and_then(|m| m.parse().ok())
            .ok_or_else(bad)?;
        Ok(Head {
            epoch,
            mode,
            tail: None,
            done: false,
            length: 0,
        })
    }

    /// Subscribes to the key's fan-out, starting its reader if it has none; returns the
    /// subscription and the reader's state.
    fn hub(self: &Arc<Self>, key: &StreamKey) -> (Live, watch::Receiver<HubState>) {
        let mut hubs = relock(&self.hubs);
        if let Some(hub) = hubs.get(key) {
            return (hub.tx.subscribe(), hub.state.clone());
        }
        let (tx, _) = broadcast::channel(LIVE_CAPACITY);
        let (state_tx, state) = watch::channel(HubState::Starting);
        let hub = Arc::new(Hub { tx, state });
        // Subscribed under the lock, before the reader exists: it never sees zero subscribers
        // before this one had its chance.
        let live = hub.tx.subscribe();
        let state = hub.state.clone();
        hubs.insert(key.clone(), Arc::clone(&hub));
        tokio::spawn(Arc::clone(self).reader(key.clone(), hub, state_tx));
        (live, state)
    }

    /// Waits until the reader of a hub has started; returns its epoch.
    async fn started(mut state: watch::Receiver<HubState>) -> Result<String, JournalError> {
        let outcome = state
            .wait_for(|s| !matches!(s, HubState::Starting))
            .await
            .map(|s| s.clone());
        match outcome {
            Ok(HubState::Running { epoch }) => Ok(epoch),
            Ok(HubState::Failed(err)) => Err(err),
            // The reader ended before it started: treat as unavailable.
            _ => Err(JournalError::Unavailable {
                engine: ENGINE,
                detail: "the live reader stopped while starting".to_owned(),
            }),
        }
    }

    async fn join(self: &Arc<Self>, key: &StreamKey) -> Result<(Live, Head), JournalError> {
        let deadline = Instant::now() + JOIN_PATIENCE;
        loop {
            // Subscribe first, then the reader's start, then our snapshot: the reader's start
            // is at or below our tail, so everything after our tail reaches our subscription.
            let (live, state) = self.hub(key);
            let reader_epoch = Inner::started(state).await?;
            let head = self.head(key).await?;
            if head.epoch == reader_epoch {
                return Ok((live, head));
            }
            // Reset between the reader's start and our snapshot: that reader is about to read
            // the marker and go; join the next one.
            drop(live);
            if Instant::now() >= deadline {
                return Err(JournalError::Unavailable {
                    engine: ENGINE,
                    detail: format!("could not join stream {key:?}: it keeps being reset"),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Removes the hub of `key` if it is still `hub` and (with `only_idle`) nobody listens.
    /// Returns whether it was removed.
    fn retire(&self, key: &StreamKey, hub: &Arc<Hub>, only_idle: bool) -> bool {
        let mut hubs = relock(&self.hubs);
        if only_idle && hub.tx.receiver_count() > 0 {
            return false;
        }
        if hubs.get(key).is_some_and(|h| Arc::ptr_eq(h, hub)) {
            hubs.remove(key);
        }
        true
    }

    /// The live reader of one key: starts at the tail it snapshots, then reads from the last
    /// id it read until the epoch ends, Redis fails, or nobody listens any more.
    async fn reader(
        self: Arc<Self>,
        key: StreamKey,
        hub: Arc<Hub>,
        state: watch::Sender<HubState>,
    ) {
        let outcome = self.read_live(&key, &hub, &state).await;
        // Out of the map first, so that new joins start a new reader; dropping `hub` (the last
        // sender once the map let go) closes the subscriptions.
        self.retire(&key, &hub, false);
        if let Err(err) = outcome {
            state.send_if_modified(|s| {
                let starting = matches!(s, HubState::Starting);
                if starting {
                    *s = HubState::Failed(err);
                }
                starting
            });
        }
    }

    async fn read_live(
        &self,
        key: &StreamKey,
        hub: &Arc<Hub>,
        state: &watch::Sender<HubState>,
    ) -> Result<(), JournalError> {
        let block = self.options.block;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.options.timeout))
            .set_response_timeout(Some(block + self.options.timeout));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(unavailable)?;
        let head = self.head(key).await?;
        let epoch = head.epoch;
        let mode = head.mode;
        let stream = format!("{}{epoch}", self.stream_prefix(key));
        let mut last = head.tail.map_or_else(|| "0-0".to_owned(), redis_id);
        state.send_replace(HubState::Running {
            epoch: epoch.clone(),
        });
        let block_ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1);
        loop {
            if self.retire(key, hub, true) {
                return Ok(());
            }
            let reply: Value = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(block_ms)
                .arg("STREAMS")
                .arg(&stream)
                .arg(&last)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let items = match reply {
                Value::Nil => {
                    // Idle for a block period: is the key still in this epoch? (A backstop for
                    // a reset marker this reader could not read.)
                    let mut check = self.conn.clone();
                    let now: Option<String> = redis::cmd("HGET")
                        .arg(self.meta_key(key))
                        .arg("epoch")
                        .query_async(&mut check)
                        .await
                        .map_err(unavailable)?;
                    if now.as_deref() != Some(epoch.as_str()) {
                        return Ok(());
                    }
                    continue;
                }
                // [[stream, entries]]
                reply => array(reply)
                    .and_then(|streams| streams.into_iter().next())
                    .and_then(array)
                    .and_then(|mut pair| pair.pop())
                    .and_then(array)
                    .ok_or_else(|| bad_reply("XREAD"))?,
            };
            let read = parse_entries(items, mode)?;
            if let Some(raw) = read.last {
                last = raw;
            }
            if !read.entries.is_empty() {
                // An error only means nobody listens right now; the next turn retires us.
                let _ = hub.tx.send(Arc::from(read.entries));
            }
            if read.reset {
                return Ok(());
            }
        }
    }
}

impl Journal for RedisJournal {
    fn head<'a>(&'a self, key: &'a StreamKey) -> BoxFuture<'a, Result<Head, JournalError>> {
        Box::pin(self.inner.head(key))
    }

    fn append<'a>(
        &'a self,
        key: &'a StreamKey,
        frames: &'a [Frame<'a>],
        epoch: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Appended, JournalError>> {
        Box::pin(self.inner.append(key, frames, epoch))
    }

    fn join<'a>(&'a self, key: &'a StreamKey) -> BoxFuture<'a, Result<(Live, Head), JournalError>> {
        Box::pin(self.inner.join(key))
    }

    fn subscribe<'a>(
        &'a self,
        key: &'a StreamKey,
        epoch: &'a str,
    ) -> BoxFuture<'a, Result<Live, JournalError>> {
        Box::pin(async move {
            let (live, state) = self.inner.hub(key);
            if Inner::started(state).await? != epoch {
                return Err(JournalError::EpochChanged {
                    key: key.as_str().to_owned(),
                });
            }
            Ok(live)
        })
    }

    fn read_range<'a>(
        &'a self,
        key: &'a StreamKey,
        epoch: &'a str,
        after: Option<Id>,
        upto: Id,
        limits: ReadLimits,
        out: &'a mut Vec<Entry>,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            let start = after.map_or_else(|| "-".to_owned(), |id| format!("({}", redis_id(id)));
            let end = redis_id(upto);
            let count = limits.entries.min(READ_COUNT);
            let items = self
                .inner
                .read(key, epoch, (&start, &end), count, false)
                .await?;
            let mode = mode_of(upto);
            out.extend(parse_entries(items, mode)?.entries);
            Ok(())
        })
    }

    fn read_last<'a>(
        &'a self,
        key: &'a StreamKey,
        epoch: &'a str,
        upto: Id,
        count: usize,
        out: &'a mut Vec<Entry>,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            if count == 0 {
                return Ok(());
            }
            let end = redis_id(upto);
            let mut items = self
                .inner
                .read(key, epoch, (&end, "-"), count, true)
                .await?;
            items.reverse();
            out.extend(parse_entries(items, mode_of(upto))?.entries);
            Ok(())
        })
    }

    fn reset<'a>(
        &'a self,
        key: &'a StreamKey,
        mode: Option<IdMode>,
    ) -> BoxFuture<'a, Result<Head, JournalError>> {
        Box::pin(self.inner.reset(key, mode))
    }

    fn retention(&self) -> usize {
        self.inner.options.retention
    }

    fn engine(&self) -> &'static str {
        ENGINE
    }
}

/// The id mode an id belongs to (all ids of one epoch share it).
fn mode_of(id: Id) -> IdMode {
    match id {
        Id::Numeric(_) => IdMode::Numeric,
        Id::Redis { .. } => IdMode::Redis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_both_ways() {
        assert_eq!(redis_id(Id::Numeric(7)), "0-7");
        assert_eq!(redis_id(Id::Redis { ms: 12, seq: 3 }), "12-3");
        assert_eq!(parse_id("0-7", IdMode::Numeric), Some(Id::Numeric(7)));
        assert_eq!(parse_id("5-7", IdMode::Numeric), None);
        assert_eq!(
            parse_id("12-3", IdMode::Redis),
            Some(Id::Redis { ms: 12, seq: 3 })
        );
        assert_eq!(parse_id("x", IdMode::Redis), None);
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn item(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    #[test]
    fn entries_parse_and_stop_at_a_reset_marker() {
        let read = parse_entries(
            vec![
                item("0-1", &["e", "token", "d", "a\nb"]),
                item("0-2", &["e", "done", "d", ""]),
                item("0-3", &["r", "1"]),
                item("0-4", &["e", "token", "d", "after"]),
            ],
            IdMode::Numeric,
        )
        .ok()
        .unwrap();
        assert!(read.reset);
        assert_eq!(read.last.as_deref(), Some("0-2"));
        assert_eq!(read.entries.len(), 2);
        assert_eq!(
            &read.entries[0].bytes[..],
            b"id: 1\nevent: token\ndata: a\ndata: b\n\n"
        );
        assert!(read.entries[1].done);
        assert!(parse_entries(vec![bulk("junk")], IdMode::Numeric).is_err());
    }
}
