//! Producers: `POST /streams/{key}/turns` (a simulated LLM turn) and `POST /streams/{key}/fill`
//! (bench mode).

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::error::ApiError;
use crate::journal::{render_entries, Frame, Journal, JournalError, StreamKey, DONE_EVENT};
use crate::params::{self, Pairs, ParamError};
use crate::state::{shutdown_requested, App};

/// Most tokens one turn may produce.
pub const MAX_TOKENS: u64 = 1_000_000;
/// Most frames one fill may append.
pub const MAX_FILL_FRAMES: u64 = 2_000_000;
/// Largest `bytes` of one fill frame.
pub const MAX_FILL_BYTES: u64 = 64 * 1024;
/// Largest `frames × bytes` of one fill.
pub const MAX_FILL_TOTAL: u64 = 512 * 1024 * 1024;
/// Highest `rateHz`.
pub const MAX_RATE_HZ: f64 = 1_000_000.0;
/// Lowest non-zero `rateHz` (one token every 1000 s).
pub const MIN_RATE_HZ: f64 = 0.001;

/// Entries appended per lock hold by a fill or an unpaced turn: few enough that readers are
/// not kept waiting, many enough that each is one broadcast message a live reader keeps up with.
const BATCH: usize = 4096;

/// How long a producer keeps retrying an append while the journal is unavailable.
pub const PRODUCER_PATIENCE: Duration = Duration::from_secs(60);

/// Pause between two looks at a journal that was unavailable.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

const WORDS: [&str; 32] = [
    "the",
    "stream",
    "of",
    "tokens",
    "arrives",
    "in",
    "order",
    "and",
    "each",
    "frame",
    "carries",
    "its",
    "own",
    "id",
    "so",
    "a",
    "client",
    "can",
    "resume",
    "from",
    "where",
    "it",
    "stopped",
    "without",
    "losing",
    "or",
    "repeating",
    "anything",
    "while",
    "the",
    "model",
    "thinks",
];

/// The data of token `i` of a turn: `{"i":i,"text":"word "}`, words drawn by a fixed hash so a
/// turn reads like (rather odd) prose and is the same every time.
fn token_data(i: u64) -> String {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    let word = WORDS[(h % WORDS.len() as u64) as usize];
    format!("{{\"i\":{i},\"text\":\"{word} \"}}")
}

/// The data of fill frame `i`: `{"i":i,"pad":"xxx…"}` padded to about `bytes` bytes.
fn fill_data(i: u64, bytes: usize) -> String {
    let mut data = format!("{{\"i\":{i},\"pad\":\"");
    let pad = bytes.saturating_sub(data.len() + 2);
    data.push_str(&"x".repeat(pad));
    data.push_str("\"}");
    data
}

fn rate_param(pairs: &Pairs) -> Result<f64, ParamError> {
    let Some(value) = params::last(pairs, "rateHz") else {
        return Ok(50.0);
    };
    value
        .parse::<f64>()
        .ok()
        .filter(|r| *r == 0.0 || (MIN_RATE_HZ..=MAX_RATE_HZ).contains(r))
        .ok_or_else(|| ParamError {
            name: "rateHz",
            value: value.to_owned(),
            expected: "0 (as fast as possible) or a rate from 0.001 to 1000000 per second",
        })
}

