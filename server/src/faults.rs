//! Fault-injection knobs: per-connection query parameters of `GET /streams/{key}/events`.
//!
//! They ride on the URL, so a client's reconnects carry them too. Each is designed so that a
//! correct client still makes progress: counters are per connection (`dropAfter`,
//! `stallAfter`) or apply only to the first connections of a key (`status`, `contentType`).

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::params::{self, last, Pairs, ParamError};

/// Statuses `status=` may inject.
pub const FAULT_STATUSES: [u16; 6] = [500, 404, 401, 204, 503, 429];

/// The longest `joinDelayMs` accepted (ten minutes).
pub const MAX_JOIN_DELAY_MS: u64 = 600_000;

/// The largest `dupSeam` accepted.
pub const MAX_DUP_SEAM: u64 = 100_000;

/// The per-connection knobs of one SSE request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Knobs {
    /// `joinDelayMs`: the live join completes this late.
    pub join_delay: Duration,
    /// `readyEarly=1`: send `ready` before the (delayed) join — the §1.1 bug, for negative
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
    /// The response that stands in for the stream.
    pub fn response(&self) -> Response {
        match self {
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
        }
    }
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

        Ok(Knobs {
            join_delay: Duration::from_millis(join_delay_ms),
            ready_early: params::flag(pairs, "readyEarly")?,
            drop_after,
            dup_seam: usize::try_from(dup_seam).unwrap_or(usize::MAX),
            stall_after,
            // `status` wins when both are given.
            fail: status.or(content_type),
            fail_count,
            garbage: params::flag(pairs, "garbage")?,
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
}
