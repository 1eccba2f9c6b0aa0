//! The built-in catalog of public threat feeds.
//!
//! Each entry says where a feed lives, how to parse it, what its trails mean and whether it
//! is on by default. The config switches entries on and off (`[feeds] enable/disable`) and
//! adds its own (`[[feeds.custom]]`).

use spoor_core::Severity;

use crate::format::FormatSpec;

/// One public feed Spoor knows about.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogFeed {
    /// Stable identifier used in the config (`enable = ["tor-exits"]`).
    pub name: &'static str,
    pub url: &'static str,
    pub format: FormatSpec,
    /// Info attached to each trail (`emotet (malware)` style; the category in parentheses
    /// drives the default severity).
    pub info: &'static str,
    /// Who publishes it (shown as the hit's reference).
    pub reference: &'static str,
    /// Severity forced for the whole feed, when the info rules would not fit.
    pub severity: Option<Severity>,
    /// Minimum number of sources that must list an indicator from this feed (noisy IP
    /// reputation feeds use 2; curated feeds 1).
    pub min_consensus: u32,
    pub default_enabled: bool,
    pub description: &'static str,
}

/// Every built-in feed, in display order.
pub fn builtin() -> Vec<CatalogFeed> {
    vec![CatalogFeed {
        name: "feodotracker",
        url: "https://feodotracker.abuse.ch/downloads/ipblocklist.txt",
        format: FormatSpec::Ip,
        info: "feodo botnet c2 (malware)",
        reference: "feodotracker.abuse.ch",
        severity: None,
        min_consensus: 1,
        default_enabled: true,
        description: "abuse.ch Feodo Tracker: active botnet C2 servers (Emotet, Dridex, QakBot...)",
    }]
}
