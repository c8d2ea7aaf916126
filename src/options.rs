//! Options of `RelayStream::open`, shared by the JavaScript and Rust APIs.
//!
//! JavaScript passes a camelCase object, read field by field in the bindings (serde and its
//! JavaScript adapter cost 20 KB gzipped, the whole bundle budget); every error names the option.

use std::fmt;
use std::time::Duration;

use crate::core::{
    quoted, BackoffPolicy, ConfigError, Cursor, CursorOrder, EventNames, ServerProfile,
    SessionConfig, StartFrom,
};

/// Where `persistCursor` keeps the cursor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PersistCursor {
    /// Nowhere: a new page starts as configured by `from`.
    #[default]
    None,
    /// `sessionStorage`: a reload of the tab resumes after the last frame the page consumed.
    Session,
}

pub use crate::core::Transport;

/// Whether `fetch` sends cookies (its `credentials` mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Credentials {
    /// Never.
    Omit,
    /// To the page's own origin (the `fetch` default).
    #[default]
    SameOrigin,
    /// Always, cross-origin too.
    Include,
}

impl Credentials {
    /// The `RequestCredentials` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Credentials::Omit => "omit",
            Credentials::SameOrigin => "same-origin",
            Credentials::Include => "include",
        }
    }
}

/// How to open a stream. Every field has the documented default; the JavaScript names are the
/// camelCase forms (`readyTimeoutMs` for `ready_timeout_ms`).
#[derive(Clone, Debug)]
pub struct Options {
    /// What the server speaks: `relay` (protocol v1, the default), `plain` (a `Last-Event-ID`
    /// server without `ready`: at most once, see [`ServerProfile::Plain`]) or `durable-streams`.
    pub server_profile: ServerProfile,
    /// Stream key (storage, cross-tab); default: the absolute stream URL.
    pub key: Option<String>,
    /// Journaled event types to deliver; `None`: every type (which only the `fetch` transport can
    /// hear: an `EventSource` hears the types it names). `done` is always delivered.
    pub events: Option<Vec<String>>,
    /// Where to start without a cursor.
    pub from: StartFrom,
    /// Name of the join confirmation event.
    pub ready_event: String,
    /// Name of the terminal event.
    pub done_event: String,
    /// Name of the heartbeat event.
    pub ping_event: String,
    /// Query parameter carrying the cursor.
    pub cursor_param: String,
    /// Query parameter carrying the cursor's epoch.
    pub epoch_param: String,
    /// How ids compare.
    pub cursor_order: CursorOrder,
    /// Numeric ids are consecutive; holes are refilled from the journal or reported as gaps.
    pub contiguous_ids: bool,
    /// Opaque ids remembered for dedup.
    pub dedup_window: u32,
    /// Wait for `ready` this long (first open: then fail; later: retry).
    pub ready_timeout_ms: u32,
    /// Replace a live connection silent for this long.
    pub heartbeat_timeout_ms: u32,
    /// First reconnect delay ceiling.
    pub backoff_base_ms: u32,
    /// Largest reconnect delay ceiling.
    pub backoff_max_ms: u32,
    /// Keep the cursor across reloads.
    pub persist_cursor: PersistCursor,
    /// Send cookies cross-origin (`EventSource` `withCredentials`).
    pub with_credentials: bool,
    /// Share one connection per stream key across the browser's tabs (`docs/PROTOCOL.md` §2).
    pub share_across_tabs: bool,
    /// `eventsource` or `fetch`; `None`: `eventsource` when `events` names the types, else `fetch`
    /// (see [`Options::transport`]).
    pub transport: Option<Transport>,
    /// Request headers (fetch only), e.g. `Authorization`.
    pub headers: Vec<(String, String)>,
    /// HTTP method (fetch only).
    pub method: String,
    /// Request body (fetch only; not with GET).
    pub body: Option<String>,
    /// Cookie mode (fetch only).
    pub credentials: Credentials,
}

impl Default for Options {
    fn default() -> Self {
        let session = SessionConfig::default();
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        Options {
            server_profile: session.server_profile,
            key: None,
            events: None,
            from: StartFrom::Start,
            ready_event: session.names.ready,
            done_event: session.names.done,
            ping_event: session.names.ping,
            cursor_param: session.cursor_param,
            epoch_param: session.epoch_param,
            cursor_order: CursorOrder::Auto,
            contiguous_ids: false,
            dedup_window: u32::try_from(session.dedup_window).unwrap_or(u32::MAX),
            ready_timeout_ms: ms(session.ready_timeout),
            heartbeat_timeout_ms: ms(session.heartbeat_timeout),
            backoff_base_ms: ms(session.backoff.base),
            backoff_max_ms: ms(session.backoff.cap),
            persist_cursor: PersistCursor::None,
            with_credentials: false,
            share_across_tabs: true,
            transport: None,
            headers: Vec::new(),
            method: "GET".to_owned(),
            body: None,
            credentials: Credentials::SameOrigin,
        }
    }
}

