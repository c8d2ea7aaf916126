//! The test tools of sse-relay: `sse-relay-conform` checks any HTTP server against SSE protocol
//! v1; `sse-relay-proxy` sits in front of any SSE server and breaks streams on demand. This
//! library holds their parts; the binaries in `src/bin/` are thin drivers.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cli;
pub mod conform;
pub mod framing;
pub mod net;
pub mod proxy;

/// Entropy for a run's seed and key names: the clock and the process id.
pub fn entropy() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}
