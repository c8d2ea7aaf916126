//! Thin adapters over browser APIs, one module each. They own their closures, remove their
//! listeners on drop, and make no protocol decisions: they report to the driver, which feeds the
//! core's peer.

pub(crate) mod abort;
pub(crate) mod broadcast;
pub(crate) mod clock;
pub(crate) mod console;
pub(crate) mod event_source;
pub(crate) mod fetch;
pub(crate) mod locks;
pub(crate) mod page_hide;
pub(crate) mod storage;
pub(crate) mod timer;
pub(crate) mod url;

#[cfg(test)]
mod fetch_tests;
#[cfg(test)]
mod tests;
