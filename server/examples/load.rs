//! The load client of the server bench (`npm run bench:server`, scripts/bench-server.sh): raw
//! TCP over loopback against a running server, one JSON line of figures per run on stdout.
//!
//! ```sh
//! load replay  --url http://127.0.0.1:8787 --frames 200000
//! load live    --url http://127.0.0.1:8787 --connections 100 --frames 100000
//! load hold    --url http://127.0.0.1:8787 --connections 10000 --appends 20 --gap-ms 250 --server-pid 1234
//! ```
//!
//! - `replay`: fills a key (`POST …/fill`), then one connection reads the whole journal; frames/s.
//! - `live`: K connections join a key (`from=now`), then a fill appends F frames as fast as the
//!   server takes them; every connection must get all of them; delivered frames/s over all.
//! - `hold`: N connections on one key, then `appends` appends one at a time, `gap-ms` apart, each
//!   carrying its index; every connection must get every one exactly once and in order; the
//!   append→delivery latency of every (connection, append) pair, and the server's resident memory
//!   (`/proc/<pid>/status`) before and after the connections joined.
//!
//! Every run is bounded: connections are opened 256 at a time, and any read waits at most 30 s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::timeout;

/// The longest any single wait may take.
const PATIENCE: Duration = Duration::from_secs(30);

type Result<T> = std::result::Result<T, String>;

#[derive(Debug)]
struct Args {
    mode: String,
    addr: SocketAddr,
    key: String,
    frames: u64,
    connections: usize,
    appends: usize,
    gap: Duration,
    server_pid: Option<u32>,
}

fn parse_args() -> Result<Args> {
    let mut args = std::env::args().skip(1);
    let mode = args
        .next()
        .ok_or("usage: load replay|live|hold --url URL [...]")?;
    let mut parsed = Args {
        mode,
        addr: SocketAddr::from(([127, 0, 0, 1], 8787)),
        key: format!("load-{}", std::process::id()),
        frames: 200_000,
        connections: 100,
        appends: 20,
        gap: Duration::from_millis(250),
        server_pid: None,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("bad {flag} {value:?}"))
        };
        match flag.as_str() {
            "--url" => {
                let host = value.trim_start_matches("http://").trim_end_matches('/');
                parsed.addr = host.parse().map_err(|_| format!("bad --url {value:?}"))?;
            }
            "--key" => parsed.key = value,
            "--frames" => parsed.frames = number()?,
            "--connections" => parsed.connections = number()? as usize,
            "--appends" => parsed.appends = number()? as usize,
            "--gap-ms" => parsed.gap = Duration::from_millis(number()?),
            "--server-pid" => parsed.server_pid = Some(number()? as u32),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(parsed)
}

