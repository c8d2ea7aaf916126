//! The pure protocol core: frames, cursors, the dedup window, the ready gate, the reconnect policy,
//! the session state machine that ties them together, and the peer: one tab's whole part of a
//! stream (the session, the cross-tab protocol, the application's queue and its bounds).
//!
//! Nothing here depends on a browser crate or reads a clock (the browser crates are wasm32-only
//! dependencies, so a native build proves it). Time comes in as a [`Timestamp`]; timers go out as
//! deadlines from [`Session::poll_timeout`]; connections go out as [`Command`]s.
#![forbid(unsafe_code)]

mod backoff;
mod cursor;
mod dedup;
mod durable;
mod frame;
mod json;
mod parser;
mod peer;
mod profile;
mod retry_after;
mod session;
mod tabs;
mod text;
mod time;

pub use backoff::{Backoff, BackoffPolicy};
pub use cursor::{CursorError, CursorOrder, ResolvedOrder};
pub use dedup::{DedupWindow, Verdict, DEFAULT_DEDUP_WINDOW};
pub use durable::DURABLE_EPOCH;
pub use frame::{EventNames, Frame, RawEvent, ReadyError, ReadyInfo};
pub use json::JsonError;
pub use parser::{
    ParseError, Parsed, ParserLimits, SseParser, DEFAULT_MAX_DATA_LEN, DEFAULT_MAX_LINE_LEN,
};
pub use peer::{
    Action, Connect, Limits, LockTicket, Peer, PeerConfig, Role, Transport, BODY_HIGH, BODY_LOW,
    FINISHED_LEADER_HOLD, HELLO_INTERVAL, LEADER_SILENCE, PERSIST_DELAY, READER_STUCK,
    TAB_BUFFER_FRAMES, UNPAUSABLE_HIGH, UNPAUSABLE_LOW,
};
pub use profile::{Guarantee, ServerProfile, PLAIN_EPOCH};
pub use retry_after::retry_after_ms;
pub use session::{
    Command, ConfigError, ConnectionId, Cursor, Disconnect, Error, Event, Interruption, Malformed,
    MalformedKind, OpenRequest, Session, SessionConfig, StartFrom, State, Stats,
};
pub use tabs::{
    tabs_name, CatchUp, Previous, TabBuffer, TabMessage, TabMessageError, MAX_MESSAGE_BYTES,
    MAX_TERM, TAB_PROTOCOL_VERSION,
};
pub use time::Timestamp;

pub(crate) use durable::{
    CONTROL_EVENT as DURABLE_CONTROL_EVENT, DATA_EVENT as DURABLE_DATA_EVENT,
};
#[cfg(target_arch = "wasm32")]
pub(crate) use tabs::{cursor_from_json, cursor_to_json};
#[cfg(target_arch = "wasm32")]
pub(crate) use text::hex16;
pub(crate) use text::{decimal, quoted};
