//! Each fault knob does what it says, and a correct client (resume from the last delivered id,
//! drop ids it already has) still gets every entry exactly once.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::*;

/// Appends `n` tokens then `done` to `key`.
async fn turn(addr: std::net::SocketAddr, key: &str, n: usize) {
    for i in 1..=n {
        append(addr, key, "token", &format!("t{i}")).await;
    }
    append(addr, key, "done", "").await;
}

async fn drop_after_cuts_each_connection_and_resuming_still_gets_everything(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    turn(addr, "drop", 10).await;

    let mut delivered: Vec<String> = Vec::new();
    let mut connections = 0;
    loop {
        connections += 1;
        assert!(connections <= 10, "no progress: {delivered:?}");
        let query = match delivered.last() {
            Some(cursor) => format!("dropAfter=3&lastEventId={cursor}"),
            None => "dropAfter=3".to_owned(),
        };
        let mut sse = Sse::connect(addr, "drop", &query).await;
        sse.ready().await;
        let frames = sse.rest().await;
        assert!(frames.len() <= 3, "{frames:?}");
        let done = frames.iter().any(|f| f.event == "done");
        delivered.extend(ids(&frames));
        if done {
            break;
        }
    }
    assert_eq!(delivered, numeric(1..=11));
    assert_eq!(connections, 4);
}

async fn drop_after_counts_live_frames_too(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    let mut sse = Sse::connect(addr, "droplive", "from=now&dropAfter=2").await;
    sse.ready().await;
    for i in 0..3 {
        append(addr, "droplive", "token", &i.to_string()).await;
    }
    assert_eq!(ids(&sse.rest().await), numeric(1..=2));
}

async fn dup_seam_sends_the_last_replayed_frames_again(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    for i in 1..=5 {
        append(addr, "dup", "token", &i.to_string()).await;
    }
    let mut sse = Sse::connect(addr, "dup", "lastEventId=1&dupSeam=2").await;
    sse.ready().await;
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(sse.frame().await);
    }
    assert_eq!(ids(&got), ["2", "3", "4", "5", "4", "5"]);
    // Duplicates are byte-identical frames: only the id can tell them apart.
    assert_eq!(got[2], got[4]);
    append(addr, "dup", "token", "6").await;
    assert_eq!(sse.frame().await.id.as_deref(), Some("6"));

    // A client that drops ids at or below its cursor sees each entry once.
    let unique: BTreeSet<String> = ids(&got).into_iter().collect();
    assert_eq!(unique.len(), 4);

    // K larger than the replay repeats the whole replay; nothing replayed, nothing repeated.
    let mut all = Sse::connect(addr, "dup", "lastEventId=4&dupSeam=10").await;
    all.ready().await;
    let frames = [
        all.frame().await,
        all.frame().await,
        all.frame().await,
        all.frame().await,
    ];
    assert_eq!(ids(&frames), ["5", "6", "5", "6"]);
    let mut none = Sse::connect(addr, "dup", "from=now&dupSeam=3").await;
    none.ready().await;
    none.expect_quiet(Duration::from_millis(150)).await;
}

async fn stall_after_goes_silent_but_keeps_the_connection_open(engine: Engine) {
    let server = start_with(&engine, |c| c.ping = Duration::from_millis(50)).await;
    let addr = server.local_addr();
    for i in 1..=5 {
        append(addr, "stall", "token", &i.to_string()).await;
    }

    let mut stalled = Sse::connect(addr, "stall", "stallAfter=2").await;
    stalled.ready().await;
    let first = [stalled.frame().await, stalled.frame().await];
    assert_eq!(ids(&first), numeric(1..=2));
    append(addr, "stall", "token", "6").await;
    // Not even pings, although they are due every 50 ms.
    assert_eq!(
        stalled.next_within(Duration::from_millis(400)).await,
        Next::Silent
    );
    assert_eq!(stats(addr, "stall").await["connections"], 1);

    // The client's heartbeat timeout fires; it resumes from its cursor and makes progress.
    let mut resumed = Sse::connect(addr, "stall", "stallAfter=2&lastEventId=2").await;
    resumed.ready().await;
    let next = [resumed.frame().await, resumed.frame().await];
    assert_eq!(ids(&next), numeric(3..=4));
    assert_eq!(
        resumed.next_within(Duration::from_millis(200)).await,
        Next::Silent
    );

    // The stalled connections end when their clients go away.
    drop(stalled);
    drop(resumed);
    wait_for_stats(addr, "stall", |s| s["connections"] == 0).await;
}

