//! What the proxy sends for an event stream, chunk by chunk: the upstream's bytes unchanged, with
//! faults acting only *between* frames (after the N-th journaled frame, after the first event) or
//! at once (a live cut or stall). Pure: the server feeds it chunks and live faults and sends what
//! it returns.

use bytes::Bytes;

use crate::framing::{classify, FrameClass, FrameSplitter};

/// What to do next on the response to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes as one chunk.
    Send(Bytes),
    /// End the response (after what was sent before).
    End,
    /// Send nothing more, not even what the upstream sends, but keep the connection open.
    Stall,
}

/// A fault sent to open streams through the control endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Live {
    /// End the response now.
    Cut,
    /// Go silent now.
    Stall,
    /// Inject noise at the next frame boundary (now, if the stream is between frames).
    Garbage(Bytes),
}

/// The frame faults of one connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// End after this many journaled frames.
    pub cut_after: Option<u64>,
    /// Stall after this many journaled frames.
    pub stall_after: Option<u64>,
    /// Frames to resend right after the first event (a seam).
    pub seam: Vec<Bytes>,
    /// Noise to send right after the first event.
    pub garbage: Option<Bytes>,
}

/// Noise that is not journal entries, with events of type `event`: a comment, a frame whose `id:`
/// line is empty, one whose data is not UTF-8, and a `ready` whose data is not JSON. A correct
/// client ignores all of it (no frame has an id, so its cursor never moves).
pub fn garbage(event: &str) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(b": sse-relay-proxy garbage\n\n");
    for data in [
        &b"sse-relay-proxy garbage: no id"[..],
        b"\xff\xfe not UTF-8",
    ] {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.extend_from_slice(b"\nid:\ndata: ");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\n\n");
    }
    out.extend_from_slice(b"event: ready\ndata: {not json\n\n");
    Bytes::from(out)
}

/// The state of one shaped response.
#[derive(Debug)]
pub struct Shaper {
    plan: Plan,
    splitter: FrameSplitter,
    journaled: u64,
    saw_event: bool,
    /// Live noise waiting for the end of the frame in progress.
    pending: Vec<Bytes>,
    /// Journaled frames passed on since the last [`take_journaled`](Shaper::take_journaled).
    recent: Vec<Bytes>,
    stopped: Stopped,
}

/// Whether the response still passes the upstream's bytes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stopped {
    No,
    /// Silent, but a live cut still ends it.
    Stalled,
    Ended,
}

impl Shaper {
    /// A shaper for one response.
    pub fn new(plan: Plan) -> Shaper {
        Shaper {
            plan,
            splitter: FrameSplitter::new(),
            journaled: 0,
            saw_event: false,
            pending: Vec::new(),
            recent: Vec::new(),
            stopped: Stopped::No,
        }
    }

    /// Journaled frames passed on so far.
    pub fn journaled(&self) -> u64 {
        self.journaled
    }

    /// The journaled frames passed on since the last call (for the seams of later connections).
    pub fn take_journaled(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.recent)
    }

    /// The steps for the next upstream chunk.
    pub fn chunk(&mut self, chunk: Bytes) -> Vec<Step> {
        if self.stopped != Stopped::No {
            return Vec::new();
        }
        let mut steps = Vec::new();
        let mut from = 0;
        for boundary in self.splitter.push(&chunk) {
            let class = classify(&boundary.frame);
            let mut inject = Vec::new();
            if matches!(class, FrameClass::Event { .. }) && !self.saw_event {
                self.saw_event = true;
                inject.append(&mut self.plan.seam);
                inject.extend(self.plan.garbage.take());
            }
            let mut stop = None;
            if let FrameClass::Event { id: Some(_), .. } = class {
                self.journaled += 1;
                self.recent.push(Bytes::from(boundary.frame.bytes));
                if self.plan.cut_after == Some(self.journaled) {
                    stop = Some(Step::End);
                } else if self.plan.stall_after == Some(self.journaled) {
                    stop = Some(Step::Stall);
                }
            }
            inject.append(&mut self.pending);
            if inject.is_empty() && stop.is_none() {
                continue;
            }
            steps.push(Step::Send(chunk.slice(from..boundary.end)));
            from = boundary.end;
            steps.extend(inject.into_iter().map(Step::Send));
            if let Some(stop) = stop {
                self.stopped = if stop == Step::End {
                    Stopped::Ended
                } else {
                    Stopped::Stalled
                };
                steps.push(stop);
                return without_empty(steps);
            }
        }
        steps.push(Step::Send(chunk.slice(from..)));
        without_empty(steps)
    }

    /// The steps for a live fault. A stalled response still ends on a cut.
    pub fn live(&mut self, fault: Live) -> Vec<Step> {
        match (self.stopped, fault) {
            (Stopped::Ended, _) => Vec::new(),
            (_, Live::Cut) => {
                self.stopped = Stopped::Ended;
                vec![Step::End]
            }
            (Stopped::Stalled, _) => Vec::new(),
            (Stopped::No, Live::Stall) => {
                self.stopped = Stopped::Stalled;
                vec![Step::Stall]
            }
            (Stopped::No, Live::Garbage(noise)) if self.splitter.in_frame() => {
                self.pending.push(noise);
                Vec::new()
            }
            (Stopped::No, Live::Garbage(noise)) => vec![Step::Send(noise)],
        }
    }
}

