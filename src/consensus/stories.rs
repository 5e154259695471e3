//! Hand-driven attacks on three honest cores (replicas 2, 3, 4) by a Byzantine pair
//! (replicas 0 and 1, leaders of views 0 and 1) that signs only with its own keys and
//! reuses what honest replicas sent it. Every honest-to-honest message takes exactly Δ,
//! as synchrony allows. These are the timelines of the 2026-11-22 review; each story runs
//! on the fixed core and, where the bug can be planted back, on the planted core too.

use std::collections::BTreeMap;

use super::tests::block;
use super::*;

pub(super) const DELTA: u64 = 100;
pub(super) const HONEST: [ReplicaId; 3] = [2, 3, 4];

pub(super) fn sign_as(who: ReplicaId, bytes: &[u8]) -> Vec<u8> {
    SimCrypto { me: who }.sign(bytes)
}

/// Three honest cores, a queue of timed deliveries, and what they sent the Byzantine pair.
pub(super) struct Net {
    now: u64,
    cfg: Config,
    cores: BTreeMap<ReplicaId, Core>,
    queue: BTreeMap<(u64, u64), (ReplicaId, ReplicaId, Message)>,
    seq: u64,
    /// Messages honest replicas sent to replica 0 or 1.
    to_coalition: Vec<(ReplicaId, Message)>,
    commits: BTreeMap<ReplicaId, Vec<Block>>,
    /// The coalition votes for every block an honest leader proposes (sent to all).
    coalition_votes: bool,
    /// Added to every time a story names (`inject`, `run_until`): the stories of the review
    /// were timed before requests were relayed (S10), which puts an honest replica's own
    /// blame for a request 6Δ later; the stories keep their times after the first blame.
    pub(super) offset: u64,
    /// What each honest replica persisted and stored last, for a restart (`restart`).
    persisted: BTreeMap<ReplicaId, Persistent>,
    stored: BTreeMap<ReplicaId, Vec<Block>>,
    /// The delay of honest messages on a link (from, to) where it is not Δ: at most Δ
    /// (synchrony allows faster links, and some attacks need uneven ones).
    pub(super) delays: BTreeMap<(ReplicaId, ReplicaId), u64>,
}

impl Net {
    pub(super) fn new(planted: Planted) -> Net {
        let mut cfg = Config::new(5, DELTA);
        cfg.planted = planted;
        let cores =
            HONEST.iter().map(|id| (*id, Core::new(cfg.clone(), *id, Box::new(SimCrypto { me: *id }), Restored::default()))).collect();
        let (persisted, stored) = (BTreeMap::new(), BTreeMap::new());
        let delays = BTreeMap::new();
        Net { now: 0, cfg, cores, queue: BTreeMap::new(), seq: 0, to_coalition: Vec::new(), commits: BTreeMap::new(), coalition_votes: false, offset: 0, persisted, stored, delays }
    }

    /// Replica `id` crashes: what it held in memory only is gone, messages to it are lost.
    pub(super) fn crash(&mut self, id: ReplicaId) {
        self.cores.remove(&id);
    }

    /// Replica `id` starts again from what it persisted and stored.
    pub(super) fn restart(&mut self, id: ReplicaId) {
        let restored = Restored {
            persistent: self.persisted.get(&id).cloned(),
            committed: self.commits.get(&id).cloned().unwrap_or_default(),
            blocks: self.stored.get(&id).cloned().unwrap_or_default(),
            restarted: true,
            ..Restored::default()
        };
        self.cores.insert(id, Core::new(self.cfg.clone(), id, Box::new(SimCrypto { me: id }), restored));
    }

    /// A Byzantine replica's message, delivered at the story's time `at`.
    pub(super) fn inject(&mut self, at: u64, from: ReplicaId, to: ReplicaId, message: Message) {
        self.push(at + self.offset, from, to, message);
    }

    /// A message delivered at `at` (the net's own time).
    fn push(&mut self, at: u64, from: ReplicaId, to: ReplicaId, message: Message) {
        self.seq += 1;
        self.queue.insert((at, self.seq), (from, to, message));
    }

