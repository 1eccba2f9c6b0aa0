//! Pseudonymisation of local client addresses, for sites bound by data-protection rules.
//!
//! When on, every local address of an event (source, destination, offender, DNS answers,
//! X-Forwarded-For) is replaced at ingest, before anything is stored, broadcast or sent to
//! a webhook, by a keyed hash: HMAC-SHA-256 with a random key per period (`key_period`,
//! wall clock). Within a period the same address always gets the same pseudonym (so "how
//! many events from this host" still works); the key of a past period is deleted when the
//! next one starts, so pseudonyms cannot be linked across periods or reversed.
//!
//! Pseudonyms live in ranges no real host uses: IPv4 in `240.0.0.0/4` (reserved), IPv6 in
//! `100::/64` (discard-only, RFC 6666); an analyst can tell one from an address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use aws_lc_rs::hmac;
use ipnet::IpNet;
use rusqlite::{OptionalExtension, params};
use spoor_core::Event;

use crate::config::Privacy;
use crate::store::{Store, StoreError, now_micros};

#[derive(Debug)]
pub struct Pseudonymiser {
    local: Vec<IpNet>,
    period_micros: i64,
    current: Mutex<Option<(i64, [u8; 32])>>,
}

/// The key of one period, ready to use.
#[derive(Debug, Clone)]
pub struct PeriodKey {
    local: Vec<IpNet>,
    key: [u8; 32],
}

impl Pseudonymiser {
    /// None when pseudonymisation is off.
    pub fn new(config: &Privacy) -> Option<Pseudonymiser> {
        config.pseudonymise.then(|| Pseudonymiser {
            local: config.local_networks.clone(),
            period_micros: config.key_period.as_micros() as i64,
            current: Mutex::new(None),
        })
    }

    /// The key of the current period, made (and older keys deleted) on its first use.
    pub async fn key(&self, store: &Store) -> Result<PeriodKey, StoreError> {
        let period = now_micros().div_euclid(self.period_micros);
        if let Some((p, key)) = *self.current.lock().expect("not poisoned")
            && p == period
        {
            return Ok(PeriodKey {
                local: self.local.clone(),
                key,
            });
        }
        let key = store
            .write(move |tx| {
                let existing: Option<Vec<u8>> = tx
                    .query_row(
                        "SELECT key FROM privacy_keys WHERE period = ?1",
                        [period],
                        |r| r.get(0),
                    )
                    .optional()?;
                let key: [u8; 32] = match existing.and_then(|k| k.try_into().ok()) {
                    Some(k) => k,
                    None => {
                        let k = crate::auth::random_bytes::<32>();
                        tx.execute(
                            "INSERT OR REPLACE INTO privacy_keys (period, key) VALUES (?1, ?2)",
                            params![period, &k[..]],
                        )?;
                        k
                    }
                };
                tx.execute("DELETE FROM privacy_keys WHERE period < ?1", [period])?;
                Ok(key)
            })
            .await?;
        *self.current.lock().expect("not poisoned") = Some((period, key));
        Ok(PeriodKey {
            local: self.local.clone(),
            key,
        })
    }
}

impl PeriodKey {
    /// A fixed key, for tests.
    pub fn fixed(local: Vec<IpNet>, key: [u8; 32]) -> PeriodKey {
        PeriodKey { local, key }
    }

    fn is_local(&self, ip: IpAddr) -> bool {
        self.local.iter().any(|n| n.contains(&ip))
    }

    /// `ip`'s pseudonym if it is local, else `ip`.
    pub fn address(&self, ip: IpAddr) -> IpAddr {
        if !self.is_local(ip) {
            return ip;
        }
        let k = hmac::Key::new(hmac::HMAC_SHA256, &self.key);
        let tag = match ip {
            IpAddr::V4(a) => hmac::sign(&k, &a.octets()),
            IpAddr::V6(a) => hmac::sign(&k, &a.octets()),
        };
        let t = tag.as_ref();
        match ip {
            IpAddr::V4(_) => {
                let h = u32::from_be_bytes([t[0], t[1], t[2], t[3]]) & 0x0fff_ffff;
                IpAddr::V4(Ipv4Addr::from(0xf000_0000 | h))
            }
            IpAddr::V6(_) => {
                let mut o = [0u8; 16];
                o[0] = 0x01;
                o[8..].copy_from_slice(&t[..8]);
                IpAddr::V6(Ipv6Addr::from(o))
            }
        }
    }

    /// Replace every local address in `e`.
    pub fn apply(&self, e: &mut Event) {
        e.src = self.address(e.src);
        e.dst = self.address(e.dst);
        if let Some(o) = e.offender {
            e.offender = Some(self.address(o));
        }
        for a in &mut e.answers {
            *a = self.address(*a);
        }
        if let Some(http) = &mut e.context.http
            && let Some(xff) = &mut http.xff
        {
            *xff = xff
                .split(',')
                .map(|part| match part.trim().parse::<IpAddr>() {
                    Ok(ip) => self.address(ip).to_string(),
                    Err(_) => part.trim().to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_get_stable_pseudonyms_per_key() {
        let local = vec!["10.0.0.0/8".parse().unwrap(), "fc00::/7".parse().unwrap()];
        let k1 = PeriodKey::fixed(local.clone(), [1; 32]);
        let k2 = PeriodKey::fixed(local, [2; 32]);
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        let p = k1.address(a);
        assert_ne!(p, a);
        assert_eq!(p, k1.address(a), "stable within a period");
        assert_ne!(p, k2.address(a), "another period, another pseudonym");
        assert!("240.0.0.0/4".parse::<IpNet>().unwrap().contains(&p));
        let remote: IpAddr = "8.8.8.8".parse().unwrap();
        assert_eq!(k1.address(remote), remote);
        let v6 = k1.address("fd00::5".parse().unwrap());
        assert!("100::/64".parse::<IpNet>().unwrap().contains(&v6));
    }
}
