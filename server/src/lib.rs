//! `sse-relay-server`: a journal server speaking sse-relay's protocol v1 (see the README's
//! protocol section), as a library and a binary.
//!
//! - A [`Journal`](journal::Journal) abstraction with two engines: in memory
//!   ([`MemoryJournal`](journal::MemoryJournal)) and Redis Streams.
//! - [`RelayRouter`]: the protocol's routes for a service to mount in its own axum app, with
//!   the fault-injection knobs off unless asked for.
//! - [`bind`]: the standalone server (what the binary runs): the routes with every knob on,
//!   the demo producers, permissive CORS and an optional static folder.
//!
//! Start the standalone server in-process (integration tests do this on port 0):
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let config = sse_relay_server::Config { port: 0, ..Default::default() };
//! let server = sse_relay_server::bind(config).await?;
//! println!("listening on {}", server.url());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod faults;
pub mod id;
pub mod journal;
pub mod params;
pub mod producer;
pub mod routes;
pub mod sse;
pub mod state;
pub mod static_files;
pub mod streams;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Command, Config, JournalConfig};
pub use id::IdMode;
pub use routes::RelayRouter;

use journal::{Journal, MemoryJournal, RedisJournal, RedisOptions};
use state::shutdown_requested;

/// How long [`Server::shutdown`] waits for connections to finish before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<io::Result<()>>,
}

/// Binds the standalone server with the journal `config` asks for and starts serving on the
/// current tokio runtime. Returns once the address is bound, so [`Server::local_addr`] is the
/// real port even for `port: 0`.
pub async fn bind(config: Config) -> io::Result<Server> {
    let journal = open_journal(&config)?;
    bind_with(config, journal).await
}

/// The journal `config` asks for. A Redis journal connects lazily; a URL that does not parse
/// is an `InvalidInput` error.
pub fn open_journal(config: &Config) -> io::Result<Arc<dyn Journal>> {
    Ok(match &config.journal {
        JournalConfig::Memory => Arc::new(MemoryJournal::new(
            config.ids.unwrap_or(IdMode::Numeric),
            config.retention,
        )),
        JournalConfig::Redis(url) => {
            let options = RedisOptions {
                ids: config.ids.unwrap_or(IdMode::Redis),
                retention: config.retention,
                ..RedisOptions::default()
            };
            let journal = RedisJournal::open(url, options).map_err(|err| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("--journal {url}: {err}"),
                )
            })?;
            Arc::new(journal)
        }
    })
}

/// Whether the journal of `config` answers now: `None` when it does (or is in memory), else a
/// one-line warning.
pub async fn check_journal(config: &Config) -> Option<String> {
    let JournalConfig::Redis(url) = &config.journal else {
        return None;
    };
    let journal = RedisJournal::open(url, RedisOptions::default()).ok()?;
    journal
        .ping()
        .await
        .err()
        .map(|err| format!("{url}: {err}"))
}

/// Like [`bind`], over a journal of your own (`config.ids` and `config.retention` are then the
/// journal's business).
pub async fn bind_with(config: Config, journal: Arc<dyn Journal>) -> io::Result<Server> {
    let listener = TcpListener::bind((config.host.as_str(), config.port)).await?;
    let addr = listener.local_addr()?;
    // Live frames are small writes that must leave at once, not wait for Nagle.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (stop, stopped) = watch::channel(false);
    let routes = RelayRouter::new(journal)
        .ping(config.ping)
        .fault_injection(true)
        .producers(true)
        .shutdown(stopped.clone())
        .build();
    let app = routes::standalone(routes, config.static_dir);
    let task = tokio::spawn(async move {
        let mut stopped = stopped;
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown_requested(&mut stopped).await })
            .await
    });
    Ok(Server { addr, stop, task })
}

impl Server {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, the base URL of the server.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs until the server fails (it does not stop on its own).
    pub async fn wait(self) -> io::Result<()> {
        join(self.task).await
    }

    /// Ends every stream and producer, stops accepting, and waits (a few seconds at most)
    /// for open connections to finish.
    pub async fn shutdown(self) -> io::Result<()> {
        let _ = self.stop.send(true);
        let mut task = self.task;
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(result) => flatten(result),
            Err(_) => {
                task.abort();
                Ok(())
            }
        }
    }
}

async fn join(task: JoinHandle<io::Result<()>>) -> io::Result<()> {
    flatten(task.await)
}

fn flatten(result: Result<io::Result<()>, tokio::task::JoinError>) -> io::Result<()> {
    result.map_err(io::Error::other)?
}
