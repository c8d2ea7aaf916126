//! The HTTP surface: the router a service mounts ([`RelayRouter`]), the small JSON endpoints,
//! and the standalone server's CORS and fallback.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::faults::FaultsRequest;
use crate::id::IdMode;
use crate::journal::{Frame, Journal, StreamKey};
use crate::params;
use crate::state::{App, AppState};
use crate::streams::Streams;
use crate::{producer, sse, static_files};

/// Largest accepted body of `POST /streams/{key}/append`.
pub const MAX_APPEND_BODY: usize = 64 * 1024;

/// Headers a cross-origin page may send (on top of the CORS-safelisted ones).
const ALLOW_HEADERS: &str = "Authorization, Last-Event-ID, Content-Type, Cache-Control, Accept";

/// Default interval of `ping` frames on every open stream.
pub const DEFAULT_PING: Duration = Duration::from_secs(15);

/// Builds the protocol-v1 routes over a [`Journal`], for a service to mount in its own axum
/// app (`Router::merge` or `Router::nest`):
///
/// - `GET /streams/{key}/events`: the event stream (protocol v1),
/// - `POST /streams/{key}/append`: append one frame,
/// - `GET /streams/{key}/stats`, `POST /streams/{key}/reset`,
/// - with [`RelayRouter::producers`]: `POST /streams/{key}/turns` (a simulated LLM turn) and
///   `POST /streams/{key}/fill` (bench mode),
/// - with [`RelayRouter::fault_injection`]: the fault knobs of the events endpoint and
///   `POST /streams/{key}/faults`. Off by default: the knobs are then unknown query
///   parameters, ignored.
///
/// It adds no CORS, no fallback and no authentication: those are the host's to choose (put the
/// routes behind your own middleware).
#[derive(Debug)]
pub struct RelayRouter {
    journal: Arc<dyn Journal>,
    ping: Duration,
    faults: bool,
    producers: bool,
    shutdown: Option<watch::Receiver<bool>>,
}

impl RelayRouter {
    /// Routes over `journal`, with pings every 15 s, no fault injection and no producers.
    pub fn new(journal: Arc<dyn Journal>) -> RelayRouter {
        RelayRouter {
            journal,
            ping: DEFAULT_PING,
            faults: false,
            producers: false,
            shutdown: None,
        }
    }

    /// The interval of `ping` frames on every open stream (clients detect a stalled
    /// connection by their absence). At least 1 ms.
    pub fn ping(mut self, every: Duration) -> RelayRouter {
        self.ping = every.max(Duration::from_millis(1));
        self
    }

    /// Turns the fault knobs and `POST /streams/{key}/faults` on (for tests and demos).
    pub fn fault_injection(mut self, on: bool) -> RelayRouter {
        self.faults = on;
        self
    }

    /// Turns the demo producers `turns` and `fill` on.
    pub fn producers(mut self, on: bool) -> RelayRouter {
        self.producers = on;
        self
    }

    /// Ends every open stream and producer once `signal` turns `true` (open SSE responses
    /// never end on their own, so a graceful shutdown needs this).
    pub fn shutdown(mut self, signal: watch::Receiver<bool>) -> RelayRouter {
        self.shutdown = Some(signal);
        self
    }

    /// The router, with its state applied.
    pub fn build(self) -> Router {
        // Without a signal: a receiver whose sender is gone, which `shutdown_requested`
        // treats as "never".
        let shutdown = self.shutdown.unwrap_or_else(|| watch::channel(false).1);
        let app: App = Arc::new(AppState {
            journal: self.journal,
            streams: Streams::new(),
            ping: self.ping,
            faults: self.faults,
            shutdown,
        });
        let mut router = Router::new()
            .route("/streams/{key}/events", get(sse::events))
            .route(
                "/streams/{key}/append",
                post(append).layer(DefaultBodyLimit::max(MAX_APPEND_BODY)),
            )
            .route("/streams/{key}/stats", get(stats))
            .route("/streams/{key}/reset", post(reset));
        if self.producers {
            router = router
                .route("/streams/{key}/turns", post(producer::turns))
                .route("/streams/{key}/fill", post(producer::fill));
        }
        if self.faults {
            router = router.route("/streams/{key}/faults", post(faults));
        }
        router.with_state(app)
    }
}

/// The standalone server's app: `routes`, plus `dir` served at `/` for GET/HEAD of any other
/// path (404 text otherwise) and permissive CORS, so a page from another local port can use it.
pub fn standalone(routes: Router, dir: Option<PathBuf>) -> Router {
    let dir = Arc::new(dir);
    routes
        .fallback(move |method: Method, uri: Uri| {
            let dir = Arc::clone(&dir);
            async move { fallback(dir.as_deref(), method, uri).await }
        })
        .layer(middleware::from_fn(cors))
}

