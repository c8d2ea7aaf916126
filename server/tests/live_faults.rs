//! `POST /streams/{key}/faults`: live faults act on the key's open connections now (cut, stall,
//! garbage) or arm its next connections (dupSeam, joinDelayMs), and a correct client (resume from
//! the last delivered id, drop ids it already has, ignore frames without an id, replace a silent
//! connection) still gets every entry exactly once.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;
use tokio::time::Instant;

/// `POST /streams/{key}/faults?{query}`; asserts a 200 and returns the JSON answer.
async fn faults(addr: SocketAddr, key: &str, query: &str) -> Value {
    let response = post(addr, &format!("/streams/{key}/faults?{query}")).await;
    assert_eq!(response.status, 200, "{query}: {}", response.text());
    response.json()
}

/// Reads frames until the response ends; panics if it goes silent.
async fn until_end(sse: &mut Sse) -> Vec<Frame> {
    sse.rest().await
}

async fn cut_ends_every_open_connection_of_the_key_and_only_those(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    append(addr, "cut", "token", "a").await;

    let mut first = Sse::connect(addr, "cut", "").await;
    let mut second = Sse::connect(addr, "cut", "from=now").await;
    let mut other = Sse::connect(addr, "cut-other", "").await;
    for sse in [&mut first, &mut second, &mut other] {
        sse.ready().await;
    }
    assert_eq!(first.frame().await.id.as_deref(), Some("1"));

    let answer = faults(addr, "cut", "cut=1").await;
    assert_eq!(
        answer,
        json!({"key": "cut", "affected": 2, "live": ["cut"],
               "armed": {"dupSeam": null, "joinDelayMs": null}})
    );
    assert_eq!(until_end(&mut first).await, []);
    assert_eq!(until_end(&mut second).await, []);
    wait_for_stats(addr, "cut", |s| s["connections"] == 0).await;

    // The other key's stream goes on.
    append(addr, "cut-other", "token", "still here").await;
    assert_eq!(other.frame().await.data.as_deref(), Some("still here"));

    // The journal is untouched: a client resuming from its cursor gets what came since.
    append(addr, "cut", "token", "b").await;
    let mut resumed = Sse::connect(addr, "cut", "lastEventId=1").await;
    resumed.ready().await;
    assert_eq!(resumed.frame().await.id.as_deref(), Some("2"));

    // No connection open: nobody affected, and that is not an error.
    drop(resumed);
    wait_for_stats(addr, "cut", |s| s["connections"] == 0).await;
    assert_eq!(faults(addr, "cut", "cut=1").await["affected"], 0);
}

async fn stall_silences_open_connections_until_the_client_leaves_or_a_cut(engine: Engine) {
    let server = start_with(&engine, |c| c.ping = Duration::from_millis(50)).await;
    let addr = server.local_addr();
    append(addr, "stall", "token", "1").await;
    let mut stalled = Sse::connect(addr, "stall", "").await;
    stalled.ready().await;
    assert_eq!(stalled.frame().await.id.as_deref(), Some("1"));

    assert_eq!(faults(addr, "stall", "stall=1").await["affected"], 1);
    append(addr, "stall", "token", "2").await;
    // Nothing, not even the pings due every 50 ms, and the connection stays open.
    assert_eq!(
        stalled.next_within(Duration::from_millis(400)).await,
        Next::Silent
    );
    assert_eq!(stats(addr, "stall").await["connections"], 1);

    // The client's heartbeat timeout fires: a new connection is served normally.
    let mut fresh = Sse::connect(addr, "stall", "lastEventId=1").await;
    fresh.ready().await;
    assert_eq!(fresh.frame().await.id.as_deref(), Some("2"));
    drop(fresh);

    // A cut ends a stalled connection too; one that the client leaves ends by itself.
    wait_for_stats(addr, "stall", |s| s["connections"] == 1).await;
    assert_eq!(faults(addr, "stall", "cut=1").await["affected"], 1);
    assert_eq!(stalled.next_within(Duration::from_secs(2)).await, Next::End);
    let mut again = Sse::connect(addr, "stall", "from=now").await;
    again.ready().await;
    faults(addr, "stall", "stall=1").await;
    drop(again);
    wait_for_stats(addr, "stall", |s| s["connections"] == 0).await;
}

