//! Admission before ordering: token buckets at each replica, so one account cannot fill the
//! ordering path (every request it sends is ordered, executed and logged by every replica),
//! one network address cannot create accounts without end, and what no account pays for
//! (garbage, forged requests, requests for accounts this replica does not know, challenges,
//! statuses, subscriptions) is limited per connection and per address. Local, not
//! replicated: a request some replicas refuse here may still be ordered through the
//! others, and nothing in the state depends on it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// Requests per second one user may send to one replica, sustained.
pub const USER_RATE_PER_S: u64 = 100;
/// Requests one user may send at once after a quiet spell.
pub const USER_BURST: u64 = 500;
/// Accounts one network address may create per minute at one replica, sustained.
pub const CREATES_PER_MINUTE: u64 = 30;
/// Accounts one network address may create at once after a quiet spell.
pub const CREATE_BURST: u64 = 30;
/// Unpaid calls per second one connection may make, sustained, and at once.
pub const UNPAID_PER_S_PER_CONNECTION: u64 = 50;
pub const UNPAID_CONNECTION_BURST: u64 = 200;
/// Unpaid calls per second one network address may make over all its connections,
/// sustained, and at once (a host may hold hundreds of connections: the gate's
/// `per_address`).
pub const UNPAID_PER_S_PER_ADDRESS: u64 = 200;
pub const UNPAID_ADDRESS_BURST: u64 = 1_000;
/// Keys tracked at once per kind; past it, those quiet for a while are forgotten (a full
/// bucket).
const TRACKED_MAX: usize = 100_000;

/// One token bucket per key: `burst` tokens, refilled at `per_minute`.
pub struct Rates<K> {
    per_minute: u64,
    burst: u64,
    /// Tokens in millionths (below zero: owed, at most one burst), and when they were last
    /// topped up (ms).
    buckets: HashMap<K, (i64, u64)>,
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
        self.allow(&host(address), now_ms)
    }
}

/// The host an address belongs to: an IPv6 address counts by its /64 (what one host gets),
/// and IPv4 mapped into IPv6 as plain IPv4.
pub(super) fn host(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
        v4 => v4,
    }
}

/// The calls no account pays for, per connection (its address and port) and per host.
/// A call is let in while both of its buckets hold a token (nothing is taken yet: a request
/// may turn out to be verified as its account's, and then its account pays); a call found
/// unpaid takes one from each.
pub struct UnpaidCalls {
    connections: Rates<SocketAddr>,
    hosts: Rates<IpAddr>,
}

impl Default for UnpaidCalls {
    fn default() -> Self {
        let (c, h) = (UNPAID_PER_S_PER_CONNECTION * 60, UNPAID_PER_S_PER_ADDRESS * 60);
        UnpaidCalls {
            connections: Rates { per_minute: c, burst: UNPAID_CONNECTION_BURST, buckets: HashMap::new() },
            hosts: Rates { per_minute: h, burst: UNPAID_ADDRESS_BURST, buckets: HashMap::new() },
        }
    }
}

impl UnpaidCalls {
    /// Whether a call from `from` may be looked at: false while its connection's or its
    /// host's bucket is empty.
    pub fn open(&self, from: SocketAddr, now_ms: u64) -> bool {
        self.connections.has_token(&from, now_ms) && self.hosts.has_token(&host(from.ip()), now_ms)
    }

    /// Takes one token from `from`'s connection and host for a call no account paid for.
    pub fn charge(&mut self, from: SocketAddr, now_ms: u64) {
        self.connections.charge(&from, now_ms);
        self.hosts.charge(&host(from.ip()), now_ms);
    }
}

impl<K: std::hash::Hash + Eq + Clone> Rates<K> {
    /// Whether `key`'s bucket holds a token at `now_ms` (a key not tracked holds a full one).
    fn has_token(&self, key: &K, now_ms: u64) -> bool {
        self.buckets.get(key).is_none_or(|(tokens, at)| tokens + refill(self.per_minute, *at, now_ms) >= 1_000_000)
    }