/// One request with a body; the status and the whole body (the server answers with a length).
async fn call(addr: SocketAddr, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    timeout(PATIENCE, tcp.read_to_end(&mut raw))
        .await
        .map_err(|_| format!("{path}: no answer"))?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(format!("{path}: not HTTP"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    Ok((status, body.unwrap_or_default()))
}

/// An open event stream: SSE frames from a chunked body, decoded as they come.
struct Stream {
    tcp: TcpStream,
    raw: Vec<u8>,
    /// Decoded body bytes; those before `start` are already split into frames.
    body: Vec<u8>,
    start: usize,
    chunk_left: usize,
}

impl Stream {
    async fn open(addr: SocketAddr, key: &str, query: &str) -> Result<Stream> {
        let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let request = format!("GET /streams/{key}/events?{query} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = Stream {
            tcp,
            raw: Vec::new(),
            body: Vec::new(),
            start: 0,
            chunk_left: 0,
        };
        loop {
            if let Some(at) = find(&stream.raw, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&stream.raw[..at]).into_owned();
                if !head.starts_with("HTTP/1.1 200") {
                    return Err(format!("events: {}", head.lines().next().unwrap_or("")));
                }
                stream.raw.drain(..at + 4);
                return Ok(stream);
            }
            stream.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<()> {
        let mut buf = [0u8; 64 * 1024];
        let n = timeout(PATIENCE, self.tcp.read(&mut buf))
            .await
            .map_err(|_| "stream silent".to_owned())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("stream ended".to_owned());
        }
        self.raw.extend_from_slice(&buf[..n]);
        Ok(())
    }

    /// De-chunks what has arrived into `body`.
    fn dechunk(&mut self) {
        loop {
            if self.chunk_left > 0 {
                let n = self.chunk_left.min(self.raw.len());
                if n == 0 {
                    return;
                }
                self.body.extend(self.raw.drain(..n));
                self.chunk_left -= n;
                continue;
            }
            let Some(at) = find(&self.raw, b"\r\n") else {
                return;
            };
            if at == 0 {
                self.raw.drain(..2);
                continue;
            }
            let size = std::str::from_utf8(&self.raw[..at])
                .ok()
                .and_then(|l| usize::from_str_radix(l.split(';').next().unwrap_or(""), 16).ok())
                .unwrap_or(0);
            self.raw.drain(..at + 2);
            self.chunk_left = size;
            if size == 0 {
                return;
            }
        }
    }

    /// The next frame as `(event, id, data)`.
    async fn frame(&mut self) -> Result<(String, Option<String>, String)> {
        loop {
            self.dechunk();
            if let Some(at) = find(&self.body[self.start..], b"\n\n") {
                let block = &self.body[self.start..self.start + at];
                let text = String::from_utf8_lossy(block).into_owned();
                self.start += at + 2;
                if self.start * 2 > self.body.len() {
                    self.body.drain(..self.start);
                    self.start = 0;
                }
                let (mut event, mut id, mut data) = ("message".to_owned(), None, String::new());
                for line in text.split('\n') {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = v.to_owned();
                    }
                }
                return Ok((event, id, data));
            }
            self.fill().await?;
        }
    }

    /// Skips to the end of the next journaled frame without parsing it (the throughput runs
    /// must measure the server, not this client); returns whether it was `done`.
    async fn skip_entry(&mut self) -> Result<bool> {
        loop {
            self.dechunk();
            while let Some(at) = find(&self.body[self.start..], b"\n\n") {
                let block = &self.body[self.start..self.start + at];
                let journaled = block.starts_with(b"id: ");
                let done = journaled && find(block, b"\nevent: done\n").is_some();
                self.start += at + 2;
                if journaled {
                    if self.start * 2 > self.body.len() {
                        self.body.drain(..self.start);
                        self.start = 0;
                    }
                    return Ok(done);
                }
            }
            self.fill().await?;
        }
    }

    /// The next journaled frame (skips `ready` and `ping`).
    async fn entry(&mut self) -> Result<(String, String, String)> {
        loop {
            let (event, id, data) = self.frame().await?;
            if let Some(id) = id {
                return Ok((event, id, data));
            }
        }
    }

    async fn ready(&mut self) -> Result<()> {
        let (event, _, _) = self.frame().await?;
        if event == "ready" {
            Ok(())
        } else {
            Err(format!("expected ready, got {event}"))
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Opens `n` streams on `key` with `query`, at most 256 connecting at a time, each past `ready`.
async fn open_many(addr: SocketAddr, key: &str, query: &str, n: usize) -> Result<Vec<Stream>> {
    let gate = Arc::new(Semaphore::new(256));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let gate = Arc::clone(&gate);
        let (key, query) = (key.to_owned(), query.to_owned());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let mut stream = Stream::open(addr, &key, &query).await?;
            stream.ready().await?;
            Ok::<_, String>(stream)
        }));
    }
    let mut streams = Vec::with_capacity(n);
    for task in tasks {
        streams.push(task.await.map_err(|e| e.to_string())??);
    }
    Ok(streams)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn replay(args: &Args) -> Result<String> {
    let filled = Instant::now();
    let (status, body) = call(
        args.addr,
        "POST",
        &format!("/streams/{}/fill?frames={}&bytes=60", args.key, args.frames),
        "",
    )
    .await?;
    if status != 200 {
        return Err(format!("fill: {status} {body}"));
    }
    let fill_secs = filled.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut stream = Stream::open(args.addr, &args.key, "").await?;
    stream.ready().await?;
    let mut count = 1u64;
    while !stream.skip_entry().await? {
        count += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    if count != args.frames + 1 {
        return Err(format!("replayed {count} of {}", args.frames + 1));
    }
    Ok(format!(
        r#"{{"mode":"replay","frames":{count},"seconds":{secs:.3},"framesPerSec":{:.0},"fillFramesPerSec":{:.0}}}"#,
        count as f64 / secs,
        count as f64 / fill_secs
    ))
}

async fn live(args: &Args) -> Result<String> {
    let streams = open_many(args.addr, &args.key, "from=now", args.connections).await?;
    let started = Instant::now();
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut count = 1u64;
                while !stream.skip_entry().await? {
                    count += 1;
                }
                Ok::<_, String>(count)
            })
        })
        .collect();
    let path = format!("/streams/{}/fill?frames={}&bytes=60", args.key, args.frames);
    let (status, body) = call(args.addr, "POST", &path, "").await?;
    if status != 200 {
        return Err(format!("fill: {status} {body}"));
    }
    let append_secs = started.elapsed().as_secs_f64();
    let mut delivered = 0u64;
    for reader in readers {
        let count = reader.await.map_err(|e| e.to_string())??;
        if count != args.frames + 1 {
            return Err(format!("a connection got {count} of {}", args.frames + 1));
        }
        delivered += count;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(format!(
        r#"{{"mode":"live","connections":{},"frames":{},"seconds":{secs:.3},"appendSeconds":{append_secs:.3},"deliveredFramesPerSec":{:.0}}}"#,
        args.connections,
        args.frames + 1,
        delivered as f64 / secs
    ))
}

