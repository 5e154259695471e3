//! Failed authentications per (account, source host), at each replica: a request in an
//! account's name whose signature does not verify is a guess at its password. After a few,
//! that account is refused from that host — before any signature is checked — for a time
//! that doubles with each further failure. A stranger guessing at alice's password from his
//! own address slows only himself: alice, from anywhere else, is served as before.
//!
//! The trade-off: a host shared by alice and an attacker (one NAT) shares the lockout, and
//! an attacker with many addresses guesses in parallel (each address at its own slow pace).
//! Online guessing is not the real threat anyway: account keys are in every replica's log,
//! and an offline attack needs no replica at all (the client's strength check is the
//! defence there). Local, not replicated, like the rates in `rate.rs`.

use std::collections::HashMap;
use std::net::IpAddr;

/// Failures allowed before the first lockout.
pub const FREE_FAILURES: u32 = 5;
/// The first lockout; each further failure doubles it, up to `LOCKOUT_MAX_MS`.
const LOCKOUT_FIRST_MS: u64 = 1_000;
const LOCKOUT_MAX_MS: u64 = 15 * 60_000;
/// A record quiet this long is forgotten (its host starts afresh).
const FORGET_AFTER_MS: u64 = 60 * 60_000;
/// Records kept at once; past it, the quiet ones go first, then new hosts are not counted
/// (their guesses are still refused one by one, and still cost them the unpaid rate).
const TRACKED_MAX: usize = 100_000;

#[derive(Default)]
pub struct FailedLogins {
    /// (account name, host) -> (failures, last failure ms, locked until ms).
    records: HashMap<(String, IpAddr), (u32, u64, u64)>,
}

impl FailedLogins {
    /// How long `user` stays refused from `host` at `now_ms`, if it is.
    pub fn locked(&self, user: &str, host: IpAddr, now_ms: u64) -> Option<u64> {
        let (_, _, until) = self.records.get(&(user.to_owned(), super::rate::host(host)))?;
        (*until > now_ms).then(|| until - now_ms)
    }

    /// A request in `user`'s name from `host` did not verify.
    pub fn failed(&mut self, user: &str, host: IpAddr, now_ms: u64) {
        let key = (user.to_owned(), super::rate::host(host));
        if self.records.len() >= TRACKED_MAX && !self.records.contains_key(&key) {
            self.records.retain(|_, (_, last, until)| now_ms.saturating_sub(*last) < FORGET_AFTER_MS || *until > now_ms);
            if self.records.len() >= TRACKED_MAX {
                return;
            }
        }
        let (failures, last, until) = self.records.entry(key).or_insert((0, now_ms, 0));
        if now_ms.saturating_sub(*last) >= FORGET_AFTER_MS {
            *failures = 0;
        }
        *failures += 1;
        *last = now_ms;
        if *failures > FREE_FAILURES {
            let doublings = (*failures - FREE_FAILURES - 1).min(20);
            *until = now_ms + (LOCKOUT_FIRST_MS << doublings).min(LOCKOUT_MAX_MS);
        }
    }

    /// A request in `user`'s name from `host` verified: its failures are forgotten.
    pub fn succeeded(&mut self, user: &str, host: IpAddr) {
        if !self.records.is_empty() {
            self.records.remove(&(user.to_owned(), super::rate::host(host)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_failures_are_free_then_the_lockout_doubles_for_that_account_and_host_only() {
        let mut f = FailedLogins::default();
        let (stranger, alice_home): (IpAddr, IpAddr) = ("192.0.2.66".parse().unwrap(), "198.51.100.7".parse().unwrap());
        for _ in 0..FREE_FAILURES {
            f.failed("alice", stranger, 1_000);
        }
        assert_eq!(f.locked("alice", stranger, 1_000), None, "the free failures");
        f.failed("alice", stranger, 1_000);
        assert_eq!(f.locked("alice", stranger, 1_000), Some(1_000));
        f.failed("alice", stranger, 2_000);
        assert_eq!(f.locked("alice", stranger, 2_000), Some(2_000), "doubled");
        for _ in 0..30 {
            f.failed("alice", stranger, 4_000);
        }
        assert_eq!(f.locked("alice", stranger, 4_000), Some(LOCKOUT_MAX_MS), "capped");
        // Alice elsewhere, and bob from the stranger's host, are not affected.
        assert_eq!(f.locked("alice", alice_home, 4_000), None);
        assert_eq!(f.locked("bob", stranger, 4_000), None);
        // Another address of the stranger's IPv6 /64 is the same host.
        let mut g = FailedLogins::default();
        for i in 0..=FREE_FAILURES as u16 {
            g.failed("alice", format!("2001:db8::{i:x}").parse().unwrap(), 1_000);
        }
        assert!(g.locked("alice", "2001:db8::ffff".parse().unwrap(), 1_000).is_some());
        // A success from the host forgets; an hour of quiet forgets too.
        f.succeeded("alice", stranger);
        assert_eq!(f.locked("alice", stranger, 4_000), None);
        for _ in 0..=FREE_FAILURES {
            f.failed("alice", stranger, 10_000);
        }
        f.failed("alice", stranger, 10_000 + FORGET_AFTER_MS);
        assert_eq!(f.locked("alice", stranger, 10_000 + FORGET_AFTER_MS), None, "counting started afresh");
    }
}