/// An option that cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionsError {
    /// The option's name as JavaScript spells it (empty when the options object itself is wrong).
    pub option: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.option.is_empty() {
            f.write_str("invalid options: ")?;
        } else {
            f.write_str("option `")?;
            f.write_str(&self.option)?;
            f.write_str("`: ")?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for OptionsError {}

impl From<ConfigError> for OptionsError {
    fn from(e: ConfigError) -> Self {
        let ConfigError::Invalid { option, reason } = e;
        OptionsError {
            option: option.to_owned(),
            reason,
        }
    }
}

impl Options {
    /// The request options only a `fetch` can honour, and their own shape.
    fn check_request(&self) -> Result<(), OptionsError> {
        if self.transport() == Transport::EventSource {
            let fetch_only = [
                ("headers", !self.headers.is_empty()),
                ("method", self.method != "GET"),
                ("body", self.body.is_some()),
                ("credentials", self.credentials != Credentials::SameOrigin),
            ];
            if let Some((option, _)) = fetch_only.iter().find(|(_, set)| *set) {
                return Err(bad(
                    option,
                    "needs `transport: \"fetch\"` (EventSource cannot send it)",
                ));
            }
            return Ok(());
        }
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        if !token(&self.method) {
            return Err(bad(
                "method",
                quoted(&self.method) + " is not an HTTP method",
            ));
        }
        if self.body.is_some()
            && matches!(self.method.to_ascii_uppercase().as_str(), "GET" | "HEAD")
        {
            return Err(bad("body", "a GET or HEAD request cannot have a body"));
        }
        for (name, value) in &self.headers {
            if !token(name) || value.contains(['\r', '\n', '\0']) {
                return Err(bad("headers", quoted(name) + " is not a valid header"));
            }
        }
        Ok(())
    }
}

fn bad(option: &str, reason: impl Into<String>) -> OptionsError {
    OptionsError {
        option: option.to_owned(),
        reason: reason.into(),
    }
}

impl Options {
    /// Every option name JavaScript may pass, besides `signal` (not data: an `AbortSignal`).
    /// `onUnauthorized` and `on` are functions, handled by the bindings.
    pub const NAMES: &'static [&'static str] = &[
        "serverProfile",
        "key",
        "events",
        "from",
        "readyEvent",
        "doneEvent",
        "pingEvent",
        "cursorParam",
        "epochParam",
        "cursorOrder",
        "contiguousIds",
        "dedupWindow",
        "readyTimeoutMs",
        "heartbeatTimeoutMs",
        "backoffBaseMs",
        "backoffMaxMs",
        "persistCursor",
        "withCredentials",
        "shareAcrossTabs",
        "transport",
        "headers",
        "method",
        "body",
        "credentials",
        "onUnauthorized",
        "on",
    ];

    /// Rejects a key that is not an option, suggesting the closest one.
    pub fn check_name(name: &str) -> Result<(), OptionsError> {
        if Options::NAMES.contains(&name) {
            return Ok(());
        }
        let lower = name.to_ascii_lowercase();
        let hint = Options::NAMES
            .iter()
            .find(|known| {
                known.to_ascii_lowercase() == lower
                    || lower.starts_with(&known.to_ascii_lowercase()[..known.len().min(5)])
            })
            .map(|known| format!("; did you mean `{known}`?"))
            .unwrap_or_default();
        Err(bad(name, format!("is not an option{hint}")))
    }

    /// The transport in force: the one asked for, else `eventsource` when `events` names the
    /// types (it hears only those), else `fetch` (which hears every type). `eventsource` without
    /// `events` is refused by [`Options::session_config`]: it would lose every named type silently.
    pub fn transport(&self) -> Transport {
        self.transport.unwrap_or(match self.events {
            Some(_) => Transport::EventSource,
            None => Transport::Fetch,
        })
    }

    /// The event types an `EventSource` must listen to: the configured ones plus the protocol's
    /// (a Durable Streams server's own two, whatever `events` says).
    pub fn listened_events(&self) -> Vec<String> {
        if self.server_profile == ServerProfile::DurableStreams {
            return vec![
                crate::core::DURABLE_DATA_EVENT.to_owned(),
                crate::core::DURABLE_CONTROL_EVENT.to_owned(),
            ];
        }
        let mut all = self.events.clone().unwrap_or_default();
        for name in [&self.ready_event, &self.done_event, &self.ping_event] {
            if !all.contains(name) {
                all.push(name.clone());
            }
        }
        all
    }

    /// Checks everything and builds the core's configuration. `resume` is a stored cursor;
    /// `seed` feeds the reconnect jitter.
    pub fn session_config(
        &self,
        resume: Option<Cursor>,
        seed: u64,
    ) -> Result<SessionConfig, OptionsError> {
        if self.events.is_none()
            && self.transport() == Transport::EventSource
            && self.server_profile != ServerProfile::DurableStreams
        {
            return Err(bad(
                "events",
                "is required with transport \"eventsource\": an EventSource hears only the event \
                 types it names (leave transport out, or use \"fetch\", to take every type)",
            ));
        }
        if self.key.as_deref() == Some("") {
            return Err(bad("key", "must not be empty"));
        }
        self.check_request()?;
        let config = SessionConfig {
            server_profile: self.server_profile,
            from: self.from,
            resume,
            cursor_order: self.cursor_order,
            dedup_window: self.dedup_window as usize,
            contiguous_ids: self.contiguous_ids,
            ready_timeout: Duration::from_millis(self.ready_timeout_ms.into()),
            heartbeat_timeout: Duration::from_millis(self.heartbeat_timeout_ms.into()),
            backoff: BackoffPolicy {
                base: Duration::from_millis(self.backoff_base_ms.into()),
                cap: Duration::from_millis(self.backoff_max_ms.into()),
            },
            names: EventNames {
                ready: self.ready_event.clone(),
                done: self.done_event.clone(),
                ping: self.ping_event.clone(),
            },
            events: self.events.clone(),
            cursor_param: self.cursor_param.clone(),
            epoch_param: self.epoch_param.clone(),
            seed,
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_core() {
        let options = Options::default();
        let config = options.session_config(None, 1).unwrap();
        let default = SessionConfig::default();
        assert_eq!(config.ready_timeout, default.ready_timeout);
        assert_eq!(config.heartbeat_timeout, default.heartbeat_timeout);
        assert_eq!(config.backoff, default.backoff);
        assert_eq!(config.dedup_window, default.dedup_window);
        assert_eq!(config.events, None, "every event type");
        assert_eq!(
            options.transport(),
            Transport::Fetch,
            "the transport that hears them all"
        );
    }

    #[test]
    fn an_event_source_without_events_is_refused_and_events_pick_it() {
        let eventsource = Options {
            transport: Some(Transport::EventSource),
            ..Options::default()
        };
        let err = eventsource.session_config(None, 1).unwrap_err();
        assert_eq!(err.option, "events");
        assert!(err.reason.contains("hears only"), "{err}");
        let named = Options {
            events: Some(vec!["token".into()]),
            ..Options::default()
        };
        assert_eq!(named.transport(), Transport::EventSource);
    }

    #[test]
    fn maps_onto_the_session_config() {
        let options = Options {
            events: Some(vec!["token".into()]),
            from: StartFrom::Now,
            cursor_order: CursorOrder::Redis,
            contiguous_ids: true,
            ready_timeout_ms: 500,
            cursor_param: "c".into(),
            ..Options::default()
        };
        let config = options.session_config(None, 0).unwrap();
        assert!(config.contiguous_ids);
        assert_eq!(config.from, StartFrom::Now);
        assert_eq!(config.cursor_order, CursorOrder::Redis);
        assert_eq!(config.cursor_param, "c");
        assert_eq!(config.ready_timeout, Duration::from_millis(500));
        assert_eq!(
            options.listened_events(),
            ["token", "ready", "done", "ping"]
        );
    }

    #[test]
    fn unknown_names_are_rejected_with_a_hint() {
        for name in Options::NAMES {
            assert!(Options::check_name(name).is_ok());
        }
        let err = Options::check_name("dedupwindow").unwrap_err();
        assert_eq!(err.option, "dedupwindow");
        assert!(err.reason.contains("did you mean `dedupWindow`"), "{err}");
        assert!(Options::check_name("shareAcrossTab").is_err());
    }

    #[test]
    fn errors_name_the_option() {
        let cases = [
            (
                Options {
                    events: Some(vec![]),
                    ..Options::default()
                },
                "events",
            ),
            (
                Options {
                    events: Some(vec!["ready".into()]),
                    ..Options::default()
                },
                "events",
            ),
            (
                Options {
                    key: Some(String::new()),
                    ..Options::default()
                },
                "key",
            ),
            (
                Options {
                    dedup_window: 0,
                    ..Options::default()
                },
                "dedupWindow",
            ),
            (
                Options {
                    ready_timeout_ms: 0,
                    ..Options::default()
                },
                "readyTimeoutMs",
            ),
            (
                Options {
                    backoff_base_ms: 100,
                    backoff_max_ms: 10,
                    ..Options::default()
                },
                "backoffMaxMs",
            ),
            (
                Options {
                    cursor_param: "epoch".into(),
                    ..Options::default()
                },
                "epochParam",
            ),
        ];
        for (options, option) in cases {
            let err = options.session_config(None, 0).unwrap_err();
            assert_eq!(err.option, option);
            assert!(err.to_string().starts_with(&format!("option `{option}`")));
        }
    }
}
