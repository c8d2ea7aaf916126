//! The checker's command line.

use std::time::Duration;

use http::{HeaderName, HeaderValue};
use sse_relay::core::CursorOrder;

use super::checks::Check;
use crate::cli::{self, CliError, Command, Flag, Flags};
use crate::net;

/// The `--help` text.
pub const USAGE: &str = "\
sse-relay-conform: checks an HTTP server against sse-relay's SSE protocol v1

USAGE:
    sse-relay-conform --events URL (--append URL | --append-cmd CMD) [FLAGS]

The URLs hold a {key} placeholder; every check uses fresh keys of its own.

TARGET:
    --events URL          the event stream, e.g. 'http://127.0.0.1:8787/streams/{key}/events'
                          (extra query parameters are kept on every request)
    --append URL          POST {\"event\",\"data\"} as JSON appends one entry to the key's journal
    --append-cmd CMD      instead: `sh -c CMD` appends, with SSE_KEY, SSE_EVENT, SSE_DATA set
    --reset URL           POST starts a new epoch of the key (enables the epoch-mismatch check)
    --reset-cmd CMD       instead: `sh -c CMD` resets, with SSE_KEY set
    --header 'NAME: VALUE'  sent with every request (repeatable), e.g. an Authorization header
    --ids auto|numeric|redis|opaque   the order ids must increase in (default auto: numeric or
                          redis from the first id, else unordered)
    --cursor-param NAME   query parameter of the resume cursor (default lastEventId)
    --epoch-param NAME    query parameter of the cursor's epoch (default epoch)

PACE:
    --keys N              fresh keys of the join-before-ready check (default 20)
    --idle-ms MS          one idle period (default 1500): the join check runs 2 more keys after
                          one each; the tail check appends at random moments in --idle-rounds of them
    --idle-rounds N       idle periods of the tail check, 2 appends in each (default 4)
    --timeout-ms MS       longest wait for any one expected thing (default 5000)
    --ping-within-ms MS   longest wait for a ping on an idle stream (default 20000)
    --seed N              seed of the random moments (default: from the clock; printed)
    --key-prefix P        prefix of the fresh keys (default conform-<random>)

REPORT:
    --only LIST           run only these checks (comma-separated names)
    --skip LIST           do not run these checks
    --json                print the report as one JSON object
    --strict              a skipped check counts as failed
    -h, --help            print this text
    -V, --version         print the version

EXIT STATUS:
    0  every check that ran passed
    1  at least one check failed (the report says which, with the evidence)
    2  bad usage: a flag is unknown, missing or malformed
    3  the server could not be checked: unreachable, the events URL is not an event stream,
       or an append or reset failed
";

/// How the checker appends to (or resets) a key: a POST to a URL, or a shell command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// POST to this URL template (`{key}` replaced).
    Post(String),
    /// Run this with `sh -c`, the key (and entry) in the environment.
    Command(String),
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The events URL template.
    pub events: String,
    /// How to append.
    pub append: Action,
    /// How to reset, if the server can.
    pub reset: Option<Action>,
    /// Extra headers of every request.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The declared id order.
    pub ids: CursorOrder,
    /// The resume cursor's query parameter.
    pub cursor_param: String,
    /// The epoch's query parameter.
    pub epoch_param: String,
    /// Fresh keys of the join check.
    pub keys: usize,
    /// One idle period.
    pub idle: Duration,
    /// Idle periods of the tail check.
    pub idle_rounds: usize,
    /// Longest wait for any one expected thing.
    pub timeout: Duration,
    /// Longest wait for a ping.
    pub ping_within: Duration,
    /// Seed of the random moments.
    pub seed: u64,
    /// Prefix of the fresh keys.
    pub key_prefix: String,
    /// The checks to run.
    pub checks: Vec<Check>,
    /// Print JSON.
    pub json: bool,
    /// A skip counts as a failure.
    pub strict: bool,
}

