//! Heuristics: alerts that no trail names, inferred from the shape of traffic.
//!
//! Today these are the scan heuristics in [`scan`]: TCP and UDP port scans, infection
//! sweeps on worm ports, and web path sweeps. Each keeps bounded state (a capped table,
//! refusing new keys at the cap and counting it, never evicting live evidence) and
//! expires it by packet time, so a capture replays the same way at any speed.

pub mod scan;

pub use scan::{Finding, Heuristics, HeuristicsConfig, ScanConfig};
