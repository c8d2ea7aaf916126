//! Scenario tests of the core session against the simulated journal server.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::time::Duration;

use sse_relay::core::{
    BackoffPolicy, Command, ConfigError, Cursor, CursorOrder, Error, Event, Interruption,
    MalformedKind, RawEvent, Session, SessionConfig, StartFrom, State, Timestamp,
};
use support::{quick_config, IdStyle, Sim};

fn numeric() -> IdStyle {
    IdStyle::Numeric { step: 1 }
}

#[test]
fn open_is_not_ready_until_the_ready_frame() {
    let mut s = Session::new(quick_config(), Timestamp::from_millis(0)).unwrap();
    let Some(Command::Open(open)) = s.poll_command() else {
        panic!("no open")
    };
    assert!(
        open.query.is_empty(),
        "from=start without cursor asks for nothing"
    );
    s.handle_connected(open.connection, Timestamp::from_millis(5));
    assert_eq!(s.state(), State::Connecting);
    // A journaled frame before ready is not delivered: its epoch is unknown.
    s.handle_frame(
        open.connection,
        RawEvent {
            event: "token",
            id: Some("1"),
            data: "x",
        },
        Timestamp::from_millis(6),
    );
    let Some(Event::Malformed(m)) = s.poll_event() else {
        panic!("expected malformed")
    };
    assert_eq!(m.kind, MalformedKind::BeforeReady);
    assert_eq!(m.data, "x", "the malformed input is reported whole");
    assert_eq!(s.state(), State::Connecting);
    s.handle_frame(
        open.connection,
        RawEvent {
            event: "ready",
            id: None,
            data: r#"{"tail":null,"epoch":"e1"}"#,
        },
        Timestamp::from_millis(7),
    );
    assert!(matches!(s.poll_event(), Some(Event::Ready(_))));
    assert_eq!(s.poll_event(), Some(Event::StateChanged(State::Live)));
    assert_eq!(s.stats().malformed, 1);
}

#[test]
fn ready_timeout_fails_closed() {
    let mut sim = Sim::silent(quick_config(), numeric());
    sim.drop_connection(); // a 500, then connections that hang
    for _ in 0..20 {
        if !sim.fire_next_timer() {
            break;
        }
    }
    assert_eq!(sim.session.state(), State::Closed);
    assert_eq!(sim.failures, 1);
    let failed = sim.events.iter().find_map(|e| match e {
        Event::Failed(Error::ReadyTimeout { waited }) => Some(*waited),
        _ => None,
    });
    assert_eq!(failed, Some(Duration::from_millis(1_000)));
    assert!(!sim
        .events
        .iter()
        .any(|e| matches!(e, Event::Ready(_) | Event::Frame(_))));
    assert_eq!(
        sim.opens.len(),
        sim.closes.len(),
        "every connection was closed"
    );
    assert_eq!(
        sim.session.poll_timeout(),
        None,
        "nothing left to wake up for"
    );
}

#[test]
fn early_failures_are_retried_within_the_ready_timeout() {
    let mut sim = Sim::silent(quick_config(), numeric());
    sim.drop_connection(); // a 500 on the first connection
    sim.answering = true;
    sim.settle();
    assert_eq!(sim.session.state(), State::Live);
    assert_eq!(sim.opens.len(), 2);
    assert!(
        sim.now <= 500,
        "the first retry waits at most the base delay"
    );
}

#[test]
fn delivers_replay_then_live_and_counts_seam_duplicates() {
    let mut sim = Sim::new(quick_config(), numeric());
    for _ in 0..3 {
        sim.append("token");
    }
    sim.drop_connection();
    sim.append("token"); // appended while disconnected: replayed on resume
    sim.append("token");
    sim.dup_seam = 2;
    sim.settle();
    sim.append("token");
    assert_eq!(sim.delivered_ids(), ["1", "2", "3", "4", "5", "6"]);
    assert_eq!(sim.session.stats().duplicates, 2);
    assert_eq!(
        sim.session.cursor(),
        Some(Cursor {
            id: "6".into(),
            epoch: "e1".into()
        })
    );
}

#[test]
fn reconnect_carries_cursor_and_epoch() {
    let mut sim = Sim::new(quick_config(), numeric());
    sim.append("token");
    sim.append("token");
    sim.drop_connection();
    sim.settle();
    let query = &sim.conn.as_ref().unwrap().query;
    assert_eq!(
        query,
        &[
            ("lastEventId".to_string(), "2".to_string()),
            ("epoch".to_string(), "e1".to_string())
        ]
    );
    assert_eq!(sim.session.stats().reconnects, 1);
}

#[test]
fn from_now_starts_at_the_ready_tail() {
    let config = SessionConfig {
        from: StartFrom::Now,
        ..quick_config()
    };
    let mut sim = Sim::silent(config, numeric());
    sim.append("token");
    sim.append("token");
    sim.answer();
    assert_eq!(sim.session.cursor().map(|c| c.id), Some("2".into()));
    sim.answering = true;
    sim.drop_connection();
    sim.append("token"); // appended in the gap: the resume from the tail must replay it
    sim.settle();
    assert_eq!(
        sim.conn.as_ref().unwrap().query[0],
        ("lastEventId".to_string(), "2".to_string())
    );
    sim.append("token");
    assert_eq!(
        sim.delivered_ids(),
        ["3", "4"],
        "nothing before the tail, everything after it"
    );
}

#[test]
fn from_now_queries_from_now_until_the_first_ready() {
    let config = SessionConfig {
        from: StartFrom::Now,
        ..quick_config()
    };
    let mut s = Session::new(config, Timestamp::from_millis(0)).unwrap();
    let Some(Command::Open(open)) = s.poll_command() else {
        panic!()
    };
    assert_eq!(open.query, [("from".to_string(), "now".to_string())]);
}

