//! Admission before ordering: a token bucket per user at each replica, so one account
//! cannot fill the ordering path (every request it sends is ordered, executed and logged
//! by every replica). Local, not replicated: a request some replicas refuse here may still
//! be ordered through the others, and nothing in the state depends on it.

use std::collections::HashMap;

/// Requests per second one user may send to one replica, sustained.
pub const USER_RATE_PER_S: u64 = 100;
/// Requests one user may send at once after a quiet spell.
pub const USER_BURST: u64 = 500;
/// Users tracked at once; past it, those quiet for a while are forgotten (a full bucket).
const TRACKED_MAX: usize = 100_000;

#[derive(Default)]
pub struct UserRates {
    /// Tokens in thousandths, and when they were last topped up (ms).
    buckets: HashMap<String, (u64, u64)>,
}

impl UserRates {
    /// Takes one token of `user`'s bucket at `now_ms`; false when it is empty.
    pub fn allow(&mut self, user: &str, now_ms: u64) -> bool {
        if self.buckets.len() >= TRACKED_MAX && !self.buckets.contains_key(user) {
            // Forget users whose bucket has refilled: they are as good as new.
            let full_after = USER_BURST * 1_000 / USER_RATE_PER_S;
            self.buckets.retain(|_, (_, at)| now_ms.saturating_sub(*at) < full_after);
            if self.buckets.len() >= TRACKED_MAX {
                return false;
            }
        }
        let (tokens, at) = self.buckets.entry(user.to_owned()).or_insert((USER_BURST * 1_000, now_ms));
        let refill = now_ms.saturating_sub(*at) * USER_RATE_PER_S;
        *tokens = (*tokens + refill).min(USER_BURST * 1_000);
        *at = now_ms.max(*at);
        if *tokens < 1_000 {
            return false;
        }
        *tokens -= 1_000;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_a_burst_then_the_sustained_rate_and_others_are_not_affected() {
        let mut r = UserRates::default();
        let allowed = (0..USER_BURST + 100).filter(|_| r.allow("mallory", 1_000)).count() as u64;
        assert_eq!(allowed, USER_BURST, "the burst, then nothing at the same instant");
        assert!(r.allow("alice", 1_000), "another user has her own bucket");
        // One second later: the sustained rate's worth.
        let later = (0..USER_RATE_PER_S * 2).filter(|_| r.allow("mallory", 2_000)).count() as u64;
        assert_eq!(later, USER_RATE_PER_S);
    }
}
