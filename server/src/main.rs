//! The `sse-relay-server` binary: parses flags, binds, prints the address, serves.

use std::io::Write;
use std::process::ExitCode;

use sse_relay_server::config::USAGE;
use sse_relay_server::{bind, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Command::parse(std::env::args().skip(1)) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("sse-relay-server {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("sse-relay-server: {err}");
            return ExitCode::from(2);
        }
    };
    let lifetime = config.lifetime;
    if let Some(warning) = sse_relay_server::check_journal(&config).await {
        // Not fatal: the server answers 503 until the journal is reachable, then serves.
        eprintln!("sse-relay-server: warning: {warning}");
    }
    let server = match bind(config).await {
        Ok(server) => server,
        Err(err) => {
            eprintln!("sse-relay-server: cannot bind: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Harnesses read this exact first line to learn the port, so flush it right away.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", server.url());
    let _ = stdout.flush();

    let result = match lifetime {
        // A harness passes --lifetime-secs so an orphaned server always stops: when the time
        // is up, main returns and the runtime drops every connection with it.
        Some(lifetime) => tokio::time::timeout(lifetime, server.wait())
            .await
            .unwrap_or(Ok(())),
        None => server.wait().await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sse-relay-server: {err}");
            ExitCode::FAILURE
        }
    }
}
