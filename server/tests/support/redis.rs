//! A real `redis-server` for the tests: started on a free loopback port with persistence off
//! (unless a scenario asks otherwise), stopped when the guard drops, even on panic. A watchdog
//! shell ends it if the test process dies without dropping the guard.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One redis-server process (restartable on the same port and arguments).
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    args: Vec<String>,
    dir: PathBuf,
    watchdog: Option<Child>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

impl RedisServer {
    /// `redis-server` with `--save '' --appendonly no`.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// `redis-server` that keeps its data across [`RedisServer::restart`]: an append-only file
    /// fsynced on every write.
    pub fn start_persistent() -> RedisServer {
        RedisServer::start_with(&[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
    }

    /// `redis-server` with these extra arguments, in a fresh temporary folder.
    pub fn start_with(args: &[&str]) -> RedisServer {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("sse-relay-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = RedisServer {
            port,
            args: args.iter().map(|a| a.to_string()).collect(),
            dir,
            watchdog: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut command = vec![
            "redis-server".to_owned(),
            "--bind".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            self.port.to_string(),
            "--dir".to_owned(),
            self.dir.display().to_string(),
        ];
        command.extend(self.args.iter().cloned());
        let quoted: Vec<String> = command
            .iter()
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect();
        // The shell runs redis-server and ends it when the test process is gone (checked every
        // half second) or when the shell itself is told to stop.
        let script = format!(
            "{} >/dev/null 2>&1 & r=$!; trap 'kill -9 $r 2>/dev/null; exit 0' TERM; \
             while kill -0 {} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 0.5; done; \
             kill -9 $r 2>/dev/null",
            quoted.join(" "),
            std::process::id()
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("sh");
        self.watchdog = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.command("PING").as_deref() != Some("+PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {} (is it installed? run scripts/setup.sh)",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The address redis-server listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Sends one inline command; the first line of the answer, or `None` if unreachable.
    pub fn command(&self, line: &str) -> Option<String> {
        let mut tcp = TcpStream::connect_timeout(&self.addr(), Duration::from_millis(500)).ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        tcp.write_all(format!("{line}\r\n").as_bytes()).ok()?;
        let mut buf = [0u8; 4096];
        let n = tcp.read(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]);
        text.lines().next().map(str::to_owned)
    }

    /// The redis-server's process id.
    pub fn pid(&self) -> u32 {
        let mut tcp = TcpStream::connect(self.addr()).expect("redis");
        tcp.write_all(b"INFO server\r\n").unwrap();
        let mut text = String::new();
        let mut buf = [0u8; 8192];
        while !text.contains("process_id:")
            || !text[text.find("process_id:").unwrap()..].contains('\n')
        {
            let n = tcp.read(&mut buf).unwrap();
            assert!(n > 0, "INFO ended early");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let at = text.find("process_id:").unwrap() + "process_id:".len();
        text[at..].lines().next().unwrap().trim().parse().unwrap()
    }

    /// Stops redis-server: `SHUTDOWN` (with `appendonly yes` the data is kept on disk), then the
    /// watchdog.
    pub fn stop(&mut self) {
        let _ = self.command("SHUTDOWN");
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.command("PING").is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(mut child) = self.watchdog.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same arguments and folder.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Sends `signal` (`STOP`, `CONT`) to redis-server.
    pub fn signal(&self, pid: u32, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SHUTDOWN NOSAVE exits at once; a stopped (SIGSTOP) server is killed by the watchdog.
        let _ = self.command("SHUTDOWN NOSAVE");
        if let Some(mut child) = self.watchdog.take() {
            // SIGTERM runs the shell's trap, which kills redis-server.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
