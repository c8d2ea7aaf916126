//! `sse-relay-conform`: parses flags, runs the checks, prints the report, exits with its status.

use std::io::Write;
use std::process::ExitCode;

use sse_relay_tools::cli::settle;
use sse_relay_tools::conform::config::{parse, USAGE};
use sse_relay_tools::conform::report::{unusable_json, EXIT_UNUSABLE};

#[tokio::main]
async fn main() -> ExitCode {
    let parsed = parse(std::env::args().skip(1), sse_relay_tools::entropy());
    let config = match settle("sse-relay-conform", USAGE, parsed) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let json = config.json;
    let mut stdout = std::io::stdout();
    match sse_relay_tools::conform::run(config).await {
        Ok(report) => {
            let text = if json {
                format!("{}\n", report.json())
            } else {
                report.text()
            };
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
            ExitCode::from(report.exit_status())
        }
        Err(unusable) => {
            if json {
                let _ = writeln!(stdout, "{}", unusable_json(&unusable.to_string()));
            }
            eprintln!("sse-relay-conform: {unusable}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}
