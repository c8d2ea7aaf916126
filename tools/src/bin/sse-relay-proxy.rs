//! `sse-relay-proxy`: parses flags, binds, prints the address, serves.

use std::io::Write;
use std::process::ExitCode;

use sse_relay_tools::cli::settle;
use sse_relay_tools::proxy::config::{parse, USAGE};
use sse_relay_tools::proxy::server::bind;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match settle("sse-relay-proxy", USAGE, parse(std::env::args().skip(1))) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let lifetime = config.lifetime;
    let proxy = match bind(config).await {
        Ok(proxy) => proxy,
        Err(err) => {
            eprintln!("sse-relay-proxy: cannot bind: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Harnesses read this exact first line to learn the port, so flush it right away.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", proxy.url());
    let _ = stdout.flush();
    match lifetime {
        // An orphaned proxy stops on its own when the time is up.
        Some(lifetime) => {
            let _ = tokio::time::timeout(lifetime, proxy.wait()).await;
        }
        None => proxy.wait().await,
    }
    ExitCode::SUCCESS
}
