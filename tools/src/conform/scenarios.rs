//! The checks that stage something on fresh keys: append, connect, resume, reset, idle, and read
//! what arrives. Each keeps its connections on the target for the checks over every connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use sse_relay::core::ReadyInfo;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use super::checks::{skipped, Check, Findings, Outcome};
use super::conn::{Conn, Ev, Stop};
use super::target::{Target, Unusable};
use crate::net::is_event_stream;

type Checked = Result<Outcome, Unusable>;

/// The first connection of the run: proves the target can be checked at all (exit status 3 if
/// not): it answers, with an event stream, and an append goes through.
pub async fn preflight(t: &mut Target) -> Result<(), Unusable> {
    let key = t.key("preflight", 0);
    let mut conn = t.open("preflight", &key, &[], &[]).await?;
    let Some(status) = conn.status else {
        let why = conn.stopped().map(Stop::to_string).unwrap_or_default();
        return Err(Unusable::Unreachable(format!("GET {}: {why}", conn.url)));
    };
    if status != 200 || !is_event_stream(conn.content_type.as_deref()) {
        return Err(Unusable::NotAnEventStream(format!(
            "GET {} answered {status} with Content-Type {:?}: {:?}",
            conn.url,
            conn.content_type.as_deref().unwrap_or("(none)"),
            conn.body_preview.as_deref().unwrap_or("")
        )));
    }
    let deadline = t.deadline();
    let _ = conn.next_event(deadline).await;
    t.append(&key, "token", "preflight").await?;
    let _ = conn.wait_for_data("preflight", t.deadline()).await;
    t.keep(conn);
    Ok(())
}

/// Reads the `ready` event a connection must start with; `Err` with the evidence otherwise.
async fn expect_ready(conn: &mut Conn, deadline: Instant) -> Result<ReadyInfo, String> {
    if !conn.is_ok() {
        return Err(format!("{}: {}", conn.describe(), answer(conn)));
    }
    match conn.next_event(deadline).await {
        Ok(ev) if ev.event == "ready" => ReadyInfo::parse(&ev.data)
            .map_err(|err| format!("{}: ready {:?}: {err}", conn.describe(), ev.data)),
        Ok(ev) => Err(format!(
            "{}: the first event was {ev}, not ready",
            conn.describe()
        )),
        Err(stop) => Err(format!("{}: no ready ({stop})", conn.describe())),
    }
}

/// What a response that is not a stream said.
fn answer(conn: &Conn) -> String {
    match conn.status {
        Some(status) => format!(
            "answered {status} ({}) {:?}",
            conn.content_type.as_deref().unwrap_or("no Content-Type"),
            conn.body_preview.as_deref().unwrap_or("")
        ),
        None => conn
            .stopped()
            .map(Stop::to_string)
            .unwrap_or_else(|| "no answer".into()),
    }
}

/// Entries the checker appended and read back: their ids, and the epoch they belong to.
struct Known {
    epoch: String,
    entries: Vec<(String, String)>,
}

impl Known {
    fn id(&self, index: usize) -> &str {
        &self.entries[index].0
    }
}

/// Appends `n` `token` entries to `key` and reads them back from the start: their ids.
async fn fill(
    t: &mut Target,
    key: &str,
    label: &str,
    n: usize,
) -> Result<Result<Known, String>, Unusable> {
    let data: Vec<String> = (0..n).map(|i| format!("{label} {i}")).collect();
    for d in &data {
        t.append(key, "token", d).await?;
    }
    let mut conn = t.open(format!("{label}: read back"), key, &[], &[]).await?;
    let deadline = t.deadline();
    let known = match expect_ready(&mut conn, deadline).await {
        Err(evidence) => Err(evidence),
        Ok(ready) => match read_back(&mut conn, &data, deadline).await {
            Ok(entries) => Ok(Known {
                epoch: ready.epoch,
                entries,
            }),
            Err(why) => Err(format!(
                "{}: could not read back the {n} entries just appended: {why}; received: {}",
                conn.describe(),
                conn.received_since(0)
            )),
        },
    };
    t.keep(conn);
    Ok(known)
}

