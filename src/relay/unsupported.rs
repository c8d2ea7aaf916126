//! `RelayStream` outside a browser: the API compiles (the server half of a Leptos app, host
//! `cargo doc`), and opening fails with [`Error::Unsupported`]. No stream can exist here, so the
//! handle is an empty enum and every method on it is unreachable by construction.

use std::task::{Context, Poll};

use super::{Hooks, Listener};
use crate::core::{Cursor, Frame, Role, State, Stats};
use crate::error::Error;
use crate::options::Options;

/// A handle on a stream that cannot exist on this target.
#[derive(Debug)]
pub(crate) enum Handle {}

impl Clone for Handle {
    fn clone(&self) -> Self {
        match *self {}
    }
}

impl Handle {
    pub(crate) fn start(_url: &str, _options: &Options, _hooks: Hooks) -> Result<Handle, Error> {
        Err(Error::Unsupported)
    }

    pub(crate) fn poll_opened(&self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match *self {}
    }

    pub(crate) fn poll_frame(&self, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame, Error>>> {
        match *self {}
    }

    pub(crate) fn close(&self) {
        match *self {}
    }

    pub(crate) fn state(&self) -> State {
        match *self {}
    }

    pub(crate) fn stats(&self) -> Stats {
        match *self {}
    }

    pub(crate) fn role(&self) -> Role {
        match *self {}
    }

    pub(crate) fn cursor(&self) -> Option<Cursor> {
        match *self {}
    }

    pub(crate) fn epoch(&self) -> Option<String> {
        match *self {}
    }

    pub(crate) fn listen(&self, _listener: Listener) -> u64 {
        match *self {}
    }

    pub(crate) fn unlisten(&self, _id: u64) {
        match *self {}
    }
}