async fn status_fails_only_the_first_fail_count_connections(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    append(addr, "st", "token", "x").await;

    let target = "/streams/st/events?status=503&failCount=2";
    for _ in 0..2 {
        let failed = request(addr, "GET", target, &[], b"").await;
        assert_eq!(failed.status, 503);
        assert!(failed.text().contains("injected"));
    }
    let mut ok = Sse::connect(addr, "st", "status=503&failCount=2").await;
    ok.ready().await;
    assert_eq!(ok.frame().await.id.as_deref(), Some("1"));
    // Failed answers are not SSE connections.
    assert_eq!(stats(addr, "st").await["connectionsTotal"], 1);

    for code in [500u16, 404, 401, 204, 429] {
        let key = format!("code{code}");
        let failed = request(
            addr,
            "GET",
            &format!("/streams/{key}/events?status={code}"),
            &[],
            b"",
        )
        .await;
        assert_eq!(failed.status, code);
        // failCount defaults to 1.
        let mut next = Sse::connect(addr, &key, &format!("status={code}")).await;
        next.ready().await;
    }

    // The count is per key: another key fails again.
    let other = request(addr, "GET", "/streams/st2/events?status=503", &[], b"").await;
    assert_eq!(other.status, 503);
    // failCount=0 never fails; reset clears the count.
    let mut zero = Sse::connect(addr, "st3", "status=500&failCount=0").await;
    zero.ready().await;
    post(addr, "/streams/st2/reset").await;
    let again = request(addr, "GET", "/streams/st2/events?status=503", &[], b"").await;
    assert_eq!(again.status, 503);
}

async fn content_type_serves_a_non_sse_body_first(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    let wrong = request(
        addr,
        "GET",
        "/streams/ct/events?contentType=text/html",
        &[],
        b"",
    )
    .await;
    assert_eq!(wrong.status, 200);
    assert_eq!(wrong.header("content-type"), Some("text/html"));
    assert!(!wrong.text().contains("event:"));
    let mut ok = Sse::connect(addr, "ct", "contentType=text/html").await;
    ok.ready().await;
}

async fn garbage_sends_malformed_frames_that_never_carry_an_id(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    append(addr, "junk", "token", "a").await;
    append(addr, "junk", "token", "b").await;

    let mut sse = Sse::connect(addr, "junk", "garbage=1").await;
    let ready = sse.ready().await;
    assert_eq!(ready["tail"], "2");

    let not_json = sse.frame().await;
    assert_eq!(not_json.event, "ready");
    assert!(serde_json::from_str::<serde_json::Value>(not_json.data.as_deref().unwrap()).is_err());
    assert_eq!(not_json.id, None);

    let no_id = sse.frame().await;
    assert_eq!(no_id.event, "token");
    assert_eq!(no_id.id.as_deref(), Some(""));
    assert_eq!(no_id.data.as_deref(), Some("no-id"));

    let oversized = sse.frame().await;
    assert_eq!(oversized.id.as_deref(), Some(""));
    assert!(oversized.data.as_deref().unwrap().len() >= 256 * 1024);

    // Then the stream goes on normally.
    let real = [sse.frame().await, sse.frame().await];
    assert_eq!(ids(&real), numeric(1..=2));
    append(addr, "junk", "token", "c").await;
    assert_eq!(sse.frame().await.id.as_deref(), Some("3"));
}

