//! The checks over every connection the run opened: whatever a check staged, these rules hold
//! on each of its connections.

use std::collections::{HashMap, HashSet};

use sse_relay::core::{CursorOrder, DedupWindow, ReadyInfo, ResolvedOrder, Verdict};

use super::checks::{Check, Findings, Outcome};
use super::conn::{Conn, What};
use crate::net::is_event_stream;

/// `200 text/event-stream` on every connection.
pub fn content_type(conns: &[Conn]) -> Outcome {
    let mut findings = Findings::default();
    for conn in conns {
        match conn.status {
            None => findings.found(format!(
                "{}: no response ({})",
                conn.describe(),
                conn.stopped().map(ToString::to_string).unwrap_or_default()
            )),
            Some(200) if is_event_stream(conn.content_type.as_deref()) => {}
            Some(status) => findings.found(format!(
                "{}: {status} with Content-Type {:?} {:?}",
                conn.describe(),
                conn.content_type.as_deref().unwrap_or("(none)"),
                conn.body_preview.as_deref().unwrap_or("")
            )),
        }
    }
    findings.outcome(
        Check::ContentType,
        format!("{} responses, each 200 text/event-stream", conns.len()),
        "a response was not 200 text/event-stream".into(),
    )
}

/// `ready` first on every connection, without an id, with a readable payload.
pub fn ready_first(conns: &[Conn]) -> Outcome {
    let mut findings = Findings::default();
    let mut checked = 0;
    for conn in conns.iter().filter(|c| c.is_ok()) {
        checked += 1;
        let Some(first) = conn.events().next() else {
            findings.found(format!(
                "{}: no event at all; received: {}",
                conn.describe(),
                conn.received_since(0)
            ));
            continue;
        };
        if first.event != "ready" {
            findings.found(format!(
                "{}: the first event was {first}, not ready",
                conn.describe()
            ));
            continue;
        }
        if let Some(id) = &first.id {
            findings.found(format!(
                "{}: ready carries id {id:?} (it is not journaled; an id there moves the browser's Last-Event-ID)",
                conn.describe()
            ));
        }
        if let Err(err) = ReadyInfo::parse(&first.data) {
            findings.found(format!(
                "{}: ready {:?}: {err}",
                conn.describe(),
                first.data
            ));
        }
    }
    findings.outcome(
        Check::ReadyFirst,
        format!("{checked} connections: ready first, no id, tail and epoch"),
        "a connection did not start with a proper ready".into(),
    )
}

/// Every journaled frame with its own id and a data line.
pub fn journaled_frames(conns: &[Conn]) -> Outcome {
    let mut findings = Findings::default();
    let mut frames = 0;
    for conn in conns {
        for seen in &conn.seen {
            match &seen.what {
                What::Event(ev) if ev.journaled() => {
                    frames += 1;
                    if ev.id.is_none() {
                        findings.found(format!(
                            "{}: {ev} at {} ms has no id of its own",
                            conn.describe(),
                            seen.at_ms
                        ));
                    }
                }
                What::NoData { id: Some(id), raw } => findings.found(format!(
                    "{}: the frame with id {id:?} has no data line, so EventSource drops it: {raw:?}",
                    conn.describe()
                )),
                _ => {}
            }
        }
    }
    findings.outcome(
        Check::JournaledFrames,
        format!("{frames} journaled frames, each with its own id and data"),
        "journaled frames without an id of their own or without data".into(),
    )
}

/// The spelling of a resolved order.
fn order_name(order: Option<ResolvedOrder>) -> &'static str {
    match order {
        Some(ResolvedOrder::Numeric) => "numeric",
        Some(ResolvedOrder::Redis) => "redis",
        Some(ResolvedOrder::Opaque) => "opaque (no order to check)",
        None => "no ids",
    }
}

/// Ids increasing in the declared order on every connection, above its floor.
pub fn id_order(conns: &[Conn], declared: CursorOrder) -> Outcome {
    let mut findings = Findings::default();
    let mut orders = HashSet::new();
    let mut ids = 0;
    for conn in conns {
        let mut window = DedupWindow::new(declared, 1 << 16);
        let mut here: HashSet<&str> = HashSet::new();
        let mut last: Option<&str> = None;
        if let Some(floor) = &conn.floor {
            if let Err(err) = window.start_after(floor) {
                findings.found(format!("{}: the cursor {floor:?}: {err}", conn.describe()));
                continue;
            }
        }
        for ev in conn.events().filter(|ev| ev.journaled()) {
            let Some(id) = ev.id.as_deref() else { continue };
            if !here.insert(id) {
                continue; // sent again: the seam check's business
            }
            ids += 1;
            match window.admit(id) {
                Ok(Verdict::New) => {}
                Ok(Verdict::Duplicate | Verdict::BeforeStart) => {
                    let after = match (last, &conn.floor) {
                        (Some(last), _) => format!("after {last:?}"),
                        (None, Some(floor)) => {
                            format!("at or below the ready tail {floor:?}")
                        }
                        (None, None) => "out of order".to_owned(),
                    };
                    findings.found(format!(
                        "{}: id {id:?} came {after} ({})",
                        conn.describe(),
                        order_name(window.order())
                    ));
                }
                Err(err) => findings.found(format!("{}: {err}", conn.describe())),
            }
            last = Some(id);
        }
        if let Some(order) = window.order() {
            orders.insert(order_name(Some(order)));
        }
    }
    let mut orders: Vec<&str> = orders.into_iter().collect();
    orders.sort_unstable();
    findings.outcome(
        Check::IdOrder,
        format!(
            "{ids} ids on {} connections increased in order ({})",
            conns.len(),
            orders.join(", ")
        ),
        format!("ids did not increase in the {} order", declared.as_str()),
    )
}

/// Any entry sent twice on one connection carries the same id each time (the seam check's rule
/// on every connection).
pub fn repeats_keep_their_id(conns: &[Conn], findings: &mut Findings) -> usize {
    let mut repeats = 0;
    for conn in conns {
        let mut ids: HashMap<(&str, &str), Option<&str>> = HashMap::new();
        for ev in conn.events().filter(|ev| ev.journaled()) {
            match ids.get(&(ev.event.as_str(), ev.data.as_str())) {
                None => {
                    ids.insert((&ev.event, &ev.data), ev.id.as_deref());
                }
                Some(first) => {
                    repeats += 1;
                    if *first != ev.id.as_deref() || first.is_none() {
                        findings.found(format!(
                            "{}: {} {:?} came as {} and again as {}",
                            conn.describe(),
                            ev.event,
                            ev.data,
                            first.map_or("a frame without id".to_owned(), |id| format!("id {id}")),
                            ev.id
                                .as_deref()
                                .map_or("a frame without id".to_owned(), |id| format!("id {id}")),
                        ));
                    }
                }
            }
        }
    }
    repeats
}