/// Reads `data` back in order, with ids (a repeat of an entry already read is skipped).
async fn read_back(
    conn: &mut Conn,
    data: &[String],
    deadline: Instant,
) -> Result<Vec<(String, String)>, String> {
    let mut entries: Vec<(String, String)> = Vec::new();
    while entries.len() < data.len() {
        let ev = conn
            .next_journaled(deadline)
            .await
            .map_err(|stop| stop.to_string())?;
        let due = &data[entries.len()];
        match ev.id {
            Some(id) if ev.data == *due => entries.push((id, ev.data)),
            _ if entries.iter().any(|(_, d)| *d == ev.data) => {}
            _ => return Err(format!("got {ev} where {due:?} was due")),
        }
    }
    Ok(entries)
}

/// The next journaled entry, which must carry `data`; the evidence (with `why`) otherwise.
async fn expect_entry(
    conn: &mut Conn,
    data: &str,
    deadline: Instant,
    why: &str,
) -> Result<Ev, String> {
    match conn.next_journaled(deadline).await {
        Ok(ev) if ev.data == data => Ok(ev),
        Ok(ev) => Err(format!(
            "{}: the next entry was {ev}, not {data:?}{why}",
            conn.describe()
        )),
        Err(stop) => Err(format!(
            "{}: {data:?} never arrived ({stop})",
            conn.describe()
        )),
    }
}

/// Incident 000: `ready` before the join.
pub async fn join_before_ready(t: &mut Target) -> Checked {
    let mut findings = Findings::default();
    let keys = t.config.keys;
    let idle = t.config.idle;
    let mut tried = 0;
    let mut lost = 0;
    for i in 0..keys + 2 {
        let after_idle = i >= keys;
        if after_idle {
            sleep(idle).await;
        }
        tried += 1;
        let key = t.key("join", i);
        let label = if after_idle {
            format!(
                "join-before-ready key {i}, after {} ms idle",
                idle.as_millis()
            )
        } else {
            format!("join-before-ready key {i}")
        };
        let mut conn = t.open(label, &key, &[("from", "now")], &[]).await?;
        match expect_ready(&mut conn, t.deadline()).await {
            Err(evidence) => findings.found(evidence),
            Ok(ready) => {
                conn.floor = ready.tail;
                let ready_ms = conn.ms();
                let data = format!("join {i}");
                t.append(&key, "token", &data).await?;
                let appended_ms = conn.ms();
                if let Err(stop) = conn.wait_for_data(&data, t.deadline()).await {
                    lost += 1;
                    findings.found(format!(
                        "{}: ready at {ready_ms} ms, {data:?} appended at {appended_ms} ms, never delivered ({stop}); received: {}",
                        conn.describe(),
                        conn.received_since(0)
                    ));
                }
            }
        }
        t.keep(conn);
        if findings.count() >= 3 {
            break;
        }
    }
    let stopped = if tried < keys + 2 {
        format!(" (stopped after {tried} keys)")
    } else {
        String::new()
    };
    Ok(findings.outcome(
        Check::JoinBeforeReady,
        format!(
            "{tried} fresh from=now keys (2 after {} ms idle): the entry appended when ready arrived was delivered on each",
            idle.as_millis()
        ),
        format!("the entry appended the moment ready arrived was lost on {lost} of {tried} fresh keys{stopped}: ready came before the live join"),
    ))
}

