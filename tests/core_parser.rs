//! Property tests of the event-stream parser (`sse_relay::core::SseParser`): the way a body is cut
//! into chunks never changes what it parses to; it agrees with a naive model written from the
//! WHATWG text (`sse_reference`); any bytes at all are handled without panicking; and frames a
//! server renders parse back as they were.
#![cfg(not(target_arch = "wasm32"))]

mod sse_reference;

use proptest::prelude::*;
use proptest::sample::Index;
use sse_reference::{Frame, Item};
use sse_relay::core::{Parsed, ParserLimits, SseParser};

/// Drains everything queued, owned.
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

/// How the caller drains the parser.
#[derive(Clone, Copy, Debug)]
enum Drain {
    /// After every chunk (the shell's way).
    EachChunk,
    /// Only at the end: the arena keeps growing and must keep every item valid.
    AtEnd,
}

/// Feeds `input` cut at `cuts` (positions, any order, repeats allowed), then finishes.
fn parse(limits: ParserLimits, input: &[u8], cuts: &[usize], drain_mode: Drain) -> Vec<Item> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    cuts.sort_unstable();
    let mut parser = SseParser::with_limits(limits);
    let mut out = Vec::new();
    let mut start = 0;
    for end in cuts.into_iter().chain([input.len()]) {
        parser.feed(&input[start..end]);
        start = end;
        if let Drain::EachChunk = drain_mode {
            drain(&mut parser, &mut out);
        }
    }
    parser.finish();
    drain(&mut parser, &mut out);
    out
}

fn whole(limits: ParserLimits, input: &[u8]) -> Vec<Item> {
    parse(limits, input, &[], Drain::EachChunk)
}

/// Bytes that look like an event stream, with everything that makes parsing hard: every line
/// end, BOMs, NUL, multi-byte and invalid UTF-8, colons and spaces in odd places.
fn stream_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        4 => Just(b"data".to_vec()),
        2 => Just(b"event".to_vec()),
        2 => Just(b"id".to_vec()),
        1 => Just(b"retry".to_vec()),
        1 => Just(b"dat".to_vec()),
        4 => Just(b":".to_vec()),
        3 => Just(b": ".to_vec()),
        2 => Just(b" ".to_vec()),
        5 => Just(b"\n".to_vec()),
        3 => Just(b"\r".to_vec()),
        3 => Just(b"\r\n".to_vec()),
        1 => Just(b"\xEF\xBB\xBF".to_vec()),
        1 => Just(b"\xEF\xBB".to_vec()),
        1 => Just(b"\0".to_vec()),
        2 => Just("é😀世".as_bytes().to_vec()),
        2 => prop::sample::select(vec![0x80u8, 0xC3, 0xE2, 0xF0, 0xFF, 0xED, 0xC0]).prop_map(|b| vec![b]),
        3 => "[a-z0-9]{1,6}".prop_map(String::into_bytes),
        1 => "[0-9]{1,25}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(token, 0..80).prop_map(|tokens| tokens.concat())
}

fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..12)
}

fn positions(cuts: &[Index], len: usize) -> Vec<usize> {
    cuts.iter().map(|c| c.index(len + 1)).collect()
}

