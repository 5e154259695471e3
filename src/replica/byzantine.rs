//! A replica that misbehaves on purpose (`quintet replica --byzantine MODE`), for demos and
//! tests. The behaviours are defined in `crate::byzantine`; this is where the replica's
//! driver applies them: to what it sends its peers, to the replies and deliveries its
//! clients get, and to the requests it hands its core. The core itself stays honest:
//! everything wrong happens on the way out (or, for a censor, on the way in).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use crate::byzantine::{Mode, Modes};
use crate::consensus::{Block, Crypto, Hash, Message, ReplicaId, Vote, signed};
use crate::crypto::PeerCrypto;
use crate::pb;

/// Old messages, replies and deliveries kept to send again (replay).
const KEPT: usize = 256;

pub struct Byzantine {
    pub modes: Modes,
    me: ReplicaId,
    n: usize,
    crypto: Arc<PeerCrypto>,
    sent: VecDeque<(Option<ReplicaId>, Message)>,
    replies: VecDeque<pb::ReplyBody>,
    deliveries: VecDeque<(u64, crate::chat::Message)>,
    /// Counts what went out, to pace replays and garbage without a random source.
    count: u64,
    /// `fork`: the partner, each side's honest replicas, and the blocks of the fork this
    /// replica voted for already (oldest first out).
    partner: Option<ReplicaId>,
    sides: [Vec<ReplicaId>; 2],
    forked: (HashSet<Hash>, VecDeque<Hash>),
}

/// Fork blocks remembered (a few views' worth).
const FORKED_KEPT: usize = 1024;

/// What goes to a peer: a message, or bytes no decoder accepts.
pub enum Outgoing {
    Message(Message),
    Garbage(Vec<u8>),
}

impl Byzantine {
    /// `partner`: the `fork` partner's index (checked by the caller).
    pub fn new(modes: Modes, me: ReplicaId, n: usize, crypto: Arc<PeerCrypto>, partner: Option<ReplicaId>) -> Self {
        let sides = partner.map_or_else(Default::default, |partner| crate::byzantine::fork_sides(n, [me, partner]));
        Byzantine {
            modes,
            me,
            n,
            crypto,
            sent: VecDeque::new(),
            replies: VecDeque::new(),
            deliveries: VecDeque::new(),
            count: 0,
            partner,
            sides,
            forked: Default::default(),
        }
    }

    /// `fork`: what this replica's core sends that would help the honest replicas see the
    /// fork, or that the fork sends otherwise: its own proposals (split by side), its
    /// forwards of the partner's, its votes for fork blocks (sent on their side only) and
    /// its blames of the partner's views (a proof of the partner's equivocation included).
    fn fork_filter(&mut self, message: &Message, to: Option<ReplicaId>, out: &mut Vec<(Option<ReplicaId>, Outgoing)>) -> bool {
        let Some(partner) = self.partner else { return false };
        match message {
            Message::Propose(p) if p.block.proposer == self.me && to.is_none() => {
                let twin = crate::byzantine::twin(p, self.crypto.as_ref());
                for proposal in [p.clone(), twin] {
                    self.fork_out(&proposal.block, Some(Message::Propose(proposal.clone())), out);
                }
                true
            }
            Message::Propose(p) => p.block.proposer == partner,
            Message::Vote(v) => self.forked.0.contains(&v.hash),
            Message::Blame(b) => (b.view % self.n as u64) as ReplicaId == partner,
            _ => false,
        }
    }