    fn perform(&mut self, id: ReplicaId, actions: Vec<Action>) {
        for action in actions {
            let (targets, message): (Vec<ReplicaId>, Message) = match action {
                Action::Send(to, m) => (vec![to], m),
                Action::Broadcast(m) => ((0..5).filter(|r| *r != id).collect(), m),
                Action::Commit(b) => {
                    self.commits.entry(id).or_default().push(b);
                    continue;
                }
                Action::Persist(p) => {
                    self.persisted.insert(id, p);
                    continue;
                }
                Action::StoreBlock(b) => {
                    self.stored.entry(id).or_default().push(b);
                    continue;
                }
                _ => continue,
            };
            if let Message::Propose(p) = &message
                && self.coalition_votes
                && p.block.proposer == id
            {
                for to in HONEST {
                    let at = self.now + 1;
                    self.push(at, 0, to, vote(0, &p.block));
                    self.push(at, 1, to, vote(1, &p.block));
                }
            }
            for to in targets {
                if HONEST.contains(&to) {
                    let delay = self.delays.get(&(id, to)).copied().unwrap_or(DELTA);
                    assert!(delay <= DELTA, "synchrony: every honest message within Δ");
                    let at = self.now + delay;
                    self.push(at, id, to, message.clone());
                } else {
                    self.to_coalition.push((id, message.clone()));
                }
            }
        }
    }

    /// Runs until the story's time `until`, ticking every honest core every Δ/4.
    pub(super) fn run_until(&mut self, until: u64) {
        let until = until + self.offset;
        while self.now < until {
            let next_tick = (self.now / (DELTA / 4) + 1) * (DELTA / 4);
            let next = self.queue.keys().next().map_or(next_tick, |(t, _)| (*t).min(next_tick)).min(until);
            self.now = next;
            while let Some((&key, _)) = self.queue.iter().next().filter(|((t, _), _)| *t <= self.now) {
                let (from, to, message) = self.queue.remove(&key).expect("queued");
                let Some(core) = self.cores.get_mut(&to) else { continue }; // crashed
                let actions = core.handle(self.now, Input::Message(from, message));
                self.perform(to, actions);
            }
            if self.now == next_tick {
                for id in HONEST {
                    let Some(core) = self.cores.get_mut(&id) else { continue }; // crashed
                    let actions = core.handle(self.now, Input::Tick);
                    self.perform(id, actions);
                }
            }
        }
    }

    pub(super) fn request(&mut self, bytes: &[u8]) {
        self.request_to(&HONEST, bytes);
    }

    /// A client request that reaches only these honest replicas (the others are down).
    pub(super) fn request_to(&mut self, ids: &[ReplicaId], bytes: &[u8]) {
        for id in ids {
            let actions = self.cores.get_mut(id).expect("up").handle(self.now, Input::Request(bytes.to_vec()));
            self.perform(*id, actions);
        }
    }

    pub(super) fn status_from(&self, who: ReplicaId, view: View) -> Option<Status> {
        self.to_coalition.iter().rev().find_map(|(from, m)| match m {
            Message::Status(s) if *from == who && s.view == view => Some(s.clone()),
            _ => None,
        })
    }

    /// The story's time now (the net's, less `offset`).
    pub(super) fn story_now(&self) -> u64 {
        self.now.saturating_sub(self.offset)
    }

    /// What honest replicas sent the Byzantine pair.
    pub(super) fn sent_to_coalition(&self) -> &[(ReplicaId, Message)] {
        &self.to_coalition
    }

    pub(super) fn core(&self, id: ReplicaId) -> &Core {
        &self.cores[&id]
    }

    /// The committed block at `height` per honest replica that committed one.
    pub(super) fn committed_at(&self, height: Height) -> BTreeMap<ReplicaId, Hash> {
        self.commits
            .iter()
            .filter_map(|(id, blocks)| blocks.iter().find(|b| b.height == height).map(|b| (*id, b.hash)))
            .collect()
    }

    pub(super) fn agreement_holds(&self) -> bool {
        let top = self.commits.values().flat_map(|b| b.iter().map(|b| b.height)).max().unwrap_or(0);
        (1..=top).all(|h| {
            let at = self.committed_at(h);
            at.values().all(|hash| Some(hash) == at.values().next())
        })
    }
}

