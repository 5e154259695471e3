//! Admission before ordering: token buckets at each replica, so one account cannot fill the
//! ordering path (every request it sends is ordered, executed and logged by every replica),
//! and one network address cannot create accounts without end. Local, not replicated: a
//! request some replicas refuse here may still be ordered through the others, and nothing
//! in the state depends on it.

use std::collections::HashMap;
use std::net::IpAddr;

/// Requests per second one user may send to one replica, sustained.
pub const USER_RATE_PER_S: u64 = 100;
/// Requests one user may send at once after a quiet spell.
pub const USER_BURST: u64 = 500;
/// Accounts one network address may create per minute at one replica, sustained.
pub const CREATES_PER_MINUTE: u64 = 30;
/// Accounts one network address may create at once after a quiet spell.
pub const CREATE_BURST: u64 = 30;
/// Keys tracked at once per kind; past it, those quiet for a while are forgotten (a full
/// bucket).
const TRACKED_MAX: usize = 100_000;

/// One token bucket per key: `burst` tokens, refilled at `per_minute`.
pub struct Rates<K> {
    per_minute: u64,
    burst: u64,
    /// Tokens in millionths, and when they were last topped up (ms).
    buckets: HashMap<K, (u64, u64)>,
}

/// Requests per user.
pub type UserRates = Rates<String>;
/// Account creations per address (an IPv6 address counts by its /64, what one host gets).
pub type CreateRates = Rates<IpAddr>;

impl UserRates {
    pub fn users() -> Self {
        Rates { per_minute: USER_RATE_PER_S * 60, burst: USER_BURST, buckets: HashMap::new() }
    }
}

impl CreateRates {
    pub fn creations() -> Self {
        Rates { per_minute: CREATES_PER_MINUTE, burst: CREATE_BURST, buckets: HashMap::new() }
    }

    /// Takes one creation of `address`'s bucket at `now_ms`; false when it is empty.
    pub fn allow_address(&mut self, address: IpAddr, now_ms: u64) -> bool {
        let address = match address {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into())
            }
            IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
            v4 => v4,
        };
        self.allow(&address, now_ms)
    }
}

impl<K: std::hash::Hash + Eq + Clone> Rates<K> {
    /// Takes one token of `key`'s bucket at `now_ms`; false when it is empty.
    pub fn allow<Q>(&mut self, key: &Q, now_ms: u64) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let full = self.burst * 1_000_000;
        if self.buckets.len() >= TRACKED_MAX && !self.buckets.contains_key(key) {
            // Forget keys whose bucket has refilled: they are as good as new.
            let full_after_ms = self.burst * 60_000 / self.per_minute;
            self.buckets.retain(|_, (_, at)| now_ms.saturating_sub(*at) < full_after_ms);
            if self.buckets.len() >= TRACKED_MAX {
                return false;
            }
        }
        let (tokens, at) = self.buckets.entry(key.to_owned()).or_insert((full, now_ms));
        // Millionths of a token per ms: per_minute * 1e6 / 60_000.
        let refill = now_ms.saturating_sub(*at) * self.per_minute * 1_000_000 / 60_000;
        *tokens = (*tokens + refill).min(full);
        *at = now_ms.max(*at);
        if *tokens < 1_000_000 {
            return false;
        }
        *tokens -= 1_000_000;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_a_burst_then_the_sustained_rate_and_others_are_not_affected() {
        let mut r = UserRates::users();
        let allowed = (0..USER_BURST + 100).filter(|_| r.allow("mallory", 1_000)).count() as u64;
        assert_eq!(allowed, USER_BURST, "the burst, then nothing at the same instant");
        assert!(r.allow("alice", 1_000), "another user has her own bucket");
        // One second later: the sustained rate's worth.
        let later = (0..USER_RATE_PER_S * 2).filter(|_| r.allow("mallory", 2_000)).count() as u64;
        assert_eq!(later, USER_RATE_PER_S);
    }

    #[test]
    fn an_address_creates_a_burst_of_accounts_then_one_every_two_seconds() {
        let mut r = CreateRates::creations();
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let allowed = (0..100).filter(|_| r.allow_address(a, 1_000)).count() as u64;
        assert_eq!(allowed, CREATE_BURST);
        assert!(r.allow_address("192.0.2.8".parse().unwrap(), 1_000), "another address has its own");
        assert!(!r.allow_address(a, 2_999), "not yet");
        assert!(r.allow_address(a, 3_000), "one every 60 s / 30");
        // The same host under another IPv6 address of its /64, and IPv4 mapped in IPv6.
        let mut r = CreateRates::creations();
        let allowed = (0..100u16).filter(|i| r.allow_address(format!("2001:db8::{i:x}").parse().unwrap(), 1_000)).count() as u64;
        assert_eq!(allowed, CREATE_BURST, "one /64 is one host");
        assert!(r.allow_address("2001:db8:0:1::1".parse().unwrap(), 1_000), "another /64 is another");
        let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        let n = (0..100).filter(|_| r.allow_address(mapped, 1_000)).count() as u64;
        assert_eq!(n, CREATE_BURST);
        assert!(!r.allow_address("192.0.2.9".parse().unwrap(), 1_000), "mapped and plain IPv4 are one address");
    }
}
