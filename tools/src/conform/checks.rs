//! The checks: their names, the rule each one holds a server to, the failure each one catches,
//! and their outcomes.

/// One check of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    /// Every events response is `200 text/event-stream`.
    ContentType,
    /// `ready` first, without an id, with `tail` and `epoch`.
    ReadyFirst,
    /// Journaled frames carry their own id and a `data:` line.
    JournaledFrames,
    /// Ids increase in the declared order.
    IdOrder,
    /// An entry appended the moment `ready` arrives is delivered (incident 000).
    JoinBeforeReady,
    /// Entries appended during idle periods all arrive (incident 002).
    NoTailReResolution,
    /// A connection after `done` gets the whole transcript (incident 001).
    LateAttach,
    /// A frame sent twice carries the same id (incident 003).
    Seam,
    /// Resume by the cursor query parameter.
    ResumeQuery,
    /// Resume by `Last-Event-ID`.
    ResumeHeader,
    /// `Last-Event-ID` wins over the query parameter.
    HeaderWins,
    /// A cursor of another epoch replays the new epoch from its start.
    EpochMismatch,
    /// `from=now`: no replay, `ready.tail` the head.
    FromNow,
    /// The response ends after `done`.
    DoneEndsResponse,
    /// Heartbeats are named `ping` events.
    Pings,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Check; 15] = [
        Check::ContentType,
        Check::ReadyFirst,
        Check::JournaledFrames,
        Check::IdOrder,
        Check::JoinBeforeReady,
        Check::NoTailReResolution,
        Check::LateAttach,
        Check::Seam,
        Check::ResumeQuery,
        Check::ResumeHeader,
        Check::HeaderWins,
        Check::EpochMismatch,
        Check::FromNow,
        Check::DoneEndsResponse,
        Check::Pings,
    ];

    /// Its name in the report and in `--only`/`--skip`.
    pub fn name(self) -> &'static str {
        match self {
            Check::ContentType => "content-type",
            Check::ReadyFirst => "ready-first",
            Check::JournaledFrames => "journaled-frames",
            Check::IdOrder => "id-order",
            Check::JoinBeforeReady => "join-before-ready",
            Check::NoTailReResolution => "no-tail-re-resolution",
            Check::LateAttach => "late-attach",
            Check::Seam => "seam",
            Check::ResumeQuery => "resume-query",
            Check::ResumeHeader => "resume-header",
            Check::HeaderWins => "header-wins",
            Check::EpochMismatch => "epoch-mismatch",
            Check::FromNow => "from-now",
            Check::DoneEndsResponse => "done-ends-response",
            Check::Pings => "pings",
        }
    }

    /// The check named `name`.
    pub fn from_name(name: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.name() == name)
    }

    /// What the server must do, and how the check tries it.
    pub fn rule(self) -> &'static str {
        match self {
            Check::ContentType => "every events response the checker opens is 200 with Content-Type text/event-stream",
            Check::ReadyFirst => "on every connection the first event is `ready`, with no id, and its data is JSON with an `epoch` string and a `tail` id or null",
            Check::JournaledFrames => "every journaled frame (not ready, not ping) on every connection carries its own non-empty `id:` and a `data:` line",
            Check::IdOrder => "on every connection, ids increase in the declared order (--ids), and on a from=now connection they start above the `ready` tail",
            Check::JoinBeforeReady => "on --keys fresh keys with from=now, plus 2 more each after an idle period, an entry appended the moment `ready` arrives is delivered on that connection",
            Check::NoTailReResolution => "on one long-lived from=now connection, entries appended at random moments during idle periods (2 in each of --idle-rounds) all arrive",
            Check::LateAttach => "a connection opened after `done` gets the whole transcript in order, then `done`",
            Check::Seam => "connections that attach (from the start, or with a cursor) while entries are being appended get every entry after their cursor, and any entry sent twice, on any connection, carries the same id every time",
            Check::ResumeQuery => "a connection with the cursor query parameter (and its epoch) gets exactly the entries after the cursor",
            Check::ResumeHeader => "a connection with a Last-Event-ID header gets exactly the entries after it",
            Check::HeaderWins => "with both, the Last-Event-ID header wins over the query parameter",
            Check::EpochMismatch => "after a reset, a cursor sent with the old epoch gets `ready` with a new epoch and the new epoch whole, from its start (needs --reset or --reset-cmd)",
            Check::FromNow => "from=now replays nothing: `ready.tail` is null on a fresh key and the last entry's id after an append, and only entries after it arrive",
            Check::DoneEndsResponse => "the server ends the response right after sending `done`, live and on a late attach",
            Check::Pings => "an idle stream gets a heartbeat within --ping-within-ms as a named `ping` event with a `data:` line and no id",
        }
    }

    /// The failure it catches.
    pub fn catches(self) -> &'static str {
        match self {
            Check::ContentType => "a stream EventSource refuses (wrong type) or errors a resume with a 4xx",
            Check::ReadyFirst => "no join confirmation, entries before it, or a ready that moves the browser's Last-Event-ID",
            Check::JournaledFrames => "frames a client cannot dedup or resume from, and frames EventSource silently drops",
            Check::IdOrder => "ids a cursor cannot resume from: out of order, not in the declared shape, or live entries at or below the tail a from=now client starts from",
            Check::JoinBeforeReady => "incident 000: `ready` (or the 200) sent before the live subscription is joined, so the first entries are lost; a lazy join after idle",
            Check::NoTailReResolution => "incident 002: the cursor re-read from the tail (XREAD $) after each empty poll, losing what was appended in between",
            Check::LateAttach => "incident 001: a late attach that gets `done` alone, or nothing",
            Check::Seam => "incident 003: seam frames re-sent without their id or under another id (so no client can dedup them), entries lost between replay and live",
            Check::ResumeQuery => "a reconnect that replays everything, skips a gap, or repeats the cursor entry",
            Check::ResumeHeader => "the browser's own reconnects ignored",
            Check::HeaderWins => "a stale cursor baked into the URL preferred over the browser's fresher header",
            Check::EpochMismatch => "an old cursor applied to a restarted journal, skipping the new epoch's first entries",
            Check::FromNow => "a no-replay start that replays, or a tail that is not the head at join",
            Check::DoneEndsResponse => "streams left open after done (clients hold connections)",
            Check::Pings => "`:` comment heartbeats (invisible to EventSource), ping frames without data, or none at all",
        }
    }
}

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The server did what the rule says.
    Pass,
    /// It did not; the evidence says where.
    Fail,
    /// The check could not run (it says why).
    Skip,
}

