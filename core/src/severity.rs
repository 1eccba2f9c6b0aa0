//! How bad a hit is.
//!
//! Severity is attached to every trail at compile time by documented rules
//! ([`Severity::from_info`]) and can be overridden per feed in the config.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Ordered: `Low < Medium < High`, so policies can say "at least medium".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// Words in a trail's info that mark live malicious infrastructure (high).
const HIGH_WORDS: &[&str] = &[
    "malware",
    "c2",
    "c&c",
    "botnet",
    "ransomware",
    "trojan",
    "rat",
    "stealer",
    "backdoor",
    "exploit",
    "phishing",
    "apt",
    "sinkhole",
];

/// Words that mark reputation, scanning and grey-zone services (low).
const LOW_WORDS: &[&str] = &[
    "scanner",
    "mass scanner",
    "reputation",
    "attacker",
    "spam",
    "tor",
    "proxy",
    "parking",
    "dynamic domain",
    "free web hosting",
    "pua",
    "adware",
    "crawler",
];

impl Severity {
    /// The documented default rules, applied to a trail's info text (e.g. `emotet (malware)`):
    ///
    /// 1. a category in parentheses decides first: `(malware)` → high, `(suspicious)` → medium,
    ///    `(malicious)` → high;
    /// 2. otherwise words naming live malicious infrastructure (malware, C2, botnet, ransomware,
    ///    trojan, RAT, stealer, backdoor, exploit, phishing, APT, sinkhole) → high;
    /// 3. reputation, scanners, spam, Tor, proxies, parking, dynamic DNS, PUA, adware → low;
    /// 4. anything else → medium.
    pub fn from_info(info: &str) -> Severity {
        let info = info.to_ascii_lowercase();
        if let Some(category) = info
            .rsplit_once('(')
            .and_then(|(_, tail)| tail.strip_suffix(')'))
        {
            match category.trim() {
                "malware" | "malicious" => return Severity::High,
                "suspicious" => return Severity::Medium,
                _ => {}
            }
        }
        let has_word = |words: &[&str]| {
            words.iter().any(|w| {
                info.match_indices(w).any(|(at, _)| {
                    let before = info[..at].chars().next_back();
                    let after = info[at + w.len()..].chars().next();
                    !before.is_some_and(|c| c.is_ascii_alphanumeric())
                        && !after.is_some_and(|c| c.is_ascii_alphanumeric())
                })
            })
        };
        if has_word(HIGH_WORDS) {
            Severity::High
        } else if has_word(LOW_WORDS) {
            Severity::Low
        } else {
            Severity::Medium
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// Compact wire value used in the snapshot file.
    pub fn to_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(v: u8) -> Option<Severity> {
        match v {
            0 => Some(Severity::Low),
            1 => Some(Severity::Medium),
            2 => Some(Severity::High),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            other => Err(format!(
                "unknown severity `{other}` (expected low, medium or high)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_decides_first() {
        assert_eq!(Severity::from_info("emotet (malware)"), Severity::High);
        assert_eq!(Severity::from_info("bad proxy (malicious)"), Severity::High);
        assert_eq!(Severity::from_info("onion (suspicious)"), Severity::Medium);
    }

    #[test]
    fn words_are_matched_whole() {
        assert_eq!(Severity::from_info("mass scanner"), Severity::Low);
        assert_eq!(Severity::from_info("botnet c2 (test)"), Severity::High);
        // "pirate" contains "rat" but is not a RAT
        assert_eq!(Severity::from_info("pirate site"), Severity::Medium);
        assert_eq!(Severity::from_info("known attacker"), Severity::Low);
    }
}
