//! The client's voting rule, pure and synchronous (the simulator reuses it).
//!
//! A reply counts once per replica, only if it is signed by that replica's key and names this
//! request. The result is accepted when `quorum` replicas gave the same (height, outcome):
//! with quorum = f + 1, at least one of them is honest, so the result is what the honest
//! replicas committed. Outcomes are compared by their canonical re-encoding, so two encodings
//! of the same content count as the same vote.
//!
//! A reply at height 0 is a replica's own answer, given without ordering, and it is a result
//! only when it says `replayed`: an honest replica says that only once it has executed a
//! later request of the session (or another body under this number), so three of them
//! include one that did, and the number is spent for good. Any other height-0 answer — busy,
//! rate-limited, an unknown account, a signature this replica cannot verify yet — is this
//! replica's state of the moment, not the cluster's: two liars and one honest replica that
//! refused locally could otherwise make a client show "not sent" for a request the others
//! commit. It counts as "no answer yet" from that replica (`refusals`): the client asks it
//! again with the same request, and the same number, so it can never apply twice.

use std::collections::BTreeMap;

use prost::Message as _;

use crate::crypto::{self, TAG_DELIVERY, TAG_REPLY, VerifyingKey};
use crate::pb;

#[derive(Clone, Debug, PartialEq)]
pub struct Agreed {
    pub height: u64,
    pub outcome: pb::Outcome,
    /// Who agreed, and who answered something else (another result, or a reply that did
    /// not verify). The rest were silent.
    pub agreement: Agreement,
    /// Whether this answer settles the request: a result, or `replayed` (its number is
    /// spent). False for refusals that every replica gave while none held the request
    /// (`Tally::refused`): the request was not applied then, but could still be, so the
    /// client's next request reuses its number (at most one of the two can apply).
    pub settled: bool,
    /// Replicas whose signed answer contradicts this result at its height: proofs against
    /// them were kept (`crate::evidence`).
    pub proven: Vec<usize>,
}

/// Height-0 answers that say only "not now" (the client keeps asking until its deadline);
/// other refusals can settle a client's wait early (`Tally::refused`).
const TRANSIENT: [&str; 2] = ["busy", "rate_limited"];

/// The failure code of an outcome, if it is one.
fn failure_code(outcome: &pb::Outcome) -> Option<&str> {
    match &outcome.kind {
        Some(pb::outcome::Kind::Failure(f)) => Some(f.code.as_str()),
        _ => None,
    }
}

/// Whether a reply (not yet verified) is a height-0 answer other than `replayed`: the
/// replica will be asked again. A reply that does not decode is not.
pub fn is_refusal(reply: &pb::SignedReply) -> bool {
    pb::ReplyBody::decode(reply.body.as_slice())
        .is_ok_and(|b| b.height == 0 && failure_code(&b.outcome.unwrap_or_default()) != Some("replayed"))
}

/// Why a reply did not count.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("signature does not verify with the replica's key")]
    BadSignature,
    #[error("malformed reply")]
    Malformed,
    #[error("reply is for another request")]
    OtherRequest,
    #[error("reply claims to be from replica {0:?}")]
    WrongReplica(String),
    #[error("second reply from the same replica")]
    Duplicate,
}

pub struct Tally {
    quorum: usize,
    request_digest: [u8; 32],
    /// replica index -> its vote (height, canonical outcome bytes)
    votes: BTreeMap<usize, (u64, Vec<u8>)>,
    /// replica index -> its latest height-0 refusal (canonical bytes): not a vote.
    refusals: BTreeMap<usize, Vec<u8>>,
    /// replica index -> the signed reply behind its vote (what a proof carries).
    signed: BTreeMap<usize, pb::SignedReply>,
}

impl Tally {
    pub fn new(quorum: usize, request_digest: [u8; 32]) -> Self {
        assert!(quorum >= 1);
        Tally { quorum, request_digest, votes: BTreeMap::new(), refusals: BTreeMap::new(), signed: BTreeMap::new() }
    }

    /// Counts one signed reply from replica `index` (whose id and key the caller knows).
    pub fn add(
        &mut self,
        index: usize,
        id: &str,
        key: &VerifyingKey,
        reply: &pb::SignedReply,
    ) -> Result<Option<Agreed>, Rejected> {
        if self.votes.contains_key(&index) {
            return Err(Rejected::Duplicate);
        }
        crypto::verify(key, TAG_REPLY, &reply.body, &reply.signature).map_err(|_| Rejected::BadSignature)?;
        let body = pb::ReplyBody::decode(reply.body.as_slice()).map_err(|_| Rejected::Malformed)?;
        if body.replica != id {
            return Err(Rejected::WrongReplica(body.replica));
        }
        if body.request_digest != self.request_digest {
            return Err(Rejected::OtherRequest);
        }
        let counted = self.add_vote(index, body.height, body.outcome.unwrap_or_default());
        if self.votes.contains_key(&index) {
            self.signed.insert(index, reply.clone());
        }
        counted
    }