async fn knobs_parse_strictly_and_unknown_parameters_are_ignored(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    for (knob, value) in [
        ("dropAfter", "0"),
        ("dropAfter", "many"),
        ("stallAfter", "-3"),
        ("dupSeam", "1e3"),
        ("joinDelayMs", "soon"),
        ("readyEarly", "yes"),
        ("status", "418"),
        ("failCount", "x"),
        ("garbage", "2"),
        ("contentType", ""),
        ("retryAfter", "3"),
        ("retryAfter", "-1"),
        ("requireAuth", ""),
        ("chunk", "2"),
        ("lineEnd", "crcr"),
    ] {
        let response = request(
            addr,
            "GET",
            &format!("/streams/kn/events?{knob}={value}"),
            &[],
            b"",
        )
        .await;
        assert_eq!(response.status, 400, "{knob}={value}");
        assert!(response.text().contains(knob), "{}", response.text());
    }
    let mut sse = Sse::connect(addr, "kn", "cb=123&cursorParam=x&foo=bar").await;
    sse.ready().await;
}

/// Reads the body of `conn` piece by piece until it ends, returning the pieces as they came.
async fn pieces_to_end(conn: &mut Conn) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    while let Some(piece) = tokio::time::timeout(PROMPT, conn.body_chunk())
        .await
        .expect("the body neither ended nor sent anything")
    {
        pieces.push(piece);
    }
    pieces
}

/// Splits SSE bytes into blocks at blank lines, whatever the line ends, and parses each block.
fn frames_any_line_end(bytes: &[u8]) -> Vec<Frame> {
    // Lossy: a body read so far may end inside a character.
    let text = String::from_utf8_lossy(bytes);
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    normalized
        .split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| parse_frame(block.as_bytes()))
        .collect()
}

async fn require_auth_refuses_requests_without_the_bearer_token(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    append(addr, "auth", "token", "secret stuff").await;

    let target = "/streams/auth/events?requireAuth=s3cret";
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", "Basic czNjcmV0")],
        vec![("Authorization", "Bearer S3CRET")],
    ] {
        let refused = request(addr, "GET", target, &headers, b"").await;
        assert_eq!(refused.status, 401, "{headers:?}");
        assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
        assert!(!refused.text().contains("secret stuff"));
    }
    // Refused requests are not SSE connections.
    assert_eq!(stats(addr, "auth").await["connectionsTotal"], 0);

    for scheme in ["Bearer", "bearer"] {
        let token = format!("{scheme} s3cret");
        let mut sse = Sse::connect_with(
            addr,
            "auth",
            "requireAuth=s3cret",
            &[("Authorization", &token)],
        )
        .await;
        sse.ready().await;
        assert_eq!(sse.frame().await.data.as_deref(), Some("secret stuff"));
    }

    // Authentication comes first: a refused request does not use up `failCount`.
    let faulty = "/streams/auth2/events?requireAuth=t&status=503";
    assert_eq!(request(addr, "GET", faulty, &[], b"").await.status, 401);
    let bearer = [("Authorization", "Bearer t")];
    assert_eq!(request(addr, "GET", faulty, &bearer, b"").await.status, 503);
    let mut ok = Sse::connect_with(addr, "auth2", "requireAuth=t&status=503", &bearer).await;
    ok.ready().await;
}

async fn retry_after_rides_on_429_and_503_answers(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    for (code, seconds) in [(429u16, "3"), (503, "0")] {
        let key = format!("ra{code}");
        let query = format!("status={code}&retryAfter={seconds}");
        let failed = request(
            addr,
            "GET",
            &format!("/streams/{key}/events?{query}"),
            &[],
            b"",
        )
        .await;
        assert_eq!(failed.status, code);
        assert_eq!(failed.header("retry-after"), Some(seconds));
        // failCount still counts: the next connection is a stream, without the header.
        let sse = Sse::connect(addr, &key, &query).await;
        assert_eq!(sse.conn.header("retry-after"), None);
    }
    // Without a status that takes it, the knob is a mistake.
    let bad = request(
        addr,
        "GET",
        "/streams/ra/events?status=500&retryAfter=3",
        &[],
        b"",
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("retryAfter"), "{}", bad.text());
}

