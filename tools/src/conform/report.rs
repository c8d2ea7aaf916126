//! The report: one line per check (with its evidence when it fails), as text or JSON, and the exit
//! status it implies.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::checks::{Outcome, Status};
use super::config::{Action, Config};

/// Exit status: every check that ran passed.
pub const EXIT_PASSED: u8 = 0;
/// Exit status: at least one check failed (or, with `--strict`, was skipped).
pub const EXIT_FAILED: u8 = 1;
/// Exit status: the server could not be checked.
pub const EXIT_UNUSABLE: u8 = 3;

/// What a run found.
#[derive(Clone, Debug)]
pub struct Report {
    /// The run's settings.
    pub config: Config,
    /// One per check that was selected, in report order.
    pub outcomes: Vec<Outcome>,
    /// How long the run took.
    pub seconds: f64,
    /// How many connections it opened.
    pub connections: usize,
}

impl Report {
    fn count(&self, status: Status) -> usize {
        self.outcomes.iter().filter(|o| o.status == status).count()
    }

    /// The exit status the report implies.
    pub fn exit_status(&self) -> u8 {
        let skipped = self.count(Status::Skip);
        if self.count(Status::Fail) > 0 || (self.config.strict && skipped > 0) {
            EXIT_FAILED
        } else {
            EXIT_PASSED
        }
    }

    /// The report as text: a header, one line per check (evidence indented under it), a verdict.
    pub fn text(&self) -> String {
        let c = &self.config;
        let mut out = String::new();
        let _ = writeln!(out, "sse-relay-conform {}", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(out, "events  {}", c.events);
        let _ = writeln!(out, "append  {}", action_text(&c.append));
        if let Some(reset) = &c.reset {
            let _ = writeln!(out, "reset   {}", action_text(reset));
        }
        let _ = writeln!(
            out,
            "ids {}, keys {}-*, seed {}\n",
            c.ids.as_str(),
            c.key_prefix,
            c.seed
        );
        for o in &self.outcomes {
            let mark = match o.status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            let _ = writeln!(out, "{mark}  {:<22} {}", o.check.name(), o.summary);
            for evidence in &o.evidence {
                let _ = writeln!(out, "      - {evidence}");
            }
        }
        let passed = self.count(Status::Pass);
        let failed = self.count(Status::Fail);
        let skipped = self.count(Status::Skip);
        let total = self.outcomes.len();
        let tail = format!("{} connections, {:.1} s", self.connections, self.seconds);
        let _ = writeln!(out);
        if self.exit_status() == EXIT_PASSED {
            let skips = if skipped > 0 {
                format!(", {skipped} skipped")
            } else {
                String::new()
            };
            let _ = writeln!(out, "ok: {passed} of {total} checks passed{skips} ({tail})");
        } else {
            let _ = writeln!(
                out,
                "FAIL: {failed} of {total} checks failed ({passed} passed, {skipped} skipped{}; {tail})",
                if c.strict && skipped > 0 { ", a skip fails with --strict" } else { "" }
            );
        }
        out
    }

    /// The report as one JSON object.
    pub fn json(&self) -> Value {
        let c = &self.config;
        json!({
            "tool": "sse-relay-conform",
            "version": env!("CARGO_PKG_VERSION"),
            "events": c.events,
            "append": action_text(&c.append),
            "reset": c.reset.as_ref().map(action_text),
            "ids": c.ids.as_str(),
            "seed": c.seed,
            "keyPrefix": c.key_prefix,
            "passed": self.count(Status::Pass),
            "failed": self.count(Status::Fail),
            "skipped": self.count(Status::Skip),
            "exitStatus": self.exit_status(),
            "connections": self.connections,
            "seconds": (self.seconds * 10.0).round() / 10.0,
            "checks": self.outcomes.iter().map(|o| json!({
                "name": o.check.name(),
                "status": o.status.as_str(),
                "summary": o.summary,
                "evidence": o.evidence,
                "ms": o.ms,
                "rule": o.check.rule(),
                "catches": o.check.catches(),
            })).collect::<Vec<_>>(),
        })
    }
}

fn action_text(action: &Action) -> String {
    match action {
        Action::Post(url) => format!("POST {url}"),
        Action::Command(command) => format!("sh -c {command:?}"),
    }
}

/// The JSON printed when the server could not be checked (`--json`).
pub fn unusable_json(why: &str) -> Value {
    json!({
        "tool": "sse-relay-conform",
        "version": env!("CARGO_PKG_VERSION"),
        "error": why,
        "exitStatus": EXIT_UNUSABLE,
    })
}
