//! Property tests of the core: exactly once, in order, whatever the wire does.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::time::Duration;

use proptest::prelude::*;
use sse_relay::core::{
    Backoff, BackoffPolicy, Command, ConnectionId, CursorOrder, DedupWindow, Disconnect, Event,
    RawEvent, Session, SessionConfig, StartFrom, State, Timestamp, Verdict,
};
use support::{quick_config, IdStyle, Sim};

fn id_style() -> impl Strategy<Value = IdStyle> {
    prop_oneof![
        (1u64..5).prop_map(|step| IdStyle::Numeric { step }),
        Just(IdStyle::Redis),
        Just(IdStyle::Opaque),
    ]
}

/// What the server and the network may do between two appends.
#[derive(Clone, Debug)]
enum Op {
    Append(usize),
    /// The transport stops (dropAfter, a 5xx, a network error the browser gave up on).
    Drop,
    /// The transport loses the connection and retries by itself with `Last-Event-ID`.
    TransportRetry,
    /// The connection goes silent past the heartbeat timeout.
    Stall,
    /// The next replay repeats its last `k` frames (the replay/live seam).
    DupSeam(usize),
    /// The server sends an older entry again on the live connection, out of order.
    Resend(usize),
    /// Time passes.
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..6).prop_map(Op::Append),
        2 => Just(Op::Drop),
        1 => Just(Op::TransportRetry),
        1 => Just(Op::Stall),
        2 => (1usize..8).prop_map(Op::DupSeam),
        2 => any::<usize>().prop_map(Op::Resend),
        2 => (0u64..3_000).prop_map(Op::Tick),
    ]
}

/// Position of an ordered id, to check that the cursor never moves back.
fn rank(style: IdStyle, id: &str) -> Option<(u64, u64)> {
    match style {
        IdStyle::Numeric { .. } => id.parse().ok().map(|n| (n, 0)),
        IdStyle::Redis => {
            let (a, b) = id.split_once('-')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        }
        IdStyle::Opaque => None,
    }
}

