//! Fault injection.
//!
//! **Knobs** are per-connection query parameters of `GET /streams/{key}/events`. They ride on
//! the URL, so a client's reconnects carry them too. Each is designed so that a correct client
//! still makes progress: counters are per connection (`dropAfter`, `stallAfter`) or apply only
//! to the first connections of a key (`status`, `contentType`). Some are not faults but wire
//! shapes a client must cope with (`chunk`, `lineEnd`) or a server policy (`requireAuth`).
//!
//! **Live faults** come from `POST /streams/{key}/faults` ([`FaultsRequest`]): they act on the
//! key's connections that are open now ([`LiveFault`]: cut, stall, garbage) or arm the key's
//! next connections ([`Armed`]: a seam duplicate, a slow join), whatever their URL says. That is
//! what a person clicking a button in the demo needs: a fault in the middle of a turn.

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use bytes::BytesMut;

use crate::params::{self, last, Pairs, ParamError};

/// Statuses `status=` may inject.
pub const FAULT_STATUSES: [u16; 6] = [500, 404, 401, 204, 503, 429];

/// The longest `joinDelayMs` accepted (ten minutes).
pub const MAX_JOIN_DELAY_MS: u64 = 600_000;

/// The largest `dupSeam` accepted.
pub const MAX_DUP_SEAM: u64 = 100_000;

/// The largest `retryAfter` accepted (a day, in seconds).
pub const MAX_RETRY_AFTER: u64 = 86_400;

/// The longest `requireAuth` token accepted.
pub const MAX_TOKEN_LEN: usize = 256;

/// The most connections one live-fault request may arm (`next=`).
pub const MAX_ARM_NEXT: u64 = 1000;

/// How the lines of the event stream end (`lineEnd=`). All three are valid SSE; a parser must
/// handle each, and a CRLF split across two reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LineEnd {
    /// `\n`, what the journal stores.
    #[default]
    Lf,
    /// `\r` alone.
    Cr,
    /// `\r\n`.
    CrLf,
}

impl LineEnd {
    /// Rewrites LF-terminated SSE bytes to this line ending. Exact because nothing the server
    /// writes holds a CR or an LF other than line ends (data is split into lines when journaled,
    /// event names and ids have none, `ready` is compact JSON).
    pub fn apply(self, bytes: &mut BytesMut) {
        match self {
            LineEnd::Lf => {}
            LineEnd::Cr => {
                for byte in bytes.iter_mut().filter(|b| **b == b'\n') {
                    *byte = b'\r';
                }
            }
            LineEnd::CrLf => {
                let lines = bytes.iter().filter(|&&b| b == b'\n').count();
                let mut out = BytesMut::with_capacity(bytes.len() + lines);
                for line in bytes.split_inclusive(|&b| b == b'\n') {
                    match line.strip_suffix(b"\n") {
                        Some(text) => {
                            out.extend_from_slice(text);
                            out.extend_from_slice(b"\r\n");
                        }
                        None => out.extend_from_slice(line),
                    }
                }
                *bytes = out;
            }
        }
    }
}

/// The per-connection knobs of one SSE request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Knobs {
    /// `joinDelayMs`: the live join completes this late.
    pub join_delay: Duration,
    /// `readyEarly=1`: send `ready` before the (delayed) join — the join race, for negative
    /// controls.
    pub ready_early: bool,
    /// `dropAfter=N`: end the response after N journaled frames.
    pub drop_after: Option<u64>,
    /// `dupSeam=K`: after the replay, send the last K replayed frames again.
    pub dup_seam: usize,
    /// `stallAfter=N`: after N journaled frames, go silent but keep the connection open.
    pub stall_after: Option<u64>,
    /// `status=` or `contentType=`: answer the first `fail_count` knob-carrying connections of
    /// the key with this instead of a stream.
    pub fail: Option<Fail>,
    /// `failCount` (default 1).
    pub fail_count: u64,
    /// `garbage=1`: send malformed frames right after `ready`.
    pub garbage: bool,
    /// `retryAfter=SECONDS` (with `status=429` or `503`): the `Retry-After` header of the
    /// failed answer.
    pub retry_after: Option<u64>,
    /// `requireAuth=TOKEN`: the request must carry `Authorization: Bearer TOKEN`, else 401.
    pub require_auth: Option<String>,
    /// `chunk=1`: every byte of the stream is its own body chunk, flushed, a millisecond apart.
    pub chunk: bool,
    /// `lineEnd=lf|cr|crlf`: how the stream's lines end.
    pub line_end: LineEnd,
}

