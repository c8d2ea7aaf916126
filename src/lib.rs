//! sse-relay: every journaled server-sent frame exactly once, in order, in every tab.
//!
//! The crate has two layers (see the README):
//!
//! - [`core`]: the protocol logic, pure and sans-IO. It never touches the browser or a clock: the
//!   caller passes time in and performs the commands it asks for. It builds and is tested natively.
//! - `web` and the bindings (wasm32 only): thin adapters over `EventSource`, timers and storage, and
//!   the JavaScript API, which feed the core's [`core::Session`] and make no decisions of their own.
#![deny(missing_docs)]

pub mod core;
mod error;
mod options;

pub use core::Role;
pub use error::Error;
pub use options::{Credentials, Options, OptionsError, PersistCursor, Transport};

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod relay;
#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(target_arch = "wasm32")]
pub use relay::{Hooks, RelayStream, Subscription, UnauthorizedHook};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The wasm heap: talc instead of std's dlmalloc, about 5.5 KB smaller in the shipped module. It
/// coalesces freed blocks, so memory stays bounded over a long stream.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
