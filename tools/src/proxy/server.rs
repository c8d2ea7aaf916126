//! The proxy's IO: accepts connections, answers the control endpoint, and forwards everything
//! else with its faults; event streams go through a [`Shaper`] as they arrive, chunk by chunk.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::config::Config;
use super::knobs::{self, KnobError, Knobs};
use super::shape::{garbage, Live, Plan, Shaper, Step};
use super::state::{Registration, State};
use crate::net::{self, decode_component, error_chain, is_event_stream, Client};

/// Errors of a response body (the upstream's, passed on).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Out = UnsyncBoxBody<Bytes, BoxError>;
type Upstream = Pin<Box<dyn Future<Output = Result<Response<Incoming>, String>> + Send>>;

/// A running proxy.
pub struct Proxy {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// `http://<addr>:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs until the accept loop ends (it does not on its own).
    pub async fn wait(self) {
        let _ = self.accept.await;
    }
}

struct Shared {
    config: Config,
    client: Client<Incoming>,
    state: Arc<State>,
}

/// Binds the proxy and starts serving.
pub async fn bind(config: Config) -> std::io::Result<Proxy> {
    let listener = TcpListener::bind((config.host.as_str(), config.port)).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(State::new(config.log));
    let shared = Arc::new(Shared {
        config,
        client: net::client(),
        state,
    });
    let accept = tokio::spawn(async move {
        loop {
            let socket = match listener.accept().await {
                Ok((socket, _)) => socket,
                Err(_) => {
                    // Out of descriptors, a reset before accept: try again shortly.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(shared.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    Ok(Proxy { addr, accept })
}

fn text(status: StatusCode, body: String) -> Response<Out> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(value: serde_json::Value) -> Response<Out> {
    let mut response = text(StatusCode::OK, format!("{value}\n"));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Out>, Infallible> {
    let path = req.uri().path();
    if path == "/_proxy" || path.starts_with("/_proxy/") {
        return Ok(control(&shared, &req));
    }
    Ok(forward(shared, req).await)
}

// ---------------------------------------------------------------------------------------------
// Control endpoint

const CONTROL_HELP: &str =
    "GET /_proxy/stats, POST /_proxy/live, POST /_proxy/arm, POST /_proxy/disarm";

fn control(shared: &Shared, req: &Request<Incoming>) -> Response<Out> {
    let state = &shared.state;
    let pairs: Vec<(String, String)> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode_component(name);
            let name = name.strip_prefix(knobs::PREFIX).unwrap_or(&name).to_owned();
            (name, decode_component(value))
        })
        .collect();
    let bad = |why: String| text(StatusCode::BAD_REQUEST, format!("sse-relay-proxy: {why}\n"));
    let endpoint = req.uri().path();
    match (req.method(), endpoint) {
        (&Method::GET, "/_proxy/stats") => json(state.stats()),
        (&Method::POST, "/_proxy/live") => {
            let mut matching = None;
            let mut asked = Knobs::default();
            let mut cut = false;
            let mut stall = false;
            let mut rest = Vec::new();
            for (name, value) in pairs {
                match name.as_str() {
                    "match" => matching = Some(value),
                    "cut" | "stall" => {
                        let on = match value.as_str() {
                            "" | "1" | "true" => true,
                            "0" | "false" => false,
                            _ => {
                                return bad(format!(
                                    "bad value {value:?} for {name}: expected 1 or 0"
                                ))
                            }
                        };
                        if name == "cut" {
                            cut = on;
                        } else {
                            stall = on;
                        }
                    }
                    "garbage" | "garbageEvent" => rest.push((name, value)),
                    _ => {
                        return bad(format!(
                        "unknown live fault {name:?} (cut, stall, garbage, garbageEvent, match)"
                    ))
                    }
                }
            }
            if !rest.is_empty() {
                match Knobs::parse(&rest, false) {
                    Ok(knobs) => asked = knobs,
                    Err(err) => return bad(err.to_string()),
                }
            }
            if cut && stall {
                return bad("cut and stall cannot be asked together".into());
            }
            let mut faults = Vec::new();
            let mut names = Vec::new();
            if asked.garbage {
                faults.push(Live::Garbage(garbage(
                    asked.garbage_event.as_deref().unwrap_or("message"),
                )));
                names.push("garbage");
            }
            if cut {
                faults.push(Live::Cut);
                names.push("cut");
            }
            if stall {
                faults.push(Live::Stall);
                names.push("stall");
            }
            if faults.is_empty() {
                return bad("nothing asked: give cut=1, stall=1 or garbage=1".into());
            }
            let affected = state.live(&faults, matching.as_deref());
            json(serde_json::json!({ "affected": affected, "live": names, "match": matching }))
        }
        (&Method::POST, "/_proxy/arm") => {
            let mut matching = None;
            let mut next = 1;
            let mut rest = Vec::new();
            for (name, value) in pairs {
                match name.as_str() {
                    "match" => matching = Some(value),
                    "next" => match value.parse::<u64>().ok().filter(|n| (1..=1000).contains(n)) {
                        Some(n) => next = n,
                        None => {
                            return bad(format!(
                                "bad value {value:?} for next: expected a count 1-1000"
                            ))
                        }
                    },
                    _ => rest.push((name, value)),
                }
            }
            let knobs = match Knobs::parse(&rest, false) {
                Ok(knobs) if knobs.is_empty() => {
                    return bad("nothing to arm: give knobs like cutAfter=5".into())
                }
                Ok(knobs) => knobs,
                Err(err) => return bad(err.to_string()),
            };
            let armed = knobs.describe();
            state.arm(knobs, matching.clone(), next);
            json(serde_json::json!({ "armed": armed, "next": next, "match": matching }))
        }
        (&Method::POST, "/_proxy/disarm") => {
            json(serde_json::json!({ "disarmed": state.disarm() }))
        }
        (_, "/_proxy/stats" | "/_proxy/live" | "/_proxy/arm" | "/_proxy/disarm") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "sse-relay-proxy: {} {endpoint}: use {CONTROL_HELP}\n",
                req.method()
            ),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            format!("sse-relay-proxy: no control endpoint {endpoint}: use {CONTROL_HELP}\n"),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Forwarding

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn injected(status: u16, retry_after: Option<u64>) -> Response<Out> {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = if status == 204 {
        text(code, String::new())
    } else {
        text(code, format!("sse-relay-proxy: injected status {status}\n"))
    };
    let headers = response.headers_mut();
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if status == 401 {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if status == 204 {
        headers.remove(header::CONTENT_TYPE);
    }
    response
}

async fn forward(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Out> {
    let state = shared.state.clone();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let (pairs, query) = knobs::split_query(parts.uri.query());
    let target = match &query {
        Some(query) => format!("{path}?{query}"),
        None => path.clone(),
    };
    let url_knobs = Knobs::parse(&pairs, true);
    let armed = url_knobs.is_ok().then(|| state.take_armed(&path)).flatten();
    let knobs = match (&url_knobs, &armed) {
        (Ok(knobs), Some(armed)) => knobs.clone().merged(armed),
        (Ok(knobs), None) => knobs.clone(),
        (Err(_), _) => Knobs::default(),
    };
    let n = state.begin(parts.method.as_str(), &target, &knobs);
    if let Err(err) = url_knobs {
        return refuse(&shared, n, err);
    }
    if let Some(status) = knobs.status {
        // An armed status is used up by this request; one in the URL counts per path.
        let armed_status = armed.is_some_and(|a| a.status.is_some());
        if armed_status || state.count_failure(&path, status) <= knobs.fail_count.unwrap_or(1) {
            state.finish(n, status, Some("injected status".into()));
            shared.state.print(n);
            return injected(status, knobs.retry_after);
        }
    }

    let upstream = &shared.config.upstream;
    let uri = format!("{}{}{}", upstream.origin, upstream.base_path, target);
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    if let Ok(host) = HeaderValue::from_str(&upstream.authority) {
        headers.insert(header::HOST, host);
    }
    if knobs.drop_last_event_id {
        headers.remove("last-event-id");
    }
    let mut request = Request::new(body);
    *request.method_mut() = parts.method;
    *request.headers_mut() = headers;
    match uri.parse() {
        Ok(parsed) => *request.uri_mut() = parsed,
        Err(err) => {
            state.finish(n, 400, Some(format!("bad target: {err}")));
            return text(
                StatusCode::BAD_REQUEST,
                format!("sse-relay-proxy: cannot forward {target:?}: {err}\n"),
            );
        }
    }

    let client = shared.client.clone();
    let limit = shared.config.upstream_timeout;
    let delay = knobs.delay;
    let origin = upstream.origin.clone();
    let send: Upstream = Box::pin(async move {
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        match tokio::time::timeout(limit, client.request(request)).await {
            Err(_) => Err(format!(
                "no answer from upstream {origin} within {} ms",
                limit.as_millis()
            )),
            Ok(Err(err)) if err.is_connect() => Err(format!(
                "upstream {origin} unreachable: {}",
                error_chain(&err)
            )),
            Ok(Err(err)) => Err(format!("upstream {origin} failed: {}", error_chain(&err))),
            Ok(Ok(response)) => Ok(response),
        }
    });
    let plan = Plan {
        cut_after: knobs.cut_after,
        stall_after: knobs.stall_after,
        seam: knobs
            .dup_seam
            .map(|k| state.seam(&path, k))
            .unwrap_or_default(),
        garbage: knobs
            .garbage
            .then(|| garbage(knobs.garbage_event.as_deref().unwrap_or("message"))),
    };

    if knobs.early_open {
        // Open is not joined: the client has its 200 before the upstream was even asked.
        let (registration, live) = state.open(n, &path);
        state.finish(n, 200, Some("early open".into()));
        shared.state.print(n);
        let body = ShapedBody::new(
            Source::Waiting(send),
            Shaper::new(plan),
            live,
            registration,
            path,
        );
        let mut response = Response::new(body.boxed_unsync());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return response;
    }

    let response = match send.await {
        Ok(response) => response,
        Err(why) => {
            let status = if why.starts_with("no answer") {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            state.finish(n, status.as_u16(), Some(why.clone()));
            shared.state.print(n);
            return text(status, format!("sse-relay-proxy: {why}\n"));
        }
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let body: Out = if is_event_stream(content_type) {
        parts.headers.remove(header::CONTENT_LENGTH);
        let (registration, live) = state.open(n, &path);
        ShapedBody::new(
            Source::Streaming(body),
            Shaper::new(plan),
            live,
            registration,
            path,
        )
        .boxed_unsync()
    } else {
        body.map_err(BoxError::from).boxed_unsync()
    };
    state.finish(n, parts.status.as_u16(), None);
    shared.state.print(n);
    Response::from_parts(parts, body)
}

fn refuse(shared: &Shared, n: u64, err: KnobError) -> Response<Out> {
    shared.state.finish(n, 400, Some(err.to_string()));
    shared.state.print(n);
    text(StatusCode::BAD_REQUEST, format!("sse-relay-proxy: {err}\n"))
}

// ---------------------------------------------------------------------------------------------
// A shaped event stream

enum Source {
    /// The upstream request, still on its way (`earlyOpen`).
    Waiting(Upstream),
    /// The upstream's body.
    Streaming(Incoming),
    /// Nothing more will be read.
    Done,
}

/// The body of an event stream going to the client: the upstream's chunks through the shaper,
/// with the live faults of the control endpoint.
struct ShapedBody {
    source: Source,
    shaper: Shaper,
    live: mpsc::UnboundedReceiver<Live>,
    queue: VecDeque<Bytes>,
    ended: bool,
    stalled: bool,
    registration: Registration,
    path: String,
}

impl ShapedBody {
    fn new(
        source: Source,
        shaper: Shaper,
        live: mpsc::UnboundedReceiver<Live>,
        registration: Registration,
        path: String,
    ) -> ShapedBody {
        ShapedBody {
            source,
            shaper,
            live,
            queue: VecDeque::new(),
            ended: false,
            stalled: false,
            registration,
            path,
        }
    }

    fn apply(&mut self, steps: Vec<Step>, why: &str) {
        for step in steps {
            match step {
                Step::Send(bytes) => self.queue.push_back(bytes),
                Step::End => {
                    self.ended = true;
                    self.source = Source::Done;
                    self.note(format!("cut {why}"));
                }
                Step::Stall => {
                    self.stalled = true;
                    self.source = Source::Done;
                    self.note(format!("stalled {why}"));
                }
            }
        }
    }

    fn note(&self, what: String) {
        let n = self.registration.n();
        self.registration.state().note(n, what);
    }

    /// Ends the stream with a comment saying why (the status line went out already).
    fn give_up(&mut self, why: String) {
        self.queue
            .push_back(Bytes::from(format!(": sse-relay-proxy: {why}\n\n")));
        self.note(why);
        self.ended = true;
        self.source = Source::Done;
    }
}

impl Body for ShapedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if let Some(bytes) = this.queue.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            if let Poll::Ready(Some(fault)) = this.live.poll_recv(cx) {
                let why = match fault {
                    Live::Cut | Live::Stall => "by the control endpoint".to_owned(),
                    Live::Garbage(_) => String::new(),
                };
                let steps = this.shaper.live(fault);
                this.apply(steps, &why);
                continue;
            }
            if this.stalled {
                // Silent until a live cut or the client leaves.
                return Poll::Pending;
            }
            match &mut this.source {
                Source::Waiting(upstream) => match upstream.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(response)) => {
                        let status = response.status();
                        let content_type = response
                            .headers()
                            .get(header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok());
                        if status == StatusCode::OK && is_event_stream(content_type) {
                            this.source = Source::Streaming(response.into_body());
                        } else {
                            this.give_up(format!(
                                "after the early open the upstream answered {status}"
                            ));
                        }
                    }
                    Poll::Ready(Err(why)) => this.give_up(why),
                },
                Source::Streaming(body) => match Pin::new(body).poll_frame(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => {
                        this.ended = true;
                        this.source = Source::Done;
                    }
                    Poll::Ready(Some(Err(err))) => {
                        this.ended = true;
                        this.source = Source::Done;
                        return Poll::Ready(Some(Err(err.into())));
                    }
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Ok(chunk) = frame.into_data() {
                            let steps = this.shaper.chunk(chunk);
                            let why = format!("after {} journaled frames", this.shaper.journaled());
                            this.apply(steps, &why);
                            let kept = this.shaper.take_journaled();
                            this.registration.state().remember(&this.path, kept);
                        }
                    }
                },
                Source::Done => this.ended = true,
            }
        }
    }
}