pub(super) fn propose(b: &Block, justification: Option<Justification>) -> Message {
    let signature = sign_as(b.proposer, &signed::proposal(&b.hash, justification.as_ref()));
    Message::Propose(Proposal { block: b.clone(), signature, justification })
}

pub(super) fn vote(who: ReplicaId, b: &Block) -> Message {
    let signature = sign_as(who, &signed::vote(b.view, b.height, &b.hash));
    Message::Vote(Vote { view: b.view, height: b.height, hash: b.hash, voter: who, signature })
}

pub(super) fn qc(b: &Block, voters: &[ReplicaId]) -> QuorumCert {
    let votes = voters.iter().map(|v| (*v, sign_as(*v, &signed::vote(b.view, b.height, &b.hash)))).collect();
    QuorumCert { view: b.view, height: b.height, hash: b.hash, votes }
}

pub(super) fn blame(who: ReplicaId, view: View, entered_by: Option<BlameCert>) -> Message {
    Message::Blame(Blame { view, voter: who, reason: BlameReason::Timeout, signature: sign_as(who, &signed::blame(view)), entered_by })
}

pub(super) fn coalition_status(who: ReplicaId, view: View, high_qc: QuorumCert, blame_cert: BlameCert) -> Status {
    let signature = sign_as(who, &signed::status(view, &high_qc));
    Status { view, high_qc, voter: who, signature, blame_cert }
}

/// Bug 1 of the review: the coalition gives replica 3 alone a QC in view 0 just before it
/// leaves, then shows replica 4 a view-1 chain from genesis (B0, B1) and replica 3 a view-1
/// chain over that QC (X0, X1) 150 ms later, each with a justification of its own. Replica 4
/// commits B0 at 2Δ after its vote; X0, forwarded by 3, reaches it 50 ms too late. Returns
/// the net after the next (honest) leader's view has run.
fn cross_height_story(planted: Planted) -> Net {
    let mut net = Net::new(planted);
    let request = b"a request the silent leader never orders".to_vec();
    net.request(&request);
    // The honest replicas relay it to leader 0 at 6Δ (S10) and blame 12Δ after that.
    net.offset = 6 * DELTA;
    // View 0: leader 0 is silent; requests time out at 12Δ. The coalition's blames go to 2
    // and 4 only, who leave view 0 as soon as they blame themselves.
    for to in [2, 4] {
        net.inject(1_150, 0, to, blame(0, 0, None));
        net.inject(1_150, 1, to, blame(1, 0, None));
    }
    net.run_until(1_250);
    assert_eq!((net.core(2).view(), net.core(4).view(), net.core(3).view()), (1, 1, 0), "2 and 4 left view 0 first");
    // Just before replica 3 leaves, leader 0 shows it block Q, and the coalition's votes
    // give it QC(Q).
    let q = block(0, QuorumCert::genesis(), 1_250, vec![]);
    net.inject(1_260, 0, 3, propose(&q, None));
    net.inject(1_262, 0, 3, vote(0, &q));
    net.inject(1_262, 1, 3, vote(1, &q));
    net.run_until(1_600);
    assert_eq!(net.core(3).view(), 1);
    assert_eq!(net.core(3).high_qc().hash, q.hash, "replica 3 alone holds QC(Q)");
    // View 1: two justifications from the statuses the coalition holds.
    let s2 = net.status_from(2, 1).expect("2's status");
    let s3 = net.status_from(3, 1).expect("3's status");
    let s4 = net.status_from(4, 1).expect("4's status");
    let bc0 = s2.blame_cert.clone();
    let mine = |who| coalition_status(who, 1, QuorumCert::genesis(), bc0.clone());
    let j_low = Justification { blame_cert: bc0.clone(), statuses: vec![mine(0), s2, s4] };
    let j_high = Justification { blame_cert: bc0.clone(), statuses: vec![mine(0), mine(1), s3] };
    // To replica 4: B0 over genesis, with the coalition's votes.
    let b0 = block(1, QuorumCert::genesis(), 1_600, vec![request.clone()]);
    net.inject(1_600, 1, 4, propose(&b0, Some(j_low.clone())));
    net.inject(1_601, 0, 4, vote(0, &b0));
    net.inject(1_601, 1, 4, vote(1, &b0));
    // 150 ms later, to replica 3: X0 over QC(Q), X1 over QC(X0).
    let x0 = block(1, qc(&q, &[0, 1, 3]), 1_750, vec![]);
    net.inject(1_750, 1, 3, propose(&x0, Some(j_high.clone())));
    net.inject(1_751, 0, 3, vote(0, &x0));
    net.inject(1_751, 1, 3, vote(1, &x0));
    let x1 = block(1, qc(&x0, &[0, 1, 3]), 1_752, vec![]);
    net.inject(1_753, 1, 3, propose(&x1, Some(j_high)));
    net.inject(1_754, 0, 3, vote(0, &x1));
    net.inject(1_754, 1, 3, vote(1, &x1));
    // Then to replica 4: B1 over QC(B0) (so its forwarded copy reaches 3 only after 3
    // voted for X1), completing 4's 2-chain before B0's 2Δ are over.
    let b1 = block(1, qc(&b0, &[0, 1, 4]), 1_760, vec![]);
    net.inject(1_760, 1, 4, propose(&b1, Some(j_low)));
    net.inject(1_761, 0, 4, vote(0, &b1));
    net.inject(1_761, 1, 4, vote(1, &b1));
    net.run_until(2_000);
    // The coalition moves everyone to view 2 (leader 2, honest), which extends the highest
    // QC its statuses report.
    for to in HONEST {
        net.inject(2_000, 0, to, blame(0, 1, Some(bc0.clone())));
        net.inject(2_000, 1, to, blame(1, 1, Some(bc0.clone())));
    }
    // From now on the coalition votes for what honest leaders propose (legal, and what
    // lets the replicas holding QC(X1) commit without replica 4).
    net.coalition_votes = true;
    // A third blame for view 1 comes from an honest replica's own timer.
    net.run_until(12_000);
    net
}

