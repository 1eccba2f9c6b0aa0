//! Feeds and the trail store.
//!
//! The path from public threat feeds to the one file the sensor maps:
//! [`catalog`] knows the public feeds, [`format`] parses each list format, [`source`]
//! reads files and folders, [`compile`] merges every source, applies the whitelist and
//! consensus rules and writes a [`snapshot`], and [`store`] answers lookups on a loaded
//! snapshot. [`reload`] swaps in a newer snapshot while readers keep working.

pub mod catalog;
pub mod compile;
pub mod config;
pub mod fetch;
pub mod format;
pub mod reload;
pub mod snapshot;
pub mod source;
pub mod store;

pub use compile::{CompileReport, CompileSource, build_image, compile};
pub use reload::{Reload, TrailHandle, Watcher};
pub use snapshot::SnapshotError;
pub use store::{Matched, OriginView, TrailHit, TrailStore};
