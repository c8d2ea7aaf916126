//! A Leptos component that renders a turn of an sse-relay stream: it opens the stream, dispatches
//! the job only once `open` resolved (the server joined), renders each frame once, in order, and
//! closes the stream when the component goes (dropping it closes it).

use futures::StreamExt;
use leptos::prelude::*;
use leptos::task::spawn_local;
use sse_relay::{Options, RelayStream};
use wasm_bindgen::JsCast;

/// One assistant turn, streamed: `key` names the stream; `dispatch` starts the job on the server.
#[component]
pub fn Turn(key: String, dispatch: String) -> impl IntoView {
    let (frames, set_frames) = signal(Vec::<(String, String)>::new());
    let (status, set_status) = signal(String::from("connecting"));
    let url = format!("/streams/{key}/events");
    spawn_local(async move {
        let options = Options {
            key: Some(key),
            events: Some(vec!["token".into()]),
            ..Options::default()
        };
        let mut stream = match RelayStream::open(&url, options).await {
            Ok(stream) => stream,
            // A typed error: a timeout means the server never joined, so nothing is dispatched.
            Err(error) => return set_status.set(format!("{}: {error}", error.name())),
        };
        // The server has joined: a job dispatched now cannot lose its first frames.
        let dispatched = send_post(&dispatch).await;
        set_status.set(if dispatched {
            "live".into()
        } else {
            "dispatch failed".into()
        });
        while let Some(frame) = stream.next().await {
            match frame {
                Ok(frame) => set_frames.update(|all| all.push((frame.id, frame.data))),
                Err(error) => return set_status.set(error.to_string()),
            }
        }
        set_status.set(format!(
            "done: {} frames, role {}",
            stream.stats().delivered,
            stream.role().as_str()
        ));
    });
    view! {
        <p>{move || status.get()}</p>
        <ol>
            <For each=move || frames.get() key=|(id, _)| id.clone() let:frame>
                <li>{frame.1}</li>
            </For>
        </ol>
    }
}

/// POSTs to `url`; whether the server accepted it.
async fn send_post(url: &str) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    let promise = window.fetch_with_str_and_init(url, &init);
    match wasm_bindgen_futures::JsFuture::from(promise).await {
        Ok(response) => response
            .dyn_into::<web_sys::Response>()
            .is_ok_and(|r| r.ok()),
        Err(_) => false,
    }
}

/// The app chooses its allocator (the library chooses none): here, the standard library's.
#[global_allocator]
static ALLOCATOR: std::alloc::System = std::alloc::System;