#[test]
fn from_now_is_not_asked_again_after_the_first_ready() {
    let config = SessionConfig {
        from: StartFrom::Now,
        ..quick_config()
    };
    let mut sim = Sim::new(config, numeric()); // empty journal: ready.tail is null
    assert_eq!(sim.session.state(), State::Live);
    assert_eq!(sim.session.cursor(), None);
    sim.append("token"); // appended during the gap below must not be skipped
    sim.transport_retry();
    sim.settle();
    assert_eq!(sim.opens.len(), 2);
    assert_eq!(sim.delivered_ids(), ["1"]);
}

#[test]
fn transport_retry_is_a_reconnect_not_a_failure() {
    let mut sim = Sim::new(quick_config(), numeric());
    sim.append("token");
    sim.transport_retry();
    let cause = sim.events.iter().find_map(|e| match e {
        Event::Reconnecting { cause, delay, .. } => Some((*cause, *delay)),
        _ => None,
    });
    let (cause, delay) = cause.expect("a reconnect was scheduled");
    assert_eq!(cause, sse_relay::core::Interruption::TransportRetrying);
    assert!(
        delay <= BackoffPolicy::default().base,
        "the first retry is quick: {delay:?}"
    );
    assert_eq!(sim.session.state(), State::Reconnecting);
    sim.settle();
    assert_eq!(
        sim.opens.len(),
        2,
        "the session reconnected itself from its cursor"
    );
    assert_eq!(sim.failures, 0);
    sim.append("token");
    assert_eq!(sim.delivered_ids(), ["1", "2"]);
}

#[test]
fn stalled_connection_is_replaced() {
    let mut sim = Sim::new(quick_config(), numeric());
    sim.append("token");
    sim.advance(4_999);
    assert_eq!(sim.opens.len(), 1);
    sim.advance(1);
    assert_eq!(sim.session.stats().stalls, 1);
    sim.settle();
    assert_eq!(sim.opens.len(), 2);
    sim.append("token");
    assert_eq!(sim.delivered_ids(), ["1", "2"]);
}

#[test]
fn pings_keep_a_connection_alive() {
    let mut sim = Sim::new(quick_config(), numeric());
    for _ in 0..5 {
        sim.advance(4_000);
        let id = sim.conn.as_ref().unwrap().id;
        sim.session.handle_frame(
            id,
            RawEvent {
                event: "ping",
                id: None,
                data: "",
            },
            sim.ts(),
        );
        sim.pump();
    }
    assert_eq!(sim.session.stats().stalls, 0);
    assert_eq!(sim.opens.len(), 1);
}

#[test]
fn done_ends_the_stream_for_good() {
    let mut sim = Sim::new(quick_config(), numeric());
    sim.append("token");
    sim.append("done");
    assert_eq!(sim.session.state(), State::Closed);
    assert_eq!(sim.delivered.last().unwrap().event, "done");
    assert_eq!(sim.opens, sim.closes);
    assert_eq!(sim.session.poll_timeout(), None);
    assert!(!sim.fire_next_timer());
}

#[test]
fn epoch_change_after_a_cursor_reconnects_from_the_new_start() {
    let mut sim = Sim::new(quick_config(), numeric());
    sim.append("token");
    sim.append("token");
    // The server resets: new epoch, ids restart. Our minimal simulated server ignores `epoch`
    // and would resume after "2" in the new epoch, losing its first two entries.
    sim.journal.clear();
    sim.epoch = "e2".into();
    for _ in 0..3 {
        let id = sim.style.id(sim.journal.len());
        sim.journal.push(sse_relay::core::Frame {
            id,
            event: "token".into(),
            data: "new".into(),
        });
    }
    sim.drop_connection();
    sim.settle();
    let resets: Vec<_> = sim
        .events
        .iter()
        .filter(|e| matches!(e, Event::Reset { .. }))
        .collect();
    assert_eq!(resets.len(), 1);
    assert_eq!(sim.session.stats().resets, 1);
    assert_eq!(
        sim.delivered_ids(),
        ["1", "2", "1", "2", "3"],
        "old epoch, then the whole new one"
    );
    assert!(
        sim.conn.as_ref().unwrap().query.is_empty(),
        "the last connection asked without a cursor"
    );
    assert_eq!(sim.session.epoch(), Some("e2"));
}

#[test]
fn events_of_an_abandoned_connection_are_ignored() {
    let mut sim = Sim::new(quick_config(), numeric());
    sim.append("token");
    let old = sim.conn.as_ref().unwrap().id;
    sim.drop_connection();
    sim.settle();
    sim.session.handle_frame(
        old,
        RawEvent {
            event: "token",
            id: Some("99"),
            data: "late",
        },
        sim.ts(),
    );
    sim.session
        .handle_closed(old, sse_relay::core::Disconnect::Failed, sim.ts());
    sim.pump();
    assert_eq!(sim.delivered_ids(), ["1"]);
    assert_eq!(sim.session.state(), State::Live);
}

