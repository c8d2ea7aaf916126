//! State shared by every handler.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::journal::Journal;
use crate::streams::Streams;

/// What the handlers share: the journal, this process's per-key state, the settings of the
/// router, and the shutdown signal.
#[derive(Debug)]
pub struct AppState {
    /// The journal of every stream key.
    pub journal: Arc<dyn Journal>,
    /// This process's connections, live faults and armed faults, per key.
    pub streams: Streams,
    /// Interval between `ping` frames on an SSE connection.
    pub ping: Duration,
    /// Whether the fault knobs of the events endpoint and `POST /streams/{key}/faults` are on.
    pub faults: bool,
    /// Turns `true` when the server shuts down; long-lived tasks watch it to end.
    pub shutdown: watch::Receiver<bool>,
}

/// The axum state: cheap to clone into every handler.
pub type App = Arc<AppState>;

/// Resolves once shutdown is requested. If the sender is gone without a request, it never
/// resolves: losing the handle must not end every stream.
pub async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}