async fn chunk_sends_every_byte_as_its_own_chunk_through_replay_and_live(engine: Engine) {
    let server = start(&engine).await;
    let addr = server.local_addr();
    for i in 1..=3 {
        append(addr, "bytes", "token", &format!("t{i} é")).await;
    }

    // Replay, then live, on one connection.
    let mut conn = Conn::open(addr, "GET", "/streams/bytes/events?chunk=1", &[], b"").await;
    assert_eq!(conn.status, 200);
    let mut body = Vec::new();
    while frames_any_line_end(&body).len() < 4 || !body.ends_with(b"\n\n") {
        let piece = tokio::time::timeout(PROMPT, conn.body_chunk())
            .await
            .expect("replay")
            .expect("open");
        assert_eq!(piece.len(), 1, "one byte per chunk");
        body.extend_from_slice(&piece);
    }
    append(addr, "bytes", "token", "live").await;
    append(addr, "bytes", "done", "").await;
    let rest = pieces_to_end(&mut conn).await;
    assert!(rest.iter().all(|piece| piece.len() == 1));
    body.extend(rest.concat());

    // The bytes are exactly those of an unchunked connection (after `ready`, whose tail moved).
    let plain = request(addr, "GET", "/streams/bytes/events", &[], b"").await;
    let after_ready = |text: &str| text.split_once("\n\n").unwrap().1.to_owned();
    assert_eq!(
        after_ready(&String::from_utf8(body.clone()).unwrap()),
        after_ready(&plain.text())
    );
    let frames = frames_any_line_end(&body);
    assert_eq!(frames[0].event, "ready");
    assert_eq!(ids(&frames[1..]), numeric(1..=5));
    assert_eq!(frames[1].data.as_deref(), Some("t1 é"));
}

async fn line_end_renders_every_line_with_that_ending(engine: Engine) {
    let server = start_with(&engine, |c| c.ping = Duration::from_millis(50)).await;
    let addr = server.local_addr();
    append(addr, "ends", "token", "two\nlines").await;
    append(addr, "ends", "done", "").await;
    let plain = request(addr, "GET", "/streams/ends/events", &[], b"").await;
    let lf = plain.text();
    assert!(lf.contains("data: two\ndata: lines\n\n"), "{lf}");

    for (name, ending) in [("lf", "\n"), ("cr", "\r"), ("crlf", "\r\n")] {
        let response = request(
            addr,
            "GET",
            &format!("/streams/ends/events?lineEnd={name}"),
            &[],
            b"",
        )
        .await;
        assert_eq!(response.text(), lf.replace('\n', ending), "lineEnd={name}");
        let frames = frames_any_line_end(&response.body);
        assert_eq!(ids(&frames[1..]), numeric(1..=2));
        assert_eq!(frames[1].data.as_deref(), Some("two\nlines"));
    }

    // Pings too, and with chunk=1 a CRLF is split between two chunks.
    let mut conn = Conn::open(
        addr,
        "GET",
        "/streams/pings/events?from=now&lineEnd=crlf&chunk=1",
        &[],
        b"",
    )
    .await;
    let mut body = Vec::new();
    while !String::from_utf8_lossy(&body).contains("event: ping\r\ndata:\r\n\r\n") {
        let piece = tokio::time::timeout(PROMPT, conn.body_chunk())
            .await
            .expect("a ping")
            .expect("open");
        assert_eq!(piece.len(), 1, "one byte per chunk");
        body.extend_from_slice(&piece);
    }
    assert!(!body.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
}

matrix!(
    drop_after_cuts_each_connection_and_resuming_still_gets_everything,
    drop_after_counts_live_frames_too,
    dup_seam_sends_the_last_replayed_frames_again,
    stall_after_goes_silent_but_keeps_the_connection_open,
    status_fails_only_the_first_fail_count_connections,
    content_type_serves_a_non_sse_body_first,
    garbage_sends_malformed_frames_that_never_carry_an_id,
    knobs_parse_strictly_and_unknown_parameters_are_ignored,
    require_auth_refuses_requests_without_the_bearer_token,
    retry_after_rides_on_429_and_503_answers,
    chunk_sends_every_byte_as_its_own_chunk_through_replay_and_live,
    line_end_renders_every_line_with_that_ending,
);