#[test]
fn malformed_frames_are_counted_and_reported() {
    let mut sim = Sim::new(quick_config(), numeric());
    sim.append("token");
    let id = sim.conn.as_ref().unwrap().id;
    let now = sim.ts();
    sim.session.handle_frame(
        id,
        RawEvent {
            event: "token",
            id: None,
            data: "no id",
        },
        now,
    );
    sim.session.handle_frame(
        id,
        RawEvent {
            event: "token",
            id: Some(""),
            data: "empty id",
        },
        now,
    );
    sim.session.handle_frame(
        id,
        RawEvent {
            event: "token",
            id: Some("abc"),
            data: "bad id",
        },
        now,
    );
    sim.session.handle_frame(
        id,
        RawEvent {
            event: "ready",
            id: None,
            data: "{not json",
        },
        now,
    );
    sim.pump();
    let kinds: Vec<_> = sim
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Malformed(m) => Some(m.kind.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(kinds.len(), 4);
    assert!(matches!(kinds[0], MalformedKind::MissingId));
    assert!(matches!(kinds[1], MalformedKind::MissingId));
    assert!(matches!(kinds[2], MalformedKind::BadId(_)));
    assert!(matches!(kinds[3], MalformedKind::BadReady(_)));
    assert_eq!(sim.session.stats().malformed, 4);
    sim.append("token");
    assert_eq!(sim.delivered_ids(), ["1", "2"], "the stream goes on");
}

#[test]
fn resume_cursor_is_sent_on_the_first_connection() {
    let config = SessionConfig {
        resume: Some(Cursor {
            id: "41".into(),
            epoch: "e9".into(),
        }),
        ..quick_config()
    };
    let mut s = Session::new(config, Timestamp::from_millis(0)).unwrap();
    let Some(Command::Open(open)) = s.poll_command() else {
        panic!()
    };
    assert_eq!(
        open.query,
        [
            ("lastEventId".to_string(), "41".to_string()),
            ("epoch".to_string(), "e9".to_string())
        ]
    );
    s.handle_frame(
        open.connection,
        RawEvent {
            event: "ready",
            id: None,
            data: r#"{"tail":"45","epoch":"e9"}"#,
        },
        Timestamp::from_millis(1),
    );
    s.handle_frame(
        open.connection,
        RawEvent {
            event: "token",
            id: Some("41"),
            data: "old",
        },
        Timestamp::from_millis(1),
    );
    s.handle_frame(
        open.connection,
        RawEvent {
            event: "token",
            id: Some("42"),
            data: "new",
        },
        Timestamp::from_millis(1),
    );
    assert_eq!(s.stats().duplicates, 1);
    assert_eq!(s.stats().delivered, 1);
}

#[test]
fn backoff_grows_on_failures_and_resets_after_ready() {
    let policy = BackoffPolicy {
        base: Duration::from_millis(100),
        cap: Duration::from_millis(800),
    };
    let config = SessionConfig {
        backoff: policy,
        ready_timeout: Duration::from_secs(60),
        ..quick_config()
    };
    let mut sim = Sim::silent(config, numeric());
    let mut delays = Vec::new();
    for _ in 0..6 {
        sim.drop_connection();
        if let Some(Event::Reconnecting {
            attempt, delay: d, ..
        }) = sim.events.last().cloned()
        {
            assert!(d <= policy.ceiling(attempt - 1), "attempt {attempt}: {d:?}");
            delays.push(d);
        }
        sim.fire_next_timer();
    }
    assert_eq!(delays.len(), 6);
    sim.answering = true;
    sim.drop_connection();
    sim.settle();
    assert_eq!(sim.session.state(), State::Live);
    // A connection that joined and lasted a second proved itself: the backoff starts over.
    sim.advance(1_000);
    sim.drop_connection();
    let last_reconnect = sim
        .events
        .iter()
        .rev()
        .find(|e| matches!(e, Event::Reconnecting { .. }));
    match last_reconnect {
        Some(Event::Reconnecting {
            attempt: 1,
            delay: d,
            ..
        }) => assert!(*d <= policy.base),
        other => panic!("expected a first attempt after ready, got {other:?}"),
    }
}

#[test]
fn config_errors_name_the_option() {
    let cases: Vec<(SessionConfig, &str)> = vec![
        (
            SessionConfig {
                dedup_window: 0,
                ..SessionConfig::default()
            },
            "dedupWindow",
        ),
        (
            SessionConfig {
                ready_timeout: Duration::ZERO,
                ..SessionConfig::default()
            },
            "readyTimeoutMs",
        ),
        (
            SessionConfig {
                heartbeat_timeout: Duration::ZERO,
                ..SessionConfig::default()
            },
            "heartbeatTimeoutMs",
        ),
        (
            SessionConfig {
                cursor_param: String::new(),
                ..SessionConfig::default()
            },
            "cursorParam",
        ),
        (
            SessionConfig {
                cursor_order: CursorOrder::Numeric,
                resume: Some(Cursor {
                    id: "x".into(),
                    epoch: "e".into(),
                }),
                ..SessionConfig::default()
            },
            "resume",
        ),
    ];
    for (config, option) in cases {
        match Session::new(config, Timestamp::from_millis(0)) {
            Err(ConfigError::Invalid {
                option: named,
                reason,
            }) => {
                assert_eq!(named, option);
                assert!(!reason.is_empty());
            }
            other => panic!("{option}: expected an error, got {other:?}"),
        }
    }
    let mut names = SessionConfig::default();
    names.names.done = "ready".into();
    let err = Session::new(names, Timestamp::from_millis(0)).unwrap_err();
    assert!(err.to_string().starts_with("option `readyEvent`"), "{err}");
}

#[test]
fn close_stops_everything() {
    let mut sim = Sim::new(quick_config(), numeric());
    sim.session.close();
    sim.pump();
    assert_eq!(sim.session.state(), State::Closed);
    assert_eq!(sim.opens, sim.closes);
    assert_eq!(sim.session.poll_timeout(), None);
    sim.session.close(); // idempotent
    sim.pump();
    assert_eq!(sim.closes.len(), 1);
}

#[test]
fn contiguous_ids_turn_a_lost_window_into_a_replay() {
    let config = SessionConfig {
        contiguous_ids: true,
        from: StartFrom::Now,
        ..quick_config()
    };
    let mut sim = Sim::new(config, numeric());
    sim.append("token");
    // A server that sent `ready` before joining: these two never reach this connection.
    sim.deaf = true;
    sim.append("token");
    sim.append("token");
    sim.deaf = false;
    sim.append("token");
    sim.settle();
    assert_eq!(
        sim.delivered_ids(),
        ["1", "2", "3", "4"],
        "the replay from the cursor filled the hole"
    );
    assert_eq!(sim.session.stats().gaps, 0);
    assert!(sim.events.iter().any(|e| matches!(
        e,
        Event::Reconnecting {
            cause: sse_relay::core::Interruption::Gap,
            ..
        }
    )));
}

#[test]
fn contiguous_ids_after_an_empty_journal_start_at_one() {
    let config = SessionConfig {
        contiguous_ids: true,
        from: StartFrom::Now,
        ..quick_config()
    };
    let mut sim = Sim::new(config, numeric()); // the journal is empty: ready.tail is null
    assert_eq!(sim.session.cursor(), None);
    sim.deaf = true; // the lying server's blind window
    sim.append("token");
    sim.append("token");
    sim.deaf = false;
    sim.append("token");
    sim.settle();
    assert_eq!(
        sim.delivered_ids(),
        ["1", "2", "3"],
        "id 3 after an empty join is a hole; the journal filled it"
    );
    assert_eq!(sim.session.stats().gaps, 0);
}

#[test]
fn a_hole_the_journal_cannot_fill_is_reported_once_and_passed() {
    let config = SessionConfig {
        contiguous_ids: true,
        ..quick_config()
    };
    let mut sim = Sim::new(config, IdStyle::Numeric { step: 2 }); // ids 1, 3, 5: holes everywhere
    for _ in 0..3 {
        sim.append("token");
        sim.settle();
    }
    assert_eq!(sim.delivered_ids(), ["1", "3", "5"]);
    assert_eq!(sim.session.stats().gaps, 2);
    let gaps: Vec<_> = sim
        .events
        .iter()
        .filter(|e| matches!(e, Event::Gap { .. }))
        .cloned()
        .collect();
    assert_eq!(
        gaps[0],
        Event::Gap {
            after: "1".into(),
            next: "3".into()
        }
    );
}

#[test]
fn without_contiguous_ids_holes_are_not_gaps() {
    let mut sim = Sim::new(quick_config(), IdStyle::Numeric { step: 2 });
    for _ in 0..3 {
        sim.append("token");
    }
    assert_eq!(sim.delivered_ids(), ["1", "3", "5"]);
    assert_eq!(sim.opens.len(), 1);
    assert_eq!(sim.session.stats().gaps, 0);
}

mod statuses {
    use super::*;
    use sse_relay::core::Disconnect;

    fn failure(sim: &Sim) -> Option<Error> {
        sim.events.iter().find_map(|e| match e {
            Event::Failed(e) => Some(e.clone()),
            _ => None,
        })
    }

    fn last_delay(sim: &Sim) -> Duration {
        sim.events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Reconnecting { delay, .. } => Some(*delay),
                _ => None,
            })
            .expect("a reconnect")
    }

    #[test]
    fn no_content_stops_for_good() {
        let mut sim = Sim::new(quick_config(), numeric());
        sim.close_connection(Disconnect::Status {
            status: 204,
            retry_after: None,
        });
        assert_eq!(failure(&sim), Some(Error::Stopped));
        assert_eq!(sim.session.state(), State::Closed);
        assert!(!sim.fire_next_timer(), "no reconnect");
    }

    #[test]
    fn unauthorized_fails_unless_credentials_were_refreshed() {
        let mut sim = Sim::new(quick_config(), numeric());
        sim.close_connection(Disconnect::CredentialsRefreshed);
        assert_eq!(
            last_delay(&sim),
            Duration::ZERO,
            "fresh credentials reconnect at once"
        );
        sim.settle();
        assert_eq!(sim.session.state(), State::Live);
        for status in [401, 403] {
            let mut sim = Sim::new(quick_config(), numeric());
            sim.close_connection(Disconnect::Status {
                status,
                retry_after: None,
            });
            assert_eq!(failure(&sim), Some(Error::Unauthorized { status }));
            assert_eq!(sim.session.state(), State::Closed);
        }
    }

    #[test]
    fn retry_after_is_honoured_and_other_statuses_back_off() {
        let mut sim = Sim::new(quick_config(), numeric());
        let retry_after = Some(Duration::from_secs(3));
        sim.close_connection(Disconnect::Status {
            status: 429,
            retry_after,
        });
        assert!(last_delay(&sim) >= Duration::from_secs(3));
        sim.settle();
        assert!(sim.now >= 3_000, "waited for Retry-After");
        for status in [404, 500, 503] {
            sim.close_connection(Disconnect::Status {
                status,
                retry_after: None,
            });
            assert!(last_delay(&sim) <= BackoffPolicy::default().base);
            assert_eq!(failure(&sim), None);
            sim.settle();
            sim.advance(1_000); // joined for a second: the next failure is a first attempt
        }
        assert_eq!(sim.session.state(), State::Live);
    }

    #[test]
    fn a_wrong_content_type_fails_without_a_retry_loop() {
        let mut sim = Sim::new(quick_config(), numeric());
        sim.close_connection(Disconnect::NotEventStream);
        assert_eq!(failure(&sim), Some(Error::NotEventStream));
        assert_eq!(sim.opens.len(), 1);
        assert!(!sim.fire_next_timer());
    }

    #[test]
    fn comments_count_as_heartbeats_and_retry_sets_the_base() {
        let mut sim = Sim::new(quick_config(), numeric());
        for _ in 0..4 {
            sim.advance(4_000);
            let id = sim.conn.as_ref().unwrap().id;
            sim.session.handle_heartbeat(id, sim.ts());
        }
        assert_eq!(sim.session.stats().stalls, 0);
        sim.session.handle_retry(Duration::from_millis(40));
        for _ in 0..5 {
            sim.drop_connection();
            assert!(last_delay(&sim) <= Duration::from_millis(40));
            sim.settle();
            sim.advance(1_000);
        }
    }
}

