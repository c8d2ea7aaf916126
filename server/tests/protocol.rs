//! Protocol v1 over loopback against the real server: the ready gate, resume, `from`, epochs,
//! `done`, id modes, producers, and the HTTP surface.

mod support;

use std::time::Duration;

use serde_json::Value;
use sse_relay_server::IdMode;
use support::*;
use tokio::time::Instant;

async fn ready_waits_for_the_join_so_an_entry_dispatched_on_ready_is_delivered(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();

    let opened = Instant::now();
    let mut sse = Sse::connect(addr, "gate", "from=now&joinDelayMs=300").await;
    // The 200 and its headers are already here; they are not the join.
    let ready = sse.ready().await;
    assert!(
        opened.elapsed() >= Duration::from_millis(300),
        "ready came before the delayed join completed"
    );
    assert_eq!(ready["tail"], Value::Null);
    // The application dispatches as soon as ready arrives: its first token must arrive.
    let id = append(addr, "gate", "token", "first").await;
    let frame = sse.frame().await;
    assert_eq!(frame.id.as_deref(), Some(id.as_str()));
    assert_eq!(frame.data.as_deref(), Some("first"));
}

async fn an_entry_appended_during_the_join_delay_is_covered_by_ready(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();

    let mut now = Sse::connect(addr, "window", "from=now&joinDelayMs=1000").await;
    let mut start = Sse::connect(addr, "window", "joinDelayMs=1000").await;
    // Appended while both connections are still joining.
    let early = append(addr, "window", "token", "early").await;

    // from=now: the tail snapshotted at the join already includes it, so the client's cursor
    // starts after it and nothing appended after ready can be missed.
    let ready = now.ready().await;
    assert_eq!(ready["tail"], early.as_str());
    // from=start: it is replayed.
    start.ready().await;
    assert_eq!(start.frame().await.id, Some(early.clone()));

    let later = append(addr, "window", "token", "later").await;
    assert_eq!(now.frame().await.id, Some(later.clone()));
    assert_eq!(start.frame().await.id, Some(later));
}

async fn ready_early_reproduces_the_subscribe_then_trigger_race(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();

    let opened = Instant::now();
    let mut sse = Sse::connect(addr, "race", "from=now&joinDelayMs=1000&readyEarly=1").await;
    sse.ready().await;
    assert!(
        opened.elapsed() < Duration::from_millis(800),
        "readyEarly must send ready before the join"
    );
    // Dispatched on ready, published before the late join: a broker does not replay it.
    let lost = append(addr, "race", "token", "lost").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let kept = append(addr, "race", "token", "kept").await;

    let frame = sse.frame().await;
    assert_eq!(frame.id, Some(kept), "expected the entry after the join");
    assert_ne!(frame.id, Some(lost));
}

async fn a_resumed_connection_gets_exactly_the_entries_after_its_cursor(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    for i in 1..=5 {
        append(addr, "resume", "token", &format!("t{i}")).await;
    }

    let mut sse = Sse::connect(addr, "resume", "lastEventId=3").await;
    let ready = sse.ready().await;
    assert_eq!(ready["tail"], "5");
    let replayed = [sse.frame().await, sse.frame().await];
    assert_eq!(ids(&replayed), numeric(4..=5));
    assert_eq!(replayed[0].event, "token");
    assert_eq!(replayed[0].data.as_deref(), Some("t4"));

    append(addr, "resume", "token", "t6").await;
    assert_eq!(sse.frame().await.id.as_deref(), Some("6"));
    sse.expect_quiet(Duration::from_millis(200)).await;
}

async fn the_last_event_id_header_wins_over_the_query_cursor(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    for i in 1..=5 {
        append(addr, "hdr", "token", &i.to_string()).await;
    }

    let mut both = Sse::connect_with(addr, "hdr", "lastEventId=1", &[("Last-Event-ID", "4")]).await;
    both.ready().await;
    assert_eq!(both.frame().await.id.as_deref(), Some("5"));
    both.expect_quiet(Duration::from_millis(150)).await;

    let mut header_only = Sse::connect_with(addr, "hdr", "", &[("Last-Event-ID", "3")]).await;
    header_only.ready().await;
    let frames = [header_only.frame().await, header_only.frame().await];
    assert_eq!(ids(&frames), numeric(4..=5));
}