async fn hold(args: &Args) -> Result<String> {
    let rss_before = args.server_pid.and_then(rss_kib);
    let opening = Instant::now();
    let streams = open_many(args.addr, &args.key, "from=now", args.connections).await?;
    let open_secs = opening.elapsed().as_secs_f64();
    // Let the server settle (buffers of the opening burst) before reading its memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = args.server_pid.and_then(rss_kib);

    // When each append left (by index), shared with the readers.
    let sent: Arc<Mutex<HashMap<usize, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let appends = args.appends;
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let sent = Arc::clone(&sent);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(appends);
                for expected in 0..appends {
                    let (_, _, data) = stream.entry().await?;
                    let at = Instant::now();
                    let index: usize = data.parse().map_err(|_| format!("bad data {data:?}"))?;
                    if index != expected {
                        return Err(format!("got append {index}, expected {expected}"));
                    }
                    let left = sent.lock().map_err(|e| e.to_string())?.get(&index).copied();
                    let left = left.ok_or("an append arrived before it was sent")?;
                    latencies.push(at.duration_since(left).as_secs_f64() * 1000.0);
                }
                Ok::<_, String>((latencies, stream))
            })
        })
        .collect();
    for index in 0..appends {
        tokio::time::sleep(args.gap).await;
        let body = format!(r#"{{"event":"token","data":"{index}"}}"#);
        sent.lock()
            .map_err(|e| e.to_string())?
            .insert(index, Instant::now());
        let (status, answer) = call(
            args.addr,
            "POST",
            &format!("/streams/{}/append", args.key),
            &body,
        )
        .await?;
        if status != 200 {
            return Err(format!("append: {status} {answer}"));
        }
    }
    let mut all = Vec::with_capacity(args.connections * appends);
    let mut by_append = vec![Vec::with_capacity(args.connections); appends];
    let mut kept = Vec::with_capacity(args.connections);
    for reader in readers {
        let (latencies, stream) = timeout(PATIENCE, reader)
            .await
            .map_err(|_| "a connection never got every append".to_owned())?
            .map_err(|e| e.to_string())??;
        for (i, ms) in latencies.iter().enumerate() {
            by_append[i].push(*ms);
        }
        all.extend(latencies);
        kept.push(stream);
    }
    all.sort_by(f64::total_cmp);
    // The slowest delivery of each append, in order: where a tail comes from.
    let per_append: Vec<String> = by_append
        .iter()
        .map(|l| format!("{:.0}", l.iter().copied().fold(0.0, f64::max)))
        .collect();
    let per_connection = match (rss_before, rss_after) {
        (Some(before), Some(after)) => {
            format!(
                "{:.1}",
                (after.saturating_sub(before)) as f64 * 1024.0 / args.connections as f64
            )
        }
        _ => "null".to_owned(),
    };
    drop(kept);
    Ok(format!(
        r#"{{"mode":"hold","connections":{},"appends":{appends},"samples":{},"openSeconds":{open_secs:.2},"maxMsPerAppend":[{}],"p50Ms":{:.2},"p99Ms":{:.2},"maxMs":{:.2},"rssBeforeKiB":{},"rssAfterKiB":{},"bytesPerConnection":{per_connection}}}"#,
        args.connections,
        all.len(),
        per_append.join(","),
        quantile(&all, 0.5),
        quantile(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN),
        rss_before.map_or("null".to_owned(), |v| v.to_string()),
        rss_after.map_or("null".to_owned(), |v| v.to_string()),
    ))
}

#[tokio::main]
async fn main() {
    let outcome = match parse_args() {
        Ok(args) => match args.mode.as_str() {
            "replay" => replay(&args).await,
            "live" => live(&args).await,
            "hold" => hold(&args).await,
            other => Err(format!("unknown mode {other:?} (replay, live, hold)")),
        },
        Err(err) => Err(err),
    };
    match outcome {
        Ok(line) => println!("{line}"),
        Err(err) => {
            eprintln!("load: {err}");
            std::process::exit(1);
        }
    }
}