#[test]
fn a_reader_pause_closes_the_connection_and_resumes_after_the_last_frame_delivered() {
    let mut sim = Sim::new(quick_config(), numeric());
    for _ in 0..3 {
        sim.append("token");
    }
    let now = sim.ts();
    sim.session.pause_reader(now);
    sim.pump();
    assert!(sim.session.reader_paused());
    assert!(sim.conn.is_none(), "the connection was closed");
    assert_eq!(sim.closes.len(), 1);
    assert_eq!(
        sim.session.state(),
        State::Live,
        "nothing is wrong: the page is behind"
    );
    assert_eq!(
        sim.session.poll_timeout(),
        None,
        "no heartbeat while paused"
    );
    // Journaled while paused: waits at the server.
    sim.append("token");
    sim.append("token");
    sim.advance(120_000);
    assert!(sim.session.reader_paused(), "a pause has no deadline");
    assert_eq!(sim.delivered_ids(), ["1", "2", "3"]);

    sim.session.resume_reader(sim.ts());
    sim.pump();
    assert!(!sim.session.reader_paused());
    let query = &sim.conn.as_ref().expect("reconnected").query;
    assert!(
        query.contains(&("lastEventId".into(), "3".into())),
        "{query:?}"
    );
    assert!(sim.events.iter().any(|e| matches!(
        e,
        Event::Reconnecting {
            cause: Interruption::ReaderBehind,
            ..
        }
    )));
    sim.append("token");
    assert_eq!(sim.delivered_ids(), ["1", "2", "3", "4", "5", "6"]);
    assert_eq!(sim.session.stats().duplicates, 0);
    assert_eq!(sim.session.stats().reconnects, 1);

    // Only a live connection pauses: not one still waiting for ready, not a closed session.
    let mut waiting = Sim::silent(quick_config(), numeric());
    let now = waiting.ts();
    waiting.session.pause_reader(now);
    assert!(!waiting.session.reader_paused());
    sim.session.close();
    sim.session.resume_reader(sim.ts());
    sim.pump();
    assert_eq!(sim.session.state(), State::Closed);
}