async fn an_entry_appended_between_two_connections_is_delivered_on_resume(engine: Engine) {
    // The Redis `$` bug: re-resolving "the tail" on every poll loses what
    // was appended in between; resuming from the last delivered id does not.
    let server = start(&engine).await;
    let addr = server.local_addr();

    let mut first = Sse::connect(addr, "gap", "from=now").await;
    first.ready().await;
    append(addr, "gap", "token", "a").await;
    let last = first.frame().await.id.unwrap();
    drop(first);

    let gap = append(addr, "gap", "token", "b").await;

    // The naive client re-resolves the tail: the gap entry is behind it and never arrives.
    let mut naive = Sse::connect(addr, "gap", "from=now").await;
    assert_eq!(naive.ready().await["tail"], gap.as_str());
    let after = append(addr, "gap", "token", "c").await;
    assert_eq!(naive.frame().await.id, Some(after.clone()));

    // The correct client resumes from its cursor and gets the gap entry, then the rest.
    let mut resumed = Sse::connect(addr, "gap", &format!("from=now&lastEventId={last}")).await;
    resumed.ready().await;
    assert_eq!(resumed.frame().await.id, Some(gap));
    assert_eq!(resumed.frame().await.id, Some(after));
}

async fn done_ends_the_stream_and_closes_the_key(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();

    let mut live = Sse::connect(addr, "fin", "").await;
    live.ready().await;
    append(addr, "fin", "token", "x").await;
    append(addr, "fin", "token", "y").await;
    let done = append(addr, "fin", "done", "").await;
    let frames = live.rest().await;
    assert_eq!(ids(&frames), numeric(1..=3));
    assert_eq!(frames[2].event, "done");
    assert_eq!(frames[2].data.as_deref(), Some(""));

    // A late attach replays the whole turn and ends after done.
    let mut late = Sse::connect(addr, "fin", "").await;
    late.ready().await;
    assert_eq!(ids(&late.rest().await), numeric(1..=3));

    // from=now on a stream whose only entry is done: no tail, then done.
    append(addr, "only-done", "done", "").await;
    let mut only = Sse::connect(addr, "only-done", "from=now").await;
    assert_eq!(only.ready().await["tail"], Value::Null);
    assert_eq!(ids(&only.rest().await), ["1"]);

    // A cursor at done: ready, then the end.
    let mut at_done = Sse::connect(addr, "fin", &format!("lastEventId={done}")).await;
    assert_eq!(at_done.ready().await["tail"], done.as_str());
    assert!(at_done.rest().await.is_empty());

    let refused = request(
        addr,
        "POST",
        "/streams/fin/append",
        &[],
        br#"{"event":"token","data":"z"}"#,
    )
    .await;
    assert_eq!(refused.status, 409);
    assert!(refused.text().contains("reset"), "{}", refused.text());
    assert_eq!(post(addr, "/streams/fin/turns?tokens=2").await.status, 409);
    assert_eq!(post(addr, "/streams/fin/fill?frames=2").await.status, 409);
    assert_eq!(stats(addr, "fin").await["length"], 3);
}

async fn from_now_replays_nothing_and_from_start_replays_everything(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    for i in 1..=3 {
        append(addr, "from", "token", &i.to_string()).await;
    }

    let mut now = Sse::connect(addr, "from", "from=now").await;
    assert_eq!(now.ready().await["tail"], "3");
    now.expect_quiet(Duration::from_millis(200)).await;

    let mut start = Sse::connect(addr, "from", "from=start").await;
    start.ready().await;
    let replayed = [
        start.frame().await,
        start.frame().await,
        start.frame().await,
    ];
    assert_eq!(ids(&replayed), numeric(1..=3));

    let mut default = Sse::connect(addr, "from", "").await;
    default.ready().await;
    assert_eq!(default.frame().await.id.as_deref(), Some("1"));

    append(addr, "from", "token", "4").await;
    assert_eq!(now.frame().await.id.as_deref(), Some("4"));
    assert_eq!(start.frame().await.id.as_deref(), Some("4"));
}

