//! HTTP plumbing both tools share: the client, plain-HTTP URLs, query strings, error messages.

use std::error::Error;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The HTTP/1.1 client of both tools (plain HTTP: they are meant for loopback and test networks).
pub type Client<B> = hyper_util::client::legacy::Client<HttpConnector, B>;

/// A new client sending bodies of type `B`.
pub fn client<B>() -> Client<B>
where
    B: http_body::Body + Send,
    B::Data: Send,
{
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector)
}

/// Checks that `url` is an absolute `http://` URL; says what is wrong otherwise.
pub fn check_http_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|err| format!("{url:?} is not a URL ({err})"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "{url:?}: https is not supported; point the tool at the server's plain HTTP address"
            ))
        }
        _ => return Err(format!("{url:?} is not an absolute http:// URL")),
    }
    if uri.authority().is_none() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(uri)
}

/// `url` with `params` added to its query string (after `?` or `&`), values percent-encoded.
pub fn add_query(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = url.to_owned();
    for (name, value) in params {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(&encode_component(name));
        out.push('=');
        out.push_str(&encode_component(value));
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (a malformed escape is kept as written; bytes that are not UTF-8 become
/// U+FFFD).
pub fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An error and its causes on one line: `client error (Connect): tcp connect error: Connection
/// refused (os error 111)`.
pub fn error_chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Whether a `Content-Type` value is `text/event-stream` (parameters allowed, any case).
pub fn is_event_stream(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_added_encoded() {
        assert_eq!(
            add_query("http://h/e", &[("from", "now")]),
            "http://h/e?from=now"
        );
        assert_eq!(
            add_query(
                "http://h/e?x=1",
                &[("lastEventId", "5-0"), ("epoch", "a b&c")]
            ),
            "http://h/e?x=1&lastEventId=5-0&epoch=a%20b%26c"
        );
    }

    #[test]
    fn components_round_trip() {
        for text in ["a b&c=d", "ünï/%", ""] {
            assert_eq!(decode_component(&encode_component(text)), text);
        }
        assert_eq!(decode_component("100%"), "100%");
        assert_eq!(decode_component("%zz%4"), "%zz%4");
    }

    #[test]
    fn only_plain_http_urls() {
        assert!(check_http_url("http://127.0.0.1:1/x").is_ok());
        assert!(check_http_url("https://example.test/")
            .unwrap_err()
            .contains("https is not supported"));
        assert!(check_http_url("/streams/x").is_err());
        assert!(check_http_url("not a url").is_err());
    }

    #[test]
    fn event_stream_content_types() {
        assert!(is_event_stream(Some("text/event-stream")));
        assert!(is_event_stream(Some("Text/Event-Stream; charset=utf-8")));
        assert!(!is_event_stream(Some("text/plain")));
        assert!(!is_event_stream(None));
    }
}
