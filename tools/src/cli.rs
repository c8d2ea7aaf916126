//! The command lines of both tools: `--flag value` or `--flag=value`, repeatable flags kept in
//! order, `-h`/`--help` and `-V`/`--version`.

use std::fmt;
use std::time::Duration;

/// Exit status of every tool for bad usage.
pub const EXIT_USAGE: u8 = 2;

/// A flag a tool accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flag {
    /// Its spelling, `--name`.
    pub name: &'static str,
    /// Whether it takes a value.
    pub takes_value: bool,
}

/// What a command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<T> {
    /// Run with this.
    Run(T),
    /// Print the usage text.
    Help,
    /// Print the version.
    Version,
}

/// The flags of a command line, in the order given: `(name, value)`, the value empty for switches.
pub type Flags = Vec<(&'static str, String)>;

/// A command line that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CliError {
    /// An argument that is no flag of this tool.
    UnknownFlag(String),
    /// A flag given without its value.
    MissingValue(&'static str),
    /// A value given to a switch (`--json=1`).
    UnexpectedValue(&'static str),
    /// A flag whose value does not parse.
    BadValue {
        /// The flag.
        flag: &'static str,
        /// The value as given.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// A flag the tool cannot run without.
    Missing(&'static str),
    /// Two flags that exclude each other.
    Conflict(&'static str, &'static str),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::UnknownFlag(arg) => write!(f, "unknown argument {arg:?} (try --help)"),
            CliError::MissingValue(flag) => write!(f, "{flag} needs a value"),
            CliError::UnexpectedValue(flag) => write!(f, "{flag} takes no value"),
            CliError::BadValue {
                flag,
                value,
                expected,
            } => write!(f, "bad value {value:?} for {flag}: expected {expected}"),
            CliError::Missing(flag) => write!(f, "{flag} is required (try --help)"),
            CliError::Conflict(a, b) => write!(f, "{a} and {b} cannot be given together"),
        }
    }
}

impl std::error::Error for CliError {}

/// Parses the arguments after the program name against `flags`, then builds what the tool runs
/// with from them.
pub fn parse_with<T, I, S>(
    args: I,
    flags: &[Flag],
    build: impl FnOnce(Flags) -> Result<T, CliError>,
) -> Result<Command<T>, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    match parse(args, flags)? {
        Command::Run(given) => build(given).map(Command::Run),
        Command::Help => Ok(Command::Help),
        Command::Version => Ok(Command::Version),
    }
}

/// What a tool's `main` does with its command line: `Ok` with what to run with, or `Err` with the
/// exit code once the usage, the version or the error (status 2) is printed.
pub fn settle<T>(
    tool: &str,
    usage: &str,
    parsed: Result<Command<T>, CliError>,
) -> Result<T, std::process::ExitCode> {
    match parsed {
        Ok(Command::Run(run)) => Ok(run),
        Ok(Command::Help) => {
            print!("{usage}");
            Err(std::process::ExitCode::SUCCESS)
        }
        Ok(Command::Version) => {
            println!("{tool} {}", env!("CARGO_PKG_VERSION"));
            Err(std::process::ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("{tool}: {err}");
            Err(std::process::ExitCode::from(EXIT_USAGE))
        }
    }
}

/// Parses the arguments after the program name against `flags`.
fn parse<I, S>(args: I, flags: &[Flag]) -> Result<Command<Flags>, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut out = Vec::new();
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            _ => {}
        }
        let Some(flag) = flags.iter().find(|f| f.name == name) else {
            return Err(CliError::UnknownFlag(arg));
        };
        let value = match (flag.takes_value, inline) {
            (true, Some(value)) => value,
            (true, None) => args.next().ok_or(CliError::MissingValue(flag.name))?,
            (false, None) => String::new(),
            (false, Some(_)) => return Err(CliError::UnexpectedValue(flag.name)),
        };
        out.push((flag.name, value));
    }
    Ok(Command::Run(out))
}

/// Parses a whole number within `range`, or says what `flag` expects.
pub fn number(
    flag: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
    expected: &'static str,
) -> Result<u64, CliError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| CliError::BadValue {
            flag,
            value: value.to_owned(),
            expected,
        })
}

/// Parses milliseconds within `range` as a duration.
pub fn millis(
    flag: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
    expected: &'static str,
) -> Result<Duration, CliError> {
    number(flag, value, range, expected).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        Flag {
            name: "--port",
            takes_value: true,
        },
        Flag {
            name: "--json",
            takes_value: false,
        },
    ];

    #[test]
    fn flags_take_values_either_way() {
        assert_eq!(
            parse(["--port", "0", "--json", "--port=9"], FLAGS),
            Ok(Command::Run(vec![
                ("--port", "0".into()),
                ("--json", String::new()),
                ("--port", "9".into())
            ]))
        );
        assert_eq!(parse(["--json", "-h"], FLAGS), Ok(Command::Help));
        assert_eq!(parse(["-V"], FLAGS), Ok(Command::Version));
    }

    #[test]
    fn bad_command_lines_say_why() {
        assert_eq!(
            parse(["--nope"], FLAGS),
            Err(CliError::UnknownFlag("--nope".into()))
        );
        assert_eq!(
            parse(["--port"], FLAGS),
            Err(CliError::MissingValue("--port"))
        );
        assert_eq!(
            parse(["--json=1"], FLAGS),
            Err(CliError::UnexpectedValue("--json"))
        );
        assert_eq!(
            number("--port", "70000", 0..=65535, "a port")
                .unwrap_err()
                .to_string(),
            "bad value \"70000\" for --port: expected a port"
        );
    }
}
