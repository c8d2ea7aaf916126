//! The npm package's WebAssembly module: `sse-relay` with its JavaScript bindings (the `js`
//! feature), plus what a library must not choose for its host and an npm build must: the
//! allocator, and the exact wasm-bindgen version `wasm-bindgen-cli` generates glue for.
//! `npm run build` (scripts/build.mjs) compiles this crate.
#![deny(missing_docs)]

/// The library: linking it brings its `#[wasm_bindgen]` exports into this module.
pub use sse_relay;

/// The wasm heap: talc instead of std's dlmalloc, about 5.5 KB smaller in the shipped module. It
/// coalesces freed blocks, so memory stays bounded over a long stream.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
