//! Feeds and the trail store.
//!
//! The path from public threat feeds to the one file the sensor maps:
//! [`catalog`] knows the public feeds, [`fetch`] downloads them (conditional GET, last good
//! copy kept), [`format`] parses each list format, [`compile`] merges every source,
//! applies the whitelist and consensus rules and writes a [`snapshot`], and [`store`]
//! answers lookups on a loaded snapshot. [`reload`] swaps in a newer snapshot while
//! readers keep working.

pub mod catalog;
pub mod config;
pub mod fetch;
pub mod format;