/// A failed answer in place of the event stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fail {
    /// Reply with this status and a short text body.
    Status(StatusCode),
    /// Reply 200 with this content type and a short body that is not SSE.
    ContentType(HeaderValue),
}

impl Fail {
    /// The response that stands in for the stream, with a `Retry-After: retry_after` header if
    /// given.
    pub fn response(&self, retry_after: Option<u64>) -> Response {
        let mut response = match self {
            // A 204 carries no body by definition.
            Fail::Status(StatusCode::NO_CONTENT) => StatusCode::NO_CONTENT.into_response(),
            Fail::Status(status) => (
                *status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("injected fault: status {}\n", status.as_u16()),
            )
                .into_response(),
            Fail::ContentType(content_type) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, content_type.clone())],
                "injected fault: this body is not an event stream\n",
            )
                .into_response(),
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Whether `headers` carry `Authorization: Bearer <token>` (the scheme is case-insensitive,
/// the token is not).
pub fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split_once(' '))
        .any(|(scheme, credentials)| {
            scheme.eq_ignore_ascii_case("bearer") && credentials.trim_start_matches(' ') == token
        })
}

/// The answer to a request without the token `requireAuth` asks for.
pub fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Bearer"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        "this stream requires `Authorization: Bearer <token>`\n",
    )
        .into_response()
}

impl Knobs {
    /// Parses the knobs from the query pairs, strictly: a knob with a bad value is an error
    /// naming it. Parameters that are not knobs are ignored.
    pub fn parse(pairs: &Pairs) -> Result<Knobs, ParamError> {
        let join_delay_ms = params::int(
            pairs,
            "joinDelayMs",
            0,
            MAX_JOIN_DELAY_MS,
            "milliseconds from 0 to 600000",
        )?
        .unwrap_or(0);
        let drop_after = params::int(pairs, "dropAfter", 1, u64::MAX, "an integer >= 1")?;
        let stall_after = params::int(pairs, "stallAfter", 1, u64::MAX, "an integer >= 1")?;
        let dup_seam = params::int(
            pairs,
            "dupSeam",
            0,
            MAX_DUP_SEAM,
            "an integer from 0 to 100000",
        )?
        .unwrap_or(0);
        let fail_count =
            params::int(pairs, "failCount", 0, u64::MAX, "an integer >= 0")?.unwrap_or(1);

        let status = match last(pairs, "status") {
            None => None,
            Some(value) => {
                let code = value
                    .parse::<u16>()
                    .ok()
                    .filter(|c| FAULT_STATUSES.contains(c))
                    .and_then(|c| StatusCode::from_u16(c).ok());
                match code {
                    Some(code) => Some(Fail::Status(code)),
                    None => {
                        return Err(ParamError {
                            name: "status",
                            value: value.to_owned(),
                            expected: "one of 500, 404, 401, 204, 503, 429",
                        })
                    }
                }
            }
        };
        let content_type = match last(pairs, "contentType") {
            None => None,
            Some(value) => match HeaderValue::from_str(value) {
                Ok(v) if !value.trim().is_empty() && value.len() <= 200 => {
                    Some(Fail::ContentType(v))
                }
                _ => {
                    return Err(ParamError {
                        name: "contentType",
                        value: value.to_owned(),
                        expected: "a non-empty header value of at most 200 visible characters",
                    })
                }
            },
        };

        let retry_after = params::int(
            pairs,
            "retryAfter",
            0,
            MAX_RETRY_AFTER,
            "seconds from 0 to 86400, with status=429 or 503",
        )?;
        let fail = status.or(content_type);
        if let Some(seconds) = retry_after {
            let retryable = matches!(
                &fail,
                Some(Fail::Status(s)) if *s == StatusCode::TOO_MANY_REQUESTS
                    || *s == StatusCode::SERVICE_UNAVAILABLE
            );
            if !retryable {
                return Err(ParamError {
                    name: "retryAfter",
                    value: seconds.to_string(),
                    expected: "to come with status=429 or status=503",
                });
            }
        }
        let require_auth = match last(pairs, "requireAuth") {
            None => None,
            Some(token)
                if !token.is_empty()
                    && token.len() <= MAX_TOKEN_LEN
                    && token.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Some(token.to_owned())
            }
            Some(token) => {
                return Err(ParamError {
                    name: "requireAuth",
                    value: token.to_owned(),
                    expected: "a token of 1 to 256 visible ASCII characters",
                })
            }
        };
        let line_end = params::choice(pairs, "lineEnd", "lf, cr or crlf", |v| match v {
            "lf" => Some(LineEnd::Lf),
            "cr" => Some(LineEnd::Cr),
            "crlf" => Some(LineEnd::CrLf),
            _ => None,
        })?
        .unwrap_or_default();

