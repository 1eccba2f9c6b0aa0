//! Login throttling: after `max_failures` failed logins from one client address, or for
//! one user name, within the lockout period, further logins from it (for it) are refused
//! until the period has passed since the last failure. Kept in memory (a restart forgets
//! it, which costs an attacker a restart they cannot cause) and bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys remembered at most; past it the oldest half is forgotten.
pub const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Addr(IpAddr),
    User(String),
}

#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    lockout: Duration,
    state: Mutex<HashMap<Key, (u32, Instant)>>,
}

impl LoginThrottle {
    pub fn new(max_failures: u32, lockout: Duration) -> Self {
        LoginThrottle {
            max_failures,
            lockout,
            state: Mutex::new(HashMap::new()),
        }
    }

    fn keys(addr: Option<IpAddr>, user: &str) -> Vec<Key> {
        let mut k = vec![Key::User(user.to_string())];
        if let Some(a) = addr {
            k.push(Key::Addr(a));
        }
        k
    }

    /// `Some(wait)` when a login from `addr` for `user` must be refused now.
    pub fn check(&self, addr: Option<IpAddr>, user: &str) -> Option<Duration> {
        let state = self.state.lock().ok()?;
        let now = Instant::now();
        Self::keys(addr, user)
            .iter()
            .filter_map(|k| state.get(k))
            .filter(|(n, last)| *n >= self.max_failures && now.duration_since(*last) < self.lockout)
            .map(|(_, last)| self.lockout - now.duration_since(*last))
            .max()
    }

    pub fn failed(&self, addr: Option<IpAddr>, user: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let now = Instant::now();
        if state.len() >= MAX_TRACKED {
            let mut times: Vec<Instant> = state.values().map(|(_, t)| *t).collect();
            times.sort();
            let median = times[times.len() / 2];
            state.retain(|_, (_, t)| *t > median);
        }
        for k in Self::keys(addr, user) {
            let e = state.entry(k).or_insert((0, now));
            if now.duration_since(e.1) >= self.lockout {
                e.0 = 0;
            }
            e.0 += 1;
            e.1 = now;
        }
    }

    pub fn succeeded(&self, addr: Option<IpAddr>, user: &str) {
        if let Ok(mut state) = self.state.lock() {
            for k in Self::keys(addr, user) {
                state.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_per_address_and_per_user() {
        let t = LoginThrottle::new(3, Duration::from_secs(600));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..2 {
            t.failed(Some(a), "alice");
        }
        assert!(t.check(Some(a), "alice").is_none());
        t.failed(Some(a), "alice");
        assert!(t.check(Some(a), "alice").is_some());
        // Another address guessing the same user is refused too, and the address for
        // another user.
        assert!(t.check(Some(b), "alice").is_some());
        assert!(t.check(Some(a), "bob").is_some());
        assert!(t.check(Some(b), "bob").is_none());
    }
}
