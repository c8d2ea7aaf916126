//! `sse-relay-proxy`: a reverse proxy for server-sent events that breaks streams on demand.
//!
//! Everything passes through unchanged and unbuffered: method, headers (less hop-by-hop ones),
//! body, status, and the upstream's chunks as they come. Faults are asked per request with
//! `proxy.` query parameters ([`knobs`], stripped before forwarding) or through the control
//! endpoint `/_proxy/` (live faults on open streams, knobs armed for the next requests). On an
//! event stream, frame boundaries are found on the raw bytes ([`crate::framing`]) so faults act
//! between frames ([`shape`]); [`server`] is the IO around them.

pub mod config;
pub mod knobs;
pub mod server;
pub mod shape;
pub mod state;
