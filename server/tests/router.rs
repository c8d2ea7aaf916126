//! `RelayRouter` mounted in a host's own axum app: the protocol's routes under the host's
//! prefix, fault knobs and demo producers off unless asked for, on both journals.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use sse_relay_server::journal::{Journal, MemoryJournal, RedisJournal, RedisOptions};
use sse_relay_server::{IdMode, RelayRouter};
use support::*;

fn journal(engine: &Engine) -> Arc<dyn Journal> {
    match engine {
        Engine::Memory => Arc::new(MemoryJournal::new(IdMode::Numeric, 1000)),
        Engine::Redis(redis) => {
            let options = RedisOptions {
                ids: IdMode::Numeric,
                ..RedisOptions::default()
            };
            Arc::new(RedisJournal::open(&redis.url(), options).unwrap())
        }
    }
}

/// Serves `relay` under `/relay` beside a host route; returns the address.
async fn host(relay: Router) -> SocketAddr {
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest("/relay", relay);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn mounted_routes_speak_protocol_v1_with_the_knobs_off(engine: Engine) {
    let relay = RelayRouter::new(journal(&engine))
        .ping(Duration::from_millis(100))
        .build();
    let addr = host(relay).await;
    assert_eq!(request(addr, "GET", "/health", &[], b"").await.text(), "ok");

    let body = br#"{"event":"token","data":"one"}"#;
    let appended = request(addr, "POST", "/relay/streams/m/append", &[], body).await;
    assert_eq!(appended.status, 200, "{}", appended.text());
    // `dropAfter` is not a knob here: an unknown parameter, ignored.
    let mut sse = Sse::open(addr, "/relay/streams/m/events?dropAfter=1", &[]).await;
    assert_eq!(sse.conn.status, 200);
    assert_eq!(sse.ready().await["tail"], "1");
    assert_eq!(sse.frame().await.data.as_deref(), Some("one"));
    request(addr, "POST", "/relay/streams/m/append", &[], body).await;
    assert_eq!(sse.frame().await.id.as_deref(), Some("2"));
    // Pings at the interval asked for.
    assert!(matches!(
        sse.next_within(Duration::from_secs(2)).await,
        Next::Frame(frame) if frame.event == "ping"
    ));
    // No fault endpoint, no demo producers.
    let faults = request(addr, "POST", "/relay/streams/m/faults?cut=1", &[], b"").await;
    assert_eq!(faults.status, 404);
    let turns = request(addr, "POST", "/relay/streams/m/turns", &[], b"").await;
    assert_eq!(turns.status, 404);
    let stats = request(addr, "GET", "/relay/streams/m/stats", &[], b"")
        .await
        .json();
    assert_eq!(stats["length"], 2);
    assert_eq!(
        stats["journal"],
        if engine.is_redis() { "redis" } else { "memory" }
    );
}

async fn knobs_and_producers_when_asked_for(engine: Engine) {
    let relay = RelayRouter::new(journal(&engine))
        .fault_injection(true)
        .producers(true)
        .build();
    let addr = host(relay).await;
    let turn = request(
        addr,
        "POST",
        "/relay/streams/k/turns?tokens=3&rateHz=0",
        &[],
        b"",
    )
    .await;
    assert_eq!(turn.status, 202);
    let mut sse = Sse::open(addr, "/relay/streams/k/events?dropAfter=2", &[]).await;
    sse.ready().await;
    assert_eq!(ids(&sse.rest().await), numeric(1..=2));
    let faults = request(addr, "POST", "/relay/streams/k/faults?dupSeam=1", &[], b"").await;
    assert_eq!(faults.status, 200, "{}", faults.text());
}

matrix!(
    mounted_routes_speak_protocol_v1_with_the_knobs_off,
    knobs_and_producers_when_asked_for,
);