/// Appends `frames` in batches of [`BATCH`], all in `epoch`; yields between batches.
async fn append_in_batches(
    journal: &dyn Journal,
    key: &StreamKey,
    epoch: &str,
    count: u64,
    data: impl Fn(u64) -> String,
) -> Result<(), JournalError> {
    let mut next = 0;
    while next < count {
        let end = count.min(next + BATCH as u64);
        let datas: Vec<String> = (next..end).map(&data).collect();
        let frames: Vec<Frame<'_>> = datas
            .iter()
            .map(|d| Frame {
                event: "token",
                data: d,
            })
            .collect();
        append_once(journal, key, &frames, epoch).await?;
        next = end;
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// Appends `frames` in `epoch`, riding out an unavailable journal (for up to
/// [`PRODUCER_PATIENCE`]) without appending anything twice: an attempt whose answer was lost may
/// still have landed (the engine may run it once it is back), so before trying again it
/// checks whether the journal's tail is exactly the last of `frames` (a turn's frames are
/// unique: each carries its index). Other errors end the producer.
async fn append_once(
    journal: &dyn Journal,
    key: &StreamKey,
    frames: &[Frame<'_>],
    epoch: &str,
) -> Result<(), JournalError> {
    let deadline = Instant::now() + PRODUCER_PATIENCE;
    let mut landed = false;
    while !landed {
        match journal.append(key, frames, Some(epoch)).await {
            Err(JournalError::Unavailable { .. }) if Instant::now() < deadline => {}
            other => return other.map(|_| ()),
        }
        landed = loop {
            tokio::time::sleep(RETRY_PAUSE).await;
            match tail_is(journal, key, epoch, frames.last()).await {
                Err(JournalError::Unavailable { .. }) if Instant::now() < deadline => continue,
                other => break other?,
            }
        };
    }
    Ok(())
}

/// Whether the last entry of `key` in `epoch` is exactly `frame` (an empty batch never landed).
async fn tail_is(
    journal: &dyn Journal,
    key: &StreamKey,
    epoch: &str,
    frame: Option<&Frame<'_>>,
) -> Result<bool, JournalError> {
    let head = journal.head(key).await?;
    if head.epoch != epoch {
        return Err(JournalError::EpochChanged {
            key: key.as_str().to_owned(),
        });
    }
    let (Some(frame), Some(tail)) = (frame, head.tail) else {
        return Ok(false);
    };
    let mut last = Vec::new();
    journal.read_last(key, epoch, tail, 1, &mut last).await?;
    let expected = render_entries([(tail, frame.event, frame.data)]);
    Ok(last.first().map(|e| &e.bytes) == expected.first().map(|e| &e.bytes))
}

/// Appends the `done` entry in `epoch`.
async fn append_done(
    journal: &dyn Journal,
    key: &StreamKey,
    epoch: &str,
    data: &str,
) -> Result<(), JournalError> {
    let frames = [Frame {
        event: DONE_EVENT,
        data,
    }];
    append_once(journal, key, &frames, epoch).await
}

/// A simulated LLM turn: `tokens` token frames at `rate` per second (0: unpaced), then
/// `done` with `{"tokens":N}`. Stops quietly if the key is reset or someone else ends it.
async fn produce_turn(
    journal: std::sync::Arc<dyn Journal>,
    key: StreamKey,
    epoch: String,
    tokens: u64,
    rate: f64,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), JournalError> {
    let journal = &*journal;
    if rate == 0.0 {
        append_in_batches(journal, &key, &epoch, tokens, token_data).await?;
    } else {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        // Burst: after a late wake-up catch up, so the average rate holds even above the
        // timer's 1 ms resolution.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        for i in 0..tokens {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown_requested(&mut shutdown) => return Ok(()),
            }
            let data = token_data(i);
            let frames = [Frame {
                event: "token",
                data: &data,
            }];
            append_once(journal, &key, &frames, &epoch).await?;
        }
    }
    append_done(journal, &key, &epoch, &format!("{{\"tokens\":{tokens}}}")).await
}

/// `POST /streams/{key}/turns?tokens=N&rateHz=R`: starts a turn and answers 202 at once with
/// `{"key","epoch","tokens","rateHz"}`; 409 if the stream is done.
pub async fn turns(
    State(app): State<App>,
    Path(key): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let key = StreamKey::parse(&key)?;
    let tokens = params::int(
        &pairs,
        "tokens",
        0,
        MAX_TOKENS,
        "an integer from 0 to 1000000",
    )?
    .unwrap_or(20);
    let rate = rate_param(&pairs)?;
    let epoch = open_epoch(&*app.journal, &key).await?;
    tokio::spawn(produce_turn(
        app.journal.clone(),
        key.clone(),
        epoch.clone(),
        tokens,
        rate,
        app.shutdown.clone(),
    ));
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "key": key.as_str(), "epoch": epoch, "tokens": tokens, "rateHz": rate })),
    )
        .into_response())
}

/// `POST /streams/{key}/fill?frames=N&bytes=B`: appends N token frames of about B bytes of
/// JSON data, then `done` with `{"frames":N}`, as fast as it can, and answers
/// `{"key","epoch","frames","length","tail"}` once they are all in.
pub async fn fill(
    State(app): State<App>,
    Path(key): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key = StreamKey::parse(&key)?;
    let frames = params::int(
        &pairs,
        "frames",
        0,
        MAX_FILL_FRAMES,
        "an integer from 0 to 2000000",
    )?
    .unwrap_or(1000);
    let bytes = params::int(
        &pairs,
        "bytes",
        0,
        MAX_FILL_BYTES,
        "an integer from 0 to 65536",
    )?
    .unwrap_or(60);
    if frames.saturating_mul(bytes) > MAX_FILL_TOTAL {
        return Err(ApiError::bad_request(
            "frames × bytes must be at most 536870912 (512 MiB)",
        ));
    }
    let epoch = open_epoch(&*app.journal, &key).await?;
    // Run it as its own task so a client that hangs up does not leave a half-filled journal.
    let task = {
        let journal = app.journal.clone();
        let key = key.clone();
        let epoch = epoch.clone();
        tokio::spawn(async move {
            let size = usize::try_from(bytes).unwrap_or(usize::MAX);
            let journal = &*journal;
            append_in_batches(journal, &key, &epoch, frames, |i| fill_data(i, size)).await?;
            append_done(journal, &key, &epoch, &format!("{{\"frames\":{frames}}}")).await
        })
    };
    match task.await {
        Ok(result) => result?,
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the fill task failed",
            ))
        }
    }
    let head = app.journal.head(&key).await?;
    Ok(Json(json!({
        "key": key.as_str(),
        "epoch": epoch,
        "frames": frames,
        "length": head.length,
        "tail": head.tail.map(|t| t.to_string()),
    })))
}

/// The epoch of `key`, which must not be done yet (409 otherwise).
async fn open_epoch(journal: &dyn Journal, key: &StreamKey) -> Result<String, JournalError> {
    let head = journal.head(key).await?;
    if head.done {
        return Err(JournalError::Done {
            key: key.as_str().to_owned(),
        });
    }
    Ok(head.epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_data_is_json() {
        for i in [0, 1, 99, 12345] {
            let value: serde_json::Value = serde_json::from_str(&token_data(i)).unwrap();
            assert_eq!(value["i"], i);
            assert!(value["text"].as_str().unwrap().ends_with(' '));
        }
    }

    #[test]
    fn fill_data_has_about_the_asked_size() {
        for bytes in [0usize, 10, 60, 1000] {
            let data = fill_data(7, bytes);
            let value: serde_json::Value = serde_json::from_str(&data).unwrap();
            assert_eq!(value["i"], 7);
            if bytes >= 20 {
                assert_eq!(data.len(), bytes);
            }
        }
    }
}