fn without_empty(mut steps: Vec<Step>) -> Vec<Step> {
    steps.retain(|s| !matches!(s, Step::Send(b) if b.is_empty()));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    const READY: &[u8] = b"event: ready\ndata: {\"tail\":null,\"epoch\":\"e\"}\n\n";

    fn frame(id: u32) -> Vec<u8> {
        format!("id: {id}\nevent: token\ndata: t{id}\n\n").into_bytes()
    }

    fn stream(ids: std::ops::Range<u32>) -> Vec<u8> {
        let mut out = READY.to_vec();
        for id in ids {
            out.extend(frame(id));
        }
        out.extend_from_slice(b"event: ping\ndata:\n\n");
        out
    }

    /// Feeds `bytes` in chunks of `size`; returns what was sent and how it stopped.
    fn run(plan: Plan, bytes: &[u8], size: usize) -> (Vec<u8>, Option<Step>) {
        let mut shaper = Shaper::new(plan);
        let mut sent = Vec::new();
        for chunk in bytes.chunks(size) {
            for step in shaper.chunk(Bytes::copy_from_slice(chunk)) {
                match step {
                    Step::Send(b) => sent.extend_from_slice(&b),
                    stop => return (sent, Some(stop)),
                }
            }
        }
        (sent, None)
    }

    #[test]
    fn without_faults_every_byte_passes_in_any_chunking() {
        let bytes = stream(1..20);
        for size in [1, 2, 7, 64, 4096] {
            assert_eq!(run(Plan::default(), &bytes, size), (bytes.clone(), None));
        }
    }

    #[test]
    fn cut_and_stall_act_right_after_the_nth_journaled_frame() {
        let bytes = stream(1..20);
        let mut want = READY.to_vec();
        for id in 1..=5 {
            want.extend(frame(id));
        }
        for size in [1, 5, 4096] {
            let cut = Plan {
                cut_after: Some(5),
                ..Plan::default()
            };
            assert_eq!(
                run(cut, &bytes, size),
                (want.clone(), Some(Step::End)),
                "size {size}"
            );
            let stall = Plan {
                stall_after: Some(5),
                ..Plan::default()
            };
            assert_eq!(
                run(stall, &bytes, size),
                (want.clone(), Some(Step::Stall)),
                "size {size}"
            );
        }
    }

    #[test]
    fn seam_and_garbage_go_right_after_the_first_event() {
        let seam: Vec<Bytes> = [frame(3), frame(4)].map(Bytes::from).to_vec();
        let plan = Plan {
            seam: seam.clone(),
            garbage: Some(garbage("token")),
            ..Plan::default()
        };
        let bytes = stream(5..7);
        let mut want = READY.to_vec();
        want.extend(frame(3));
        want.extend(frame(4));
        want.extend_from_slice(&garbage("token"));
        want.extend_from_slice(&bytes[READY.len()..]);
        for size in [1, 3, 4096] {
            assert_eq!(run(plan.clone(), &bytes, size), (want.clone(), None));
        }
    }

    #[test]
    fn live_garbage_waits_for_the_end_of_the_frame_in_progress() {
        let mut shaper = Shaper::new(Plan::default());
        let mut sent = Vec::new();
        let mut send = |steps: Vec<Step>| {
            for step in steps {
                if let Step::Send(b) = step {
                    sent.extend_from_slice(&b);
                }
            }
        };
        send(shaper.chunk(Bytes::from_static(b"id: 1\ndata: a")));
        send(shaper.live(Live::Garbage(Bytes::from_static(b": g\n\n"))));
        send(shaper.chunk(Bytes::from_static(b"\n\nid: 2\ndata: b\n\n")));
        send(shaper.live(Live::Garbage(Bytes::from_static(b": h\n\n"))));
        assert_eq!(sent, b"id: 1\ndata: a\n\n: g\n\nid: 2\ndata: b\n\n: h\n\n");
        assert_eq!(shaper.live(Live::Stall), [Step::Stall]);
        assert!(shaper
            .chunk(Bytes::from_static(b"id: 3\ndata: c\n\n"))
            .is_empty());
        assert!(shaper
            .live(Live::Garbage(Bytes::from_static(b": i\n\n")))
            .is_empty());
        assert_eq!(
            shaper.live(Live::Cut),
            [Step::End],
            "a stalled response ends on a cut"
        );
        assert!(shaper.live(Live::Cut).is_empty());
    }

    #[test]
    fn journaled_frames_are_kept_for_later_seams() {
        let mut shaper = Shaper::new(Plan::default());
        shaper.chunk(Bytes::from(stream(1..4)));
        assert_eq!(shaper.journaled(), 3);
        let kept = shaper.take_journaled();
        assert_eq!(kept, [frame(1), frame(2), frame(3)].map(Bytes::from));
        assert!(shaper.take_journaled().is_empty());
    }

    #[test]
    fn the_noise_has_no_id_and_no_journaled_frame() {
        let noise = garbage("token");
        let mut splitter = FrameSplitter::new();
        for boundary in splitter.push(&noise) {
            assert_eq!(classify(&boundary.frame).id(), None);
        }
    }
}
