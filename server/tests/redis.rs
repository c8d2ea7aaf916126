//! The Redis journal across real server processes (the binary) over one real redis-server:
//! resume on another process, one live reader per key per process, resets and `done` seen by
//! every process, concurrent appends, appends racing resets, and Redis failing under a running
//! service (shut down, frozen with SIGSTOP, restarted with and without its data).

mod support;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use support::*;
use tokio::process::Child;
use tokio::time::Instant;

/// A server process (the binary) on a Redis journal; killed when dropped.
struct Proc {
    addr: SocketAddr,
    _child: Child,
}

async fn spawn(redis: &RedisServer) -> Proc {
    let url = redis.url();
    let args = [
        "--lifetime-secs",
        "120",
        "--ping-ms",
        "200",
        "--journal",
        &url,
    ];
    let (child, addr) = spawn_binary(&args).await;
    Proc {
        addr,
        _child: child,
    }
}

async fn spawn_three(redis: &RedisServer) -> [Proc; 3] {
    [spawn(redis).await, spawn(redis).await, spawn(redis).await]
}

async fn redis_conn(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("a connection to redis")
}

/// Redis clients blocked in XREAD now.
async fn xread_clients(redis: &RedisServer) -> usize {
    let mut conn = redis_conn(redis).await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap();
    list.lines().filter(|l| l.contains("cmd=xread")).count()
}

async fn epoch_of(addr: SocketAddr, key: &str) -> String {
    stats(addr, key).await["epoch"].as_str().unwrap().to_owned()
}

/// The data of frames, in order.
fn datas(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(|f| f.data.clone().unwrap()).collect()
}

#[tokio::test]
async fn a_client_resumes_on_another_process_with_exactly_the_rest() {
    let redis = RedisServer::start();
    let [a, b, c] = spawn_three(&redis).await;
    let mut on_a = Sse::connect(a.addr, "hop", "").await;
    assert_eq!(on_a.ready().await["tail"], Value::Null);
    let mut appended = Vec::new();
    for i in 0..10 {
        appended.push(append(b.addr, "hop", "token", &format!("t{i}")).await);
    }
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(on_a.frame().await);
    }
    assert_eq!(ids(&got), appended[..5]);
    drop(on_a);

    // Redis ids (`<ms>-<seq>`) by default on a Redis journal.
    assert!(appended.iter().all(|id| id.split_once('-').is_some()));
    let epoch = epoch_of(a.addr, "hop").await;
    let query = format!("lastEventId={}&epoch={epoch}", appended[4]);
    let mut on_c = Sse::connect(c.addr, "hop", &query).await;
    let ready = on_c.ready().await;
    assert_eq!(ready["epoch"], epoch.as_str());
    assert_eq!(ready["tail"], appended[9].as_str());
    let mut rest = Vec::new();
    for _ in 0..5 {
        rest.push(on_c.frame().await);
    }
    assert_eq!(ids(&rest), appended[5..]);
    assert_eq!(datas(&rest), ["t5", "t6", "t7", "t8", "t9"]);

    // Live entries appended on a third process reach it, once.
    let live = append(a.addr, "hop", "token", "live").await;
    assert_eq!(on_c.frame().await.id, Some(live));
    on_c.expect_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn one_live_reader_per_key_per_process() {
    let redis = RedisServer::start();
    let [a, b, _c] = spawn_three(&redis).await;
    let mut conns = Vec::new();
    for _ in 0..25 {
        let mut sse = Sse::connect(a.addr, "fan", "from=now").await;
        sse.ready().await;
        conns.push(sse);
    }
    assert_eq!(
        xread_clients(&redis).await,
        1,
        "25 connections, one XREAD loop"
    );
    let mut other_key = Sse::connect(a.addr, "fan2", "from=now").await;
    other_key.ready().await;
    let mut other_proc = Sse::connect(b.addr, "fan", "from=now").await;
    other_proc.ready().await;
    assert_eq!(xread_clients(&redis).await, 3);

    let id = append(b.addr, "fan", "token", "x").await;
    for sse in conns.iter_mut().chain([&mut other_proc]) {
        assert_eq!(sse.frame().await.id.as_deref(), Some(id.as_str()));
    }

    // Readers without subscribers go away within a block period (2 s).
    drop(conns);
    drop(other_key);
    drop(other_proc);
    let deadline = Instant::now() + Duration::from_secs(8);
    while xread_clients(&redis).await > 0 {
        assert!(Instant::now() < deadline, "idle readers stayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn reset_and_done_on_one_process_act_on_every_process() {
    let redis = RedisServer::start();
    let [a, b, c] = spawn_three(&redis).await;
    append(a.addr, "rs", "token", "old").await;
    let old_epoch = epoch_of(a.addr, "rs").await;
    let mut on_b = Sse::connect(b.addr, "rs", "").await;
    on_b.ready().await;
    assert_eq!(on_b.frame().await.data.as_deref(), Some("old"));

    let reset = post(a.addr, "/streams/rs/reset").await;
    assert_eq!(reset.status, 200);
    let new_epoch = reset.json()["epoch"].as_str().unwrap().to_owned();
    assert_ne!(new_epoch, old_epoch);
    // The open stream on B ends (the reset marker reached B's reader) so its client reconnects.
    assert_eq!(on_b.rest().await, []);

    // A cursor of the old epoch on C: the new epoch from its start.
    let mut on_c = Sse::connect(c.addr, "rs", &format!("lastEventId=1-0&epoch={old_epoch}")).await;
    let ready = on_c.ready().await;
    assert_eq!(ready["epoch"], new_epoch.as_str());
    assert_eq!(ready["tail"], Value::Null);
    append(b.addr, "rs", "token", "new").await;
    assert_eq!(on_c.frame().await.data.as_deref(), Some("new"));

    append(a.addr, "rs", "done", "").await;
    assert_eq!(on_c.frame().await.event, "done");
    assert_eq!(on_c.rest().await, []);
    let refused = try_append(c.addr, "rs", "token", "late").await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert_eq!(stats(b.addr, "rs").await["done"], true);
}

#[tokio::test]
async fn concurrent_appends_from_three_processes_are_all_delivered_in_id_order() {
    let redis = RedisServer::start();
    let procs = spawn_three(&redis).await;
    let mut reader = Sse::connect(procs[0].addr, "many", "").await;
    reader.ready().await;
    let mut tasks = Vec::new();
    for (p, proc) in procs.iter().enumerate() {
        let addr = proc.addr;
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..100 {
                ids.push(append(addr, "many", "token", &format!("p{p}-{i}")).await);
            }
            ids
        }));
    }
    let mut answered = HashSet::new();
    for task in tasks {
        answered.extend(task.await.unwrap());
    }
    assert_eq!(answered.len(), 300);
    let mut frames = Vec::new();
    for _ in 0..300 {
        frames.push(reader.frame().await);
    }
    reader.expect_quiet(Duration::from_millis(300)).await;
    let got = ids(&frames);
    let pairs: Vec<(u64, u64)> = got
        .iter()
        .map(|id| {
            let (ms, seq) = id.split_once('-').unwrap();
            (ms.parse().unwrap(), seq.parse().unwrap())
        })
        .collect();
    assert!(pairs.windows(2).all(|w| w[0] < w[1]), "ids not increasing");
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), answered);
    // Each producer's own entries keep their order.
    for p in 0..3 {
        let mine: Vec<String> = datas(&frames)
            .into_iter()
            .filter(|d| d.starts_with(&format!("p{p}-")))
            .collect();
        let expected: Vec<String> = (0..100).map(|i| format!("p{p}-{i}")).collect();
        assert_eq!(mine, expected);
    }
}