#[test]
fn story_bug_1_conflicting_first_blocks_of_one_view_at_different_heights_no_longer_fork() {
    let net = cross_height_story(Planted::default());
    assert!(net.agreement_holds(), "commits per height: {:?}", (1..=3).map(|h| net.committed_at(h)).collect::<Vec<_>>());
    // Replica 4 committed B0 (height 1, view 1) before it could know; the rest follow it.
    let at1 = net.committed_at(1);
    assert_eq!(at1.len(), 3, "every honest replica committed height 1: {at1:?}");
    assert!(net.core(2).view() >= 2);
    // Replica 3 held B0 when X0 came: two first blocks of view 1, an equivocation it could
    // prove to the others.
    let proof = net.to_coalition.iter().any(|(from, m)| {
        *from == 3 && matches!(m, Message::Blame(b) if b.view == 1 && matches!(b.reason, BlameReason::Equivocation(_)))
    });
    assert!(proof, "replica 3 blamed view 1 with the two first blocks");
}

#[test]
fn story_bug_1_planted_back_forks() {
    let net = cross_height_story(Planted { same_height_equivocation: true, ..Planted::default() });
    assert!(!net.agreement_holds(), "with equivocation recognised only at one height, the pair forks the log");
    let at1 = net.committed_at(1);
    assert_ne!(at1.get(&4), at1.get(&2), "replica 4 committed B0, replicas 2 and 3 the block Q: {at1:?}");
}

/// Bug 2 of the review: with a silent leader, one Byzantine replica sends a validly signed
/// BLAME(1000) every 5 ms. The tally used to be pruned relative to the incoming blame's view,
/// so the current view's blames were wiped again and again (and a replica's own blame is
/// never re-counted). Returns the honest replicas' committed heights after 30 s.
fn far_future_blame_story(planted: Planted) -> Vec<Height> {
    let mut net = Net::new(planted);
    net.request(b"a request the silent leaders never order");
    // Replica 1 leads view 1 and is as silent as 0; the coalition votes for honest leaders'
    // blocks (a quorum of the three honest replicas would do as well).
    let mut t = 0;
    while t < 30_000 {
        for to in HONEST {
            net.inject(t, 1, to, blame(1, 1_000, None));
        }
        t += 5;
        net.run_until(t);
    }
    HONEST.iter().map(|id| net.core(*id).committed_height()).collect()
}