    /// Takes one token of `key`'s bucket at `now_ms`; false when it is empty.
    pub fn allow<Q>(&mut self, key: &Q, now_ms: u64) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.take(key, now_ms, false)
    }

    /// Takes one token of `key`'s bucket at `now_ms` even when it is empty, as a debt (of at
    /// most one burst) that the refill pays first: for a call let in while the bucket held a
    /// token, and found to cost only after others let in at the same time took it.
    fn charge(&mut self, key: &K, now_ms: u64) {
        self.take(key, now_ms, true);
    }

    fn take<Q>(&mut self, key: &Q, now_ms: u64, owe: bool) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let full = (self.burst * 1_000_000) as i64;
        if self.buckets.len() >= TRACKED_MAX && !self.buckets.contains_key(key) {
            // Forget keys whose bucket has refilled (from the deepest debt): they are as good
            // as new.
            let full_after_ms = 2 * self.burst * 60_000 / self.per_minute;
            self.buckets.retain(|_, (_, at)| now_ms.saturating_sub(*at) < full_after_ms);
            if self.buckets.len() >= TRACKED_MAX {
                return false;
            }
        }
        let (tokens, at) = self.buckets.entry(key.to_owned()).or_insert((full, now_ms));
        *tokens = (*tokens + refill(self.per_minute, *at, now_ms)).min(full);
        *at = now_ms.max(*at);
        let had = *tokens >= 1_000_000;
        if had || owe {
            *tokens = (*tokens - 1_000_000).max(-full);
        }
        had
    }
}

/// Millionths of a token refilled at `per_minute` between `at` and `now_ms`.
fn refill(per_minute: u64, at: u64, now_ms: u64) -> i64 {
    // An hour refills any bucket, and keeps the product far from overflowing.
    let elapsed_ms = now_ms.saturating_sub(at).min(3_600_000);
    (elapsed_ms * per_minute * 1_000_000 / 60_000) as i64
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

    #[test]
    fn unpaid_calls_are_limited_per_connection_then_per_host_and_looking_takes_nothing() {
        let mut r = UnpaidCalls::default();
        let at = |port: u16| SocketAddr::from(([192, 0, 2, 7], port));
        assert!((0..1_000).all(|_| r.open(at(1), 1_000)), "looking takes nothing");
        let mut admitted = 0;
        while r.open(at(1), 1_000) && admitted < 10_000 {
            r.charge(at(1), 1_000);
            admitted += 1;
        }
        assert_eq!(admitted, UNPAID_CONNECTION_BURST);
        assert!(r.open(at(2), 1_000), "another connection of the host has its own bucket");
        assert!(!r.open(at(1), 1_000 + 1_000 / UNPAID_PER_S_PER_CONNECTION - 1), "not yet");
        assert!(r.open(at(1), 1_000 + 1_000 / UNPAID_PER_S_PER_CONNECTION), "the sustained rate");
        // Calls let in together while one token was left, each found unpaid: the bucket owes
        // them, and stays closed until the refill has paid the debt.
        let mut d = UnpaidCalls::default();
        let c = SocketAddr::from(([192, 0, 2, 9], 1));
        (0..UNPAID_CONNECTION_BURST + 100).for_each(|_| d.charge(c, 1_000));
        let paid_at = 1_000 + 101 * 1_000 / UNPAID_PER_S_PER_CONNECTION;
        assert!(!d.open(c, paid_at - 1) && d.open(c, paid_at), "100 owed, then one token");
        assert!(d.open(c, u64::MAX), "a bucket quiet for ages is full, without overflow");
        // Many connections of one host share its bucket; another host is not affected.
        let mut port = 2;
        let mut admitted = UNPAID_CONNECTION_BURST;
        while r.open(at(port), 1_000) && admitted < 10_000 {
            r.charge(at(port), 1_000);
            admitted += 1;
            port += u16::from(admitted % UNPAID_CONNECTION_BURST == 0);
        }
        assert_eq!(admitted, UNPAID_ADDRESS_BURST, "the host's burst, whatever its connections");
        assert!(!r.open(at(60_000), 1_000), "a fresh connection of the host waits too");
        assert!(r.open(SocketAddr::from(([192, 0, 2, 8], 1)), 1_000), "another host");
        assert!(!r.open("[::ffff:192.0.2.7]:9".parse().unwrap(), 1_000), "IPv4 mapped in IPv6 is the same host");
    }
}
