//! Misbehaviour on purpose, for demos and tests: what a replica started with
//! `quintet replica --byzantine MODE[,MODE...]` does wrong. Each behaviour is defined once
//! here and driven by the replica (`replica/byzantine.rs`) and, where the simulator has the
//! same behaviour, by the simulator (`sim/byzantine.rs`, `sim/network.rs`).

use std::collections::BTreeSet;
use std::fmt;

use crate::consensus::{Block, Crypto, Proposal};
use crate::pb;
use crate::pb::outcome::Kind;

/// One way to misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// Signs wrong results in its client replies and false deliveries on live streams.
    Lie,
    /// Bad signatures on its replies, votes and proposals.
    Forge,
    /// As leader, different blocks to different replicas.
    Equivocate,
    /// Receives everything, answers nothing (peers nor clients; an operator's status call
    /// is still answered, so `up` and `status` can show what it is).
    Mute,
    /// As leader, never orders some users' requests (`censor=alice+bob`; by default every
    /// other user, by [`Modes::censors`]).
    Censor,
    /// Sends old peer messages, old replies and old deliveries again.
    Replay,
    /// Malformed bytes to peers (frames that do not decode) and clients (replies that do
    /// not decode).
    Garbage,
    /// Colludes with a partner (`fork=B`, both started so) to make honest replicas commit
    /// different blocks: as leader, one block to one side of the honest replicas and its
    /// twin to the other ([`fork_side`]); both colluders vote for each block on its side
    /// only, and neither forwards, blames or proves the other's equivocation.
    Fork,
}

pub const MODES: [(&str, Mode); 8] = [
    ("lie", Mode::Lie),
    ("forge", Mode::Forge),
    ("equivocate", Mode::Equivocate),
    ("mute", Mode::Mute),
    ("censor", Mode::Censor),
    ("replay", Mode::Replay),
    ("garbage", Mode::Garbage),
    ("fork", Mode::Fork),
];

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = MODES.iter().find(|(_, m)| m == self).map(|(n, _)| *n).expect("every mode is listed");
        f.write_str(name)
    }
}

/// The modes one replica runs with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Modes {
    modes: BTreeSet<Mode>,
    /// Users a censor never orders; empty: every other user ([`Modes::censors`]).
    censored: Vec<String>,
    /// The replica a `fork` colludes with.
    pub partner: Option<String>,
}

impl Modes {
    /// `lie,forge`, `censor=alice+bob`, …; an unknown mode is refused with the list.
    pub fn parse(text: &str) -> Result<Modes, String> {
        let mut modes = Modes::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, users) = match part.split_once('=') {
                Some((name, users)) => (name, Some(users)),
                None => (part, None),
            };
            let Some((_, mode)) = MODES.iter().find(|(n, _)| *n == name) else {
                let known: Vec<&str> = MODES.iter().map(|(n, _)| *n).collect();
                let hint = if users.is_some() { " (`quintet replica --byzantine` takes the modes only, its id is --id; ID=MODES is for `quintet up`)" } else { "" };
                return Err(format!("unknown Byzantine mode {name:?}; the modes are {}{hint}", known.join(", ")));
            };
            match (mode, users) {
                (Mode::Censor, Some(users)) => {
                    modes.censored = users.split('+').map(str::trim).filter(|u| !u.is_empty()).map(String::from).collect();
                    if modes.censored.is_empty() {
                        return Err("censor= names no user (write censor=alice+bob, or censor for every other user)".into());
                    }
                }
                (Mode::Fork, Some(partner)) if !partner.trim().is_empty() => modes.partner = Some(partner.trim().to_owned()),
                (Mode::Fork, _) => return Err("fork needs its partner: fork=B (and B started with fork=this replica)".into()),
                (_, Some(_)) => return Err(format!("the Byzantine mode {name} takes no value")),
                _ => {}
            }
            modes.modes.insert(*mode);
        }
        if modes.modes.is_empty() {
            return Err("--byzantine names no mode".into());
        }
        Ok(modes)
    }

    pub fn has(&self, mode: Mode) -> bool {
        self.modes.contains(&mode)
    }

    /// The modes as `--byzantine` takes them (`lie`, `censor=alice+bob`).
    pub fn names(&self) -> Vec<String> {
        self.modes
            .iter()
            .map(|m| match m {
                Mode::Censor if !self.censored.is_empty() => format!("censor={}", self.censored.join("+")),
                Mode::Fork => format!("fork={}", self.partner.as_deref().unwrap_or("?")),
                m => m.to_string(),
            })
            .collect()
    }

    /// Whether a censor leaves `user`'s requests out: the users named, or by default every
    /// other user (those whose name's SHA-256 starts with an even byte).
    pub fn censors(&self, user: &str) -> bool {
        if !self.has(Mode::Censor) {
            return false;
        }
        if self.censored.is_empty() {
            return crate::wire::digest(user.as_bytes())[0] % 2 == 0;
        }
        self.censored.iter().any(|u| u == user)
    }
}

