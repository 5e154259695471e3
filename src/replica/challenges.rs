//! Subscription challenges: 32 random bytes a replica hands out, each good for one
//! subscription at this replica within `CHALLENGE_TTL`. A subscription seen on the wire, or
//! received by a lying replica, is therefore worth nothing anywhere else or later.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an issued challenge may wait for its subscription.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(60);
/// Challenges outstanding at once; past it the oldest is forgotten (its client asks again).
const CHALLENGES_MAX: usize = 4_096;

#[derive(Default)]
pub struct Challenges {
    inner: Mutex<Issued>,
}

#[derive(Default)]
struct Issued {
    by_value: HashMap<[u8; 32], Instant>,
    order: VecDeque<[u8; 32]>,
}

impl Challenges {
    pub fn issue(&self) -> [u8; 32] {
        let mut challenge = [0u8; 32];
        getrandom::fill(&mut challenge).expect("the operating system has no random source");
        let mut issued = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        issued.by_value.insert(challenge, Instant::now());
        issued.order.push_back(challenge);
        while issued.order.len() > CHALLENGES_MAX {
            let oldest = issued.order.pop_front().expect("not empty");
            issued.by_value.remove(&oldest);
        }
        challenge
    }

    /// Uses `challenge` up: true when this replica issued it within the TTL and it was not
    /// used before.
    pub fn take(&self, challenge: &[u8]) -> bool {
        let Ok(challenge) = <[u8; 32]>::try_from(challenge) else { return false };
        let mut issued = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // `order` keeps used ones until they age out; `by_value` decides.
        issued.by_value.remove(&challenge).is_some_and(|at| at.elapsed() <= CHALLENGE_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_is_good_once_and_only_if_issued_here() {
        let here = Challenges::default();
        let elsewhere = Challenges::default();
        let c = here.issue();
        assert!(!elsewhere.take(&c), "issued by another replica");
        assert!(here.take(&c));
        assert!(!here.take(&c), "used up");
        assert!(!here.take(&c[..16]), "wrong length");
    }

    #[test]
    fn outstanding_challenges_are_bounded() {
        let here = Challenges::default();
        let first = here.issue();
        for _ in 0..CHALLENGES_MAX {
            here.issue();
        }
        assert!(!here.take(&first), "the oldest was forgotten");
        let inner = here.inner.lock().unwrap();
        assert_eq!((inner.by_value.len(), inner.order.len()), (CHALLENGES_MAX, CHALLENGES_MAX));
    }
}