/// Permissive CORS, so a page served from another local port can use the server: every
/// response allows any origin and exposes its headers, and every `OPTIONS` is a successful
/// preflight (it never reaches the routes, which would answer 405).
async fn cors(request: Request, next: Next) -> Response {
    let mut response = if request.method() == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        // Echo what the page asked for, plus the headers the protocol uses.
        let asked = request
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.trim().is_empty());
        let allow = match asked {
            Some(asked) => HeaderValue::from_str(&format!("{ALLOW_HEADERS}, {asked}"))
                .unwrap_or(HeaderValue::from_static(ALLOW_HEADERS)),
            None => HeaderValue::from_static(ALLOW_HEADERS),
        };
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow);
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("*"),
    );
    response
}

/// Unknown routes: the static folder for GET/HEAD when there is one, else 404.
async fn fallback(dir: Option<&std::path::Path>, method: Method, uri: Uri) -> Response {
    match (dir, method) {
        (Some(root), Method::GET | Method::HEAD) => static_files::serve(root, &uri).await,
        _ => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no route for {}", uri.path()),
        )
        .into_response(),
    }
}

/// The body of `POST /streams/{key}/append`.
#[derive(Debug, Deserialize)]
struct AppendBody {
    /// Event name; `message` when absent.
    #[serde(default)]
    event: Option<String>,
    /// Payload: a string as is; null or absent as ""; any other JSON value as its compact JSON.
    #[serde(default)]
    data: Value,
}

/// `POST /streams/{key}/append` with `{"event","data"}`: appends one entry and answers
/// `{"id","epoch"}`. 400 for bad JSON or event names, 409 after `done`, 413 over 64 KiB.
async fn append(
    State(app): State<App>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let key = StreamKey::parse(&key)?;
    let body: AppendBody = serde_json::from_slice(&body).map_err(|err| {
        ApiError::bad_request(format!(
            "bad JSON body ({err}): expected {{\"event\": \"token\", \"data\": \"...\"}}"
        ))
    })?;
    let event = body.event.unwrap_or_else(|| "message".to_owned());
    let data = match body.data {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let frames = [Frame {
        event: &event,
        data: &data,
    }];
    let appended = app.journal.append(&key, &frames, None).await?;
    Ok(Json(json!({
        "id": appended.last.map(|id| id.to_string()),
        "epoch": appended.epoch,
    })))
}

/// `GET /streams/{key}/stats`.
async fn stats(State(app): State<App>, Path(key): Path<String>) -> Result<Json<Value>, ApiError> {
    let key = StreamKey::parse(&key)?;
    let head = app.journal.head(&key).await?;
    let stream = app.streams.get(&key);
    Ok(Json(json!({
        "key": key.as_str(),
        "length": head.length,
        "tail": head.tail.map(|t| t.to_string()),
        "epoch": head.epoch,
        "done": head.done,
        "ids": head.mode.as_str(),
        "retention": app.journal.retention(),
        "journal": app.journal.engine(),
        "connections": stream.open_connections(),
        "connectionsTotal": stream.total_connections(),
        "armed": stream.armed().json(),
    })))
}

/// `POST /streams/{key}/reset[?ids=numeric|redis]`: new epoch, empty journal, open streams of
/// the key end. Answers `{"key","epoch","ids"}`.
async fn reset(
    State(app): State<App>,
    Path(key): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let key = StreamKey::parse(&key)?;
    let mode = params::choice(&pairs, "ids", "numeric or redis", |v| {
        v.parse::<IdMode>().ok()
    })?;
    let head = app.journal.reset(&key, mode).await?;
    Ok(Json(json!({
        "key": key.as_str(),
        "epoch": head.epoch,
        "ids": head.mode.as_str(),
    })))
}

/// `POST /streams/{key}/faults?cut=1|stall=1|garbage=1|dupSeam=K|joinDelayMs=D[&next=N]`:
/// live faults on the key's open SSE connections (garbage first, then the stall or the cut),
/// and faults armed for its next N connections. Answers
/// `{"key","affected","live","armed"}`, `affected` being how many open connections got the live
/// faults.
async fn faults(
    State(app): State<App>,
    Path(key): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let key = StreamKey::parse(&key)?;
    let request =
        FaultsRequest::parse(&pairs).map_err(|err| ApiError::bad_request(err.to_string()))?;
    let stream = app.streams.get(&key);
    // Arm first: connections a cut ends reconnect at once, and those are the next ones.
    let armed = {
        let mut armed = stream.armed();
        request.arm(&mut armed);
        armed.json()
    };
    let mut affected = 0;
    for fault in &request.live {
        affected = affected.max(stream.send_fault(*fault));
    }
    Ok(Json(json!({
        "key": key.as_str(),
        "affected": affected,
        "live": request.live.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "armed": armed,
    })))
}