async fn garbage_sends_the_noise_on_open_connections_now(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    append(addr, "junk", "token", "a").await;
    let mut sse = Sse::connect(addr, "junk", "").await;
    sse.ready().await;
    assert_eq!(sse.frame().await.id.as_deref(), Some("1"));

    assert_eq!(faults(addr, "junk", "garbage=1").await["affected"], 1);
    let not_json = sse.frame().await;
    assert_eq!(
        (not_json.event.as_str(), not_json.id.as_deref()),
        ("ready", None)
    );
    assert!(serde_json::from_str::<Value>(not_json.data.as_deref().unwrap()).is_err());
    let no_id = sse.frame().await;
    assert_eq!(
        (no_id.id.as_deref(), no_id.data.as_deref()),
        (Some(""), Some("no-id"))
    );
    let oversized = sse.frame().await;
    assert_eq!(oversized.id.as_deref(), Some(""));
    assert!(oversized.data.unwrap().len() >= 256 * 1024);
    // Then the stream goes on.
    append(addr, "junk", "token", "b").await;
    assert_eq!(sse.frame().await.id.as_deref(), Some("2"));

    // During a join delay the noise waits for `ready`: `ready` stays the first frame.
    let mut joining = Sse::connect(addr, "junk", "joinDelayMs=300&lastEventId=2").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(faults(addr, "junk", "garbage=1").await["affected"], 2);
    let ready = joining.ready().await;
    assert_eq!(ready["tail"], "2");
    assert!(joining
        .frame()
        .await
        .data
        .unwrap()
        .starts_with("{this is not json"));
    assert_eq!(joining.frame().await.data.as_deref(), Some("no-id"));
}

async fn an_armed_dup_seam_resends_the_entries_up_to_the_tail_once(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    for i in 1..=6 {
        append(addr, "seam", "token", &i.to_string()).await;
    }
    let answer = faults(addr, "seam", "dupSeam=3").await;
    assert_eq!(answer["affected"], 0);
    assert_eq!(answer["live"], json!([]));
    assert_eq!(
        answer["armed"]["dupSeam"],
        json!({"value": 3, "connections": 1})
    );
    assert_eq!(
        stats(addr, "seam").await["armed"]["dupSeam"],
        answer["armed"]["dupSeam"]
    );

    // The next connection resumes at the tail: nothing to replay, yet it gets 4-6 again,
    // frames its client already has (a correct client drops them by id).
    let mut next = Sse::connect(addr, "seam", "lastEventId=6").await;
    next.ready().await;
    let again = [next.frame().await, next.frame().await, next.frame().await];
    assert_eq!(ids(&again), numeric(4..=6));
    append(addr, "seam", "token", "7").await;
    assert_eq!(next.frame().await.id.as_deref(), Some("7"));
    assert_eq!(stats(addr, "seam").await["armed"]["dupSeam"], Value::Null);

    // One-shot: the connection after it is clean.
    let mut clean = Sse::connect(addr, "seam", "lastEventId=5").await;
    clean.ready().await;
    assert_eq!(
        ids(&[clean.frame().await, clean.frame().await]),
        numeric(6..=7)
    );
    clean.expect_quiet(Duration::from_millis(150)).await;

    // next=2 arms two connections; a replaying one gets its last replayed frames again.
    faults(addr, "seam", "dupSeam=2&next=2").await;
    for _ in 0..2 {
        let mut sse = Sse::connect(addr, "seam", "lastEventId=4").await;
        sse.ready().await;
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(sse.frame().await);
        }
        assert_eq!(ids(&got), ["5", "6", "7", "6", "7"]);
    }
    let mut third = Sse::connect(addr, "seam", "lastEventId=6").await;
    third.ready().await;
    assert_eq!(third.frame().await.id.as_deref(), Some("7"));
    third.expect_quiet(Duration::from_millis(150)).await;

    // Armed faults outlive a reset (the reconnects it causes are the next connections), and
    // dupSeam=0 disarms.
    faults(addr, "seam", "dupSeam=9").await;
    post(addr, "/streams/seam/reset").await;
    assert_eq!(stats(addr, "seam").await["armed"]["dupSeam"]["value"], 9);
    assert_eq!(
        faults(addr, "seam", "dupSeam=0").await["armed"]["dupSeam"],
        Value::Null
    );
}