#[tokio::test]
async fn an_append_racing_a_reset_lands_in_exactly_one_epoch() {
    let redis = RedisServer::start();
    let [a, b, c] = spawn_three(&redis).await;
    let mut tasks = Vec::new();
    for (name, addr) in [("a", a.addr), ("b", b.addr)] {
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..150 {
                let body = serde_json::json!({"event": "token", "data": format!("{name}{i}")});
                let response = request(
                    addr,
                    "POST",
                    "/streams/race/append",
                    &[],
                    body.to_string().as_bytes(),
                )
                .await;
                assert_eq!(response.status, 200, "{}", response.text());
                let json = response.json();
                answers.push((
                    format!("{name}{i}"),
                    json["epoch"].as_str().unwrap().to_owned(),
                    json["id"].as_str().unwrap().to_owned(),
                ));
            }
            answers
        }));
    }
    let mut epochs = vec![epoch_of(c.addr, "race").await];
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let reset = post(c.addr, "/streams/race/reset").await;
        epochs.push(reset.json()["epoch"].as_str().unwrap().to_owned());
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await.unwrap());
    }

    // Read every epoch's stream straight from Redis: data -> (epoch, id).
    let mut conn = redis_conn(&redis).await;
    let mut found: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for epoch in &epochs {
        let stream = format!("sse-relay:{{race}}:e:{epoch}");
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(&stream)
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        let last_epoch = epoch == epochs.last().unwrap();
        for (at, (id, fields)) in entries.iter().enumerate() {
            if fields.first().map(String::as_str) == Some("r") {
                // The reset marker closes an old epoch: nothing after it.
                assert_eq!(at, entries.len() - 1, "entries after the reset marker");
                assert!(!last_epoch);
                continue;
            }
            found
                .entry(fields[3].clone())
                .or_default()
                .push((epoch.clone(), id.clone()));
        }
    }
    let answered_epochs: HashSet<&String> = answers.iter().map(|(_, epoch, _)| epoch).collect();
    assert!(
        answered_epochs.len() > 1,
        "the resets never raced the appends"
    );
    for (data, epoch, id) in &answers {
        assert_eq!(
            found.get(data),
            Some(&vec![(epoch.clone(), id.clone())]),
            "{data} answered {epoch}/{id}"
        );
    }
    assert_eq!(found.len(), answers.len());
}

