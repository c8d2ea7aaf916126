//! The proxy's command line.

use std::time::Duration;

use crate::cli::{self, CliError, Command, Flag, Flags};
use crate::net;

/// The `--help` text.
pub const USAGE: &str = "\
sse-relay-proxy: a fault-injecting reverse proxy for server-sent events

USAGE:
    sse-relay-proxy --upstream URL [FLAGS]

Everything passes through unchanged and unbuffered (method, headers, body, status, chunk timing);
faults are asked per request with `proxy.` query parameters (stripped before forwarding) or for
open and next requests on the control endpoint /_proxy/.

FLAGS:
    --upstream URL          the server to forward to: http://HOST:PORT[/BASE-PATH]
    --host ADDR             address to bind (default 127.0.0.1)
    --port PORT             port to bind, 0 picks a free one (default 8788)
    --upstream-timeout-ms MS  longest wait for the upstream's response headers (default 30000;
                            then 504)
    --lifetime-secs N       exit on its own after N seconds
    --log                   one line per request on stderr
    -h, --help              print this text
    -V, --version           print the version

KNOBS (query parameters of any request):
    proxy.cutAfter=N        end the response after N journaled frames (frames with an id)
    proxy.stallAfter=N      after N journaled frames, send nothing more but keep the connection
    proxy.dupSeam=K         after the first event, resend the last K journaled frames that
                            earlier connections to the same path got (1-1000)
    proxy.garbage=1         after the first event, send noise without ids
                            (proxy.garbageEvent=TYPE names its event type; default message)
    proxy.delayMs=D         wait D ms before forwarding the request (a slow join)
    proxy.earlyOpen=1       answer 200 text/event-stream at once, before the upstream is asked
    proxy.status=S          answer S (204, 400-599) instead of forwarding, for the first
                            proxy.failCount=N (default 1) such requests to the path
    proxy.retryAfter=S      Retry-After on an injected 429 or 503
    proxy.dropLastEventId=1 remove the Last-Event-ID header before forwarding

CONTROL:
    POST /_proxy/live?cut=1|stall=1|garbage=1[&garbageEvent=T][&match=S]
                            act on the open event streams whose path contains S (all without)
    POST /_proxy/arm?KNOB=VALUE...[&next=N][&match=S]
                            the next N (default 1) requests whose path contains S get the knobs
    POST /_proxy/disarm     forget armed knobs
    GET  /_proxy/stats      open streams, armed knobs, the last 200 requests

The first line on stdout is `listening on http://<addr>:<port>`. A malformed knob is a 400 naming
it; an upstream that cannot be reached is a 502 with a one-line reason.
";

/// Default `--port`.
pub const DEFAULT_PORT: u16 = 8788;

/// The upstream, split for building request URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// `http://host:port`.
    pub origin: String,
    /// A path prefix without a trailing `/` (empty for none).
    pub base_path: String,
    /// `host:port`, for the `Host` header.
    pub authority: String,
}

/// Everything the proxy needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where requests go.
    pub upstream: Upstream,
    /// Address to bind.
    pub host: String,
    /// Port to bind.
    pub port: u16,
    /// Longest wait for the upstream's response headers.
    pub upstream_timeout: Duration,
    /// Exit after this long.
    pub lifetime: Option<Duration>,
    /// Log requests on stderr.
    pub log: bool,
}

const FLAGS: &[Flag] = &[
    Flag {
        name: "--upstream",
        takes_value: true,
    },
    Flag {
        name: "--host",
        takes_value: true,
    },
    Flag {
        name: "--port",
        takes_value: true,
    },
    Flag {
        name: "--upstream-timeout-ms",
        takes_value: true,
    },
    Flag {
        name: "--lifetime-secs",
        takes_value: true,
    },
    Flag {
        name: "--log",
        takes_value: false,
    },
];

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Command<Config>, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    cli::parse_with(args, FLAGS, build)
}

fn build(flags: Flags) -> Result<Config, CliError> {
    let mut upstream = None;
    let mut config = Config {
        upstream: Upstream {
            origin: String::new(),
            base_path: String::new(),
            authority: String::new(),
        },
        host: "127.0.0.1".into(),
        port: DEFAULT_PORT,
        upstream_timeout: Duration::from_secs(30),
        lifetime: None,
        log: false,
    };
    for (flag, value) in flags {
        match flag {
            "--upstream" => upstream = Some(parse_upstream(flag, value)?),
            "--host" if !value.is_empty() => config.host = value,
            "--port" => {
                config.port = cli::number(flag, &value, 0..=65535, "a port 0-65535")? as u16
            }
            "--upstream-timeout-ms" => {
                config.upstream_timeout =
                    cli::millis(flag, &value, 1..=3_600_000, "milliseconds 1-3600000")?
            }
            "--lifetime-secs" => {
                config.lifetime = Some(Duration::from_secs(cli::number(
                    flag,
                    &value,
                    1..=u64::MAX,
                    "seconds >= 1",
                )?))
            }
            "--log" => config.log = true,
            _ => {
                return Err(CliError::BadValue {
                    flag,
                    value,
                    expected: "an address",
                })
            }
        }
    }
    config.upstream = upstream.ok_or(CliError::Missing("--upstream"))?;
    Ok(config)
}

fn parse_upstream(flag: &'static str, value: String) -> Result<Upstream, CliError> {
    let bad = |value: String| CliError::BadValue {
        flag,
        value,
        expected: "http://HOST:PORT[/BASE-PATH] (https is not supported)",
    };
    let Ok(uri) = net::check_http_url(&value) else {
        return Err(bad(value));
    };
    if uri.query().is_some() {
        return Err(bad(value));
    }
    let Some(authority) = uri.authority().map(ToString::to_string) else {
        return Err(bad(value));
    };
    Ok(Upstream {
        origin: format!("http://{authority}"),
        base_path: uri.path().trim_end_matches('/').to_owned(),
        authority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, CliError> {
        match parse(args.iter().copied())? {
            Command::Run(config) => Ok(config),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn upstreams_parse_with_a_base_path() {
        let config = run(&["--upstream", "http://127.0.0.1:9/api/", "--port", "0"]).unwrap();
        assert_eq!(config.upstream.origin, "http://127.0.0.1:9");
        assert_eq!(config.upstream.base_path, "/api");
        assert_eq!(config.upstream.authority, "127.0.0.1:9");
        assert_eq!(config.port, 0);
        assert_eq!(
            run(&["--upstream=http://h"]).unwrap().upstream.base_path,
            ""
        );
    }

    #[test]
    fn bad_command_lines_say_why() {
        let err = |args: &[&str]| run(args).unwrap_err().to_string();
        assert_eq!(err(&[]), "--upstream is required (try --help)");
        assert!(err(&["--upstream", "https://h"]).contains("https is not supported"));
        assert!(err(&["--upstream", "http://h/?x=1"]).contains("--upstream"));
        assert!(err(&["--upstream", "http://h", "--host", ""]).contains("--host"));
        assert!(err(&["--upstream", "http://h", "--port", "x"]).contains("a port"));
    }
}
