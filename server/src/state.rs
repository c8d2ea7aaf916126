//! State shared by every handler.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Config;
use crate::journal::Streams;

/// What the handlers share: the configuration, the journals, and the shutdown signal.
#[derive(Debug)]
pub struct AppState {
    /// The configuration the server was started with.
    pub config: Config,
    /// Every stream key's journal.
    pub streams: Streams,
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