        Ok(Knobs {
            join_delay: Duration::from_millis(join_delay_ms),
            ready_early: params::flag(pairs, "readyEarly")?,
            drop_after,
            dup_seam: usize::try_from(dup_seam).unwrap_or(usize::MAX),
            stall_after,
            // `status` wins when both are given.
            fail,
            fail_count,
            garbage: params::flag(pairs, "garbage")?,
            retry_after,
            require_auth,
            chunk: params::flag(pairs, "chunk")?,
            line_end,
        })
    }
}

/// The noise `garbage=1` sends after `ready`: a `ready` whose data is not JSON, a
/// journaled-looking `token` with an empty `id:` line, and a ~256 KiB `token` frame with an empty
/// `id:` line. None carries a non-empty id, so none can move a correct client's cursor.
pub fn garbage_frames() -> Vec<u8> {
    let mut out = Vec::with_capacity(300 * 1024);
    out.extend_from_slice(b"event: ready\ndata: {this is not json\n\n");
    out.extend_from_slice(b"id:\nevent: token\ndata: no-id\n\n");
    out.extend_from_slice(b"id:\nevent: token\ndata: ");
    out.resize(out.len() + 256 * 1024, b'x');
    out.extend_from_slice(b"\n\n");
    out
}

/// A fault acting on the connections of a key that are open now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveFault {
    /// End the response now; the client resumes from its cursor.
    Cut,
    /// Send nothing more, not even pings, until the client goes away (or a cut ends it).
    Stall,
    /// Send the [`garbage_frames`] noise now (right after `ready` if it is not sent yet).
    Garbage,
}

impl LiveFault {
    /// The name used in the query and in answers.
    pub fn name(self) -> &'static str {
        match self {
            LiveFault::Cut => "cut",
            LiveFault::Stall => "stall",
            LiveFault::Garbage => "garbage",
        }
    }
}

/// One armed fault: its value and how many of the key's next connections it still applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arm {
    /// `dupSeam` frames or `joinDelayMs` milliseconds.
    pub value: u64,
    /// Connections left (at least 1 while armed).
    pub connections: u64,
}

impl Arm {
    /// Uses the arm for one connection; returns its value, and whether it is now used up.
    fn take(&mut self) -> (u64, bool) {
        self.connections = self.connections.saturating_sub(1);
        (self.value, self.connections == 0)
    }

    fn json(arm: Option<Arm>) -> serde_json::Value {
        match arm {
            Some(arm) => serde_json::json!({ "value": arm.value, "connections": arm.connections }),
            None => serde_json::Value::Null,
        }
    }
}

/// Faults armed for the next connections of a key (kept per key, across resets: a reset ends
/// every connection, and the reconnects are the next connections).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Armed {
    /// Re-send the last `value` entries up to `ready.tail` after the replay.
    pub dup_seam: Option<Arm>,
    /// Join `value` ms late (replaces the connection's own `joinDelayMs`).
    pub join_delay_ms: Option<Arm>,
}