    /// `fork`: `block` (and `proposal`, when this replica made it) to its side's honest
    /// replicas and the partner, with this replica's vote for it, once.
    fn fork_out(&mut self, block: &Block, proposal: Option<Message>, out: &mut Vec<(Option<ReplicaId>, Outgoing)>) {
        let Some(partner) = self.partner else { return };
        let to: Vec<ReplicaId> = self.sides[crate::byzantine::fork_side(block)].iter().copied().chain([partner]).collect();
        if let Some(proposal) = proposal {
            out.extend(to.iter().map(|r| (Some(*r), Outgoing::Message(proposal.clone()))));
        }
        if !self.forked.0.insert(block.hash) {
            return;
        }
        self.forked.1.push_back(block.hash);
        if self.forked.1.len() > FORKED_KEPT
            && let Some(old) = self.forked.1.pop_front()
        {
            self.forked.0.remove(&old);
        }
        let signature = self.crypto.sign(&signed::vote(block.view, block.height, &block.hash));
        let vote = Message::Vote(Vote { view: block.view, height: block.height, hash: block.hash, voter: self.me, signature });
        out.extend(to.iter().map(|r| (Some(*r), Outgoing::Message(vote.clone()))));
    }

    /// `fork`: a message from a peer, before the core sees it. Each of the partner's
    /// proposals gets this replica's vote on its side (the core would see the second of a
    /// pair as an equivocation and vote for neither after it).
    pub fn from_peer(&mut self, from: ReplicaId, message: &Message) -> Vec<(Option<ReplicaId>, Outgoing)> {
        let mut out = Vec::new();
        if self.has(Mode::Mute) {
            return out;
        }
        if let Message::Propose(p) = message
            && Some(from) == self.partner
            && p.block.proposer == from
        {
            self.fork_out(&p.block, None, &mut out);
        }
        out
    }

    pub fn has(&self, mode: Mode) -> bool {
        self.modes.has(mode)
    }

    /// The `fork` partner's index, if any.
    pub fn partner(&self) -> Option<ReplicaId> {
        self.partner
    }

    /// Rewrites one batch of peer messages (`None`: to every peer).
    pub fn to_peers(&mut self, messages: Vec<(Option<ReplicaId>, Message)>) -> Vec<(Option<ReplicaId>, Outgoing)> {
        if self.has(Mode::Mute) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (to, message) in messages {
            self.count += 1;
            // State transfers are not kept: an image can be large.
            if self.has(Mode::Replay) && !matches!(message, Message::State(_)) {
                if self.sent.len() >= KEPT {
                    self.sent.pop_front();
                }
                self.sent.push_back((to, message.clone()));
            }
            if self.fork_filter(&message, to, &mut out) {
                continue;
            }
            let forge = |m: Message| if self.has(Mode::Forge) { forged(m) } else { m };
            match (&message, to) {
                (Message::Propose(p), None) if self.has(Mode::Equivocate) && p.block.proposer == self.me => {
                    // The lower half of the others get the block, the upper half its twin
                    // (made from the block as signed, then both forged if forging too).
                    let twin = Message::Propose(crate::byzantine::twin(p, self.crypto.as_ref()));
                    let (block, twin) = (forge(message.clone()), forge(twin));
                    for peer in (0..self.n as ReplicaId).filter(|r| *r != self.me) {
                        let which = if (peer as usize) * 2 < self.n { block.clone() } else { twin.clone() };
                        out.push((Some(peer), Outgoing::Message(which)));
                    }
                }
                _ => out.push((to, Outgoing::Message(forge(message)))),
            }
            if self.has(Mode::Garbage) && self.count % 4 == 0 {
                out.push((None, Outgoing::Garbage(crate::byzantine::garbage(self.count))));
            }
            if self.has(Mode::Replay) && self.count % 8 == 0 && !self.sent.is_empty() {
                let (to, old) = self.sent[(self.count as usize / 8) % self.sent.len()].clone();
                out.push((to, Outgoing::Message(old)));
            }
        }
        out
    }

    /// What a client is answered with in place of `body` (the service signs it).
    pub fn reply(&mut self, body: pb::ReplyBody) -> pb::ReplyBody {
        self.count += 1;
        let mut out = body.clone();
        if self.has(Mode::Lie) {
            out.outcome = out.outcome.as_ref().map(crate::byzantine::lie);
        }
        if self.has(Mode::Replay) {
            if self.replies.len() >= KEPT {
                self.replies.pop_front();
            }
            self.replies.push_back(body);
            // Every other answer is an old one (signed again: the signature is genuine,
            // the reply is for another request or an older height).
            if self.count % 2 == 0 {
                out = self.replies[(self.count as usize / 2) % self.replies.len()].clone();
            }
        }
        out
    }