/// Which side of the honest replicas a forking leader shows `block` to: 0 or 1, by the
/// parity of its time. A block and its [`twin`] (one millisecond later) fall on different
/// sides, so both colluders know where each goes without telling each other.
pub fn fork_side(block: &Block) -> usize {
    (block.time_ms % 2) as usize
}

/// The honest replicas of each side of a fork, for `n` replicas and the two colluders:
/// the first honest replica on side 0, the others on side 1 (with five replicas one QC
/// then needs both colluders' votes on side 0, and side 1 has one to spare).
pub fn fork_sides(n: usize, colluders: [crate::consensus::ReplicaId; 2]) -> [Vec<crate::consensus::ReplicaId>; 2] {
    let honest: Vec<crate::consensus::ReplicaId> = (0..n as crate::consensus::ReplicaId).filter(|r| !colluders.contains(r)).collect();
    let (first, rest) = honest.split_at(honest.len().min(1));
    [first.to_vec(), rest.to_vec()]
}

/// A made-up result in place of `outcome`: wrong message ids, texts, unread counts, user
/// lists; a failure where there is nothing to bend.
pub fn lie(outcome: &pb::Outcome) -> pb::Outcome {
    let made_up = || crate::wire::failure("lie", "made up by a Byzantine replica");
    let Some(kind) = outcome.kind.clone() else { return made_up() };
    let kind = match kind {
        Kind::Sent(mut s) => {
            s.id += 1_000;
            Kind::Sent(s)
        }
        Kind::LoggedIn(mut l) => {
            l.unread += 7;
            Kind::LoggedIn(l)
        }
        Kind::Messages(mut m) => {
            for message in &mut m.messages {
                message.text = format!("{} (not what was sent)", message.text);
            }
            m.messages.push(fake_message());
            Kind::Messages(m)
        }
        Kind::Accounts(mut page) => {
            page.names.push("mallory".into());
            page.total += 1;
            Kind::Accounts(page)
        }
        Kind::Online(mut page) => {
            page.names.push("mallory".into());
            page.total += 1;
            Kind::Online(page)
        }
        Kind::Conversation(mut c) => {
            c.messages.push(fake_message());
            Kind::Conversation(c)
        }
        Kind::MarkedRead(mut c) => {
            c.count += 3;
            Kind::MarkedRead(c)
        }
        _ => return made_up(),
    };
    pb::Outcome { kind: Some(kind) }
}

/// A message nobody sent.
pub fn fake_message() -> pb::Message {
    pb::Message { id: 999_999, from: "mallory".into(), text: "a message nobody sent".into(), ..Default::default() }
}

/// A signature that does not verify: the same bytes with the first one flipped.
pub fn forge(signature: &[u8]) -> Vec<u8> {
    let mut forged = signature.to_vec();
    match forged.first_mut() {
        Some(b) => *b ^= 0xff,
        None => forged.push(0),
    }
    forged
}

/// Bytes no decoder accepts as a message of ours: a protobuf field with a length that runs
/// past the end, then noise.
pub fn garbage(seed: u64) -> Vec<u8> {
    let mut bytes = vec![0x0a, 0xff, 0xff, 0x03];
    bytes.extend((0..32).map(|i| (seed.wrapping_mul(31).wrapping_add(i * 7) % 251) as u8));
    bytes
}

