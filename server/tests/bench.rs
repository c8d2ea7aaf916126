//! Bench mode: how fast the server replays a filled journal to one native client.
//!
//! `cargo test --release -p sse-relay-server --test bench -- --nocapture` prints the figure.
//! The floor asserted here is loose enough for a debug build on a busy 2-core machine; it is
//! there so the batched replay path cannot silently rot into per-frame writes.

mod support;

use std::time::Instant;

use support::*;

const FRAMES: u64 = 200_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_throughput_to_one_native_client() {
    let server = start(&Engine::Memory).await;
    let addr = server.local_addr();

    let filling = Instant::now();
    let filled = post(
        addr,
        &format!("/streams/bench/fill?frames={FRAMES}&bytes=60"),
    )
    .await;
    let fill_secs = filling.elapsed().as_secs_f64();
    assert_eq!(filled.status, 200, "{}", filled.text());
    assert_eq!(filled.json()["frames"], FRAMES);

    let started = Instant::now();
    let mut conn = Conn::open(addr, "GET", "/streams/bench/events", &[], b"").await;
    assert_eq!(conn.status, 200);
    // Count frame terminators in the decoded body, including across chunk boundaries.
    let mut frames = 0u64;
    let mut bytes = 0usize;
    let mut last = 0u8;
    while let Some(chunk) = tokio::time::timeout(PROMPT, conn.body_chunk())
        .await
        .expect("the replay stalled")
    {
        bytes += chunk.len();
        for &b in &chunk {
            if b == b'\n' && last == b'\n' {
                frames += 1;
                // A blank line ends a frame; the next byte starts a new one.
                last = 0;
            } else {
                last = b;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    // The ready frame, FRAMES tokens and done.
    assert_eq!(frames, FRAMES + 2, "frames counted");
    let journaled = FRAMES + 1;
    let rate = journaled as f64 / secs;
    println!(
        "bench: replayed {journaled} frames ({:.1} MB) in {:.3} s = {:.0} frames/s \
         ({:.0} MB/s); fill appended them at {:.0} frames/s",
        bytes as f64 / 1e6,
        secs,
        rate,
        bytes as f64 / 1e6 / secs,
        journaled as f64 / fill_secs,
    );
    assert!(rate > 100_000.0, "replay too slow: {rate:.0} frames/s");
}
