//! Server configuration and its command line.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::id::IdMode;

/// Default `--port`.
pub const DEFAULT_PORT: u16 = 8787;
/// Default `--ping-ms`.
pub const DEFAULT_PING_MS: u64 = 15_000;
/// Default `--retention`: entries kept per key.
pub const DEFAULT_RETENTION: usize = 1_000_000;

/// Which journal engine the standalone server runs on (`--journal`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalConfig {
    /// In this process (the default): nothing to install, dies with the process.
    #[default]
    Memory,
    /// Redis Streams at this URL (`redis://host:port/db`): several processes serve one stream.
    Redis(String),
}

/// Everything the standalone server needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address to bind (`--host`).
    pub host: String,
    /// Port to bind; 0 picks a free one (`--port`).
    pub port: u16,
    /// Folder served at `/` (`--static`).
    pub static_dir: Option<PathBuf>,
    /// Interval between `ping` frames on an idle-or-not SSE connection (`--ping-ms`).
    pub ping: Duration,
    /// Entries kept per key; older ones are dropped (`--retention`).
    pub retention: usize,
    /// Id mode of newly created keys (`--ids`); by default `numeric` in memory and `redis`
    /// (Redis's own `<ms>-<seq>`) on Redis.
    pub ids: Option<IdMode>,
    /// The journal engine (`--journal`).
    pub journal: JournalConfig,
    /// Exit on its own after this long (`--lifetime-secs`).
    pub lifetime: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".to_owned(),
            port: DEFAULT_PORT,
            static_dir: None,
            ping: Duration::from_millis(DEFAULT_PING_MS),
            retention: DEFAULT_RETENTION,
            ids: None,
            journal: JournalConfig::Memory,
            lifetime: None,
        }
    }
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the server.
    Run(Config),
    /// Print the usage text.
    Help,
    /// Print the version.
    Version,
}

/// A command line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// A flag this program does not know.
    UnknownFlag(String),
    /// A flag given without its value.
    MissingValue(&'static str),
    /// A flag whose value does not parse.
    BadValue {
        /// The flag.
        flag: &'static str,
        /// The value as given.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// `--static` names something that is not a folder.
    NotADirectory(PathBuf),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::UnknownFlag(flag) => write!(f, "unknown argument {flag:?} (try --help)"),
            CliError::MissingValue(flag) => write!(f, "{flag} needs a value"),
            CliError::BadValue {
                flag,
                value,
                expected,
            } => write!(f, "bad value {value:?} for {flag}: expected {expected}"),
            CliError::NotADirectory(path) => {
                write!(f, "--static {}: not a directory", path.display())
            }
        }
    }
}

impl std::error::Error for CliError {}

/// The `--help` text.
pub const USAGE: &str = "\
sse-relay-server: reference journal server for sse-relay (SSE protocol v1)

USAGE:
    sse-relay-server [FLAGS]

FLAGS:
    --host ADDR            address to bind (default 127.0.0.1)
    --port PORT            port to bind, 0 picks a free one (default 8787)
    --static DIR           serve DIR at / from the same origin
    --ping-ms MS           interval of `ping` frames (default 15000)
    --retention N          entries kept per stream key, oldest dropped (default 1000000)
    --journal memory|redis://HOST:PORT/DB
                           where the journals live (default memory: in this process)
    --ids numeric|redis    id mode of new stream keys (default numeric in memory,
                           redis with a Redis journal)
    --lifetime-secs N      exit on its own after N seconds
    -V, --version          print the version
    -h, --help             print this text

The first line on stdout is `listening on http://<addr>:<port>`.
";

fn parse_num<T: std::str::FromStr>(
    flag: &'static str,
    value: &str,
    expected: &'static str,
    valid: impl Fn(&T) -> bool,
) -> Result<T, CliError> {
    value
        .parse::<T>()
        .ok()
        .filter(|v| valid(v))
        .ok_or_else(|| CliError::BadValue {
            flag,
            value: value.to_owned(),
            expected,
        })
}