#[test]
fn story_bug_2_far_future_blames_no_longer_stop_the_view_change() {
    let heights = far_future_blame_story(Planted::default());
    assert!(heights.iter().all(|h| *h >= 1), "views 0 and 1 were left and the request committed: {heights:?}");
    let stuck = far_future_blame_story(Planted { blame_prune_incoming: true, ..Planted::default() });
    assert_eq!(stuck, vec![0, 0, 0], "planted back, the wiping blames keep every honest replica in view 0");
}


/// What S6's 2Δ wait before STATUS is for. The coalition leads view 0 and shows block B
/// to replica 2 first and to 3 and 4 60 ms later, its votes going to 2 only: 2 holds
/// QC(B) at once, 3 and 4 only from t = 250 (B's child, forwarded by 2, carries it). At t = 210 it
/// makes 3 and 4 leave view 0 (a twin of B, then its own blames), and as leader of view 1
/// it proposes X over genesis on their statuses. Replica 2 commits B at 301 (just after its
/// 2Δ), before their certificate reaches it. Returns the net after view 1's chain ran.
fn status_wait_story(planted: Planted) -> Net {
    let mut net = Net::new(planted);
    let b = block(0, QuorumCert::genesis(), 100, vec![b"r".to_vec()]);
    net.inject(100, 0, 2, propose(&b, None));
    for to in [3, 4] {
        net.inject(160, 0, to, propose(&b, None));
    }
    net.inject(100, 0, 2, vote(0, &b));
    net.inject(100, 1, 2, vote(1, &b));
    // B's child goes to 2 at 150: its forwarded copy, which carries QC(B), reaches 3 and 4
    // only at 250.
    let b2 = block(0, qc(&b, &[0, 1, 2]), 101, vec![]);
    net.inject(150, 0, 2, propose(&b2, None));
    net.inject(150, 0, 2, vote(0, &b2));
    net.inject(150, 1, 2, vote(1, &b2));
    // Any input just after 300 is when 2 commits B (S4b's wait is strict): the coalition's
    // vote again, at 301.
    net.inject(301, 0, 2, vote(0, &b2));
    // Leave now: a twin of B (an equivocation 3 and 4 blame at once), and the coalition's blames.
    let twin = block(0, QuorumCert::genesis(), 99, vec![]);
    for to in [3, 4] {
        net.inject(210, 0, to, propose(&twin, None));
        net.inject(211, 0, to, blame(0, 0, None));
        net.inject(211, 1, to, blame(1, 0, None));
    }
    net.run_until(240);
    // View 1: a justification from the statuses 3 and 4 sent (and its own).
    let statuses: Vec<Status> = [3u8, 4].iter().filter_map(|r| net.status_from(*r, 1)).collect();
    if statuses.len() == 2 {
        let bc0 = statuses[0].blame_cert.clone();
        let mut all = statuses.clone();
        all.push(coalition_status(1, 1, QuorumCert::genesis(), bc0.clone()));
        let highest = all.iter().map(|s| s.high_qc.clone()).max_by_key(|qc| qc.rank()).expect("three statuses");
        let j = Justification { blame_cert: bc0, statuses: all };
        let x = block(1, highest, 241, vec![]);
        let x1 = block(1, qc(&x, &[0, 1, 3]), 242, vec![]);
        for to in [3, 4] {
            net.inject(241, 1, to, propose(&x, Some(j.clone())));
            net.inject(241, 0, to, vote(0, &x));
            net.inject(241, 1, to, vote(1, &x));
            net.inject(243, 1, to, propose(&x1, Some(j.clone())));
            net.inject(243, 0, to, vote(0, &x1));
            net.inject(243, 1, to, vote(1, &x1));
        }
    }
    net.run_until(3_000);
    net
}

#[test]
fn story_the_two_deltas_before_status_keep_a_commit_in_the_next_views_justification() {
    let net = status_wait_story(Planted::default());
    assert!(net.agreement_holds(), "{:?}", net.committed_at(1));
    assert!(net.committed_at(1).contains_key(&2), "replica 2 committed B");
    let planted = status_wait_story(Planted { no_status_wait: true, ..Planted::default() });
    assert!(!planted.agreement_holds(), "without the wait, 3 and 4 report genesis and commit X: {:?}", planted.committed_at(1));
}

// ------------------------------------------------- block validity (the second review)

#[path = "stories_validity.rs"]
mod validity;