/// What an equivocating leader sends half the replicas in place of its proposal `p`,
/// signed by it (`crypto`). For a view's first block over a QC above genesis, another
/// first block of the view at another height: one over the genesis QC (honest replicas do
/// not vote for it, S2.4, but the pair is an equivocation, S5a). For any other block, a
/// block at the same height with other contents.
pub fn twin(p: &Proposal, crypto: &dyn Crypto) -> Proposal {
    let mut block: Block = p.block.clone();
    let first = block.parent_qc.view < block.view;
    if first && !block.parent_qc.is_genesis() {
        block.parent_qc = crate::consensus::QuorumCert::genesis();
        block.parent = crate::consensus::GENESIS;
        block.height = 1;
    } else {
        block.requests.reverse();
        block.requests.truncate(block.requests.len().saturating_sub(1));
    }
    block.time_ms += 1;
    block.hash = block.compute_hash();
    let signature = crypto.sign(&crate::consensus::signed::proposal(&block.hash, p.justification.as_ref()));
    Proposal { block, signature, justification: p.justification.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_combine_and_refuse_unknown_ones() {
        let m = Modes::parse("lie, forge").unwrap();
        assert!(m.has(Mode::Lie) && m.has(Mode::Forge) && !m.has(Mode::Mute));
        assert_eq!(m.names(), vec!["lie", "forge"]);
        let e = Modes::parse("lie,lying").unwrap_err();
        assert!(e.contains("\"lying\"") && e.contains("equivocate"), "{e}");
        assert!(Modes::parse("").is_err());
        assert!(Modes::parse("mute=x").is_err());
        assert!(Modes::parse("censor=").is_err());
        let fork = Modes::parse("fork=B").unwrap();
        assert_eq!((fork.partner.as_deref(), fork.names()), (Some("B"), vec!["fork=B".to_string()]));
        assert!(Modes::parse("fork").unwrap_err().contains("partner"));
    }

    #[test]
    fn a_censor_leaves_out_the_named_users_or_every_other_one() {
        let named = Modes::parse("censor=alice+bob").unwrap();
        assert!(named.censors("alice") && named.censors("bob") && !named.censors("carol"));
        assert_eq!(named.names(), vec!["censor=alice+bob"]);
        let default = Modes::parse("censor").unwrap();
        let users: Vec<String> = (0..100).map(|i| format!("user{i}")).collect();
        let censored = users.iter().filter(|u| default.censors(u)).count();
        assert!((30..70).contains(&censored), "about every other user: {censored} of 100");
        assert!(!Modes::parse("lie").unwrap().censors("alice"));
    }

    #[test]
    fn a_lie_differs_from_the_truth() {
        let truths = [
            pb::Outcome { kind: Some(Kind::Sent(pb::MessageSent { id: 4 })) },
            pb::Outcome { kind: Some(Kind::LoggedIn(pb::LoggedIn { unread: 0 })) },
            pb::Outcome { kind: Some(Kind::Messages(pb::Messages::default())) },
            pb::Outcome { kind: Some(Kind::Accounts(pb::AccountPage::default())) },
            crate::wire::failure("unknown_user", "no such user"),
        ];
        for truth in truths {
            assert_ne!(lie(&truth), truth);
        }
    }

    #[test]
    fn forged_signatures_and_garbage_are_refused() {
        let key = crate::crypto::generate_key();
        let signature = crate::crypto::sign(&key, crate::crypto::TAG_REPLY, b"body");
        assert!(crate::crypto::verify(&key.verifying_key(), crate::crypto::TAG_REPLY, b"body", &signature).is_ok());
        assert!(crate::crypto::verify(&key.verifying_key(), crate::crypto::TAG_REPLY, b"body", &forge(&signature)).is_err());
        assert!(<pb::SignedReply as prost::Message>::decode(garbage(3).as_slice()).is_err());
        assert!(crate::wire::peer::decode_message(&garbage(3)).is_err());
    }

    /// Replica `leader`'s proposal of a block of `view` at `height` over a QC (signed by
    /// replicas 0..3) of a block of `qc_view` at `height - 1`.
    fn proposal(leader: u8, view: u64, qc_view: u64, height: u64) -> Proposal {
        use crate::consensus::{Crypto, QuorumCert, SimCrypto, signed};
        let parent_qc = if height == 1 {
            QuorumCert::genesis()
        } else {
            let hash = [height as u8; 32];
            let votes = (0..3u8).map(|v| (v, SimCrypto { me: v }.sign(&signed::vote(qc_view, height - 1, &hash)))).collect();
            QuorumCert { view: qc_view, height: height - 1, hash, votes }
        };
        let mut block = Block { view, height, parent: parent_qc.hash, parent_qc, proposer: leader, time_ms: 5, requests: vec![b"r1".to_vec(), b"r2".to_vec()], hash: [0; 32] };
        block.hash = block.compute_hash();
        let signature = SimCrypto { me: leader }.sign(&signed::proposal(&block.hash, None));
        Proposal { block, signature, justification: None }
    }

    #[test]
    fn an_equivocating_leaders_twin_is_at_another_height_for_a_first_block_and_at_the_same_one_otherwise() {
        use crate::consensus::{Checker, SimCrypto};
        let crypto = SimCrypto { me: 4 };
        let checker = Checker { n: 5, qc_size: 3, quorum: 3, certificate_size: 3, repeats_count: false, votes_any_height: false, base: (0, crate::consensus::GENESIS), crypto: &crypto };
        // View 0's leader is replica 0: a block over a view-0 QC gets a same-height twin.
        let p = proposal(0, 0, 0, 4);
        let t = twin(&p, &SimCrypto { me: 0 });
        assert_eq!((t.block.height, t.block.view), (4, 0));
        assert_ne!(t.block.hash, p.block.hash);
        assert_eq!(checker.equivocation(&p, &t), Ok(()));
        // View 0's first block (over genesis) too: there is no lower QC to start from.
        let p = proposal(0, 0, 0, 1);
        assert_eq!(twin(&p, &SimCrypto { me: 0 }).block.height, 1);
        // View 6's leader (replica 1) over a view-5 QC at height 7: its twin is another
        // first block of view 6, at height 1 over genesis.
        let p = proposal(1, 6, 5, 8);
        let t = twin(&p, &SimCrypto { me: 1 });
        assert_eq!((t.block.height, t.block.view, t.block.parent_qc.is_genesis()), (1, 6, true));
        assert_eq!(checker.equivocation(&p, &t), Ok(()), "two first blocks of one view at two heights");
    }
}