async fn a_cursor_from_another_epoch_replays_from_the_start(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    for i in 1..=3 {
        append(addr, "ep", "token", &i.to_string()).await;
    }
    let epoch = stats(addr, "ep").await["epoch"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut stale = Sse::connect(addr, "ep", "epoch=old-epoch&lastEventId=2").await;
    assert_eq!(stale.ready().await["epoch"], epoch.as_str());
    let frames = [
        stale.frame().await,
        stale.frame().await,
        stale.frame().await,
    ];
    assert_eq!(ids(&frames), numeric(1..=3));

    // A stale cursor is not even parsed: its epoch may have had another id mode.
    let mut other_mode = Sse::connect(addr, "ep", "epoch=old-epoch&lastEventId=17-3").await;
    other_mode.ready().await;
    assert_eq!(other_mode.frame().await.id.as_deref(), Some("1"));

    let mut current = Sse::connect(addr, "ep", &format!("epoch={epoch}&lastEventId=2")).await;
    current.ready().await;
    assert_eq!(current.frame().await.id.as_deref(), Some("3"));
    current.expect_quiet(Duration::from_millis(150)).await;
}

async fn reset_starts_a_new_epoch_restarts_ids_and_ends_open_streams(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    append(addr, "rs", "token", "a").await;
    append(addr, "rs", "done", "").await;
    let old_epoch = stats(addr, "rs").await["epoch"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut open = Sse::connect(addr, "rs", "from=now").await;
    // from=now on a done stream: the tail before done, then done, then the end (a live-only
    // client learns the stream is over instead of waiting forever).
    assert_eq!(open.ready().await["tail"], "1");
    let rest = open.rest().await;
    assert_eq!(ids(&rest), ["2"]);
    assert_eq!(rest[0].event, "done");

    let reopened = post(addr, "/streams/rs/reset").await;
    let mut live = Sse::connect(addr, "rs", "").await;
    let ready = live.ready().await;
    assert_eq!(reopened.status, 200);
    let new_epoch = reopened.json()["epoch"].as_str().unwrap().to_owned();
    assert_ne!(new_epoch, old_epoch);
    assert_eq!(ready["epoch"], new_epoch.as_str());
    assert_eq!(ready["tail"], Value::Null);
    let now = stats(addr, "rs").await;
    assert_eq!(now["length"], 0);
    assert_eq!(now["done"], false);

    assert_eq!(append(addr, "rs", "token", "b").await, "1");
    assert_eq!(live.frame().await.id.as_deref(), Some("1"));

    // Another reset ends the open stream so its client reconnects into the new epoch.
    post(addr, "/streams/rs/reset").await;
    assert!(live.rest().await.is_empty());

    // A cursor of the old epoch replays the new epoch from its start.
    append(addr, "rs", "token", "c").await;
    let mut old = Sse::connect(addr, "rs", &format!("epoch={new_epoch}&lastEventId=1")).await;
    old.ready().await;
    let frame = old.frame().await;
    assert_eq!(frame.id.as_deref(), Some("1"));
    assert_eq!(frame.data.as_deref(), Some("c"));

    assert_eq!(post(addr, "/streams/rs/reset?ids=uuid").await.status, 400);
}

fn redis_pair(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').expect("redis id");
    (ms.parse().unwrap(), seq.parse().unwrap())
}

async fn redis_ids_increase_and_resume_as_pairs(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    let reset = post(addr, "/streams/rd/reset?ids=redis").await;
    assert_eq!(reset.json()["ids"], "redis");

    let mut appended = Vec::new();
    for i in 0..30 {
        appended.push(append(addr, "rd", "token", &i.to_string()).await);
    }
    let pairs: Vec<(u64, u64)> = appended.iter().map(|id| redis_pair(id)).collect();
    assert!(
        pairs.windows(2).all(|w| w[0] < w[1]),
        "not increasing: {appended:?}"
    );

    let mut sse = Sse::connect(addr, "rd", &format!("lastEventId={}", appended[9])).await;
    assert_eq!(sse.ready().await["tail"], appended[29].as_str());
    let mut got = Vec::new();
    for _ in 0..20 {
        got.push(sse.frame().await.id.unwrap());
    }
    assert_eq!(got, appended[10..]);
    sse.expect_quiet(Duration::from_millis(100)).await;

    let bad = request(addr, "GET", "/streams/rd/events?lastEventId=5", &[], b"").await;
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("redis"), "{}", bad.text());
    assert_eq!(stats(addr, "rd").await["ids"], "redis");
}

async fn the_ids_flag_sets_the_mode_of_new_keys(engine: Engine) {
    let server = start_with(&engine, |c| c.ids = Some(IdMode::Redis)).await;
    let addr = server.local_addr();
    let id = append(addr, "any", "token", "x").await;
    redis_pair(&id);
    let back = post(addr, "/streams/any/reset?ids=numeric").await;
    assert_eq!(back.json()["ids"], "numeric");
    assert_eq!(append(addr, "any", "token", "y").await, "1");
}

async fn turns_produce_tokens_then_done(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();

    let accepted = post(addr, "/streams/turn/turns?tokens=5&rateHz=0").await;
    assert_eq!(accepted.status, 202);
    let body = accepted.json();
    assert_eq!(body["key"], "turn");
    assert!(body["epoch"].is_string());

    let mut sse = Sse::connect(addr, "turn", "").await;
    sse.ready().await;
    let frames = sse.rest().await;
    assert_eq!(ids(&frames), numeric(1..=6));
    for (i, frame) in frames[..5].iter().enumerate() {
        assert_eq!(frame.event, "token");
        let data = frame.json();
        assert_eq!(data["i"], i);
        assert!(data["text"].as_str().unwrap().ends_with(' '));
    }
    assert_eq!(frames[5].event, "done");
    assert_eq!(frames[5].json(), serde_json::json!({ "tokens": 5 }));

    // Paced: 4 tokens at 20 Hz take at least 3 periods (150 ms).
    let started = Instant::now();
    let mut paced = Sse::connect(addr, "paced", "from=now").await;
    paced.ready().await;
    assert_eq!(
        post(addr, "/streams/paced/turns?tokens=4&rateHz=20")
            .await
            .status,
        202
    );
    assert_eq!(paced.rest().await.len(), 5);
    assert!(started.elapsed() >= Duration::from_millis(150));

    for bad in ["tokens=-1", "tokens=1000001", "rateHz=fast", "rateHz=-2"] {
        let response = post(addr, &format!("/streams/turn2/turns?{bad}")).await;
        assert_eq!(response.status, 400, "{bad}");
    }
}

async fn fill_appends_frames_of_the_asked_size_then_done(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    let filled = post(addr, "/streams/fill/fill?frames=1000&bytes=100").await;
    assert_eq!(filled.status, 200);
    let body = filled.json();
    assert_eq!(body["frames"], 1000);
    assert_eq!(body["tail"], "1001");
    assert_eq!(body["length"], 1001);

    let mut sse = Sse::connect(addr, "fill", "").await;
    sse.ready().await;
    let frames = sse.rest().await;
    assert_eq!(ids(&frames), numeric(1..=1001));
    assert_eq!(frames[0].data.as_deref().unwrap().len(), 100);
    assert_eq!(frames[1000].json(), serde_json::json!({ "frames": 1000 }));

    assert_eq!(
        post(addr, "/streams/f2/fill?frames=2000001").await.status,
        400
    );
}

async fn multi_line_data_round_trips(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    append(addr, "ml", "token", "line one\nline two\n").await;
    let mut sse = Sse::connect(addr, "ml", "").await;
    sse.ready().await;
    assert_eq!(
        sse.frame().await.data.as_deref(),
        Some("line one\nline two\n")
    );
}

async fn pings_are_named_frames_with_data_and_no_id(engine: Engine) {
    let server = start_with(&engine, |c| c.ping = Duration::from_millis(50)).await;
    let addr = server.local_addr();
    let mut sse = Sse::connect(addr, "pg", "from=now").await;
    sse.ready().await;
    match sse.next_within(Duration::from_millis(1000)).await {
        Next::Frame(frame) => {
            assert_eq!(frame.event, "ping");
            assert_eq!(frame.id, None);
            assert_eq!(frame.data.as_deref(), Some(""));
        }
        other => panic!("expected a ping, got {other:?}"),
    }
}

async fn retention_keeps_only_the_newest_entries(engine: Engine) {
    let server = start_with(&engine, |c| c.retention = 5).await;
    let addr = server.local_addr();
    // Redis trims with `MAXLEN ~`: whole internal nodes (100 entries each by default), so it
    // keeps at least the retention and drops the oldest once a node is entirely beyond it.
    let total: u64 = if engine.is_redis() { 350 } else { 8 };
    for i in 1..=total {
        append(addr, "ret", "token", &i.to_string()).await;
    }
    let length = stats(addr, "ret").await["length"].as_u64().unwrap();
    if engine.is_redis() {
        assert!((5..total).contains(&length), "length {length}");
    } else {
        assert_eq!(length, 5);
    }
    // A cursor older than the retained window gets what is retained: the newest `length`.
    let mut sse = Sse::connect(addr, "ret", "lastEventId=1").await;
    sse.ready().await;
    let mut got = Vec::new();
    for _ in 0..length {
        got.push(sse.frame().await);
    }
    assert_eq!(ids(&got), numeric(total - length + 1..=total));
    sse.expect_quiet(Duration::from_millis(100)).await;
}

async fn stats_count_open_connections(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    let mut a = Sse::connect(addr, "st", "").await;
    let mut b = Sse::connect(addr, "st", "from=now").await;
    a.ready().await;
    b.ready().await;
    append(addr, "st", "token", "x").await;
    let now = stats(addr, "st").await;
    assert_eq!(now["connections"], 2);
    assert_eq!(now["connectionsTotal"], 2);
    assert_eq!(now["length"], 1);
    assert_eq!(now["tail"], "1");
    assert_eq!(now["done"], false);
    assert_eq!(now["key"], "st");

    drop(a);
    wait_for_stats(addr, "st", |s| s["connections"] == 1).await;
    drop(b);
    wait_for_stats(addr, "st", |s| s["connections"] == 0).await;
    assert_eq!(stats(addr, "st").await["connectionsTotal"], 2);
}

async fn bad_input_gets_clear_errors_and_leaves_the_journal_intact(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    append(addr, "bad", "token", "keep").await;

    let cursor = request(addr, "GET", "/streams/bad/events?lastEventId=abc", &[], b"").await;
    assert_eq!(cursor.status, 400);
    assert!(cursor.text().contains("cursor"), "{}", cursor.text());
    let header = request(
        addr,
        "GET",
        "/streams/bad/events",
        &[("Last-Event-ID", "-1")],
        b"",
    )
    .await;
    assert_eq!(header.status, 400);

    let from = request(addr, "GET", "/streams/bad/events?from=later", &[], b"").await;
    assert_eq!(from.status, 400);
    assert!(from.text().contains("`from`"));

    let key = request(addr, "GET", "/streams/b%20d/events", &[], b"").await;
    assert_eq!(key.status, 400);
    let long_key = format!("/streams/{}/stats", "k".repeat(129));
    assert_eq!(request(addr, "GET", &long_key, &[], b"").await.status, 400);

    assert_eq!(request(addr, "GET", "/nope", &[], b"").await.status, 404);
    assert_eq!(
        request(addr, "GET", "/streams/bad/nope", &[], b"")
            .await
            .status,
        404
    );
    assert_eq!(
        request(addr, "POST", "/streams/bad/events", &[], b"")
            .await
            .status,
        405
    );
    assert_eq!(
        request(addr, "GET", "/streams/bad/append", &[], b"")
            .await
            .status,
        405
    );

    let huge = format!(
        r#"{{"event":"token","data":"{}"}}"#,
        "x".repeat(64 * 1024 + 1)
    );
    let too_big = request(addr, "POST", "/streams/bad/append", &[], huge.as_bytes()).await;
    assert_eq!(too_big.status, 413);

    for body in [
        &b"not json"[..],
        b"",
        b"[1,2]",
        br#"{"event":"a:b","data":"x"}"#,
        br#"{"event":"","data":"x"}"#,
        br#"{"event":"two\nlines","data":"x"}"#,
        br#"{"event":"ready","data":"x"}"#,
        br#"{"event":5}"#,
    ] {
        let response = request(addr, "POST", "/streams/bad/append", &[], body).await;
        assert_eq!(
            response.status,
            400,
            "{:?} -> {}",
            String::from_utf8_lossy(body),
            response.text()
        );
    }

    // Event defaults to message; non-string data is kept as its JSON.
    let ok = request(
        addr,
        "POST",
        "/streams/bad/append",
        &[],
        br#"{"data":{"a":1}}"#,
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["id"], "2");

    let now = stats(addr, "bad").await;
    assert_eq!(now["length"], 2);
    let mut sse = Sse::connect(addr, "bad", "").await;
    sse.ready().await;
    let first = sse.frame().await;
    assert_eq!(first.data.as_deref(), Some("keep"));
    let second = sse.frame().await;
    assert_eq!(second.event, "message");
    assert_eq!(second.data.as_deref(), Some(r#"{"a":1}"#));
}

async fn cors_allows_pages_from_other_origins(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    let preflight = request(
        addr,
        "OPTIONS",
        "/streams/c/events",
        &[
            ("Origin", "http://127.0.0.1:9999"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "last-event-id, x-custom"),
        ],
        b"",
    )
    .await;
    assert!(preflight.status == 204 || preflight.status == 200);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    let allowed = preflight
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for name in ["authorization", "last-event-id", "content-type", "x-custom"] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert!(preflight
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));

    let plain = request(
        addr,
        "GET",
        "/streams/c/stats",
        &[("Origin", "http://x")],
        b"",
    )
    .await;
    assert_eq!(plain.header("access-control-allow-origin"), Some("*"));
    assert!(plain.header("access-control-expose-headers").is_some());

    let mut sse = Sse::connect_with(addr, "c", "", &[("Origin", "http://x")]).await;
    assert_eq!(sse.conn.header("access-control-allow-origin"), Some("*"));
    assert_eq!(sse.conn.header("cache-control"), Some("no-cache"));
    assert_eq!(sse.conn.header("x-accel-buffering"), Some("no"));
    sse.ready().await;
}

async fn static_files_are_served_with_their_content_types(engine: Engine) {
    let dir = std::env::temp_dir().join(format!("sse-relay-static-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>root</h1>").unwrap();
    std::fs::write(dir.join("sub/index.html"), "<h1>sub</h1>").unwrap();
    std::fs::write(dir.join("app.wasm"), b"\0asm").unwrap();
    std::fs::write(dir.join("mod.mjs"), "export {}").unwrap();
    std::fs::write(dir.join("glue.js"), "1").unwrap();

    let root = dir.clone();
    let server = start_with(&engine, |c| c.static_dir = Some(root)).await;
    let addr = server.local_addr();

    let index = request(addr, "GET", "/", &[], b"").await;
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<h1>root</h1>");
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let wasm = request(addr, "GET", "/app.wasm", &[], b"").await;
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    for js in ["/mod.mjs", "/glue.js"] {
        let response = request(addr, "GET", js, &[], b"").await;
        assert!(response
            .header("content-type")
            .unwrap()
            .starts_with("text/javascript"));
    }
    let redirect = request(addr, "GET", "/sub", &[], b"").await;
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.header("location"), Some("/sub/"));
    assert_eq!(
        request(addr, "GET", "/sub/", &[], b"").await.text(),
        "<h1>sub</h1>"
    );
    assert_eq!(
        request(addr, "GET", "/../Cargo.toml", &[], b"")
            .await
            .status,
        404
    );
    assert_eq!(
        request(addr, "GET", "/%2e%2e/Cargo.toml", &[], b"")
            .await
            .status,
        404
    );
    assert_eq!(
        request(addr, "GET", "/missing.js", &[], b"").await.status,
        404
    );
    assert_eq!(
        request(addr, "POST", "/index.html", &[], b"").await.status,
        404
    );
    // The API still answers beside the static folder.
    assert_eq!(stats(addr, "s").await["length"], 0);

    std::fs::remove_dir_all(&dir).unwrap();
}

async fn shutdown_ends_open_streams_and_stops_the_server(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    let mut live = Sse::connect(addr, "sd", "from=now").await;
    live.ready().await;
    let mut stalled = Sse::connect(addr, "sd", "stallAfter=1").await;
    stalled.ready().await;
    append(addr, "sd", "token", "x").await;
    assert_eq!(live.frame().await.id.as_deref(), Some("1"));
    assert_eq!(stalled.frame().await.id.as_deref(), Some("1"));

    let stopping = Instant::now();
    server.shutdown().await.expect("clean shutdown");
    assert!(stopping.elapsed() < Duration::from_secs(3));
    assert_eq!(live.next_within(PROMPT).await, Next::End);
    assert_eq!(stalled.next_within(PROMPT).await, Next::End);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

async fn the_binary_prints_its_address_first_and_exits_after_its_lifetime(engine: Engine) {
    let journal = match engine.journal() {
        sse_relay_server::JournalConfig::Redis(url) => url,
        _ => "memory".to_owned(),
    };
    let (mut child, addr) = spawn_binary(&["--lifetime-secs", "2", "--journal", &journal]).await;
    assert_eq!(stats(addr, "bin").await["length"], 0);

    let status = tokio::time::timeout(Duration::from_secs(8), child.wait())
        .await
        .expect("the server exits on its own")
        .unwrap();
    assert!(status.success());
}

matrix!(
    ready_waits_for_the_join_so_an_entry_dispatched_on_ready_is_delivered,
    an_entry_appended_during_the_join_delay_is_covered_by_ready,
    ready_early_reproduces_the_subscribe_then_trigger_race,
    a_resumed_connection_gets_exactly_the_entries_after_its_cursor,
    the_last_event_id_header_wins_over_the_query_cursor,
    an_entry_appended_between_two_connections_is_delivered_on_resume,
    done_ends_the_stream_and_closes_the_key,
    from_now_replays_nothing_and_from_start_replays_everything,
    a_cursor_from_another_epoch_replays_from_the_start,
    reset_starts_a_new_epoch_restarts_ids_and_ends_open_streams,
    redis_ids_increase_and_resume_as_pairs,
    the_ids_flag_sets_the_mode_of_new_keys,
    turns_produce_tokens_then_done,
    fill_appends_frames_of_the_asked_size_then_done,
    multi_line_data_round_trips,
    pings_are_named_frames_with_data_and_no_id,
    retention_keeps_only_the_newest_entries,
    stats_count_open_connections,
    bad_input_gets_clear_errors_and_leaves_the_journal_intact,
    cors_allows_pages_from_other_origins,
    static_files_are_served_with_their_content_types,
    shutdown_ends_open_streams_and_stops_the_server,
    the_binary_prints_its_address_first_and_exits_after_its_lifetime,
);