    /// Proofs against the replicas whose signed answer contradicts `agreed` at its height,
    /// each with the signed replies of the replicas that agreed (NOTEBOOK, "Evidence").
    /// None for a height-0 answer: a replica's refusal of the moment proves nothing.
    /// Only answers of the execution itself count (`ReplyBody::executed`), all naming the
    /// same ordered request bytes: an answer from what a replica kept may say less.
    pub fn contradictions(&self, agreed: &Agreed) -> Vec<(usize, pb::Proof)> {
        let result = (agreed.height, agreed.outcome.encode_to_vec());
        // The executed answers, with the ordered bytes they name.
        let executed = |index: &usize| {
            let reply = self.signed.get(index)?;
            let body = pb::ReplyBody::decode(reply.body.as_slice()).ok()?;
            body.executed.then_some((reply.clone(), body.ordered))
        };
        let mut groups: BTreeMap<Vec<u8>, Vec<pb::SignedReply>> = BTreeMap::new();
        for (index, _) in self.votes.iter().filter(|(_, v)| **v == result) {
            if let Some((reply, ordered)) = executed(index) {
                groups.entry(ordered).or_default().push(reply);
            }
        }
        let Some((ordered, others)) = groups.into_iter().find(|(_, replies)| replies.len() >= self.quorum) else { return Vec::new() };
        if agreed.height == 0 {
            return Vec::new();
        }
        self.votes
            .iter()
            .filter(|(_, (height, outcome))| *height == result.0 && *outcome != result.1)
            .filter_map(|(index, _)| {
                let (accused, said) = executed(index)?;
                (said == ordered).then_some(())?;
                let conflict = pb::ReplyConflict { accused: Some(accused), others: others.clone() };
                Some((*index, pb::Proof { kind: Some(pb::proof::Kind::WrongResult(conflict)) }))
            })
            .collect()
    }

    /// The rule itself, for a reply already authenticated as replica `index`'s answer to
    /// this request (the simulator calls this directly).
    pub fn add_vote(&mut self, index: usize, height: u64, outcome: pb::Outcome) -> Result<Option<Agreed>, Rejected> {
        if self.votes.contains_key(&index) {
            return Err(Rejected::Duplicate);
        }
        if height == 0 && failure_code(&outcome) != Some("replayed") {
            self.refusals.insert(index, outcome.encode_to_vec());
            return Ok(None);
        }
        self.refusals.remove(&index);
        let vote = (height, outcome.encode_to_vec());
        self.votes.insert(index, vote.clone());
        let replicas: Vec<usize> = self.votes.iter().filter(|(_, v)| **v == vote).map(|(i, _)| *i).collect();
        let differed = self.votes.iter().filter(|(_, v)| **v != vote).map(|(i, _)| *i).collect();
        let agreement = Agreement { agreed: replicas, differed };
        Ok((agreement.agreed.len() >= self.quorum).then_some(Agreed { height, outcome, agreement, settled: true, proven: Vec::new() }))
    }

    /// Replica `index`'s counted answer: its height and canonical outcome bytes.
    pub fn vote_of(&self, index: usize) -> Option<(u64, Vec<u8>)> {
        self.votes.get(&index).cloned()
    }

    /// Whether replica `index`'s latest answer is a refusal.
    pub fn refused_by(&self, index: usize) -> bool {
        self.refusals.contains_key(&index)
    }

    /// Replica `index`'s latest refusal, as its code and text (neutralised for a terminal).
    pub fn refusal_text(&self, index: usize) -> Option<String> {
        let outcome = pb::Outcome::decode(self.refusals.get(&index)?.as_slice()).ok()?;
        match outcome.kind {
            Some(pb::outcome::Kind::Failure(f)) => Some(super::shown(&format!("{}: {}", f.code, f.message))),
            _ => Some("an empty refusal".into()),
        }
    }

    /// Replicas whose latest answer is a refusal.
    pub fn refusal_count(&self) -> usize {
        self.refusals.len()
    }

