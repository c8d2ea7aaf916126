//! The HTTP surface: the router, the small JSON endpoints, CORS, and the fallback.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::faults::FaultsRequest;
use crate::id::IdMode;
use crate::journal::StreamKey;
use crate::params;
use crate::state::App;
use crate::{producer, sse, static_files};

/// Largest accepted body of `POST /streams/{key}/append`.
pub const MAX_APPEND_BODY: usize = 64 * 1024;

/// Headers a cross-origin page may send (on top of the CORS-safelisted ones).
const ALLOW_HEADERS: &str = "Authorization, Last-Event-ID, Content-Type, Cache-Control, Accept";

/// The whole application.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/streams/{key}/events", get(sse::events))
        .route("/streams/{key}/turns", post(producer::turns))
        .route(
            "/streams/{key}/append",
            post(append).layer(DefaultBodyLimit::max(MAX_APPEND_BODY)),
        )
        .route("/streams/{key}/fill", post(producer::fill))
        .route("/streams/{key}/stats", get(stats))
        .route("/streams/{key}/reset", post(reset))
        .route("/streams/{key}/faults", post(faults))
        .fallback(fallback)
        .layer(middleware::from_fn(cors))
        .with_state(app)
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
async fn fallback(State(app): State<App>, method: Method, uri: Uri) -> Response {
    match (&app.config.static_dir, method) {
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
    let stream = app.streams.get(&key);
    let mut journal = stream.lock();
    let id = journal.append(&event, &data)?;
    Ok(Json(
        json!({ "id": id.to_string(), "epoch": journal.epoch() }),
    ))
}

/// `GET /streams/{key}/stats`.
async fn stats(State(app): State<App>, Path(key): Path<String>) -> Result<Json<Value>, ApiError> {
    let key = StreamKey::parse(&key)?;
    let stream = app.streams.get(&key);
    let journal = stream.lock();
    Ok(Json(json!({
        "key": key.as_str(),
        "length": journal.len(),
        "tail": journal.tail().map(|t| t.to_string()),
        "epoch": journal.epoch(),
        "done": journal.is_done(),
        "ids": journal.mode().as_str(),
        "retention": journal.retention(),
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
    let stream = app.streams.get(&key);
    let mut journal = stream.lock();
    journal.reset(mode);
    Ok(Json(json!({
        "key": key.as_str(),
        "epoch": journal.epoch(),
        "ids": journal.mode().as_str(),
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