fn run_ops(style: IdStyle, from: StartFrom, ops: &[Op]) -> Result<(), TestCaseError> {
    let config = SessionConfig {
        from,
        seed: 7,
        ..quick_config()
    };
    let mut sim = Sim::new(config, style);
    let mut last_rank = None;
    for op in ops {
        match op {
            Op::Append(n) => (0..*n).for_each(|_| sim.append("token")),
            Op::Drop => sim.drop_connection(),
            Op::TransportRetry => sim.transport_retry(),
            Op::Stall => sim.advance(5_000),
            Op::DupSeam(k) => {
                sim.dup_seam = *k;
                sim.drop_connection();
            }
            Op::Resend(j) => {
                if !sim.journal.is_empty()
                    && sim.conn.is_some()
                    && sim.session.state() == State::Live
                {
                    let live_from = sim.conn.as_ref().map_or(0, |c| c.live_from);
                    if live_from > 0 {
                        sim.send(j % live_from);
                        sim.pump();
                    }
                }
            }
            Op::Tick(ms) => sim.advance(*ms),
        }
        // The cursor never moves backwards.
        if let Some(cursor) = sim.session.cursor() {
            if let Some(r) = rank(style, &cursor.id) {
                prop_assert!(
                    last_rank.is_none_or(|last| r >= last),
                    "cursor moved back to {}",
                    cursor.id
                );
                last_rank = Some(r);
            } else {
                prop_assert_eq!(Some(&cursor.id), sim.delivered.last().map(|f| &f.id));
            }
        }
        prop_assert_eq!(sim.failures, 0);
    }
    // Finish the turn and let the session recover from whatever state the faults left.
    sim.dup_seam = 0;
    sim.append("done");
    for _ in 0..200 {
        if sim.session.state() == State::Closed {
            break;
        }
        if sim.conn.is_none() || sim.session.state() != State::Live {
            sim.fire_next_timer();
        } else {
            // Live but the done was sent before this connection joined: the journal replays it
            // on the next connection, so cut this one.
            sim.drop_connection();
        }
    }
    prop_assert_eq!(sim.session.state(), State::Closed);
    let start = match from {
        StartFrom::Start => 0,
        StartFrom::Now => sim.first_ready_at.unwrap_or(0),
    };
    prop_assert_eq!(
        sim.delivered_ids(),
        sim.journal_ids(start),
        "exactly once, in order"
    );
    prop_assert_eq!(
        sim.session.stats().delivered as usize,
        sim.journal.len() - start
    );
    prop_assert_eq!(
        &sim.opens,
        &sim.closes,
        "every connection closed exactly once"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Replays, live frames, seam duplicates, out-of-order resends, drops, transport retries and
    /// stalls, in any interleaving: the application sees the journal exactly once, in order.
    #[test]
    fn any_interleaving_is_delivered_exactly_once_in_order(
        style in id_style(),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        run_ops(style, StartFrom::Start, &ops)?;
    }

    /// The same from the tail (`from=now`): everything after the join, exactly once.
    #[test]
    fn from_now_delivers_everything_after_the_join(
        style in id_style(),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        run_ops(style, StartFrom::Now, &ops)?;
    }

    /// Frames repeated anywhere after their first appearance are dropped; first appearances
    /// come through in order.
    #[test]
    fn dedup_window_admits_each_id_once(
        style in id_style(),
        n in 1usize..300,
        repeats in prop::collection::vec((any::<usize>(), any::<usize>()), 0..300),
    ) {
        let order = match style {
            IdStyle::Opaque => CursorOrder::Opaque,
            _ => CursorOrder::Auto,
        };
        let mut window = DedupWindow::new(order, 4096);
        let ids: Vec<String> = (0..n).map(|i| style.id(i)).collect();
        let mut wire: Vec<usize> = (0..n).collect();
        for (at, back) in repeats {
            // Insert a copy of an entry that already appeared before position `at`.
            let at = at % (wire.len() + 1);
            if at == 0 { continue; }
            let copy = wire[back % at];
            wire.insert(at, copy);
        }
        let mut admitted = Vec::new();
        for i in wire {
            if window.admit(&ids[i]).unwrap() == Verdict::New {
                admitted.push(i);
            }
        }
        prop_assert_eq!(admitted, (0..n).collect::<Vec<_>>());
    }

    /// Arbitrary ids, event names, data and input orders never panic, and never deliver a
    /// frame twice within an epoch.
    #[test]
    fn arbitrary_input_never_panics(
        inputs in prop::collection::vec(
            (0u8..7, 0u64..4, prop_oneof![Just("ready".to_string()), Just("done".to_string()), Just("ping".to_string()), Just("token".to_string()), any::<String>()],
             prop::option::of(prop_oneof![any::<String>(), "[0-9]{1,20}", "[0-9]{1,3}-[0-9]{1,3}"]),
             prop_oneof![any::<String>(), "\\{\"tail\":(null|\"[0-9]{1,3}\"|[0-9]{1,3}),\"epoch\":\"e[12]\"\\}"],
             0u64..20_000),
            0..80),
        order in prop_oneof![Just(CursorOrder::Auto), Just(CursorOrder::Numeric), Just(CursorOrder::Redis), Just(CursorOrder::Opaque)],
        from_now in any::<bool>(),
    ) {
        let config = SessionConfig {
            cursor_order: order,
            from: if from_now { StartFrom::Now } else { StartFrom::Start },
            dedup_window: 16,
            ..quick_config()
        };
        let mut now = 0;
        let mut s = Session::new(config, Timestamp::from_millis(now)).unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut open = 0u32;
        let mut opened = Opened::default();
        opened.drain(&mut s, &mut open)?;
        for (kind, conn, event, id, data, dt) in inputs {
            now += dt;
            let t = Timestamp::from_millis(now);
            let c = opened.pick(conn);
            match kind {
                0..=2 => s.handle_frame(c, RawEvent { event: &event, id: id.as_deref(), data: &data }, t),
                3 => s.handle_error(c, t),
                4 => s.handle_closed(c, Disconnect::Ended, t),
                5 => s.handle_timeout(t),
                _ => s.handle_connected(c, t),
            }
            opened.drain(&mut s, &mut open)?;
            while let Some(e) = s.poll_event() {
                match e {
                    Event::Frame(f) => prop_assert!(seen.insert(f.id.clone()), "{} twice", f.id),
                    Event::Reset { .. } => seen.clear(),
                    _ => {}
                }
            }
            prop_assert!(s.dedup_retained() <= 16);
        }
    }

    /// Without a `ready` frame nothing is delivered, nothing reports ready, and the timeout
    /// fails the stream closed.
    #[test]
    fn the_ready_gate_fails_closed(
        inputs in prop::collection::vec((0u8..4, "[a-z]{1,6}", prop::option::of("[0-9]{1,4}"), any::<String>(), 0u64..400), 0..40),
    ) {
        let mut s = Session::new(quick_config(), Timestamp::from_millis(0)).unwrap();
        let mut now = 0;
        let (mut opened, mut open, mut failures) = (Opened::default(), 0, 0u32);
        opened.drain(&mut s, &mut open)?;
        for (kind, event, id, data, dt) in inputs {
            now += dt;
            let t = Timestamp::from_millis(now);
            let c = opened.pick(0);
            let event = if event == "ready" { "token".to_string() } else { event };
            match kind {
                0 | 1 => s.handle_frame(c, RawEvent { event: &event, id: id.as_deref(), data: &data }, t),
                2 => s.handle_closed(c, Disconnect::Failed, t),
                _ => s.handle_timeout(t),
            }
            opened.drain(&mut s, &mut open)?;
            while let Some(e) = s.poll_event() {
                prop_assert!(!matches!(e, Event::Ready(_) | Event::Frame(_)), "{e:?}");
                failures += u32::from(matches!(e, Event::Failed(_)));
            }
        }
        s.handle_timeout(Timestamp::from_millis(now.max(1_000)));
        opened.drain(&mut s, &mut open)?;
        while let Some(e) = s.poll_event() {
            failures += u32::from(matches!(e, Event::Failed(_)));
        }
        prop_assert_eq!(failures, 1, "the stream fails exactly once");
        prop_assert_eq!(open, 0, "and its connection is closed");
        prop_assert_eq!(s.state(), State::Closed);
        prop_assert_eq!(s.poll_timeout(), None);
    }

    /// Every delay is within `[0, min(cap, base * 2^attempt)]`.
    #[test]
    fn backoff_stays_within_its_bounds(base in 1u64..5_000, extra in 0u64..60_000, seed in any::<u64>()) {
        let policy = BackoffPolicy { base: Duration::from_millis(base), cap: Duration::from_millis(base + extra) };
        let mut backoff = Backoff::new(policy, seed);
        for attempt in 0..40 {
            let delay = backoff.next_delay();
            prop_assert!(delay <= policy.ceiling(attempt));
            prop_assert!(delay <= policy.cap);
        }
        backoff.reset();
        prop_assert!(backoff.next_delay() <= policy.base);
    }
}

/// Connections the session opened, newest last, so inputs can name the current one or a stale one.
#[derive(Default)]
struct Opened(Vec<ConnectionId>);

impl Opened {
    /// Performs the queued commands; checks that at most one connection is open at a time.
    fn drain(&mut self, s: &mut Session, open: &mut u32) -> Result<(), TestCaseError> {
        while let Some(cmd) = s.poll_command() {
            match cmd {
                Command::Open(request) => {
                    self.0.push(request.connection);
                    *open += 1;
                }
                Command::Close(_) => *open -= 1,
            }
            prop_assert!(*open <= 1, "at most one connection at a time");
        }
        Ok(())
    }

    /// `back` connections before the newest (0 is the newest).
    fn pick(&self, back: u64) -> ConnectionId {
        let back = (back as usize).min(self.0.len() - 1);
        self.0[self.0.len() - 1 - back]
    }
}

#[test]
fn dedup_window_memory_is_bounded_over_a_million_ids() {
    let mut opaque = DedupWindow::new(CursorOrder::Opaque, 4096);
    let mut numeric = DedupWindow::new(CursorOrder::Auto, 4096);
    for i in 0..1_000_000u64 {
        assert_eq!(opaque.admit(&format!("id-{i:x}")), Ok(Verdict::New));
        assert_eq!(numeric.admit(&i.to_string()), Ok(Verdict::New));
        if i % 65_536 == 0 {
            assert!(opaque.retained() <= 4096);
        }
    }
    assert_eq!(opaque.retained(), 4096);
    assert_eq!(numeric.retained(), 1);
    // The most recent ids are still recognised.
    assert_eq!(opaque.admit("id-f423f"), Ok(Verdict::Duplicate));
}

mod tab_messages {
    use proptest::prelude::*;
    use sse_relay::core::{Cursor, Frame, Previous, TabBuffer, TabMessage, MAX_TERM};

    fn frame() -> impl Strategy<Value = Frame> {
        ("[0-9]{1,6}|[a-z_-]{1,8}", "[a-z]{1,8}", any::<String>())
            .prop_map(|(id, event, data)| Frame { id, event, data })
    }

    proptest! {
        /// Whatever a page posts on the channel, decoding never panics.
        #[test]
        fn decoding_never_panics(text in any::<String>()) {
            let _ = TabMessage::decode(&text);
        }

        /// Every message survives its encoding, whatever the frames contain.
        #[test]
        fn messages_round_trip(frames in prop::collection::vec(frame(), 0..20), term in 0..=MAX_TERM, epoch in "[a-z0-9-]{1,12}", complete in any::<bool>()) {
            let messages = [
                TabMessage::Frames { from: "leader".into(), term, seq: 1, epoch: epoch.clone(), frames: frames.clone() },
                TabMessage::Welcome { from: "leader".into(), term, seq: 2, to: "f".into(), after: None, tail: frames.last().map(|f| f.id.clone()), epoch, frames, complete },
            ];
            for m in messages {
                prop_assert_eq!(TabMessage::decode(&m.encode()), Ok(m));
            }
        }

        /// A catch-up never hands back a frame at or before the follower's cursor, and a
        /// complete one from a cursor in the buffer is exactly what came after it.
        #[test]
        fn catch_up_is_the_suffix_after_the_cursor(n in 1usize..60, capacity in 1usize..40, at in any::<prop::sample::Index>()) {
            let mut buffer = TabBuffer::new(capacity);
            let ids: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
            for (i, id) in ids.iter().enumerate() {
                let previous = if i == 0 { Previous::EpochStart } else { Previous::Id(&ids[i - 1]) };
                buffer.push(Frame { id: id.clone(), event: "token".into(), data: String::new() }, "e", previous);
            }
            let cursor_index = at.index(n);
            let cursor = Cursor { id: ids[cursor_index].clone(), epoch: "e".into() };
            let catch_up = buffer.catch_up(Some(&cursor), false);
            let got: Vec<&str> = catch_up.frames.iter().map(|f| f.id.as_str()).collect();
            let expected: Vec<&str> = ids[cursor_index + 1..].iter().map(String::as_str).collect();
            let oldest_kept = n.saturating_sub(capacity); // index of the first buffered frame
            if cursor_index + 1 >= oldest_kept {
                prop_assert!(catch_up.complete);
                prop_assert_eq!(got, expected);
            } else {
                prop_assert!(!catch_up.complete);
                prop_assert!(got.is_empty());
            }
        }
    }
}

/// A Durable Stream read by one session across cuts: the server batches every read differently
/// (sizes drawn per batch), a connection may end anywhere (even between a batch's `data` and its
/// `control`, leaving the cursor inside a batch), and the session resumes from its own query.
mod durable_streams {
    use super::*;
    use sse_relay::core::ServerProfile;

    /// One read: batch sizes to use in turn, and after how many events the server ends it.
    #[derive(Clone, Debug)]
    struct Read {
        batches: Vec<usize>,
        cut_after: usize,
    }

    fn read() -> impl Strategy<Value = Read> {
        // A read ends after its first batch at the earliest: a server that never sends a
        // `control` gives no offset to go on from, and no client can progress.
        (prop::collection::vec(1usize..6, 1..6), 2usize..12)
            .prop_map(|(batches, cut_after)| Read { batches, cut_after })
    }

    /// Moves the session's frames into `delivered` (`done` apart); returns its failures.
    fn take(s: &mut Session, delivered: &mut Vec<String>, done: &mut bool) -> Vec<Event> {
        let mut failed = Vec::new();
        while let Some(event) = s.poll_event() {
            match event {
                Event::Frame(f) if f.event == "done" => *done = true,
                Event::Frame(f) => delivered.push(f.data),
                e @ Event::Failed(_) => failed.push(e),
                _ => {}
            }
        }
        failed
    }

    fn offset(position: usize) -> String {
        format!("o{position:04}")
    }

    fn position(offset: &str) -> usize {
        match offset {
            "-1" => 0,
            o => o[1..].parse().expect("an offset this server gave"),
        }
    }

    proptest! {
        #[test]
        fn any_batching_and_any_cut_deliver_each_message_once_in_order(
            n in 0usize..40,
            reads in prop::collection::vec(read(), 1..12),
        ) {
            let config = SessionConfig {
                server_profile: ServerProfile::DurableStreams,
                ..quick_config()
            };
            let mut now = 0u64;
            let mut s = Session::new(config, Timestamp::from_millis(now)).unwrap();
            let mut delivered: Vec<String> = Vec::new();
            let mut done = false;
            // Reads beyond the drawn ones never cut, so the stream always ends.
            for r in 0..reads.len() + 2 {
                let plan = reads.get(r).cloned().unwrap_or(Read { batches: vec![3], cut_after: usize::MAX });
                let open = loop {
                    match s.poll_command() {
                        Some(Command::Open(open)) => break open,
                        Some(_) => {}
                        None => {
                            let failed = take(&mut s, &mut delivered, &mut done);
                            prop_assert!(failed.is_empty() && s.state() != State::Closed, "the stream ended: {failed:?}");
                            let at = s.poll_timeout().expect("a reconnect is scheduled");
                            now = now.max(at.as_millis());
                            s.handle_timeout(Timestamp::from_millis(now));
                        }
                    }
                };
                let asked = open.query.iter().find(|(k, _)| k == "offset").map(|(_, v)| v.clone());
                let mut at = position(&asked.expect("an offset"));
                prop_assert!(at <= n, "asked offset {at} past the stream's {n} messages");
                s.handle_connected(open.connection, Timestamp::from_millis(now));
                let mut events = 0usize;
                let mut b = 0usize;
                while events < plan.cut_after {
                    if at == n {
                        let close = format!(r#"{{"streamNextOffset":"{}","streamClosed":true}}"#, offset(at));
                        s.handle_frame(open.connection, RawEvent { event: "control", id: None, data: &close }, Timestamp::from_millis(now));
                        break;
                    }
                    let size = plan.batches[b % plan.batches.len()].min(n - at);
                    b += 1;
                    let items: Vec<String> = (at..at + size).map(|m| m.to_string()).collect();
                    let data = format!("[{}]", items.join(","));
                    s.handle_frame(open.connection, RawEvent { event: "data", id: None, data: &data }, Timestamp::from_millis(now));
                    at += size;
                    events += 1;
                    if events >= plan.cut_after {
                        break; // cut between the batch and its control
                    }
                    let control = format!(r#"{{"streamNextOffset":"{}","upToDate":{}}}"#, offset(at), at == n);
                    s.handle_frame(open.connection, RawEvent { event: "control", id: None, data: &control }, Timestamp::from_millis(now));
                    events += 1;
                }
                let failed = take(&mut s, &mut delivered, &mut done);
                prop_assert!(failed.is_empty(), "the stream failed: {failed:?}");
                if done {
                    break;
                }
                now += 300;
                s.handle_closed(open.connection, Disconnect::Ended, Timestamp::from_millis(now));
            }
            let want: Vec<String> = (0..n).map(|m| m.to_string()).collect();
            prop_assert_eq!(delivered, want);
            prop_assert!(done, "the close ends the stream");
        }
    }
}
