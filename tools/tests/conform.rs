//! `sse-relay-conform` against real servers: it passes the reference server (numeric and redis
//! ids) and a small conforming server, and fails, naming the right check, against the reference
//! server's `readyEarly` bug and against small servers with one deliberate bug each. Bad targets
//! and bad usage get their own exit statuses.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::mini::{Bug, Mini};
use support::{run_tool, Listening};

/// Fast pace for tests: short idle periods, few keys, short waits (the servers ping every 200 ms).
const PACE: &[&str] = &[
    "--keys",
    "8",
    "--idle-ms",
    "300",
    "--idle-rounds",
    "6",
    "--timeout-ms",
    "1500",
    "--ping-within-ms",
    "2000",
];

/// Runs the checker with `--json`; returns its exit status and report.
fn conform(args: &[&str]) -> (i32, Value) {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(PACE.iter().map(|a| a.to_string()));
    all.push("--json".into());
    let output = run_tool("sse-relay-conform", &all, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
        panic!(
            "not a JSON report ({err}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), report)
}

/// Checks by status: `(passed, failed, skipped)` names.
fn by_status(report: &Value) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for check in report["checks"].as_array().expect("checks") {
        let name = check["name"].as_str().unwrap().to_owned();
        match check["status"].as_str().unwrap() {
            "pass" => out.0.push(name),
            "fail" => out.1.push(name),
            _ => out.2.push(name),
        }
    }
    out
}

fn evidence(report: &Value, name: &str) -> String {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["evidence"].to_string())
        .unwrap_or_default()
}