/// Issue 18: resets under `from=now`, on a link that carries several `ready`s (a follower tab's
/// link to its leader) and on links with and without a cursor.
mod resets_under_from_now {
    use super::*;

    fn now_config() -> SessionConfig {
        SessionConfig {
            from: StartFrom::Now,
            ..quick_config()
        }
    }

    fn open(s: &mut Session) -> (sse_relay::core::ConnectionId, Vec<(String, String)>) {
        loop {
            match s.poll_command() {
                Some(Command::Open(o)) => return (o.connection, o.query),
                Some(Command::Close(_)) => continue,
                None => panic!("no open"),
            }
        }
    }

    fn ready(
        s: &mut Session,
        c: sse_relay::core::ConnectionId,
        tail: Option<&str>,
        epoch: &str,
        at: u64,
    ) {
        let data = match tail {
            Some(t) => format!(r#"{{"tail":"{t}","epoch":"{epoch}"}}"#),
            None => format!(r#"{{"tail":null,"epoch":"{epoch}"}}"#),
        };
        let raw = RawEvent {
            event: "ready",
            id: None,
            data: &data,
        };
        s.handle_frame(c, raw, Timestamp::from_millis(at));
    }

    fn frame(s: &mut Session, c: sse_relay::core::ConnectionId, id: &str, at: u64) {
        let raw = RawEvent {
            event: "token",
            id: Some(id),
            data: id,
        };
        s.handle_frame(c, raw, Timestamp::from_millis(at));
    }

    fn delivered(s: &mut Session) -> Vec<String> {
        let mut ids = Vec::new();
        while let Some(e) = s.poll_event() {
            if let Event::Frame(f) = e {
                ids.push(f.id);
            }
        }
        ids
    }

    #[test]
    fn a_new_epoch_on_the_same_link_is_delivered_from_its_start() {
        let mut s = Session::new(now_config(), Timestamp::from_millis(0)).unwrap();
        let (c, query) = open(&mut s);
        assert_eq!(query, [("from".to_owned(), "now".to_owned())]);
        ready(&mut s, c, Some("40"), "e1", 1);
        frame(&mut s, c, "41", 2);
        frame(&mut s, c, "42", 3);
        assert_eq!(delivered(&mut s), ["41", "42"]);
        // The leader tab reconnected after a reset and relays its ready on the same link: its
        // position in the new epoch (60) is not this tab's start.
        ready(&mut s, c, Some("60"), "e2", 4);
        assert!(!s.starts_now(), "from=now is spent at the first join");
        for id in 1..=61 {
            frame(&mut s, c, &id.to_string(), 5);
        }
        let ids = delivered(&mut s);
        assert_eq!(ids.len(), 61, "every frame of the new epoch: {ids:?}");
        assert_eq!(ids.first().map(String::as_str), Some("1"));
        assert_eq!(s.stats().duplicates, 0);
        assert_eq!(s.stats().resets, 1);
        assert_eq!(s.start(), None, "the new epoch has no from=now start");
        assert_eq!(
            s.cursor().unwrap(),
            Cursor {
                id: "61".into(),
                epoch: "e2".into()
            }
        );
    }

    #[test]
    fn a_new_epoch_before_anything_was_delivered_is_delivered_from_its_start() {
        let mut s = Session::new(now_config(), Timestamp::from_millis(0)).unwrap();
        let (c, _) = open(&mut s);
        ready(&mut s, c, Some("40"), "e1", 1);
        assert_eq!(s.start(), Some("40"));
        ready(&mut s, c, Some("9"), "e2", 2);
        for id in ["1", "2", "9", "10"] {
            frame(&mut s, c, id, 3);
        }
        assert_eq!(delivered(&mut s), ["1", "2", "9", "10"]);
    }

    #[test]
    fn a_cursor_link_that_meets_a_new_epoch_reconnects_without_cursor_or_from_now() {
        let mut s = Session::new(now_config(), Timestamp::from_millis(0)).unwrap();
        let (c, _) = open(&mut s);
        ready(&mut s, c, Some("40"), "e1", 1);
        frame(&mut s, c, "41", 2);
        s.handle_error(c, Timestamp::from_millis(3));
        s.handle_timeout(Timestamp::from_millis(10_000));
        let (c2, query) = open(&mut s);
        assert_eq!(
            query,
            [
                ("lastEventId".to_owned(), "41".to_owned()),
                ("epoch".to_owned(), "e1".to_owned())
            ]
        );
        // A server that ignored the epoch: the session cannot trust what follows on it.
        ready(&mut s, c2, Some("70"), "e2", 10_001);
        s.handle_timeout(Timestamp::from_millis(10_001)); // reconnects at once
        let (c3, query) = open(&mut s);
        assert!(query.is_empty(), "the new epoch whole: {query:?}");
        ready(&mut s, c3, Some("70"), "e2", 10_002);
        frame(&mut s, c3, "1", 10_003);
        frame(&mut s, c3, "70", 10_003);
        assert_eq!(delivered(&mut s), ["41", "1", "70"]);
        assert_eq!(s.stats().duplicates, 0);
    }

    #[test]
    fn a_frame_at_or_before_the_start_is_malformed_not_a_duplicate() {
        let mut s = Session::new(now_config(), Timestamp::from_millis(0)).unwrap();
        let (c, _) = open(&mut s);
        ready(&mut s, c, Some("40"), "e1", 1);
        frame(&mut s, c, "39", 2);
        frame(&mut s, c, "40", 2);
        frame(&mut s, c, "41", 2);
        frame(&mut s, c, "41", 2);
        let mut kinds = Vec::new();
        let mut ids = Vec::new();
        while let Some(e) = s.poll_event() {
            match e {
                Event::Malformed(m) => kinds.push((m.kind, m.id)),
                Event::Frame(f) => ids.push(f.id),
                _ => {}
            }
        }
        assert_eq!(ids, ["41"]);
        assert_eq!(
            kinds,
            [
                (MalformedKind::BeforeStart, Some("39".to_owned())),
                (MalformedKind::BeforeStart, Some("40".to_owned()))
            ]
        );
        assert_eq!(s.stats().duplicates, 1, "only 41 came twice");
        assert_eq!(s.stats().malformed, 2);
    }

    #[test]
    fn a_server_that_joins_and_hangs_up_meets_a_growing_backoff() {
        let config = SessionConfig {
            backoff: BackoffPolicy {
                base: Duration::from_millis(100),
                cap: Duration::from_secs(60),
            },
            ready_timeout: Duration::from_secs(600),
            ..now_config()
        };
        let mut s = Session::new(config, Timestamp::from_millis(0)).unwrap();
        let mut at = 0;
        let mut attempts = Vec::new();
        for _ in 0..8 {
            let (c, _) = open(&mut s);
            at += 1;
            ready(&mut s, c, Some("40"), "e1", at);
            s.handle_closed(
                c,
                sse_relay::core::Disconnect::Ended,
                Timestamp::from_millis(at),
            );
            while let Some(e) = s.poll_event() {
                if let Event::Reconnecting { attempt, .. } = e {
                    attempts.push(attempt);
                }
            }
            at = s.poll_timeout().unwrap().as_millis();
            s.handle_timeout(Timestamp::from_millis(at));
        }
        assert_eq!(
            attempts,
            [1, 2, 3, 4, 5, 6, 7, 8],
            "no reset by a join that delivered nothing"
        );
    }
}

#[test]
fn frames_of_types_not_asked_for_are_counted_and_reported_not_dropped_silently() {
    let config = SessionConfig {
        events: Some(vec!["token".into()]),
        ..quick_config()
    };
    let mut s = Session::new(config, Timestamp::from_millis(0)).unwrap();
    let Some(Command::Open(open)) = s.poll_command() else {
        panic!("no open")
    };
    let c = open.connection;
    let at = Timestamp::from_millis(1);
    let frame = |s: &mut Session, id: &'static str, event: &'static str| {
        s.handle_frame(
            c,
            RawEvent {
                event,
                id: Some(id),
                data: "x",
            },
            at,
        )
    };
    s.handle_frame(
        c,
        RawEvent {
            event: "ready",
            id: None,
            data: r#"{"tail":null,"epoch":"e"}"#,
        },
        at,
    );
    frame(&mut s, "1", "token");
    frame(&mut s, "2", "status");
    frame(&mut s, "3", "token");
    frame(&mut s, "4", "done");
    let (mut delivered, mut filtered) = (Vec::new(), Vec::new());
    while let Some(e) = s.poll_event() {
        match e {
            Event::Frame(f) => delivered.push(f.id),
            Event::Filtered { id, event } => filtered.push((id, event)),
            _ => {}
        }
    }
    assert_eq!(delivered, ["1", "3", "4"], "done is always delivered");
    assert_eq!(filtered, [("2".to_owned(), "status".to_owned())]);
    assert_eq!(s.stats().filtered, 1);
    assert_eq!(s.stats().delivered, 3);
}

/// The next connection the session asks for.
fn open(s: &mut Session) -> sse_relay::core::OpenRequest {
    loop {
        match s.poll_command() {
            Some(Command::Open(open)) => return open,
            Some(_) => {}
            None => panic!("no open"),
        }
    }
}

/// The ids of the frames the session delivered since the last call (other events dropped).
fn frame_ids(s: &mut Session) -> Vec<String> {
    std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::Frame(f) => Some(f.id),
            _ => None,
        })
        .collect()
}

