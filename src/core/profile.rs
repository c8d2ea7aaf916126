//! Server profiles: which conventions the server follows, and the guarantee each one allows.
//!
//! The session is the same for every profile; the profile decides what counts as the join (a
//! `ready` frame, or the response itself), where the cursor goes, and whether epochs exist
//! (`docs/PROTOCOL.md`, "Servers that do not speak protocol v1").

use std::fmt;

/// The epoch of every frame from a plain SSE server: such a server has no epochs, so a restart
/// that renumbers its ids cannot be seen.
pub const PLAIN_EPOCH: &str = "plain";

/// What the server speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerProfile {
    /// sse-relay's protocol v1: a `ready` frame once the server joined the live journal, replay
    /// after the cursor and its epoch, `from=now`, journaled `done`.
    #[default]
    Relay,
    /// A plain `Last-Event-ID` server (better-sse, sse-starlette, most hand-written ones): ids on
    /// frames, the cursor in the `Last-Event-ID` header (`fetch`) and the cursor query parameter,
    /// no `ready` frame (the open response counts as the join), no epochs. The join race
    /// (`docs/PROTOCOL.md`, incident 000) cannot be guarded.
    Plain,
    /// A Durable Streams server (ElectricSQL's protocol): `?offset=<o>&live=sse`, `data` and
    /// `control` events, offsets at batch ends, `streamClosed` as the end, 410 when retention
    /// passed the offset. The stream reads a log from a position, so nothing is missed: the first
    /// `control` that says `upToDate` is the join.
    DurableStreams,
}

impl ServerProfile {
    /// `relay` or `plain`, as the JavaScript option spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerProfile::Relay => "relay",
            ServerProfile::Plain => "plain",
            ServerProfile::DurableStreams => "durable-streams",
        }
    }

    /// Whether the open response itself stands for the join (no `ready`, no `control`).
    pub fn joins_at_open(self) -> bool {
        self == ServerProfile::Plain
    }

    /// Whether the server has epochs (ids restart in a new one, announced by `ready`).
    pub fn has_epochs(self) -> bool {
        self.fixed_epoch().is_none()
    }

    /// The epoch every frame carries when the server has none.
    pub fn fixed_epoch(self) -> Option<&'static str> {
        match self {
            ServerProfile::Relay => None,
            ServerProfile::Plain => Some(PLAIN_EPOCH),
            ServerProfile::DurableStreams => Some(super::durable::DURABLE_EPOCH),
        }
    }

    /// What the client can promise with this server.
    pub fn guarantee(self) -> Guarantee {
        match self {
            ServerProfile::Relay | ServerProfile::DurableStreams => Guarantee::ExactlyOnce,
            ServerProfile::Plain => Guarantee::AtMostOnce,
        }
    }
}

impl fmt::Display for ServerProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the stream promises the application, given the server's profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Guarantee {
    /// Every journaled frame once, in order, across reconnects, tabs and resets (protocol v1).
    #[default]
    ExactlyOnce,
    /// No frame twice and none out of order, but a frame may be missed: one sent between the
    /// server's accepting the request and its subscribing (no join confirmation), and, when the
    /// server does not replay after `Last-Event-ID`, any sent while no connection was open.
    /// With `contiguousIds`, a missed numeric id becomes a `gap` event.
    AtMostOnce,
}

impl Guarantee {
    /// `exactly-once` or `at-most-once`.
    pub fn as_str(self) -> &'static str {
        match self {
            Guarantee::ExactlyOnce => "exactly-once",
            Guarantee::AtMostOnce => "at-most-once",
        }
    }
}

impl fmt::Display for Guarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
