//! A decision: "block this address or network for this long, because of these events",
//! and the only ways its state may change.
//!
//! ```text
//! proposed ──► approved ──► active ──► expired
//!    │            │           └──────► revoked
//!    │            ├──► expired (its time ran out before any backend applied it)
//!    │            └──► revoked
//!    └──► rejected
//! ```
//! `rejected`, `expired` and `revoked` are final. Every transition is written to the audit
//! log by the ledger; [`DecisionState::can_become`] is the one place the rules live.

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use spoor_core::{EventId, Micros};

/// The ledger's row id of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DecisionId(pub i64);

impl fmt::Display for DecisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a decision is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionState {
    /// Waiting for an admin (or for the policy, which approves `auto` rules at once).
    Proposed,
    /// Allowed to be applied; the TTL runs from here.
    Approved,
    /// An admin said no.
    Rejected,
    /// A backend holds the target.
    Active,
    /// Its time ran out.
    Expired,
    /// Withdrawn by an admin, the CLI or the kill switch.
    Revoked,
}

impl DecisionState {
    pub const ALL: [DecisionState; 6] = [
        DecisionState::Proposed,
        DecisionState::Approved,
        DecisionState::Rejected,
        DecisionState::Active,
        DecisionState::Expired,
        DecisionState::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DecisionState::Proposed => "proposed",
            DecisionState::Approved => "approved",
            DecisionState::Rejected => "rejected",
            DecisionState::Active => "active",
            DecisionState::Expired => "expired",
            DecisionState::Revoked => "revoked",
        }
    }

    /// No transition leaves this state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DecisionState::Rejected | DecisionState::Expired | DecisionState::Revoked
        )
    }

    /// A backend should hold the target (unless the decision is a dry run).
    pub fn wants_block(self) -> bool {
        matches!(self, DecisionState::Approved | DecisionState::Active)
    }

    /// The legal transitions (see the module docs).
    pub fn can_become(self, next: DecisionState) -> bool {
        use DecisionState::*;
        matches!(
            (self, next),
            (Proposed, Approved)
                | (Proposed, Rejected)
                | (Approved, Active)
                | (Approved, Expired)
                | (Approved, Revoked)
                | (Active, Expired)
                | (Active, Revoked)
        )
    }
}

impl fmt::Display for DecisionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DecisionState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DecisionState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown decision state `{s}`"))
    }
}

/// Why a decision exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The policy rule's name, or `manual` for a block added by hand.
    pub rule: String,
    /// The events that triggered it (empty for manual blocks).
    pub events: Vec<EventId>,
    /// Free text: the admin's reason, or the policy's summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A decision as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub id: DecisionId,
    /// What to block: one address (/32, /128) or a network.
    pub target: IpNet,
    pub reason: Reason,
    /// How long the block lasts once approved, in seconds.
    pub ttl_secs: u64,
    /// Recorded and shown, never applied to a backend.
    pub dry_run: bool,
    pub state: DecisionState,
    /// Who made the last transition: `policy`, `ttl`, `cli:root`, a user name...
    pub actor: String,
    pub created: Micros,
    pub updated: Micros,
    /// When the block ends; set when the decision is approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Micros>,
    /// The audit sequence number of its last transition (the stream's cursor).
    pub seq: i64,
}

impl Decision {
    /// A backend should hold the target now.
    pub fn wants_block(&self, now: Micros) -> bool {
        !self.dry_run && self.state.wants_block() && self.expires.is_none_or(|e| e > now)
    }
}

/// A decision about to be proposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDecision {
    pub target: IpNet,
    pub reason: Reason,
    pub ttl_secs: u64,
    pub dry_run: bool,
}

/// One line of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Increasing; the decision stream's cursor.
    pub seq: i64,
    pub decision: DecisionId,
    /// `None` for the entry that created the decision.
    pub from: Option<DecisionState>,
    pub to: DecisionState,
    pub actor: String,
    pub at: Micros,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The expiry this entry set: on approval, and on an extension (an entry whose
    /// `from` equals its `to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Micros>,
}

/// A ledger time as `2026-01-01 12:00:00 UTC`, for messages an admin reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc(pub Micros);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.secs();
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Days since 1970-01-01 → Gregorian date, counting in 400-year eras from 0000-03-01.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

/// The target as written in a backend and in the ledger: a bare address for a host
/// prefix, `a/len` otherwise.
pub fn target_text(target: &IpNet) -> String {
    if target.prefix_len() == target.max_prefix_len() {
        target.addr().to_string()
    } else {
        target.to_string()
    }
}

/// Parse `1.2.3.4`, `1.2.3.0/24`, `2001:db8::1`, `2001:db8::/32`. Host bits set in a
/// network (`10.1.2.3/8`) are refused: the admin probably meant something else.
pub fn parse_target(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<std::net::IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let net: IpNet = s
        .parse()
        .map_err(|_| format!("`{s}` is not an IP address or CIDR network"))?;
    if net.trunc() != net {
        return Err(format!(
            "`{s}` has host bits set; did you mean `{}`?",
            net.trunc()
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use DecisionState::*;

    #[test]
    fn only_the_documented_transitions_are_legal() {
        let legal = [
            (Proposed, Approved),
            (Proposed, Rejected),
            (Approved, Active),
            (Approved, Expired),
            (Approved, Revoked),
            (Active, Expired),
            (Active, Revoked),
        ];
        for from in DecisionState::ALL {
            for to in DecisionState::ALL {
                assert_eq!(
                    from.can_become(to),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
            if from.is_final() {
                assert!(DecisionState::ALL.iter().all(|&to| !from.can_become(to)));
            }
        }
    }

    #[test]
    fn targets_parse_and_print() {
        assert_eq!(
            target_text(&parse_target("192.0.2.7").unwrap()),
            "192.0.2.7"
        );
        assert_eq!(
            target_text(&parse_target("2001:db8::/32").unwrap()),
            "2001:db8::/32"
        );
        assert_eq!(
            target_text(&parse_target("198.51.100.9/32").unwrap()),
            "198.51.100.9"
        );
        assert!(
            parse_target("10.1.2.3/8")
                .unwrap_err()
                .contains("10.0.0.0/8")
        );
        assert!(parse_target("evil.example").is_err());
        assert_eq!(Utc(Micros(0)).to_string(), "1970-01-01 00:00:00 UTC");
        // 2026-01-01T00:00:00Z, a leap day and the last second of a year
        assert_eq!(
            Utc(Micros(1_767_225_600_000_000)).to_string(),
            "2026-01-01 00:00:00 UTC"
        );
        assert_eq!(
            Utc(Micros(1_709_164_800_000_000 + 3_723_000_000)).to_string(),
            "2024-02-29 01:02:03 UTC"
        );
        assert_eq!(
            Utc(Micros(1_735_689_599_999_999)).to_string(),
            "2024-12-31 23:59:59 UTC"
        );
        for s in DecisionState::ALL {
            assert_eq!(s.as_str().parse::<DecisionState>(), Ok(s));
        }
    }
}