/// A plain SSE server: the open response is the join, the cursor goes without an epoch, and the
/// stream promises at most once.
mod plain_profile {
    use super::*;
    use sse_relay::core::{Guarantee, ServerProfile, PLAIN_EPOCH};

    fn plain() -> SessionConfig {
        SessionConfig {
            server_profile: ServerProfile::Plain,
            ..quick_config()
        }
    }

    fn frame<'a>(event: &'a str, id: Option<&'a str>, data: &'a str) -> RawEvent<'a> {
        RawEvent { event, id, data }
    }

    fn drain(s: &mut Session) -> Vec<Event> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    #[test]
    fn the_open_response_is_the_join() {
        let mut s = Session::new(plain(), Timestamp::from_millis(0)).unwrap();
        let first = open(&mut s);
        assert!(first.query.is_empty());
        assert_eq!(s.state(), State::Connecting);
        s.handle_connected(first.connection, Timestamp::from_millis(3));
        let events = drain(&mut s);
        assert!(
            matches!(&events[0], Event::Ready(info) if info.epoch == PLAIN_EPOCH && info.tail.is_none()),
            "{events:?}"
        );
        assert_eq!(s.state(), State::Live);
        assert_eq!(s.stats().guarantee, Guarantee::AtMostOnce);
        // An event named `ready` is the server's own frame here, delivered like any other.
        s.handle_frame(
            first.connection,
            frame("ready", Some("1"), "{}"),
            Timestamp::from_millis(4),
        );
        s.handle_frame(
            first.connection,
            frame("message", Some("2"), "x"),
            Timestamp::from_millis(5),
        );
        let ids = frame_ids(&mut s);
        assert_eq!(ids, ["1", "2"]);
        assert_eq!(
            s.cursor(),
            Some(Cursor {
                id: "2".into(),
                epoch: PLAIN_EPOCH.into()
            })
        );
    }

    #[test]
    fn a_reconnect_sends_the_cursor_without_an_epoch_and_drops_what_was_delivered() {
        let mut s = Session::new(plain(), Timestamp::from_millis(0)).unwrap();
        let first = open(&mut s);
        s.handle_connected(first.connection, Timestamp::from_millis(1));
        for id in ["1", "2", "3"] {
            s.handle_frame(
                first.connection,
                frame("message", Some(id), id),
                Timestamp::from_millis(2),
            );
        }
        s.handle_closed(
            first.connection,
            sse_relay::core::Disconnect::Ended,
            Timestamp::from_millis(3),
        );
        drain(&mut s);
        s.handle_timeout(Timestamp::from_millis(10_000));
        let second = open(&mut s);
        assert_eq!(second.query, [("lastEventId".to_owned(), "3".to_owned())]);
        s.handle_connected(second.connection, Timestamp::from_millis(10_001));
        // A server that replays from an older id than asked (or not at all): dedup by id.
        for id in ["2", "3", "4"] {
            s.handle_frame(
                second.connection,
                frame("message", Some(id), id),
                Timestamp::from_millis(10_002),
            );
        }
        let ids = frame_ids(&mut s);
        assert_eq!(ids, ["4"]);
        assert_eq!(s.stats().duplicates, 2);
        assert_eq!(s.stats().resets, 0, "a plain server has no epochs");
    }

    #[test]
    fn a_frame_without_id_is_reported_not_lost_silently() {
        let mut s = Session::new(plain(), Timestamp::from_millis(0)).unwrap();
        let first = open(&mut s);
        s.handle_connected(first.connection, Timestamp::from_millis(1));
        s.handle_frame(
            first.connection,
            frame("message", None, "x"),
            Timestamp::from_millis(2),
        );
        let malformed = drain(&mut s).into_iter().find_map(|e| match e {
            Event::Malformed(m) => Some(m.kind),
            _ => None,
        });
        assert_eq!(malformed, Some(MalformedKind::MissingId));
        assert_eq!(s.stats().malformed, 1);
    }

    #[test]
    fn options_that_need_protocol_v1_are_refused() {
        let now = SessionConfig {
            from: StartFrom::Now,
            ..plain()
        };
        match Session::new(now, Timestamp::from_millis(0)) {
            Err(ConfigError::Invalid { option, .. }) => assert_eq!(option, "from"),
            other => panic!("expected a config error, got {other:?}"),
        }
        let foreign = SessionConfig {
            resume: Some(Cursor {
                id: "3".into(),
                epoch: "e1".into(),
            }),
            ..plain()
        };
        match Session::new(foreign, Timestamp::from_millis(0)) {
            Err(ConfigError::Invalid { option, .. }) => assert_eq!(option, "resume"),
            other => panic!("expected a config error, got {other:?}"),
        }
        let resumed = SessionConfig {
            resume: Some(Cursor {
                id: "3".into(),
                epoch: PLAIN_EPOCH.into(),
            }),
            ..plain()
        };
        let mut s = Session::new(resumed, Timestamp::from_millis(0)).unwrap();
        assert_eq!(
            open(&mut s).query,
            [("lastEventId".to_owned(), "3".to_owned())]
        );
    }

    #[test]
    fn protocol_v1_promises_exactly_once() {
        let s = Session::new(quick_config(), Timestamp::from_millis(0)).unwrap();
        assert_eq!(s.stats().guarantee, Guarantee::ExactlyOnce);
    }
}

