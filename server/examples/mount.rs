//! Mounting sse-relay's protocol-v1 routes in your own axum app.
//!
//! ```sh
//! cargo run -p sse-relay-server --example mount                            # in-memory journal
//! cargo run -p sse-relay-server --example mount -- redis://127.0.0.1:6379/0  # Redis Streams
//! curl -N http://127.0.0.1:8788/relay/streams/chat/events &
//! curl -X POST http://127.0.0.1:8788/relay/streams/chat/append -d '{"event":"token","data":"hi"}'
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use sse_relay_server::journal::{Journal, MemoryJournal, RedisJournal, RedisOptions};
use sse_relay_server::{IdMode, RelayRouter};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The journal: Redis Streams when given a URL (run as many processes as you like over one
    // Redis), else in memory.
    let journal: Arc<dyn Journal> = match std::env::args().nth(1) {
        Some(url) => Arc::new(RedisJournal::open(&url, RedisOptions::default())?),
        None => Arc::new(MemoryJournal::new(IdMode::Numeric, 100_000)),
    };

    // Open SSE responses never end on their own: the router ends them when `stop` says so.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = RelayRouter::new(journal)
        .ping(Duration::from_secs(15))
        .shutdown(stopped)
        .build();

    // Your app: your routes, the relay's under /relay, your middleware around both.
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest("/relay", relay);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8788").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = stop.send(true);
        })
        .await?;
    Ok(())
}