/// What one new connection takes from [`Armed`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// Entries up to the tail to send again after the replay.
    pub tail_seam: usize,
    /// The join delay to use instead of the URL's.
    pub join_delay: Option<Duration>,
}

impl Armed {
    /// Takes this connection's share: each armed fault once, disarmed when used up.
    pub fn take(&mut self) -> Taken {
        let mut taken = Taken::default();
        if let Some(arm) = &mut self.dup_seam {
            let (value, used_up) = arm.take();
            taken.tail_seam = usize::try_from(value).unwrap_or(usize::MAX);
            if used_up {
                self.dup_seam = None;
            }
        }
        if let Some(arm) = &mut self.join_delay_ms {
            let (value, used_up) = arm.take();
            taken.join_delay = Some(Duration::from_millis(value));
            if used_up {
                self.join_delay_ms = None;
            }
        }
        taken
    }

    /// `{"dupSeam": {"value","connections"} | null, "joinDelayMs": … | null}`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "dupSeam": Arm::json(self.dup_seam),
            "joinDelayMs": Arm::json(self.join_delay_ms),
        })
    }
}

/// The query of `POST /streams/{key}/faults`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultsRequest {
    /// Live faults for the open connections, in the order they act (garbage before a cut).
    pub live: Vec<LiveFault>,
    /// `dupSeam=K`: arm (K > 0) or disarm (0).
    pub dup_seam: Option<u64>,
    /// `joinDelayMs=D`: arm (D > 0) or disarm (0).
    pub join_delay_ms: Option<u64>,
    /// `next=N` (default 1): how many of the next connections the armed faults apply to.
    pub next: u64,
}

impl FaultsRequest {
    /// Parses the query strictly; a request that asks for nothing is an error too.
    pub fn parse(pairs: &Pairs) -> Result<FaultsRequest, FaultsError> {
        let cut = params::flag(pairs, "cut")?;
        let stall = params::flag(pairs, "stall")?;
        let garbage = params::flag(pairs, "garbage")?;
        let dup_seam = params::int(
            pairs,
            "dupSeam",
            0,
            MAX_DUP_SEAM,
            "an integer from 0 to 100000",
        )?;
        let join_delay_ms = params::int(
            pairs,
            "joinDelayMs",
            0,
            MAX_JOIN_DELAY_MS,
            "milliseconds from 0 to 600000",
        )?;
        let next = params::int(pairs, "next", 1, MAX_ARM_NEXT, "an integer from 1 to 1000")?;
        if cut && stall {
            return Err(ParamError {
                name: "stall",
                value: "1".to_owned(),
                expected: "not to come with cut=1 (a cut ends what a stall would keep open)",
            }
            .into());
        }
        if next.is_some() && dup_seam.is_none() && join_delay_ms.is_none() {
            return Err(ParamError {
                name: "next",
                value: next.unwrap_or(1).to_string(),
                expected:
                    "to come with dupSeam or joinDelayMs (it counts the connections they arm)",
            }
            .into());
        }
        let mut live = Vec::new();
        if garbage {
            live.push(LiveFault::Garbage);
        }
        if stall {
            live.push(LiveFault::Stall);
        }
        if cut {
            live.push(LiveFault::Cut);
        }
        if live.is_empty() && dup_seam.is_none() && join_delay_ms.is_none() {
            return Err(FaultsError::Nothing);
        }
        Ok(FaultsRequest {
            live,
            dup_seam,
            join_delay_ms,
            next: next.unwrap_or(1),
        })
    }

    /// Applies the arming part to `armed` (0 disarms).
    pub fn arm(&self, armed: &mut Armed) {
        let arm = |value: u64| {
            (value > 0).then_some(Arm {
                value,
                connections: self.next,
            })
        };
        if let Some(k) = self.dup_seam {
            armed.dup_seam = arm(k);
        }
        if let Some(d) = self.join_delay_ms {
            armed.join_delay_ms = arm(d);
        }
    }
}

/// A bad `POST /streams/{key}/faults` query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultsError {
    /// A parameter with a bad value, or parameters that do not go together.
    Param(ParamError),
    /// No fault asked for.
    Nothing,
}