/// A Durable Streams server: offsets after batches, messages named by position, `upToDate` as
/// the join, `streamClosed` as the end, 410 as a typed error.
mod durable_streams_profile {
    use super::*;
    use sse_relay::core::{Disconnect, ServerProfile, DURABLE_EPOCH};

    fn durable() -> SessionConfig {
        SessionConfig {
            server_profile: ServerProfile::DurableStreams,
            ..quick_config()
        }
    }

    fn event<'a>(event: &'a str, data: &'a str) -> RawEvent<'a> {
        RawEvent {
            event,
            id: None,
            data,
        }
    }

    fn frames(s: &mut Session) -> Vec<(String, String, String)> {
        std::iter::from_fn(|| s.poll_event())
            .filter_map(|e| match e {
                Event::Frame(f) => Some((f.id, f.event, f.data)),
                _ => None,
            })
            .collect()
    }

    fn control(offset: &str, extra: &str) -> String {
        format!(r#"{{"streamNextOffset":"{offset}","streamCursor":"9"{extra}}}"#)
    }

    #[test]
    fn reads_batches_joins_at_the_tail_and_resumes_after_the_last_offset() {
        let t = Timestamp::from_millis;
        let mut s = Session::new(durable(), t(0)).unwrap();
        let first = open(&mut s);
        assert_eq!(
            first.query,
            [
                ("live".into(), "sse".into()),
                ("offset".into(), "-1".into())
            ]
        );
        s.handle_connected(first.connection, t(1));
        s.handle_frame(
            first.connection,
            event("data", r#"[{"a":1},{"a":2}]"#),
            t(2),
        );
        s.handle_frame(
            first.connection,
            event("control", &control("0_2", "")),
            t(3),
        );
        assert_eq!(s.state(), State::Connecting, "not at the tail yet");
        s.handle_frame(first.connection, event("data", r#"[{"a":3}]"#), t(4));
        s.handle_frame(
            first.connection,
            event("control", &control("0_3", r#","upToDate":true"#)),
            t(5),
        );
        assert_eq!(s.state(), State::Live);
        let got = frames(&mut s);
        let ids: Vec<&str> = got.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(ids, ["-1,1", "-1,2", "0_2,1"]);
        assert_eq!(got[0].1, "data");
        assert_eq!(got[2].2, r#"{"a":3}"#);
        assert_eq!(
            s.cursor(),
            Some(Cursor {
                id: "0_2,1".into(),
                epoch: DURABLE_EPOCH.into()
            })
        );
        // The server closes the response (as it does every minute): at once, from 0_3.
        s.handle_closed(first.connection, Disconnect::Ended, t(2_000));
        s.handle_timeout(t(2_000));
        let second = open(&mut s);
        assert_eq!(
            second.query,
            [
                ("cursor".into(), "9".into()),
                ("live".into(), "sse".into()),
                ("offset".into(), "0_3".into())
            ]
        );
    }

    #[test]
    fn a_cursor_inside_a_batch_is_resumed_exactly_however_the_server_batches() {
        let t = Timestamp::from_millis;
        let config = SessionConfig {
            resume: Some(Cursor {
                id: "o189,1".into(),
                epoch: DURABLE_EPOCH.into(),
            }),
            ..durable()
        };
        let mut s = Session::new(config, t(0)).unwrap();
        let first = open(&mut s);
        assert_eq!(first.query[1], ("offset".into(), "o189".into()));
        s.handle_connected(first.connection, t(1));
        s.handle_frame(
            first.connection,
            event("control", &control("o189", "")),
            t(2),
        );
        s.handle_frame(first.connection, event("data", "[1,2,3,4,5,6,7]"), t(3));
        s.handle_frame(
            first.connection,
            event("control", &control("o196", r#","upToDate":true"#)),
            t(4),
        );
        let ids = frame_ids(&mut s);
        assert_eq!(
            ids,
            ["o189,2", "o189,3", "o189,4", "o189,5", "o189,6", "o189,7"]
        );
        assert_eq!(s.stats().duplicates, 1, "the message the cursor names");
    }

    #[test]
    fn a_closed_stream_ends_with_done_and_410_fails_typed() {
        let t = Timestamp::from_millis;
        let mut s = Session::new(durable(), t(0)).unwrap();
        let first = open(&mut s);
        s.handle_connected(first.connection, t(1));
        s.handle_frame(first.connection, event("data", "[1]"), t(2));
        s.handle_frame(
            first.connection,
            event(
                "control",
                r#"{"streamNextOffset":"0_1","streamClosed":true}"#,
            ),
            t(3),
        );
        let got = frames(&mut s);
        assert_eq!(got.last().map(|f| f.1.as_str()), Some("done"));
        assert_eq!(s.state(), State::Closed);

        let mut s = Session::new(durable(), t(0)).unwrap();
        let first = open(&mut s);
        s.handle_closed(
            first.connection,
            Disconnect::Status {
                status: 410,
                retry_after: None,
            },
            t(1),
        );
        let failed = std::iter::from_fn(|| s.poll_event()).find_map(|e| match e {
            Event::Failed(e) => Some(e),
            _ => None,
        });
        assert_eq!(failed, Some(Error::Gone));
    }

    #[test]
    fn from_now_starts_at_the_first_control() {
        let t = Timestamp::from_millis;
        let config = SessionConfig {
            from: StartFrom::Now,
            ..durable()
        };
        let mut s = Session::new(config, t(0)).unwrap();
        let first = open(&mut s);
        assert_eq!(first.query[1], ("offset".into(), "now".into()));
        s.handle_connected(first.connection, t(1));
        // Sent before the first control: before the start.
        s.handle_frame(first.connection, event("data", "[0]"), t(2));
        s.handle_frame(
            first.connection,
            event("control", &control("0_5", r#","upToDate":true"#)),
            t(3),
        );
        s.handle_frame(first.connection, event("data", "[6]"), t(4));
        let ids = frame_ids(&mut s);
        assert_eq!(ids, ["0_5,1"]);
        s.handle_closed(first.connection, Disconnect::Ended, t(5));
        s.handle_timeout(t(10_000));
        let query = open(&mut s).query;
        assert!(
            query.contains(&("offset".into(), "0_5".into())),
            "{query:?}"
        );
    }

    #[test]
    fn options_that_cannot_work_are_refused() {
        for (config, option) in [
            (
                SessionConfig {
                    contiguous_ids: true,
                    ..durable()
                },
                "contiguousIds",
            ),
            (
                SessionConfig {
                    cursor_order: CursorOrder::Numeric,
                    ..durable()
                },
                "cursorOrder",
            ),
            (
                SessionConfig {
                    events: Some(vec!["token".into()]),
                    ..durable()
                },
                "events",
            ),
        ] {
            match Session::new(config, Timestamp::from_millis(0)) {
                Err(ConfigError::Invalid { option: o, .. }) => assert_eq!(o, option),
                other => panic!("expected a config error, got {other:?}"),
            }
        }
    }
}