impl Status {
    /// `pass`, `fail` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The check.
    pub check: Check,
    /// How it came out.
    pub status: Status,
    /// One line: what was tried and seen.
    pub summary: String,
    /// Where it failed, one item per place (at most [`MAX_EVIDENCE`]).
    pub evidence: Vec<String>,
    /// How long it ran, in ms.
    pub ms: u64,
}

/// Most evidence lines kept per check (the count of the others is added).
pub const MAX_EVIDENCE: usize = 6;

/// Findings of one check while it runs: it fails when it found anything.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    evidence: Vec<String>,
    more: usize,
}

impl Findings {
    /// Records one place where the server broke the rule.
    pub fn found(&mut self, evidence: impl Into<String>) {
        if self.evidence.len() < MAX_EVIDENCE {
            self.evidence.push(evidence.into());
        } else {
            self.more += 1;
        }
    }

    /// How many places were found.
    pub fn count(&self) -> usize {
        self.evidence.len() + self.more
    }

    /// Pass with `pass`, or fail with `fail` and the evidence.
    pub fn outcome(self, check: Check, pass: String, fail: String) -> Outcome {
        let failed = self.count() > 0;
        let mut evidence = self.evidence;
        if self.more > 0 {
            evidence.push(format!("… and {} more", self.more));
        }
        Outcome {
            check,
            status: if failed { Status::Fail } else { Status::Pass },
            summary: if failed { fail } else { pass },
            evidence,
            ms: 0,
        }
    }
}

/// A check that did not run, and why.
pub fn skipped(check: Check, why: impl Into<String>) -> Outcome {
    Outcome {
        check,
        status: Status::Skip,
        summary: why.into(),
        evidence: Vec::new(),
        ms: 0,
    }
}