    /// The refusal `quorum` replicas gave alike, unless it only says "not now": for a client
    /// that heard every replica and has no call waiting on any (none holds the request), the
    /// answer of the moment (a wrong password, an unknown account). Not settled.
    pub fn refused(&self) -> Option<Agreed> {
        let (common, count) = self
            .refusals
            .values()
            .map(|r| (r, self.refusals.values().filter(|s| *s == r).count()))
            .max_by_key(|(_, count)| *count)?;
        let outcome = pb::Outcome::decode(common.as_slice()).ok()?;
        if count < self.quorum || TRANSIENT.contains(&failure_code(&outcome)?) {
            return None;
        }
        let agreed = self.refusals.iter().filter(|(_, r)| *r == common).map(|(i, _)| *i).collect();
        let differed = self.refusals.iter().filter(|(_, r)| *r != common).map(|(i, _)| *i).chain(self.votes.keys().copied()).collect();
        Some(Agreed { height: 0, outcome, agreement: Agreement { agreed, differed }, settled: false, proven: Vec::new() })
    }

    /// The other replicas whose result is the same as replica `index`'s, and those whose
    /// result is another.
    pub fn compared(&self, index: usize) -> (Vec<usize>, Vec<usize>) {
        let Some(mine) = self.votes.get(&index) else { return (Vec::new(), Vec::new()) };
        let others = self.votes.iter().filter(|(i, _)| **i != index);
        let (alike, unlike): (Vec<_>, Vec<_>) = others.partition(|(_, v)| *v == mine);
        (alike.into_iter().map(|(i, _)| *i).collect(), unlike.into_iter().map(|(i, _)| *i).collect())
    }

    /// Replica `index`'s counted answer in a few words: its height and what it says
    /// ("at height 57: sent", "at height 0: replayed"), for the no-quorum report.
    pub fn said(&self, index: usize) -> Option<String> {
        let (height, outcome) = self.votes.get(&index)?;
        let outcome = pb::Outcome::decode(outcome.as_slice()).ok()?;
        let what = match &outcome.kind {
            Some(pb::outcome::Kind::Failure(f)) => super::shown(&format!("{} ({})", f.code, f.message.chars().take(100).collect::<String>())),
            Some(kind) => format!("{kind:?}").split('(').next().unwrap_or_default().to_lowercase(),
            None => "nothing".into(),
        };
        Some(format!("at height {height}: {what}"))
    }

    /// True when no result can reach the quorum any more with `total` replicas.
    pub fn hopeless(&self, total: usize) -> bool {
        let missing = total - self.votes.len();
        let best = self.votes.values().map(|v| self.votes.values().filter(|w| *w == v).count()).max().unwrap_or(0);
        best + missing < self.quorum
    }
}

/// Replica indexes that agreed on a result or a delivery, and those that answered
/// otherwise (another result, or another copy of the message).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Agreement {
    pub agreed: Vec<usize>,
    pub differed: Vec<usize>,
}

/// What a quorum of replicas told on the live streams.
#[derive(Clone, Debug, PartialEq)]
pub enum Live {
    /// A committed message to this user, with its height and who delivered it (the quorum
    /// whose copies matched, and the replicas whose copies of that id differed).
    Message(u64, pb::Message, Agreement),
    /// A committed request closed one of this user's sessions.
    SessionClosed { height: u64, session: u64, reason: String },
}

/// Live deliveries: a message is shown once `quorum` replicas delivered the same committed
/// message (same height and content), and only once; a session-closed notice likewise.
///
/// In commit order too: message ids grow with the commit order, and a message at or below
/// the floor (the newest id shown live or read) is not shown live. That happens when its
/// quorum came late: a replica that restarted or caught up delivers old messages as it
/// executes them, after a newer message already had its quorum. It stays unread in the
/// mailbox (only what is shown is marked read), so the next `read` has it.
pub struct DeliveryTally {
    quorum: usize,
    floor: u64,
    /// Messages waiting for a quorum, by id.
    seen: Waiting,
    shown: std::collections::BTreeSet<u64>,
    /// The same for session-closed notices, by session id.
    closures: Waiting,
    closures_shown: std::collections::BTreeSet<u64>,
}

/// Copies waiting for a quorum: key (message id or session) -> (height, SHA-256 of the
/// canonical bytes) -> the replicas that sent it. Only the hash is kept: the copy that
/// completes a quorum is the one shown. Each replica may hold at most `per_replica`
/// entries open here (its oldest vote is withdrawn past that), so one lying replica's
/// forgeries take bounded memory and never push out what honest replicas sent.
struct Waiting {
    waiting: BTreeMap<u64, BTreeMap<(u64, [u8; 32]), Vec<usize>>>,
    /// Per replica, its votes that may still be waiting, oldest first.
    votes: BTreeMap<usize, std::collections::VecDeque<(u64, (u64, [u8; 32]))>>,
    per_replica: usize,
}