/// Incident 002: the tail re-resolved after idle polls.
pub async fn no_tail_re_resolution(t: &mut Target) -> Checked {
    let mut findings = Findings::default();
    let key = t.key("tail", 0);
    let idle_ms = t.config.idle.as_millis() as u64;
    let rounds = t.config.idle_rounds;
    let mut conn = t
        .open(
            "no-tail-re-resolution: one long-lived from=now connection",
            &key,
            &[("from", "now")],
            &[],
        )
        .await?;
    let mut appended: Vec<(String, u64, usize)> = Vec::new();
    match expect_ready(&mut conn, t.deadline()).await {
        Err(evidence) => findings.found(evidence),
        Ok(ready) => {
            conn.floor = ready.tail;
            // Two random moments in each idle period.
            let mut moments = Vec::new();
            for round in 0..rounds as u64 {
                let mut two = [t.rng.below(idle_ms), t.rng.below(idle_ms)];
                two.sort_unstable();
                moments.extend(two.map(|at| round * idle_ms + at));
            }
            let start = Instant::now();
            for (n, at) in moments.into_iter().enumerate() {
                if let Some(stop) = conn.pump_until(start + Duration::from_millis(at)).await {
                    findings.found(format!(
                        "{}: the response stopped while idle ({stop}) after {}",
                        conn.describe(),
                        conn.received_since(0)
                    ));
                    break;
                }
                let data = format!("tail {n}");
                t.append(&key, "token", &data).await?;
                let pings = conn.events().filter(|ev| ev.event == "ping").count();
                appended.push((data, conn.ms(), pings));
            }
            let deadline = t.deadline();
            for (data, at, pings) in &appended {
                if let Err(stop) = conn.wait_for_data(data, deadline).await {
                    findings.found(format!(
                        "{}: {data:?} appended at {at} ms (after {pings} pings) was never delivered ({stop})",
                        conn.describe()
                    ));
                }
            }
        }
    }
    let pings = conn.events().filter(|ev| ev.event == "ping").count();
    t.keep(conn);
    let n = appended.len();
    let lost = findings.count();
    Ok(findings.outcome(
        Check::NoTailReResolution,
        format!("{n} entries appended at random moments in {rounds} idle periods of {idle_ms} ms ({pings} pings meanwhile): all delivered"),
        format!("{lost} of {n} entries appended during idle periods never arrived (what a tail re-read after each idle poll, XREAD $, loses)"),
    ))
}

