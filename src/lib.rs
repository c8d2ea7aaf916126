//! sse-relay: every journaled server-sent frame exactly once, in order, in every tab.
//!
//! The crate has three layers (see the README):
//!
//! - [`core`]: the protocol logic, pure and sans-IO: the [`core::Session`] of one stream and the
//!   [`core::Peer`] of one tab. It never touches the browser or a clock: the caller passes time in
//!   and performs the actions it asks for. It builds and is tested natively.
//! - [`RelayStream`]: the stream for a Rust front end (Leptos, Yew, Dioxus), a `futures::Stream` of
//!   frames driven by thin adapters over the browser's APIs. It compiles on every target, so the
//!   server half of an app builds too; outside a browser (`wasm32`), [`RelayStream::open`] fails
//!   with [`Error::Unsupported`].
//! - The JavaScript API of the npm package (the `js` feature, wasm32 only): every
//!   `#[wasm_bindgen]` export.
//!
//! The crate chooses nothing for its host: no global allocator, and wasm-bindgen as a range (the
//! npm package's own module, `npm/` in the repository, pins both for its build).
#![deny(missing_docs)]

pub mod core;
mod error;
mod options;

pub use core::Role;
pub use error::Error;
pub use options::{Credentials, Options, OptionsError, PersistCursor, Transport};

#[cfg(all(target_arch = "wasm32", feature = "js"))]
mod bindings;
mod relay;
#[cfg(target_arch = "wasm32")]
mod web;

pub use relay::{Hooks, Listener, RelayStream, Subscription, UnauthorizedHook};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
