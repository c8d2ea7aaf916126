//! The server under test: its URLs, how to append to and reset a key, fresh keys, and the
//! connections opened so far (kept for the checks that read every connection).

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use std::fmt;
use std::process::Stdio;
use tokio::time::{timeout, Instant};

use super::config::{Action, Config};
use super::conn::Conn;
use crate::net::{self, error_chain, Client};

/// Why the server cannot be checked at all (exit status 3).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unusable {
    /// Nothing answers at the events URL's address.
    Unreachable(String),
    /// The events URL does not answer with an event stream.
    NotAnEventStream(String),
    /// An append failed.
    AppendFailed(String),
    /// A reset failed.
    ResetFailed(String),
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::Unreachable(why) => write!(f, "unreachable: {why}"),
            Unusable::NotAnEventStream(why) => write!(f, "not an event stream: {why}"),
            Unusable::AppendFailed(why) => write!(f, "append failed: {why}"),
            Unusable::ResetFailed(why) => write!(f, "reset failed: {why}"),
        }
    }
}

impl std::error::Error for Unusable {}

/// A small seeded generator (xorshift64*) for the random moments: reproducible with `--seed`.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
    }
}

/// The server under test and what the run saw of it.
pub struct Target {
    /// The run's settings.
    pub config: Config,
    client: Client<Full<Bytes>>,
    /// Every connection the checks opened, once they are done with it.
    pub conns: Vec<Conn>,
    /// The random moments.
    pub rng: Rng,
}

impl Target {
    /// A target for `config`.
    pub fn new(config: Config) -> Target {
        let rng = Rng::new(config.seed);
        Target {
            config,
            client: net::client(),
            conns: Vec::new(),
            rng,
        }
    }

    /// A key no earlier check used: `<prefix>-<check>-<n>`.
    pub fn key(&self, check: &str, n: usize) -> String {
        format!("{}-{check}-{n}", self.config.key_prefix)
    }

    /// The deadline of one expected thing, from now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.config.timeout
    }

    /// The events URL of `key` with `params` added.
    pub fn events_url(&self, key: &str, params: &[(&str, &str)]) -> String {
        net::add_query(&self.config.events.replace("{key}", key), params)
    }

    /// Opens the events URL of `key` with `params` and `headers` (plus `--header`s).
    pub async fn open(
        &self,
        label: impl Into<String>,
        key: &str,
        params: &[(&str, &str)],
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Conn, Unusable> {
        let mut all = self.config.headers.clone();
        all.extend(headers.iter().cloned());
        Conn::open(
            &self.client,
            label.into(),
            self.events_url(key, params),
            &all,
            self.config.timeout,
        )
        .await
        .map_err(Unusable::Unreachable)
    }

    /// Keeps a connection the check is done with, for the checks over every connection.
    pub fn keep(&mut self, mut conn: Conn) {
        conn.close();
        self.conns.push(conn);
    }

    /// Appends one entry to `key`'s journal.
    pub async fn append(&self, key: &str, event: &str, data: &str) -> Result<(), Unusable> {
        let body = serde_json::json!({ "event": event, "data": data }).to_string();
        let env = [("SSE_KEY", key), ("SSE_EVENT", event), ("SSE_DATA", data)];
        self.act(&self.config.append, key, Some(body), &env)
            .await
            .map_err(|why| Unusable::AppendFailed(format!("{event} {data:?} to key {key}: {why}")))
    }

    /// Starts a new epoch of `key` (`--reset` must be set).
    pub async fn reset(&self, key: &str) -> Result<(), Unusable> {
        let Some(action) = &self.config.reset else {
            return Err(Unusable::ResetFailed("no --reset or --reset-cmd".into()));
        };
        self.act(action, key, None, &[("SSE_KEY", key)])
            .await
            .map_err(|why| Unusable::ResetFailed(format!("key {key}: {why}")))
    }

    async fn act(
        &self,
        action: &Action,
        key: &str,
        body: Option<String>,
        env: &[(&str, &str)],
    ) -> Result<(), String> {
        let limit = self.config.timeout;
        match action {
            Action::Post(template) => {
                let url = template.replace("{key}", key);
                let mut request = Request::post(&url);
                for (name, value) in &self.config.headers {
                    request = request.header(name, value);
                }
                if body.is_some() {
                    request = request.header(CONTENT_TYPE, "application/json");
                }
                let request = request
                    .body(Full::new(Bytes::from(body.unwrap_or_default())))
                    .map_err(|err| format!("POST {url}: {err}"))?;
                let exchange = async {
                    let response = self
                        .client
                        .request(request)
                        .await
                        .map_err(|err| format!("POST {url}: {}", error_chain(&err)))?;
                    let status = response.status();
                    let text = response
                        .into_body()
                        .collect()
                        .await
                        .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
                        .unwrap_or_default();
                    if status.is_success() {
                        Ok(())
                    } else {
                        Err(format!("POST {url}: {status} {text}"))
                    }
                };
                timeout(limit, exchange).await.unwrap_or_else(|_| {
                    Err(format!(
                        "POST {url}: no answer within {} ms",
                        limit.as_millis()
                    ))
                })
            }
            Action::Command(command) => {
                let mut child = tokio::process::Command::new("sh");
                child
                    .arg("-c")
                    .arg(command)
                    .envs(env.iter().copied())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true);
                let run = async {
                    let output = child
                        .spawn()
                        .map_err(|err| format!("cannot run sh -c {command:?}: {err}"))?
                        .wait_with_output()
                        .await
                        .map_err(|err| format!("sh -c {command:?}: {err}"))?;
                    if output.status.success() {
                        Ok(())
                    } else {
                        let stderr = String::from_utf8_lossy(&output.stderr);
                        Err(format!(
                            "sh -c {command:?}: {}: {}",
                            output.status,
                            stderr.trim()
                        ))
                    }
                };
                timeout(limit, run).await.unwrap_or_else(|_| {
                    Err(format!(
                        "sh -c {command:?}: still running after {} ms",
                        limit.as_millis()
                    ))
                })
            }
        }
    }
}