impl From<ParamError> for FaultsError {
    fn from(err: ParamError) -> Self {
        FaultsError::Param(err)
    }
}

impl std::fmt::Display for FaultsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultsError::Param(err) => err.fmt(f),
            FaultsError::Nothing => f.write_str(
                "no fault given: use cut=1, stall=1, garbage=1 (on the open connections), \
                 dupSeam=K or joinDelayMs=D (for the next connections, with next=N)",
            ),
        }
    }
}

impl std::error::Error for FaultsError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_when_absent() {
        let knobs = Knobs::parse(&pairs(&[("epoch", "x"), ("cb", "1")])).unwrap();
        assert_eq!(knobs.fail_count, 1);
        assert_eq!(knobs.drop_after, None);
        assert!(!knobs.garbage);
    }

    #[test]
    fn bad_values_name_the_knob() {
        for (name, value) in [
            ("dropAfter", "0"),
            ("dropAfter", "x"),
            ("stallAfter", "-1"),
            ("joinDelayMs", "600001"),
            ("dupSeam", "1.5"),
            ("status", "418"),
            ("readyEarly", "yes"),
            ("garbage", "2"),
            ("contentType", ""),
            ("failCount", "+1"),
            ("retryAfter", "86401"),
            ("retryAfter", "soon"),
            ("requireAuth", ""),
            ("requireAuth", "two words"),
            ("chunk", "yes"),
            ("lineEnd", "CRLF"),
            ("lineEnd", "\\n"),
        ] {
            let err = Knobs::parse(&pairs(&[(name, value)])).unwrap_err();
            assert_eq!(err.name, name);
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn last_occurrence_wins_and_status_beats_content_type() {
        let knobs = Knobs::parse(&pairs(&[
            ("dropAfter", "2"),
            ("dropAfter", "5"),
            ("contentType", "text/html"),
            ("status", "503"),
        ]))
        .unwrap();
        assert_eq!(knobs.drop_after, Some(5));
        assert_eq!(
            knobs.fail,
            Some(Fail::Status(StatusCode::SERVICE_UNAVAILABLE))
        );
    }

    #[test]
    fn retry_after_needs_a_retryable_status() {
        let knobs = Knobs::parse(&pairs(&[("status", "429"), ("retryAfter", "3")])).unwrap();
        assert_eq!(knobs.retry_after, Some(3));
        let response = knobs.fail.unwrap().response(knobs.retry_after);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert!(Knobs::parse(&pairs(&[("status", "503"), ("retryAfter", "0")])).is_ok());
        for others in [
            vec![("retryAfter", "3")],
            vec![("status", "500"), ("retryAfter", "3")],
            vec![("contentType", "text/html"), ("retryAfter", "3")],
        ] {
            let err = Knobs::parse(&pairs(&others)).unwrap_err();
            assert_eq!(err.name, "retryAfter");
        }
    }

    #[test]
    fn bearer_tokens_match_exactly_with_any_scheme_case() {
        let headers = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for v in values {
                map.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            map
        };
        assert!(authorized(&headers(&["Bearer s3cret"]), "s3cret"));
        assert!(authorized(&headers(&["bearer s3cret"]), "s3cret"));
        assert!(authorized(
            &headers(&["Basic eA==", "Bearer s3cret"]),
            "s3cret"
        ));
        assert!(!authorized(&headers(&[]), "s3cret"));
        assert!(!authorized(&headers(&["Bearer S3CRET"]), "s3cret"));
        assert!(!authorized(&headers(&["Bearer s3cret2"]), "s3cret"));
        assert!(!authorized(&headers(&["Token s3cret"]), "s3cret"));
        assert!(!authorized(&headers(&["Bearers3cret"]), "s3cret"));
        let response = unauthorized();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn line_ends_rewrite_every_lf_and_nothing_else() {
        let sse = b"event: ready\ndata: {}\n\nid: 1\ndata: a\n\n";
        let mut cr = BytesMut::from(&sse[..]);
        LineEnd::Cr.apply(&mut cr);
        assert_eq!(&cr[..], b"event: ready\rdata: {}\r\rid: 1\rdata: a\r\r");
        let mut crlf = BytesMut::from(&sse[..]);
        LineEnd::CrLf.apply(&mut crlf);
        assert_eq!(
            &crlf[..],
            b"event: ready\r\ndata: {}\r\n\r\nid: 1\r\ndata: a\r\n\r\n"
        );
        let mut lf = BytesMut::from(&sse[..]);
        LineEnd::Lf.apply(&mut lf);
        assert_eq!(&lf[..], sse);
        // A buffer that does not end with a line end keeps its tail.
        let mut partial = BytesMut::from(&b"a\nb"[..]);
        LineEnd::CrLf.apply(&mut partial);
        assert_eq!(&partial[..], b"a\r\nb");
    }

    #[test]
    fn garbage_has_no_nonempty_id() {
        let noise = garbage_frames();
        let text = String::from_utf8(noise).unwrap();
        assert!(text.len() > 256 * 1024);
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("id:") {
                assert!(rest.trim().is_empty());
            }
        }
    }

    #[test]
    fn live_fault_requests_parse_strictly() {
        let req = FaultsRequest::parse(&pairs(&[("cut", "1"), ("garbage", "true")])).unwrap();
        assert_eq!(req.live, [LiveFault::Garbage, LiveFault::Cut]);
        assert_eq!((req.dup_seam, req.join_delay_ms, req.next), (None, None, 1));
        let req = FaultsRequest::parse(&pairs(&[("dupSeam", "5"), ("next", "3")])).unwrap();
        assert!(req.live.is_empty());
        assert_eq!((req.dup_seam, req.next), (Some(5), 3));

        assert_eq!(
            FaultsRequest::parse(&pairs(&[("cut", "0"), ("foo", "1")])),
            Err(FaultsError::Nothing)
        );
        for (list, name) in [
            (vec![("cut", "yes")], "cut"),
            (vec![("stall", "2")], "stall"),
            (vec![("cut", "1"), ("stall", "1")], "stall"),
            (vec![("dupSeam", "100001")], "dupSeam"),
            (vec![("joinDelayMs", "-1")], "joinDelayMs"),
            (vec![("dupSeam", "1"), ("next", "0")], "next"),
            (vec![("dupSeam", "1"), ("next", "1001")], "next"),
            (vec![("cut", "1"), ("next", "2")], "next"),
        ] {
            match FaultsRequest::parse(&pairs(&list)) {
                Err(FaultsError::Param(err)) => assert_eq!(err.name, name, "{list:?}"),
                other => panic!("{list:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn armed_faults_apply_to_the_next_connections_then_disarm() {
        let mut armed = Armed::default();
        FaultsRequest::parse(&pairs(&[("dupSeam", "4"), ("next", "2")]))
            .unwrap()
            .arm(&mut armed);
        FaultsRequest::parse(&pairs(&[("joinDelayMs", "250")]))
            .unwrap()
            .arm(&mut armed);
        assert_eq!(
            armed.json(),
            serde_json::json!({
                "dupSeam": {"value": 4, "connections": 2},
                "joinDelayMs": {"value": 250, "connections": 1},
            })
        );
        let first = armed.take();
        assert_eq!(first.tail_seam, 4);
        assert_eq!(first.join_delay, Some(Duration::from_millis(250)));
        let second = armed.take();
        assert_eq!((second.tail_seam, second.join_delay), (4, None));
        assert_eq!(armed.take(), Taken::default());
        assert_eq!(armed, Armed::default());

        // 0 disarms; a new arm replaces the old one.
        FaultsRequest::parse(&pairs(&[("dupSeam", "4"), ("next", "9")]))
            .unwrap()
            .arm(&mut armed);
        FaultsRequest::parse(&pairs(&[("dupSeam", "2")]))
            .unwrap()
            .arm(&mut armed);
        assert_eq!(
            armed.dup_seam,
            Some(Arm {
                value: 2,
                connections: 1
            })
        );
        FaultsRequest::parse(&pairs(&[("dupSeam", "0")]))
            .unwrap()
            .arm(&mut armed);
        assert_eq!(armed, Armed::default());
    }
}