    /// The deliveries to offer in place of one committed delivery.
    pub fn deliveries(&mut self, height: u64, message: crate::chat::Message) -> Vec<(u64, crate::chat::Message)> {
        self.count += 1;
        if self.has(Mode::Mute) {
            return Vec::new();
        }
        let mut out = vec![(height, message.clone())];
        if self.has(Mode::Lie) {
            let mut wrong = message.clone();
            wrong.text = format!("{} (not what was sent)", wrong.text);
            wrong.id += 1_000;
            out = vec![(height, wrong)];
            // And a message nobody sent, to the same user.
            let fake = crate::byzantine::fake_message();
            out.push((height, crate::chat::Message { id: fake.id, from: fake.from, text: fake.text, ..message.clone() }));
        }
        if self.has(Mode::Replay) {
            if let Some(old) = self.deliveries.get((self.count as usize) % self.deliveries.len().max(1)).cloned() {
                out.push(old);
            }
            if self.deliveries.len() >= KEPT {
                self.deliveries.pop_front();
            }
            self.deliveries.push_back((height, message));
        }
        out
    }

    /// Whether the core gets this user's request (a censor leaves some users out).
    pub fn admits(&self, user: &str) -> bool {
        !self.modes.censors(user)
    }
}

impl super::driver::Driver {
    /// Sends a durable batch's peer messages (rewritten first by `--byzantine`).
    pub(super) fn send_out(&mut self, messages: Vec<(Option<ReplicaId>, Message)>) {
        let Some(byzantine) = self.byzantine.as_mut() else {
            for (to, message) in messages {
                match to {
                    Some(to) => self.peers.send(to, &message),
                    None => self.peers.broadcast(&message),
                }
            }
            return;
        };
        let outgoing = byzantine.to_peers(messages);
        self.send_outgoing(outgoing);
    }

    fn send_outgoing(&mut self, outgoing: Vec<(Option<ReplicaId>, Outgoing)>) {
        for (to, outgoing) in outgoing {
            match outgoing {
                Outgoing::Message(message) => match to {
                    Some(to) => self.peers.send(to, &message),
                    None => self.peers.broadcast(&message),
                },
                Outgoing::Garbage(bytes) => self.peers.send_bytes(to, bytes),
            }
        }
    }

    /// A peer's message on its way to the core (`fork` answers some at once).
    pub(super) fn from_peer(&mut self, from: ReplicaId, message: &Message) {
        let Some(byzantine) = self.byzantine.as_mut() else { return };
        if byzantine.partner.is_none() {
            return;
        }
        let outgoing = byzantine.from_peer(from, message);
        self.send_outgoing(outgoing);
    }

    /// A reply body as it leaves (`--byzantine` may bend it).
    pub(super) fn reply_out(&mut self, body: pb::ReplyBody) -> pb::ReplyBody {
        match self.byzantine.as_mut() {
            Some(b) => b.reply(body),
            None => body,
        }
    }

    /// The deliveries to offer for one committed delivery (`--byzantine` may bend them).
    pub(super) fn deliveries_out(&mut self, height: u64, message: crate::chat::Message) -> Vec<(u64, crate::chat::Message)> {
        match self.byzantine.as_mut() {
            Some(b) => b.deliveries(height, message),
            None => vec![(height, message)],
        }
    }
}

/// The message with its own signatures spoiled (votes and proposals).
fn forged(message: Message) -> Message {
    match message {
        Message::Vote(mut v) => {
            v.signature = crate::byzantine::forge(&v.signature);
            Message::Vote(v)
        }
        Message::Propose(mut p) => {
            p.signature = crate::byzantine::forge(&p.signature);
            Message::Propose(p)
        }
        other => other,
    }
}