/// Polls the events endpoint until it answers 200 (Redis back), at most `wait`.
async fn until_serving(addr: SocketAddr, key: &str, wait: Duration) {
    let deadline = Instant::now() + wait;
    loop {
        let response = request(addr, "GET", &format!("/streams/{key}/stats"), &[], b"").await;
        if response.status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never served again: {}",
            response.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET events` expecting the 503 of an unavailable journal.
async fn expect_unavailable(addr: SocketAddr, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let refused = request(addr, "GET", &format!("/streams/{key}/events"), &[], b"").await;
        if refused.status == 503 {
            let text = refused.text();
            assert!(text.contains("journal (redis) is unavailable"), "{text}");
            assert_eq!(text.trim_end().lines().count(), 1, "one line: {text}");
            return;
        }
        assert!(Instant::now() < deadline, "no 503: {}", refused.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn redis_shut_down_and_restarted_with_its_data() {
    let mut redis = RedisServer::start_persistent();
    let a = spawn(&redis).await;
    let mut ids_before = Vec::new();
    for i in 0..5 {
        ids_before.push(append(a.addr, "down", "token", &format!("t{i}")).await);
    }
    let epoch = epoch_of(a.addr, "down").await;
    let mut open = Sse::connect(a.addr, "down", "").await;
    open.ready().await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(open.frame().await);
    }

    redis.stop();
    // The open stream ends so its client backs off and resumes.
    assert_eq!(open.rest().await, []);
    expect_unavailable(a.addr, "down").await;
    let append_down = try_append(a.addr, "down", "token", "x").await;
    assert_eq!(append_down.status, 503, "{}", append_down.text());

    redis.restart();
    until_serving(a.addr, "down", Duration::from_secs(10)).await;
    // The same epoch: nothing was lost, so the cursor is good.
    assert_eq!(epoch_of(a.addr, "down").await, epoch);
    let after = append(a.addr, "down", "token", "t5").await;
    let mut resumed = Sse::connect(
        a.addr,
        "down",
        &format!("lastEventId={}&epoch={epoch}", ids_before[4]),
    )
    .await;
    assert_eq!(resumed.ready().await["epoch"], epoch.as_str());
    assert_eq!(resumed.frame().await.id, Some(after));
    resumed.expect_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn redis_frozen_then_thawed() {
    let redis = RedisServer::start();
    let a = spawn(&redis).await;
    let first = append(a.addr, "frozen", "token", "t0").await;
    let epoch = epoch_of(a.addr, "frozen").await;
    let mut open = Sse::connect(a.addr, "frozen", "from=now").await;
    open.ready().await;

    let pid = redis.pid();
    redis.signal(pid, "STOP");
    let frozen = Instant::now();
    // The live read's timeout (block 2 s + 2 s) ends the open stream.
    let ended = tokio::time::timeout(Duration::from_secs(10), open.rest()).await;
    let frozen_for = frozen.elapsed();
    expect_unavailable(a.addr, "frozen").await;
    redis.signal(pid, "CONT");
    assert!(
        matches!(ended, Ok(frames) if frames.is_empty()),
        "the open stream did not end"
    );
    assert!(frozen_for < Duration::from_secs(8), "{frozen_for:?}");

    until_serving(a.addr, "frozen", Duration::from_secs(10)).await;
    let second = append(a.addr, "frozen", "token", "t1").await;
    let mut resumed = Sse::connect(
        a.addr,
        "frozen",
        &format!("lastEventId={first}&epoch={epoch}"),
    )
    .await;
    resumed.ready().await;
    assert_eq!(resumed.frame().await.id, Some(second));
}

#[tokio::test]
async fn redis_restarted_without_its_data_is_a_new_epoch() {
    let mut redis = RedisServer::start();
    let a = spawn(&redis).await;
    let last = append(a.addr, "lost", "token", "t0").await;
    let epoch = epoch_of(a.addr, "lost").await;
    let mut open = Sse::connect(a.addr, "lost", "").await;
    open.ready().await;
    open.frame().await;

    redis.restart();
    assert_eq!(open.rest().await, []);
    until_serving(a.addr, "lost", Duration::from_secs(10)).await;
    // A client resuming with its cursor learns of the loss as a reset, never as a silent
    // restart of ids under the old epoch.
    let mut resumed =
        Sse::connect(a.addr, "lost", &format!("lastEventId={last}&epoch={epoch}")).await;
    let ready = resumed.ready().await;
    assert_ne!(ready["epoch"], epoch.as_str());
    assert_eq!(ready["tail"], Value::Null);
    let fresh = append(a.addr, "lost", "token", "again").await;
    assert_eq!(resumed.frame().await.id, Some(fresh));
}

/// A correct client: follows `key` to `done` over `addrs` in turn (a new process on each
/// reconnect), resuming with cursor and epoch, backing off on errors, dropping ids it has.
async fn follow(addrs: &[SocketAddr], key: &str, wait: Duration) -> (Vec<Frame>, usize) {
    let deadline = Instant::now() + wait;
    let mut frames: Vec<Frame> = Vec::new();
    let mut cursor: Option<(String, String)> = None;
    let mut connections = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "turn not done; got {}",
            frames.len()
        );
        let addr = addrs[connections % addrs.len()];
        connections += 1;
        let query = match &cursor {
            Some((id, epoch)) => format!("lastEventId={id}&epoch={epoch}"),
            None => String::new(),
        };
        let mut sse = Sse::open(addr, &format!("/streams/{key}/events?{query}"), &[]).await;
        if sse.conn.status != 200 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let Next::Frame(ready) = sse.next_within(PROMPT).await else {
            continue;
        };
        let epoch = ready.json()["epoch"].as_str().unwrap().to_owned();
        if cursor.as_ref().is_some_and(|(_, e)| *e != epoch) {
            panic!("the epoch changed under a Redis restart with persistence");
        }
        loop {
            match sse.next_within(Duration::from_secs(3)).await {
                Next::Frame(frame) if frame.id.is_some() => {
                    let id = frame.id.clone().unwrap();
                    let newer = cursor
                        .as_ref()
                        .is_none_or(|(c, _)| id_pair(&id) > id_pair(c));
                    if newer {
                        cursor = Some((id, epoch.clone()));
                        let done = frame.event == "done";
                        frames.push(frame);
                        if done {
                            return (frames, connections);
                        }
                    }
                }
                Next::Frame(_) => {}
                Next::End | Next::Silent => break,
            }
        }
    }
}

fn id_pair(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap();
    (ms.parse().unwrap(), seq.parse().unwrap())
}

#[tokio::test]
async fn a_turn_rides_out_a_redis_restart_and_a_client_hopping_processes_gets_it_once() {
    let mut redis = RedisServer::start_persistent();
    let [a, b, c] = spawn_three(&redis).await;
    let accepted = post(a.addr, "/streams/turn/turns?tokens=120&rateHz=40").await;
    assert_eq!(accepted.status, 202);
    let addrs = [b.addr, c.addr];
    let follower =
        tokio::spawn(async move { follow(&addrs, "turn", Duration::from_secs(40)).await });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    redis.stop();
    tokio::time::sleep(Duration::from_millis(800)).await;
    redis.restart();
    let (frames, connections) = follower.await.unwrap();
    assert!(connections >= 2, "the client never had to reconnect");
    let tokens: Vec<u64> = frames[..frames.len() - 1]
        .iter()
        .map(|f| f.json()["i"].as_u64().unwrap())
        .collect();
    assert_eq!(
        tokens,
        (0..120).collect::<Vec<_>>(),
        "every token once, in order"
    );
    assert_eq!(
        frames.last().unwrap().json(),
        serde_json::json!({"tokens": 120})
    );
}

#[tokio::test]
async fn connections_joining_under_a_busy_producer_get_everything_after_their_tail() {
    let redis = RedisServer::start();
    let [a, b, _c] = spawn_three(&redis).await;
    // The producer appends one entry per request, as fast as it can, on another process.
    let producer = tokio::spawn(async move {
        for i in 0..600 {
            append(a.addr, "busy", "token", &i.to_string()).await;
        }
        append(a.addr, "busy", "done", "").await;
    });
    // Connections join all along the way, some while their key's reader starts or restarts.
    let mut readers = Vec::new();
    for n in 0..24 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        readers.push(tokio::spawn(async move {
            let mut sse = Sse::connect(b.addr, "busy", "from=now").await;
            let tail = sse.ready().await["tail"].as_str().map(str::to_owned);
            (n, tail, ids(&sse.rest().await))
        }));
    }
    producer.await.unwrap();
    let mut whole = Sse::connect(b.addr, "busy", "").await;
    whole.ready().await;
    let journal = ids(&whole.rest().await);
    assert_eq!(journal.len(), 601);
    for reader in readers {
        let (n, tail, got) = reader.await.unwrap();
        let from = match &tail {
            Some(tail) => journal.iter().position(|id| id == tail).unwrap() + 1,
            None => 0,
        };
        assert_eq!(got, journal[from..], "connection {n} (tail {tail:?})");
    }
}