impl Waiting {
    fn new(per_replica: usize) -> Self {
        Waiting { waiting: BTreeMap::new(), votes: BTreeMap::new(), per_replica }
    }

    /// Counts `index`'s copy; when the copy's key just reached `quorum` (its entry is then
    /// removed), who agreed and who sent another copy of that key.
    fn count(&mut self, key: u64, vote: (u64, [u8; 32]), index: usize, quorum: usize) -> Option<Agreement> {
        let voters = self.waiting.entry(key).or_default().entry(vote).or_default();
        if voters.contains(&index) {
            return None;
        }
        voters.push(index);
        if voters.len() >= quorum {
            let mut agreed = voters.clone();
            let variants = self.waiting.remove(&key).unwrap_or_default();
            let mut differed: Vec<usize> = variants.into_iter().filter(|(v, _)| *v != vote).flat_map(|(_, who)| who).collect();
            agreed.sort_unstable();
            differed.sort_unstable();
            differed.dedup();
            return Some(Agreement { agreed, differed });
        }
        let mine = self.votes.entry(index).or_default();
        mine.push_back((key, vote));
        while mine.len() > self.per_replica {
            let Some((old_key, old_vote)) = mine.pop_front() else { break };
            if let Some(variants) = self.waiting.get_mut(&old_key) {
                if let Some(voters) = variants.get_mut(&old_vote) {
                    voters.retain(|i| *i != index);
                    if voters.is_empty() {
                        variants.remove(&old_vote);
                    }
                }
                if variants.is_empty() {
                    self.waiting.remove(&old_key);
                }
            }
        }
        None
    }

    /// Drops every key at or below `key`.
    fn drop_through(&mut self, key: u64) {
        self.waiting = self.waiting.split_off(&(key + 1));
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.waiting.values().map(BTreeMap::len).sum()
    }
}

/// Session-closed notices remembered as told (a user has at most a few sessions).
const CLOSURES_MAX: usize = 64;
/// Copies one replica may have waiting for a quorum: messages, session-closed notices.
const WAITING_PER_REPLICA: usize = 1024;
const CLOSURES_PER_REPLICA: usize = 16;

/// Message ids remembered as shown (older ones fall out; ids only grow).
const SHOWN_MAX: usize = 10_000;

impl DeliveryTally {
    pub fn new(quorum: usize) -> Self {
        DeliveryTally {
            quorum,
            floor: 0,
            seen: Waiting::new(WAITING_PER_REPLICA),
            shown: Default::default(),
            closures: Waiting::new(CLOSURES_PER_REPLICA),
            closures_shown: Default::default(),
        }
    }

    /// The client read messages up to `id` from the mailbox: none of them is shown live.
    pub fn raise_floor(&mut self, id: u64) {
        if id > self.floor {
            self.floor = id;
            self.seen.drop_through(id);
        }
    }

    /// Copies waiting for a quorum (tests: the memory bound).
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.seen.entries()
    }

    pub fn add(&mut self, index: usize, id: &str, key: &VerifyingKey, delivery: &pb::SignedDelivery) -> Option<Live> {
        crypto::verify(key, TAG_DELIVERY, &delivery.body, &delivery.signature).ok()?;
        let body = pb::DeliveryBody::decode(&delivery.body[..]).ok()?;
        if body.replica != id {
            return None;
        }
        if let Some(closed) = body.closed {
            if body.message.is_some() || self.closures_shown.contains(&closed.session) {
                return None;
            }
            self.closures.count(closed.session, (body.height, crate::wire::digest(&closed.encode_to_vec())), index, self.quorum)?;
            self.closures_shown.insert(closed.session);
            while self.closures_shown.len() > CLOSURES_MAX {
                self.closures_shown.pop_first();
            }
            return Some(Live::SessionClosed { height: body.height, session: closed.session, reason: closed.reason });
        }
        let message = body.message?;
        if message.id <= self.floor || self.shown.contains(&message.id) {
            return None;
        }
        let agreement = self.seen.count(message.id, (body.height, crate::wire::digest(&message.encode_to_vec())), index, self.quorum)?;
        self.shown.insert(message.id);
        self.floor = message.id;
        // What is below the floor can no longer be shown.
        self.seen.drop_through(message.id);
        while self.shown.len() > SHOWN_MAX {
            self.shown.pop_first();
        }
        Some(Live::Message(body.height, message, agreement))
    }
}
