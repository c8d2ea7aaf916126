//! Fuzzes `SseParser` with arbitrary bytes in arbitrary chunkings.
//!
//! Input layout (so libFuzzer's mutations reach every knob):
//! - byte 0: bit 0 = drain only at the end instead of after each chunk; bit 1 = small limits;
//! - bytes 1, 2: the small limits (line length up to 63, data length up to 127);
//! - byte 3: how many cuts (0 to 15), then 2 bytes per cut (a position, modulo the length);
//! - the rest: the stream.
//!
//! Checks: cut anywhere, the stream parses exactly as when fed whole; with the default limits
//! it parses exactly as the naive WHATWG model in `tests/sse_reference`; no event's data is over
//! its limit; nothing panics (also when the parser is reused after `finish`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_relay::core::{Parsed, ParserLimits, SseParser};

#[path = "../../tests/sse_reference/mod.rs"]
mod sse_reference;

use sse_reference::Item;

fuzz_target!(|input: &[u8]| check(input));

fn check(input: &[u8]) {
    let byte = |i: usize| input.get(i).copied().unwrap_or(0);
    let drain_at_end = byte(0) & 1 != 0;
    let small = byte(0) & 2 != 0;
    let limits = if small {
        ParserLimits {
            max_line_len: usize::from(byte(1) % 64),
            max_data_len: usize::from(byte(2) % 128),
        }
    } else {
        ParserLimits::default()
    };
    let cut_count = usize::from(byte(3) % 16);
    let header = (4 + 2 * cut_count).min(input.len());
    let stream = &input[header..];
    let mut cuts: Vec<usize> = input[4.min(input.len())..header]
        .chunks_exact(2)
        .map(|pair| usize::from(u16::from_le_bytes([pair[0], pair[1]])) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();

    let whole = parse(limits, stream, &[], false);
    let chunked = parse(limits, stream, &cuts, drain_at_end);
    assert_eq!(chunked, whole, "chunking changed the parse; cuts {cuts:?}");
    for item in &whole {
        if let Item::Event { data, .. } = item {
            assert!(data.len() <= limits.max_data_len, "data over its limit");
        }
    }
    if !small {
        // Fuzz inputs are far below the default limits, so no limit error can differ.
        assert_eq!(
            whole,
            sse_reference::parse(stream),
            "differs from the model"
        );
    }
}

fn parse(limits: ParserLimits, stream: &[u8], cuts: &[usize], drain_at_end: bool) -> Vec<Item> {
    let mut parser = SseParser::with_limits(limits);
    let mut out = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([stream.len()]) {
        parser.feed(&stream[start..end]);
        start = end;
        if !drain_at_end {
            drain(&mut parser, &mut out);
        }
    }
    parser.finish();
    drain(&mut parser, &mut out);
    // Reuse after finish must be safe too (its output is not compared: ids carry over).
    parser.feed(stream);
    while parser.poll().is_some() {}
    out
}

fn drain(parser: &mut SseParser, out: &mut Vec<Item>) {
    while let Some(item) = parser.poll() {
        out.push(match item {
            Parsed::Event(e) => Item::Event {
                event: e.event.to_owned(),
                id: e.id.map(str::to_owned),
                data: e.data.to_owned(),
            },
            Parsed::Comment => Item::Comment,
            Parsed::Retry(delay) => Item::Retry(u64::try_from(delay.as_millis()).unwrap()),
            Parsed::Error(error) => Item::Error(error.to_string()),
            other => panic!("a new kind of item: {other:?}"),
        });
    }
}