async fn an_armed_join_delay_slows_the_next_join_only(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    faults(addr, "slow", "joinDelayMs=400").await;

    let started = Instant::now();
    let mut slow = Sse::connect(addr, "slow", "from=now").await;
    // Appended during the delay, before the join: covered by `ready.tail`, so a client that
    // dispatches on `ready` loses nothing.
    append(addr, "slow", "token", "early").await;
    let ready = slow.ready().await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(ready["tail"], "1");
    append(addr, "slow", "token", "late").await;
    assert_eq!(slow.frame().await.id.as_deref(), Some("2"));

    // It replaced nothing else and applies once.
    let started = Instant::now();
    let mut quick = Sse::connect(addr, "slow", "from=now").await;
    quick.ready().await;
    assert!(started.elapsed() < Duration::from_millis(300));
}

async fn bad_fault_requests_are_400s_that_name_the_problem(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    for (query, names) in [
        ("", "no fault given"),
        ("foo=1", "no fault given"),
        ("cut=0", "no fault given"),
        ("cut=2", "cut"),
        ("cut=1&stall=1", "stall"),
        ("garbage=yes", "garbage"),
        ("dupSeam=-1", "dupSeam"),
        ("joinDelayMs=600001", "joinDelayMs"),
        ("dupSeam=2&next=0", "next"),
        ("cut=1&next=2", "next"),
    ] {
        let response = post(addr, &format!("/streams/bad/faults?{query}")).await;
        assert_eq!(response.status, 400, "{query}");
        assert!(
            response.text().contains(names),
            "{query}: {}",
            response.text()
        );
    }
    let get = request(addr, "GET", "/streams/bad/faults?cut=1", &[], b"").await;
    assert_eq!(get.status, 405);
    let bad_key = post(addr, "/streams/b%20d/faults?cut=1").await;
    assert_eq!(bad_key.status, 400);
}

/// What a correct client does, natively: connect with its cursor, drop frames without an id
/// (noise), ids at or below the cursor (seam duplicates), replace a connection that stays silent
/// longer than `heartbeat` (a stall), and resume from the cursor whenever a response ends.
async fn correct_client(addr: SocketAddr, key: &str, heartbeat: Duration) -> (Vec<String>, u32) {
    let mut delivered: Vec<String> = Vec::new();
    let mut connections = 0;
    loop {
        connections += 1;
        assert!(connections < 100, "no progress: {delivered:?}");
        let query = match delivered.last() {
            Some(cursor) => format!("lastEventId={cursor}"),
            None => String::new(),
        };
        let mut sse = Sse::connect(addr, key, &query).await;
        // Until the response ends or goes silent (the heartbeat timeout).
        while let Next::Frame(frame) = sse.next_within(heartbeat).await {
            let Some(id) = frame.id.filter(|id| !id.is_empty()) else {
                continue; // ready, ping, noise
            };
            let n: u64 = id.parse().unwrap();
            let cursor: u64 = delivered.last().map_or(0, |c| c.parse().unwrap());
            if n <= cursor {
                continue;
            }
            delivered.push(id);
            if frame.event == "done" {
                return (delivered, connections);
            }
        }
    }
}

async fn a_correct_client_gets_a_whole_turn_through_every_live_fault(engine: Engine) {
    let server = start_with(&engine, |c| c.ping = Duration::from_millis(50)).await;
    let addr = server.local_addr();
    let key = "storm";
    let client = tokio::spawn(correct_client(addr, key, Duration::from_millis(300)));
    wait_for_stats(addr, key, |s| s["connections"] == 1).await;
    let answer = post(addr, &format!("/streams/{key}/turns?tokens=120&rateHz=200")).await;
    assert_eq!(answer.status, 202);

    let storm = [
        "dupSeam=5",
        "cut=1",
        "garbage=1",
        "joinDelayMs=150",
        "cut=1",
        "stall=1",
        "dupSeam=3&joinDelayMs=100",
        "garbage=1&cut=1",
    ];
    for query in storm {
        tokio::time::sleep(Duration::from_millis(60)).await;
        faults(addr, key, query).await;
    }
    let (delivered, connections) = tokio::time::timeout(Duration::from_secs(20), client)
        .await
        .expect("the client finished")
        .unwrap();
    assert_eq!(delivered, numeric(1..=121));
    assert!(connections >= 3, "{connections} connections");
}

matrix!(
    cut_ends_every_open_connection_of_the_key_and_only_those,
    stall_silences_open_connections_until_the_client_leaves_or_a_cut,
    garbage_sends_the_noise_on_open_connections_now,
    an_armed_dup_seam_resends_the_entries_up_to_the_tail_once,
    an_armed_join_delay_slows_the_next_join_only,
    bad_fault_requests_are_400s_that_name_the_problem,
    a_correct_client_gets_a_whole_turn_through_every_live_fault,
);
