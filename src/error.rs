//! Errors of the browser API (JavaScript and Rust).

use std::fmt;
use std::time::Duration;

use crate::options::OptionsError;

/// Why opening or reading a stream failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An option cannot work; nothing was opened.
    Options(OptionsError),
    /// The server did not confirm its join (`ready`) in time: do not dispatch work.
    ReadyTimeout {
        /// How long the stream waited.
        waited: Duration,
    },
    /// The `AbortSignal` aborted the stream.
    Aborted,
    /// The browser refused to create the connection (a malformed URL, a blocked scheme).
    Connect(String),
    /// The server refused the credentials (401/403) and `onUnauthorized` gave none fresher.
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
    /// The server answered 204 No Content: it asks the client to stop.
    Stopped,
    /// The server answered 2xx but not with `text/event-stream`.
    NotEventStream,
    /// The server no longer has the stream's data at the cursor (a Durable Streams 410: retention
    /// passed it); resuming would skip frames.
    Gone,
    /// `RelayStream` runs in a browser (wasm32); on this target it compiles but cannot open.
    Unsupported,
}

impl Error {
    /// The stable JavaScript `name` of this error.
    pub fn name(&self) -> &'static str {
        match self {
            Error::Options(_) => "RelayOptionsError",
            Error::ReadyTimeout { .. } => "RelayTimeoutError",
            Error::Aborted => "AbortError",
            Error::Connect(_) => "RelayConnectError",
            Error::Unauthorized { .. } => "RelayUnauthorizedError",
            Error::Stopped => "RelayStoppedError",
            Error::NotEventStream => "RelayContentTypeError",
            Error::Gone => "RelayGoneError",
            Error::Unsupported => "RelayUnsupportedError",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Options(e) => fmt::Display::fmt(e, f),
            Error::ReadyTimeout { waited } => {
                f.write_str("the server sent no ready frame within ")?;
                let ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
                f.write_str(&crate::core::decimal(ms))?;
                f.write_str(" ms: it has not joined the stream, so nothing may be dispatched")
            }
            Error::Aborted => f.write_str("the stream was aborted"),
            Error::Connect(reason) => {
                f.write_str("the browser refused the connection: ")?;
                f.write_str(reason)
            }
            Error::Unauthorized { status } => {
                f.write_str("the server refused the credentials (HTTP ")?;
                f.write_str(&crate::core::decimal(u64::from(*status)))?;
                f.write_str(")")
            }
            Error::Stopped => f.write_str("the server answered 204 No Content: the stream is over"),
            Error::NotEventStream => {
                f.write_str("the server answered with a content type other than text/event-stream")
            }
            Error::Gone => f.write_str(
                "the server answered 410 Gone: it no longer has the stream's data at the cursor",
            ),
            Error::Unsupported => f.write_str(
                "RelayStream needs a browser (a wasm32 build): on this target it cannot open a stream",
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<OptionsError> for Error {
    fn from(e: OptionsError) -> Self {
        Error::Options(e)
    }
}

impl From<crate::core::Error> for Error {
    fn from(e: crate::core::Error) -> Self {
        match e {
            crate::core::Error::ReadyTimeout { waited } => Error::ReadyTimeout { waited },
            crate::core::Error::Unauthorized { status } => Error::Unauthorized { status },
            crate::core::Error::Stopped => Error::Stopped,
            crate::core::Error::NotEventStream => Error::NotEventStream,
            crate::core::Error::Closed => Error::Aborted,
            crate::core::Error::Gone => Error::Gone,
        }
    }
}