fn reference_args(base: &str, events_query: &str) -> Vec<String> {
    vec![
        "--events".into(),
        format!("{base}/streams/{{key}}/events{events_query}"),
        "--append".into(),
        format!("{base}/streams/{{key}}/append"),
        "--reset".into(),
        format!("{base}/streams/{{key}}/reset"),
    ]
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn passes_against_the_reference_server_with_numeric_and_redis_ids() {
    for ids in ["numeric", "redis"] {
        let server = Listening::reference(&["--ids", ids]);
        let mut args = reference_args(&server.url, "");
        args.extend(["--ids".into(), ids.into()]);
        let (status, report) = conform(&as_strs(&args));
        let (passed, failed, skipped) = by_status(&report);
        assert_eq!(
            (status, failed.len(), skipped.len()),
            (0, 0, 0),
            "ids {ids}: {report:#}"
        );
        assert_eq!(passed.len(), 15, "every check ran: {passed:?}");
        let id_order = report["checks"][3]["summary"].as_str().unwrap();
        assert!(id_order.contains(ids), "{id_order}");
        // The ids really were of that shape.
        if ids == "redis" {
            let (_, report) = conform(&as_strs(
                &[
                    reference_args(&server.url, ""),
                    vec![
                        "--ids".into(),
                        "numeric".into(),
                        "--only".into(),
                        "id-order".into(),
                    ],
                ]
                .concat(),
            ));
            assert_eq!(
                by_status(&report).1,
                ["id-order"],
                "redis ids are not numeric"
            );
        }
    }
}

#[test]
fn without_a_reset_the_epoch_check_is_skipped_and_strict_fails_it() {
    let server = Listening::reference(&[]);
    let base = &server.url;
    let events = format!("{base}/streams/{{key}}/events");
    let append = format!("{base}/streams/{{key}}/append");
    let only = "--only=epoch-mismatch,late-attach";
    let (status, report) = conform(&["--events", &events, "--append", &append, only]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(by_status(&report).2, ["epoch-mismatch"]);
    let (status, _) = conform(&["--events", &events, "--append", &append, only, "--strict"]);
    assert_eq!(status, 1);
}

#[test]
fn a_ready_sent_before_the_join_fails_join_before_ready() {
    let server = Listening::reference(&[]);
    let args = reference_args(&server.url, "?readyEarly=1&joinDelayMs=400");
    let (status, report) = conform(&as_strs(&args));
    let (passed, failed, _) = by_status(&report);
    assert_eq!(status, 1);
    assert!(
        failed.contains(&"join-before-ready".to_owned()),
        "{report:#}"
    );
    // The checks about the shape of the stream still pass: the failure is named, not general.
    for name in [
        "content-type",
        "ready-first",
        "journaled-frames",
        "id-order",
    ] {
        assert!(passed.contains(&name.to_owned()), "{name}: {report:#}");
    }
    assert!(evidence(&report, "join-before-ready").contains("never delivered"));
}

#[test]
fn a_slow_but_honest_join_passes() {
    // joinDelayMs alone: ready comes after the (late) join, as it must.
    let server = Listening::reference(&[]);
    let args = reference_args(&server.url, "?joinDelayMs=150");
    let (status, report) = conform(&as_strs(
        &[
            args,
            vec!["--only".into(), "join-before-ready,from-now".into()],
        ]
        .concat(),
    ));
    assert_eq!(status, 0, "{report:#}");
}

fn mini_args(mini: &Mini) -> Vec<String> {
    vec![
        "--events".into(),
        format!("{}/s/{{key}}/events", mini.url),
        "--append".into(),
        format!("{}/s/{{key}}/append", mini.url),
        "--reset".into(),
        format!("{}/s/{{key}}/reset", mini.url),
    ]
}

#[test]
fn the_small_server_without_its_bug_passes() {
    let mini = Mini::start(Bug::None);
    let (status, report) = conform(&as_strs(&mini_args(&mini)));
    assert_eq!((status, by_status(&report).1.len()), (0, 0), "{report:#}");
}

/// Runs every check against the small server with `bug`; returns the failed checks.
fn failures_with(bug: Bug) -> (Vec<String>, Value) {
    let mini = Mini::start(bug);
    let (status, report) = conform(&as_strs(&mini_args(&mini)));
    assert_eq!(status, 1, "{bug:?} must fail a check: {report:#}");
    let failed = by_status(&report).1;
    (failed, report)
}

#[test]
fn a_tail_re_read_after_idle_polls_fails_no_tail_re_resolution() {
    let (failed, report) = failures_with(Bug::ReResolveTail);
    assert!(
        failed.contains(&"no-tail-re-resolution".to_owned()),
        "{report:#}"
    );
    // It also loses live entries of the seam check's burst (between two polls); the checks that
    // involve no live tail still pass.
    for name in [
        "content-type",
        "ready-first",
        "journaled-frames",
        "late-attach",
        "resume-query",
        "resume-header",
    ] {
        assert!(!failed.contains(&name.to_owned()), "{name}: {report:#}");
    }
}

#[test]
fn a_late_attach_answered_with_done_alone_fails_late_attach() {
    let (failed, report) = failures_with(Bug::LateAttachDoneOnly);
    assert_eq!(failed, ["late-attach"], "{report:#}");
    assert!(
        evidence(&report, "late-attach").contains("done id="),
        "{report:#}"
    );
}

#[test]
fn seam_frames_resent_without_ids_fail_seam() {
    let (failed, report) = failures_with(Bug::SeamWithoutIds);
    assert!(failed.contains(&"seam".to_owned()), "{report:#}");
    assert!(
        failed.contains(&"journaled-frames".to_owned()),
        "{report:#}"
    );
    assert!(
        evidence(&report, "seam").contains("without id"),
        "{report:#}"
    );
}

#[test]
fn seam_frames_resent_under_other_ids_fail_seam() {
    let (failed, report) = failures_with(Bug::SeamOtherIds);
    assert!(failed.contains(&"seam".to_owned()), "{report:#}");
    assert!(evidence(&report, "seam").contains("id 10"), "{report:#}");
}

/// Runs the checker in text mode; returns status, stdout, stderr.
fn conform_text(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = run_tool("sse-relay-conform", &args, Duration::from_secs(60));
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn targets_that_cannot_be_checked_exit_3_with_the_reason() {
    // Nothing listens on this port: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}/streams/{{key}}/events");
    let (status, _, stderr) = conform_text(&["--events", &dead, "--append-cmd", "true"]);
    assert_eq!(status, 3, "{stderr}");
    assert!(
        stderr.contains("unreachable") && stderr.contains("refused"),
        "{stderr}"
    );

    let server = Listening::reference(&[]);
    let base = &server.url;
    // JSON, not an event stream.
    let stats = format!("{base}/streams/{{key}}/stats");
    let append = format!("{base}/streams/{{key}}/append");
    let (status, _, stderr) = conform_text(&["--events", &stats, "--append", &append]);
    assert_eq!(status, 3, "{stderr}");
    assert!(
        stderr.contains("not an event stream")
            && stderr.contains("application/json")
            && stderr.contains("\\\"epoch\\\""),
        "{stderr}"
    );

    // An append URL that fails, and an append command that fails.
    let events = format!("{base}/streams/{{key}}/events");
    let wrong = format!("{base}/streams/{{key}}/nothing-here");
    let (status, _, stderr) = conform_text(&["--events", &events, "--append", &wrong]);
    assert_eq!(status, 3, "{stderr}");
    assert!(
        stderr.contains("append failed") && stderr.contains("404"),
        "{stderr}"
    );
    let (status, stdout, stderr) = conform_text(&[
        "--events",
        &events,
        "--append-cmd",
        "echo nope >&2; exit 4",
        "--json",
    ]);
    assert_eq!(status, 3, "{stderr}");
    assert!(
        stderr.contains("exit status: 4") && stderr.contains("nope"),
        "{stderr}"
    );
    let json: Value = serde_json::from_str(stdout.trim()).expect("JSON on stdout with --json");
    assert_eq!(json["exitStatus"], 3);
}

#[test]
fn an_append_command_works_like_the_append_url() {
    let server = Listening::reference(&[]);
    let base = &server.url;
    let events = format!("{base}/streams/{{key}}/events");
    // What a team with a Redis journal would write as `redis-cli XADD ...`; here, curl.
    let shell = format!(
        "curl -sf -X POST -H 'Content-Type: application/json' \
         --data \"{{\\\"event\\\":\\\"$SSE_EVENT\\\",\\\"data\\\":\\\"$SSE_DATA\\\"}}\" \
         {base}/streams/$SSE_KEY/append > /dev/null"
    );
    let (status, stdout, stderr) = conform_text(&[
        "--events",
        &events,
        "--append-cmd",
        &shell,
        "--only",
        "late-attach,resume-query",
    ]);
    assert_eq!(status, 0, "{stdout}\n{stderr}");
}

#[test]
fn bad_usage_exits_2_and_help_and_version_exit_0() {
    let (status, _, stderr) = conform_text(&["--events", "http://127.0.0.1:1/x"]);
    assert_eq!(status, 2);
    assert!(stderr.contains("{key} placeholder"), "{stderr}");
    let (status, _, stderr) = conform_text(&["--events", "http://127.0.0.1:1/{key}"]);
    assert_eq!(status, 2);
    assert!(
        stderr.contains("--append or --append-cmd is required"),
        "{stderr}"
    );
    let (status, stdout, _) = conform_text(&["--help"]);
    assert_eq!(status, 0);
    assert!(stdout.contains("EXIT STATUS"));
    let (status, stdout, _) = conform_text(&["--version"]);
    assert_eq!(status, 0);
    assert_eq!(
        stdout.trim(),
        format!("sse-relay-conform {}", env!("CARGO_PKG_VERSION"))
    );
}