fn small_limits() -> impl Strategy<Value = ParserLimits> {
    prop_oneof![
        Just(ParserLimits::default()),
        (0usize..40, 0usize..60).prop_map(|(line, data)| ParserLimits {
            max_line_len: line,
            max_data_len: data,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_chunking_parses_like_the_whole_stream(
        input in stream_bytes(),
        cuts in cuts(),
        limits in small_limits(),
    ) {
        let expected = whole(limits, &input);
        let cuts = positions(&cuts, input.len());
        prop_assert_eq!(&parse(limits, &input, &cuts, Drain::EachChunk), &expected);
        prop_assert_eq!(&parse(limits, &input, &cuts, Drain::AtEnd), &expected);
    }

    #[test]
    fn the_parser_agrees_with_the_naive_model(input in stream_bytes(), cuts in cuts()) {
        let expected = sse_reference::parse(&input);
        let cuts = positions(&cuts, input.len());
        prop_assert_eq!(whole(ParserLimits::default(), &input), expected.clone());
        prop_assert_eq!(
            parse(ParserLimits::default(), &input, &cuts, Drain::EachChunk),
            expected
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_keep_their_limits(
        input in prop::collection::vec(any::<u8>(), 0..3000),
        cuts in cuts(),
        limits in small_limits(),
    ) {
        let cuts = positions(&cuts, input.len());
        let items = parse(limits, &input, &cuts, Drain::EachChunk);
        for item in &items {
            if let Item::Event { data, .. } = item {
                prop_assert!(data.len() <= limits.max_data_len);
            }
        }
        prop_assert_eq!(items, whole(limits, &input));
    }

    #[test]
    fn rendered_frames_parse_back(
        frames in prop::collection::vec(frame(), 0..20),
        line_end in prop::sample::select(vec!["\n", "\r", "\r\n"]),
        bom in any::<bool>(),
        cuts in cuts(),
    ) {
        let input = sse_reference::render(&frames, line_end, bom);
        let cuts = positions(&cuts, input.len());
        let got = parse(ParserLimits::default(), &input, &cuts, Drain::EachChunk);
        // The id persists from frame to frame until the next `id:` line; empty means none.
        let mut id = None;
        let expected: Vec<Item> = frames
            .iter()
            .map(|f| {
                if let Some(new) = &f.id {
                    id = (!new.is_empty()).then(|| new.clone());
                }
                Item::Event {
                    event: f.event.clone().unwrap_or_else(|| "message".into()),
                    id: id.clone(),
                    data: f.data.clone(),
                }
            })
            .collect();
        prop_assert_eq!(got, expected);
    }
}

/// A frame a server may send: any data without CR (a CR would be a line end; `\n` starts a new
/// `data:` line), an id without line ends or NUL, an event name.
fn frame() -> impl Strategy<Value = Frame> {
    (
        prop::option::of("[a-z][a-z0-9_.-]{0,10}"),
        prop::option::of("[^\r\n\u{0}]{0,12}"),
        "[^\r]{0,40}",
    )
        .prop_map(|(event, id, data)| Frame { event, id, data })
}

#[test]
fn the_model_reads_the_whatwg_examples_like_the_parser() {
    // A sanity check of the model itself, so the differential property means something.
    for stream in [
        &b"data: YHOO\ndata: +2\ndata: 10\n\n"[..],
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
        b"data\n\ndata\ndata\n\ndata:",
        b"data:test\n\ndata: test\n\n",
    ] {
        assert_eq!(
            sse_reference::parse(stream),
            whole(ParserLimits::default(), stream)
        );
    }
    assert_eq!(
        sse_reference::parse(b"data: YHOO\ndata: +2\ndata: 10\n\n"),
        [Item::Event {
            event: "message".into(),
            id: None,
            data: "YHOO\n+2\n10".into()
        }]
    );
}

#[test]
fn a_large_stream_in_odd_chunks_parses_every_frame() {
    // 20,000 frames in chunks of 4093 bytes (a prime, so boundaries fall everywhere), like a
    // fetch body, drained after each chunk.
    let frames: Vec<Frame> = (1..=20_000)
        .map(|i| Frame {
            event: Some("token".into()),
            id: Some(i.to_string()),
            data: format!("{{\"i\":{i},\"text\":\"tok\u{e9}n\"}}"),
        })
        .collect();
    let input = sse_reference::render(&frames, "\r\n", false);
    let cuts: Vec<usize> = (1..input.len() / 4093).map(|k| k * 4093).collect();
    let got = parse(ParserLimits::default(), &input, &cuts, Drain::EachChunk);
    assert_eq!(got.len(), 20_000);
    assert_eq!(
        got[19_999],
        Item::Event {
            event: "token".into(),
            id: Some("20000".into()),
            data: "{\"i\":20000,\"text\":\"tok\u{e9}n\"}".into()
        }
    );
}