const FLAGS: &[Flag] = &[
    value("--events"),
    value("--append"),
    value("--append-cmd"),
    value("--reset"),
    value("--reset-cmd"),
    value("--header"),
    value("--ids"),
    value("--cursor-param"),
    value("--epoch-param"),
    value("--keys"),
    value("--idle-ms"),
    value("--idle-rounds"),
    value("--timeout-ms"),
    value("--ping-within-ms"),
    value("--seed"),
    value("--key-prefix"),
    value("--only"),
    value("--skip"),
    switch("--json"),
    switch("--strict"),
];

const fn value(name: &'static str) -> Flag {
    Flag {
        name,
        takes_value: true,
    }
}

const fn switch(name: &'static str) -> Flag {
    Flag {
        name,
        takes_value: false,
    }
}

/// Parses the arguments after the program name. `entropy` seeds the run and names its keys unless
/// `--seed` / `--key-prefix` say otherwise.
pub fn parse<I, S>(args: I, entropy: u64) -> Result<Command<Config>, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    cli::parse_with(args, FLAGS, |flags| build(flags, entropy))
}

fn build(flags: Flags, entropy: u64) -> Result<Config, CliError> {
    let mut events = None;
    let mut append: Option<(&'static str, Action)> = None;
    let mut reset: Option<(&'static str, Action)> = None;
    let mut config = Config {
        events: String::new(),
        append: Action::Command(String::new()),
        reset: None,
        headers: Vec::new(),
        ids: CursorOrder::Auto,
        cursor_param: "lastEventId".into(),
        epoch_param: "epoch".into(),
        keys: 20,
        idle: Duration::from_millis(1500),
        idle_rounds: 4,
        timeout: Duration::from_millis(5000),
        ping_within: Duration::from_millis(20_000),
        seed: entropy,
        key_prefix: format!("conform-{:08x}", entropy as u32),
        checks: Check::ALL.to_vec(),
        json: false,
        strict: false,
    };
    let mut only: Option<Vec<Check>> = None;
    let mut skip: Vec<Check> = Vec::new();
    for (flag, value) in flags {
        match flag {
            "--events" => events = Some(template(flag, value)?),
            "--append" | "--append-cmd" => action(&mut append, flag, value)?,
            "--reset" | "--reset-cmd" => action(&mut reset, flag, value)?,
            "--header" => config.headers.push(header(flag, &value)?),
            "--ids" => {
                config.ids = value.parse().map_err(|()| CliError::BadValue {
                    flag,
                    value,
                    expected: "auto, numeric, redis or opaque",
                })?;
            }
            "--cursor-param" => config.cursor_param = param_name(flag, value)?,
            "--epoch-param" => config.epoch_param = param_name(flag, value)?,
            "--keys" => {
                config.keys = cli::number(flag, &value, 1..=1000, "a key count 1-1000")? as usize
            }
            "--idle-ms" => {
                config.idle = cli::millis(flag, &value, 1..=600_000, "milliseconds 1-600000")?
            }
            "--idle-rounds" => {
                config.idle_rounds = cli::number(flag, &value, 1..=1000, "a count 1-1000")? as usize
            }
            "--timeout-ms" => {
                config.timeout = cli::millis(flag, &value, 10..=600_000, "milliseconds 10-600000")?
            }
            "--ping-within-ms" => {
                config.ping_within =
                    cli::millis(flag, &value, 10..=3_600_000, "milliseconds 10-3600000")?
            }
            "--seed" => config.seed = cli::number(flag, &value, 0..=u64::MAX, "a number")?,
            "--key-prefix" => {
                let ok = !value.is_empty()
                    && value.len() <= 64
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if !ok {
                    return Err(CliError::BadValue {
                        flag,
                        value,
                        expected: "1-64 characters of [A-Za-z0-9._-]",
                    });
                }
                config.key_prefix = value;
            }
            "--only" => only = Some(check_list(flag, &value)?),
            "--skip" => skip.extend(check_list(flag, &value)?),
            "--json" => config.json = true,
            "--strict" => config.strict = true,
            _ => return Err(CliError::UnknownFlag(flag.to_owned())),
        }
    }
    config.events = events.ok_or(CliError::Missing("--events"))?;
    config.append = append
        .ok_or(CliError::Missing("--append or --append-cmd"))?
        .1;
    config.reset = reset.map(|(_, action)| action);
    if let Some(only) = only {
        config.checks.retain(|c| only.contains(c));
    }
    config.checks.retain(|c| !skip.contains(c));
    Ok(config)
}

/// `--append URL` / `--append-cmd CMD` (and the same for reset): one of the two, once.
fn action(
    slot: &mut Option<(&'static str, Action)>,
    flag: &'static str,
    value: String,
) -> Result<(), CliError> {
    if let Some((previous, _)) = slot {
        return Err(CliError::Conflict(previous, flag));
    }
    let action = if flag.ends_with("-cmd") {
        Action::Command(command(flag, value)?)
    } else {
        Action::Post(template(flag, value)?)
    };
    *slot = Some((flag, action));
    Ok(())
}

/// A URL template: plain HTTP, with `{key}`.
fn template(flag: &'static str, value: String) -> Result<String, CliError> {
    let bad = |expected| CliError::BadValue {
        flag,
        value: value.clone(),
        expected,
    };
    if !value.contains("{key}") {
        return Err(bad("a URL with a {key} placeholder"));
    }
    net::check_http_url(&value.replace("{key}", "k"))
        .map_err(|_| bad("an absolute http:// URL (https is not supported)"))?;
    Ok(value)
}

fn command(flag: &'static str, value: String) -> Result<String, CliError> {
    if value.trim().is_empty() {
        return Err(CliError::BadValue {
            flag,
            value,
            expected: "a shell command",
        });
    }
    Ok(value)
}

fn header(flag: &'static str, value: &str) -> Result<(HeaderName, HeaderValue), CliError> {
    let parsed = value.split_once(':').and_then(|(name, v)| {
        let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        let v = HeaderValue::from_str(v.trim()).ok()?;
        Some((name, v))
    });
    parsed.ok_or_else(|| CliError::BadValue {
        flag,
        value: value.to_owned(),
        expected: "'NAME: VALUE'",
    })
}

fn param_name(flag: &'static str, value: String) -> Result<String, CliError> {
    if value.is_empty() || value.contains(['&', '=', '#', '?', ' ']) {
        return Err(CliError::BadValue {
            flag,
            value,
            expected: "a query parameter name",
        });
    }
    Ok(value)
}

fn check_list(flag: &'static str, value: &str) -> Result<Vec<Check>, CliError> {
    value
        .split(',')
        .map(|name| {
            Check::from_name(name.trim()).ok_or_else(|| CliError::BadValue {
                flag,
                value: name.to_owned(),
                expected: "check names (see --help or the report)",
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, CliError> {
        match parse(args.iter().copied(), 7)? {
            Command::Run(config) => Ok(config),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_documented_shape_parses() {
        let config = run(&[
            "--events",
            "http://127.0.0.1:1/streams/{key}/events?x=1",
            "--append",
            "http://127.0.0.1:1/streams/{key}/append",
            "--ids=redis",
            "--header",
            "Authorization: Bearer t",
            "--only",
            "late-attach,seam",
        ])
        .unwrap();
        assert_eq!(config.ids, CursorOrder::Redis);
        assert_eq!(config.checks, [Check::LateAttach, Check::Seam]);
        assert_eq!(config.headers[0].0, "authorization");
        assert_eq!(config.key_prefix, "conform-00000007");
        assert!(config.reset.is_none());
    }

    #[test]
    fn bad_usage_is_named() {
        let err = |args: &[&str]| run(args).unwrap_err().to_string();
        assert_eq!(
            err(&["--append", "http://h/{key}"]),
            "--events is required (try --help)"
        );
        assert!(
            err(&["--events", "http://h/streams/x", "--append-cmd", "true"])
                .contains("{key} placeholder")
        );
        assert!(
            err(&["--events", "https://h/{key}", "--append-cmd", "true"])
                .contains("https is not supported")
        );
        assert_eq!(
            err(&[
                "--events",
                "http://h/{key}",
                "--append",
                "http://h/{key}",
                "--append-cmd",
                "x"
            ]),
            "--append and --append-cmd cannot be given together"
        );
        assert!(err(&[
            "--events",
            "http://h/{key}",
            "--append-cmd",
            "x",
            "--only",
            "nope"
        ])
        .contains("\"nope\""));
    }
}
