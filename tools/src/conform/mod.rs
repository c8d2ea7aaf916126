//! `sse-relay-conform`: checks any HTTP server against SSE protocol v1 and reports, one line per
//! check, with the evidence where one fails.
//!
//! A run opens a preflight connection (exit status 3 if the server cannot be checked at all),
//! starts watching an idle stream for pings, runs the checks that stage something on fresh keys
//! (`scenarios`), then the checks over every connection it opened (`properties`).

pub mod checks;
pub mod config;
pub mod conn;
pub mod properties;
pub mod report;
pub mod scenarios;
pub mod target;

use tokio::time::Instant;

use checks::{Check, Findings, Outcome};
use config::Config;
use report::Report;
use target::{Target, Unusable};

/// Runs the selected checks against the server of `config`.
pub async fn run(config: Config) -> Result<Report, Unusable> {
    let started = Instant::now();
    let selected = config.checks.clone();
    let wants = |check: Check| selected.contains(&check);
    let mut t = Target::new(config);
    scenarios::preflight(&mut t).await?;
    let pings = if wants(Check::Pings) {
        Some(scenarios::start_pings(&t).await?)
    } else {
        None
    };
    let mut outcomes: Vec<Outcome> = Vec::new();
    for check in Check::ALL.into_iter().filter(|c| wants(*c)) {
        let begun = Instant::now();
        let outcome = match check {
            Check::JoinBeforeReady => scenarios::join_before_ready(&mut t).await?,
            Check::NoTailReResolution => scenarios::no_tail_re_resolution(&mut t).await?,
            Check::LateAttach => scenarios::late_attach(&mut t).await?,
            Check::Seam => scenarios::seam(&mut t).await?,
            Check::ResumeQuery | Check::ResumeHeader | Check::HeaderWins => {
                scenarios::resume(&mut t, check).await?
            }
            Check::EpochMismatch => scenarios::epoch_mismatch(&mut t).await?,
            Check::FromNow => scenarios::from_now(&mut t).await?,
            Check::DoneEndsResponse => scenarios::done_ends_response(&mut t).await?,
            // Judged below, over every connection (or once the ping watch is over).
            _ => continue,
        };
        outcomes.push(Outcome {
            ms: begun.elapsed().as_millis() as u64,
            ..outcome
        });
    }
    if let Some(watch) = pings {
        let begun = Instant::now();
        let outcome = scenarios::finish_pings(&mut t, watch).await?;
        outcomes.push(Outcome {
            ms: begun.elapsed().as_millis() as u64,
            ..outcome
        });
    }
    let conns = &t.conns;
    for check in Check::ALL.into_iter().filter(|c| wants(*c)) {
        match check {
            Check::ContentType => outcomes.push(properties::content_type(conns)),
            Check::ReadyFirst => outcomes.push(properties::ready_first(conns)),
            Check::JournaledFrames => outcomes.push(properties::journaled_frames(conns)),
            Check::IdOrder => outcomes.push(properties::id_order(conns, t.config.ids)),
            _ => {}
        }
    }
    // The seam rule holds on every connection, not only those the seam check staged.
    if let Some(seam) = outcomes.iter_mut().find(|o| o.check == Check::Seam) {
        let mut findings = Findings::default();
        properties::repeats_keep_their_id(conns, &mut findings);
        if findings.count() > 0 {
            let extra = findings.outcome(Check::Seam, String::new(), String::new());
            if seam.status == checks::Status::Pass {
                seam.status = checks::Status::Fail;
                seam.summary =
                    "an entry was sent twice on one connection under another id (or none)".into();
            }
            seam.evidence.extend(extra.evidence);
        }
    }
    outcomes.sort_by_key(|o| Check::ALL.iter().position(|c| *c == o.check));
    Ok(Report {
        outcomes,
        seconds: started.elapsed().as_secs_f64(),
        connections: t.conns.len(),
        config: t.config,
    })
}
