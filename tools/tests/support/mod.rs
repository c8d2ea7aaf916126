//! Shared by the integration tests: the reference server binary, the tools' own binaries, and a
//! small journal server with switchable bugs (`mini`).
#![allow(dead_code)]

pub mod mini;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where cargo put this test's binaries (`target/debug`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/debug/deps/<test> -> target/debug
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .to_path_buf()
}

/// The reference server's binary, built once per test process (cargo builds only this
/// package's binaries for its tests; the build is a no-op when it is up to date).
pub fn server_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "sse-relay-server", "--quiet"])
                .status()
                .expect("run cargo build -p sse-relay-server");
            assert!(status.success(), "cargo build -p sse-relay-server failed");
            let bin = target_dir().join("sse-relay-server");
            assert!(bin.exists(), "{} is missing", bin.display());
            bin
        })
        .clone()
}

/// A child process that printed `listening on <url>` first; killed when dropped.
pub struct Listening {
    /// The address it printed.
    pub url: String,
    child: Child,
}

impl Listening {
    /// Starts `bin` with `args` and reads its first line (at most 20 s).
    pub fn start(bin: &std::path::Path, args: &[&str]) -> Listening {
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = tx.send(first);
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .ok()
            .flatten()
            .unwrap_or_default();
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("{} printed {first:?} first", bin.display())
            })
            .to_owned();
        Listening { url, child }
    }

    /// The reference server on port 0, pinging every `ping_ms`.
    pub fn reference(extra: &[&str]) -> Listening {
        let mut args = vec!["--port", "0", "--ping-ms", "200", "--lifetime-secs", "300"];
        args.extend_from_slice(extra);
        Listening::start(&server_bin(), &args)
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tool binary of this package.
pub fn tool(name: &str) -> PathBuf {
    match name {
        "sse-relay-conform" => PathBuf::from(env!("CARGO_BIN_EXE_sse-relay-conform")),
        "sse-relay-proxy" => PathBuf::from(env!("CARGO_BIN_EXE_sse-relay-proxy")),
        other => panic!("no tool {other}"),
    }
}

/// Runs a tool to completion (at most `limit`), returning its output.
pub fn run_tool(name: &str, args: &[String], limit: Duration) -> Output {
    let mut child = Command::new(tool(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tool");
    // Read both pipes while it runs, so a long report never blocks it on a full pipe.
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{name} still running after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}