impl Command {
    /// Parses the arguments after the program name. Flags take their value as the next
    /// argument or after `=` (`--port 0`, `--port=0`).
    pub fn parse<I, S>(args: I) -> Result<Command, CliError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut config = Config::default();
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => {
                    (name.to_owned(), Some(value.to_owned()))
                }
                _ => (arg.clone(), None),
            };
            let flag: &'static str = match name.as_str() {
                "-h" | "--help" => return Ok(Command::Help),
                "-V" | "--version" => return Ok(Command::Version),
                "--journal" => "--journal",
                "--host" => "--host",
                "--port" => "--port",
                "--static" => "--static",
                "--ping-ms" => "--ping-ms",
                "--retention" => "--retention",
                "--ids" => "--ids",
                "--lifetime-secs" => "--lifetime-secs",
                _ => return Err(CliError::UnknownFlag(arg)),
            };
            let value = match inline {
                Some(value) => value,
                None => args.next().ok_or(CliError::MissingValue(flag))?,
            };
            match flag {
                "--host" if !value.is_empty() => config.host = value,
                "--host" => {
                    return Err(CliError::BadValue {
                        flag,
                        value,
                        expected: "an address",
                    })
                }
                "--port" => config.port = parse_num(flag, &value, "a port 0-65535", |_| true)?,
                "--static" => {
                    let dir = PathBuf::from(&value);
                    if !dir.is_dir() {
                        return Err(CliError::NotADirectory(dir));
                    }
                    config.static_dir = Some(dir);
                }
                "--ping-ms" => {
                    let ms: u64 = parse_num(flag, &value, "milliseconds >= 1", |v| *v >= 1)?;
                    config.ping = Duration::from_millis(ms);
                }
                "--retention" => {
                    config.retention =
                        parse_num(flag, &value, "an entry count >= 1", |v: &usize| *v >= 1)?;
                }
                "--ids" => {
                    config.ids = Some(value.parse().map_err(|_| CliError::BadValue {
                        flag,
                        value: value.clone(),
                        expected: "numeric or redis",
                    })?);
                }
                "--journal" if value == "memory" => config.journal = JournalConfig::Memory,
                "--journal" if value.starts_with("redis://") => {
                    config.journal = JournalConfig::Redis(value)
                }
                "--journal" => {
                    return Err(CliError::BadValue {
                        flag,
                        value,
                        expected: "memory or a URL redis://host:port/db",
                    })
                }
                _ => {
                    let secs: u64 = parse_num(flag, &value, "seconds >= 1", |v| *v >= 1)?;
                    config.lifetime = Some(Duration::from_secs(secs));
                }
            }
        }
        Ok(Command::Run(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, CliError> {
        match Command::parse(args.iter().copied())? {
            Command::Run(config) => Ok(config),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(run(&[]).unwrap(), Config::default());
    }

    #[test]
    fn every_flag_in_both_spellings() {
        let config = run(&[
            "--host",
            "0.0.0.0",
            "--port=0",
            "--ping-ms",
            "250",
            "--retention=5",
            "--ids",
            "redis",
            "--journal=redis://127.0.0.1:6390/2",
            "--lifetime-secs=3",
            "--static",
            ".",
        ])
        .unwrap();
        assert_eq!(config.host, "0.0.0.0");
        assert_eq!(config.port, 0);
        assert_eq!(config.ping, Duration::from_millis(250));
        assert_eq!(config.retention, 5);
        assert_eq!(config.ids, Some(IdMode::Redis));
        assert_eq!(
            config.journal,
            JournalConfig::Redis("redis://127.0.0.1:6390/2".into())
        );
        assert_eq!(config.lifetime, Some(Duration::from_secs(3)));
        assert_eq!(config.static_dir, Some(PathBuf::from(".")));
    }

    #[test]
    fn errors() {
        assert_eq!(
            run(&["--nope"]),
            Err(CliError::UnknownFlag("--nope".into()))
        );
        assert_eq!(run(&["--port"]), Err(CliError::MissingValue("--port")));
        assert!(matches!(
            run(&["--port", "70000"]),
            Err(CliError::BadValue { flag: "--port", .. })
        ));
        assert!(run(&["--ping-ms", "0"]).is_err());
        assert!(run(&["--retention", "0"]).is_err());
        assert!(run(&["--ids", "uuid"]).is_err());
        assert!(run(&["--journal", "postgres://x"]).is_err());
        assert_eq!(Command::parse(["--version"]), Ok(Command::Version));
        assert!(run(&["--static", "/definitely/not/here"]).is_err());
        assert_eq!(Command::parse(["--help"]), Ok(Command::Help));
    }
}