/// Incident 001: a late attach gets `done` alone.
pub async fn late_attach(t: &mut Target) -> Checked {
    let mut findings = Findings::default();
    let key = t.key("late", 0);
    let mut want: Vec<(&str, String)> = (0..3).map(|i| ("token", format!("late {i}"))).collect();
    want.push(("done", "late done".into()));
    for (event, data) in &want {
        t.append(&key, event, data).await?;
    }
    let mut conn = t
        .open("late-attach: connected after done", &key, &[], &[])
        .await?;
    let deadline = t.deadline();
    match expect_ready(&mut conn, deadline).await {
        Err(evidence) => findings.found(evidence),
        Ok(_) => {
            let got = read_until_done(&mut conn, deadline).await;
            let same = got.len() == want.len()
                && got
                    .iter()
                    .zip(&want)
                    .all(|(ev, (event, data))| ev.event == *event && ev.data == *data);
            if !same {
                findings.found(format!(
                    "{}: expected {}; received: {}",
                    conn.describe(),
                    want.iter()
                        .map(|(e, d)| format!("{e} {d:?}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    conn.received_since(0)
                ));
            }
        }
    }
    t.keep(conn);
    Ok(findings.outcome(
        Check::LateAttach,
        "a connection opened after done got the 3 entries, then done".into(),
        "a connection opened after done did not get the whole transcript".into(),
    ))
}

/// The journaled events of a connection until `done` (repeats of an id dropped), or until it
/// stops.
async fn read_until_done(conn: &mut Conn, deadline: Instant) -> Vec<Ev> {
    let mut got: Vec<Ev> = Vec::new();
    while let Ok(ev) = conn.next_journaled(deadline).await {
        let repeat = ev.id.is_some() && got.iter().any(|g| g.id == ev.id);
        let done = ev.event == "done";
        if !repeat {
            got.push(ev);
        }
        if done {
            break;
        }
    }
    got
}

const SEAM_PREFILL: usize = 20;
const SEAM_LIVE: usize = 120;
const SEAM_ATTACHES: usize = 6;

/// Incident 003: connections attached while entries are appended; what was sent twice.
pub async fn seam(t: &mut Target) -> Checked {
    let mut findings = Findings::default();
    let key = t.key("seam", 0);
    let known = match fill(t, &key, "seam", SEAM_PREFILL).await? {
        Ok(known) => known,
        Err(evidence) => {
            findings.found(evidence);
            return Ok(findings.outcome(
                Check::Seam,
                String::new(),
                "could not set up the journal".into(),
            ));
        }
    };
    let cursor_index = SEAM_PREFILL / 2;
    let progress = AtomicUsize::new(0);
    let target: &Target = t;
    let producer = async {
        for i in SEAM_PREFILL..SEAM_PREFILL + SEAM_LIVE {
            target.append(&key, "token", &format!("seam {i}")).await?;
            progress.store(i + 1 - SEAM_PREFILL, Ordering::Relaxed);
        }
        target.append(&key, "done", "seam done").await?;
        progress.store(SEAM_LIVE + 1, Ordering::Relaxed);
        Ok::<(), Unusable>(())
    };
    let attacher = async {
        let mut conns = Vec::new();
        let deadline = target.deadline() + Duration::from_secs(SEAM_LIVE as u64 / 10);
        for a in 0..SEAM_ATTACHES {
            while progress.load(Ordering::Relaxed) < a * SEAM_LIVE / SEAM_ATTACHES
                && Instant::now() < deadline
            {
                sleep(Duration::from_millis(1)).await;
            }
            let at = progress.load(Ordering::Relaxed);
            let conn = if a % 2 == 1 {
                let cursor = known.id(cursor_index - 1);
                let label = format!("seam attach {a}, after {at} live appends, cursor {cursor}");
                let params = [
                    (target.config.cursor_param.as_str(), cursor),
                    (target.config.epoch_param.as_str(), known.epoch.as_str()),
                ];
                (target.open(label, &key, &params, &[]).await?, cursor_index)
            } else {
                let label = format!("seam attach {a}, after {at} live appends, from the start");
                (target.open(label, &key, &[], &[]).await?, 0)
            };
            conns.push(conn);
        }
        Ok::<_, Unusable>(conns)
    };
    let (produced, attached) = tokio::join!(producer, attacher);
    produced?;
    let mut conns = attached?;

    let all: Vec<String> = (0..SEAM_PREFILL + SEAM_LIVE)
        .map(|i| format!("seam {i}"))
        .chain(["seam done".to_owned()])
        .collect();
    let mut ids: HashMap<String, (String, String)> = known
        .entries
        .iter()
        .map(|(id, data)| {
            (
                data.clone(),
                (id.clone(), "the read-back connection".to_owned()),
            )
        })
        .collect();
    let mut repeats = 0;
    // Everything was sent by now: one deadline for all.
    let deadline = target.deadline();
    for (conn, from) in &mut conns {
        if let Err(evidence) = expect_ready(conn, deadline).await {
            findings.found(evidence);
            continue;
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        while let Ok(ev) = conn.next_journaled(deadline).await {
            if let (Some(data), Some(id)) = (all.iter().find(|d| **d == ev.data), &ev.id) {
                *seen.entry(data.as_str()).or_insert(0) += 1;
                match ids.get(data) {
                    // Repeats on one connection are `repeats_keep_their_id`'s.
                    Some((first, where_)) if first != id && *where_ != conn.label => findings
                        .found(format!(
                            "{}: {data:?} came as id {id}; {where_} got it as id {first}",
                            conn.describe()
                        )),
                    Some(_) => {}
                    None => {
                        ids.insert(data.clone(), (id.clone(), conn.label.clone()));
                    }
                }
            }
            if ev.event == "done" {
                break;
            }
        }
        repeats += seen.values().map(|n| n - 1).sum::<usize>();
        let missing: Vec<&str> = all[*from..]
            .iter()
            .filter(|d| !seen.contains_key(d.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            findings.found(format!(
                "{}: {} of the {} entries after its cursor never arrived (first: {:?}); received: {}",
                conn.describe(),
                missing.len(),
                all.len() - *from,
                missing[0],
                conn.received_since(0)
            ));
        }
    }
    for (conn, _) in conns {
        t.keep(conn);
    }
    Ok(findings.outcome(
        Check::Seam,
        format!("{SEAM_ATTACHES} connections attached during {SEAM_LIVE} live appends: each got every entry after its cursor ({repeats} sent twice, each under its id)"),
        "entries at the replay/live seam were lost or re-sent under another id (or none)".into(),
    ))
}

/// Resume by the query parameter, by the header, and with both (the header wins).
pub async fn resume(t: &mut Target, check: Check) -> Checked {
    let mut findings = Findings::default();
    let short = match check {
        Check::ResumeQuery => "rq",
        Check::ResumeHeader => "rh",
        _ => "hw",
    };
    let key = t.key(short, 0);
    let known = match fill(t, &key, short, 5).await? {
        Ok(known) => known,
        Err(evidence) => {
            findings.found(evidence);
            return Ok(findings.outcome(
                check,
                String::new(),
                "could not set up the journal".into(),
            ));
        }
    };
    let last_event_id = HeaderName::from_static("last-event-id");
    let header = |id: &str| HeaderValue::from_str(id).map(|v| vec![(last_event_id.clone(), v)]);
    let (params, headers, after, how) = match check {
        Check::ResumeQuery => (
            vec![
                (t.config.cursor_param.clone(), known.id(1).to_owned()),
                (t.config.epoch_param.clone(), known.epoch.clone()),
            ],
            Vec::new(),
            2,
            format!("{}={}", t.config.cursor_param, known.id(1)),
        ),
        Check::ResumeHeader => (
            Vec::new(),
            header(known.id(1)).unwrap_or_default(),
            2,
            format!("Last-Event-ID: {}", known.id(1)),
        ),
        _ => (
            vec![
                (t.config.cursor_param.clone(), known.id(0).to_owned()),
                (t.config.epoch_param.clone(), known.epoch.clone()),
            ],
            header(known.id(2)).unwrap_or_default(),
            3,
            format!(
                "{}={} and Last-Event-ID: {}",
                t.config.cursor_param,
                known.id(0),
                known.id(2)
            ),
        ),
    };
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut conn = t
        .open(format!("{}: resume", check.name()), &key, &params, &headers)
        .await?;
    let deadline = t.deadline();
    let want = &known.entries[after..];
    match expect_ready(&mut conn, deadline).await {
        Err(evidence) => findings.found(evidence),
        Ok(ready) => {
            if ready.epoch != known.epoch {
                findings.found(format!(
                    "{}: ready.epoch changed from {:?} to {:?} without a reset",
                    conn.describe(),
                    known.epoch,
                    ready.epoch
                ));
            }
            let last = &want[want.len() - 1].1;
            let mut got: Vec<Ev> = Vec::new();
            while let Ok(ev) = conn.next_journaled(deadline).await {
                let end = ev.data == *last;
                got.push(ev);
                if end {
                    break;
                }
            }
            let exact = got.len() == want.len()
                && got
                    .iter()
                    .zip(want)
                    .all(|(ev, (id, data))| ev.id.as_deref() == Some(id) && ev.data == *data);
            if !exact {
                findings.found(format!(
                    "{}: expected ids {}; received: {}",
                    conn.describe(),
                    want.iter()
                        .map(|(id, _)| id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    conn.received_since(0)
                ));
            }
        }
    }
    t.keep(conn);
    let ids = want
        .iter()
        .map(|(id, _)| id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(findings.outcome(
        check,
        format!("{how} got exactly ids {ids}"),
        format!("{how} did not get exactly the entries after the cursor"),
    ))
}

/// A cursor of an old epoch after a reset.
pub async fn epoch_mismatch(t: &mut Target) -> Checked {
    if t.config.reset.is_none() {
        return Ok(skipped(
            Check::EpochMismatch,
            "needs --reset URL or --reset-cmd CMD to start a new epoch of a key",
        ));
    }
    let mut findings = Findings::default();
    let key = t.key("epoch", 0);
    let known = match fill(t, &key, "epoch", 3).await? {
        Ok(known) => known,
        Err(evidence) => {
            findings.found(evidence);
            return Ok(findings.outcome(
                Check::EpochMismatch,
                String::new(),
                "could not set up the journal".into(),
            ));
        }
    };
    t.reset(&key).await?;
    let fresh = ["epoch new 0", "epoch new 1"];
    for data in fresh {
        t.append(&key, "token", data).await?;
    }
    let params = [
        (t.config.cursor_param.clone(), known.id(2).to_owned()),
        (t.config.epoch_param.clone(), known.epoch.clone()),
    ];
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut conn = t
        .open(
            "epoch-mismatch: old cursor after a reset",
            &key,
            &params,
            &[],
        )
        .await?;
    let deadline = t.deadline();
    match expect_ready(&mut conn, deadline).await {
        Err(evidence) => findings.found(evidence),
        Ok(ready) => {
            if ready.epoch == known.epoch {
                findings.found(format!(
                    "{}: ready.epoch is still {:?} after the reset",
                    conn.describe(),
                    ready.epoch
                ));
            }
            let mut got = Vec::new();
            while let Ok(ev) = conn.next_journaled(deadline).await {
                let end = ev.data == fresh[1];
                got.push(ev.data);
                if end {
                    break;
                }
            }
            if got != fresh {
                findings.found(format!(
                    "{}: expected the new epoch from its start ({:?}, {:?}); received: {}",
                    conn.describe(),
                    fresh[0],
                    fresh[1],
                    conn.received_since(0)
                ));
            }
        }
    }
    t.keep(conn);
    Ok(findings.outcome(
        Check::EpochMismatch,
        "a cursor of the old epoch got a new epoch in ready and the new epoch from its start"
            .into(),
        "a cursor of the old epoch was not answered with the new epoch from its start".into(),
    ))
}

/// `from=now`: the tail at join, no replay.
pub async fn from_now(t: &mut Target) -> Checked {
    let mut findings = Findings::default();
    let key = t.key("now", 0);
    let mut first = t
        .open("from-now on a fresh key", &key, &[("from", "now")], &[])
        .await?;
    let mut first_id = None;
    match expect_ready(&mut first, t.deadline()).await {
        Err(evidence) => findings.found(evidence),
        Ok(ready) => {
            if let Some(tail) = &ready.tail {
                findings.found(format!(
                    "{}: ready.tail is {tail:?} on a fresh key, not null",
                    first.describe()
                ));
            }
            t.append(&key, "token", "now a").await?;
            match expect_entry(&mut first, "now a", t.deadline(), "").await {
                Ok(ev) => first_id = ev.id,
                Err(evidence) => findings.found(evidence),
            }
        }
    }
    t.keep(first);
    if let Some(a_id) = first_id {
        let mut second = t
            .open("from-now after one entry", &key, &[("from", "now")], &[])
            .await?;
        match expect_ready(&mut second, t.deadline()).await {
            Err(evidence) => findings.found(evidence),
            Ok(ready) => {
                if ready.tail.as_deref() != Some(a_id.as_str()) {
                    findings.found(format!(
                        "{}: ready.tail is {:?}, not the head {a_id:?}",
                        second.describe(),
                        ready.tail
                    ));
                }
                second.floor = ready.tail;
                t.append(&key, "token", "now b").await?;
                let why = " (from=now replays nothing)";
                if let Err(evidence) = expect_entry(&mut second, "now b", t.deadline(), why).await {
                    findings.found(evidence);
                }
            }
        }
        t.keep(second);
    }
    Ok(findings.outcome(
        Check::FromNow,
        "ready.tail was null on a fresh key, then the head; nothing was replayed".into(),
        "from=now replayed entries or its ready.tail was not the head".into(),
    ))
}

/// The response ends after `done`.
pub async fn done_ends_response(t: &mut Target) -> Checked {
    let mut findings = Findings::default();
    let key = t.key("done", 0);
    let mut live = t.open("done-ends-response: live", &key, &[], &[]).await?;
    if let Err(evidence) = expect_ready(&mut live, t.deadline()).await {
        findings.found(evidence);
    }
    t.append(&key, "token", "done 0").await?;
    t.append(&key, "done", "done end").await?;
    let mut late = t
        .open("done-ends-response: after done", &key, &[], &[])
        .await?;
    if let Err(evidence) = expect_ready(&mut late, t.deadline()).await {
        findings.found(evidence);
    }
    for conn in [&mut live, &mut late] {
        let deadline = t.deadline();
        let got = read_until_done(conn, deadline).await;
        if got.last().map(|ev| ev.event.as_str()) != Some("done") {
            findings.found(format!(
                "{}: done never arrived; received: {}",
                conn.describe(),
                conn.received_since(0)
            ));
            continue;
        }
        let sent_done = conn.ms();
        match conn.pump_until(t.deadline()).await {
            Some(Stop::Ended) => {}
            Some(stop) => findings.found(format!("{}: after done: {stop}", conn.describe())),
            None => findings.found(format!(
                "{}: the response was still open {} ms after done; received: {}",
                conn.describe(),
                conn.ms() - sent_done,
                conn.received_since(0)
            )),
        }
    }
    t.keep(live);
    t.keep(late);
    Ok(findings.outcome(
        Check::DoneEndsResponse,
        "the response ended right after done, live and on a late attach".into(),
        "a response stayed open after done".into(),
    ))
}

/// Opens an idle stream and watches it for a ping in the background while the other checks run.
pub async fn start_pings(t: &Target) -> Result<JoinHandle<Conn>, Unusable> {
    let key = t.key("ping", 0);
    let mut conn = t.open("pings: an idle stream", &key, &[], &[]).await?;
    let deadline = Instant::now() + t.config.ping_within;
    Ok(tokio::spawn(async move {
        while let Ok(ev) = conn.next_event(deadline).await {
            if ev.event == "ping" {
                break;
            }
        }
        conn
    }))
}

/// Judges the idle stream watched since [`start_pings`].
pub async fn finish_pings(t: &mut Target, watch: JoinHandle<Conn>) -> Checked {
    let mut findings = Findings::default();
    let within = t.config.ping_within.as_millis();
    let conn = match watch.await {
        Ok(conn) => conn,
        Err(err) => {
            findings.found(format!("the watch of the idle stream failed: {err}"));
            return Ok(findings.outcome(Check::Pings, String::new(), "no verdict".into()));
        }
    };
    let ping = conn.seen.iter().find_map(|s| match &s.what {
        super::conn::What::Event(ev) if ev.event == "ping" => Some((s.at_ms, ev.clone())),
        _ => None,
    });
    let mut pass = String::new();
    match ping {
        Some((at, ev)) => {
            if let Some(id) = &ev.id {
                findings.found(format!(
                    "{}: the ping carries id {id:?}: heartbeats are not journaled",
                    conn.describe()
                ));
            }
            pass =
                format!("a named ping event arrived {at} ms after the request on an idle stream");
        }
        None if !conn.is_ok() => findings.found(format!("{}: {}", conn.describe(), answer(&conn))),
        None => {
            let comments = conn
                .seen
                .iter()
                .filter(|s| s.what == super::conn::What::Comment)
                .count();
            let dataless: Vec<&str> = conn
                .seen
                .iter()
                .filter_map(|s| match &s.what {
                    super::conn::What::NoData { raw, .. } => Some(raw.as_str()),
                    _ => None,
                })
                .collect();
            let mut why = format!("{}: no ping event within {within} ms", conn.describe());
            if comments > 0 {
                why.push_str(&format!("; {comments} `:` comment frames (EventSource never shows comments: heartbeats must be named events)"));
            }
            if let Some(raw) = dataless.first() {
                why.push_str(&format!(
                    "; {} frames without a data line, e.g. {raw:?} (EventSource drops them)",
                    dataless.len()
                ));
            }
            if comments == 0 && dataless.is_empty() {
                why.push_str(&format!("; received: {}", conn.received_since(0)));
            }
            findings.found(why);
        }
    }
    t.keep(conn);
    Ok(findings.outcome(
        Check::Pings,
        pass,
        format!("no proper ping event on an idle stream within {within} ms"),
    ))
}
