//! Proofs that a replica misbehaved (NOTEBOOK, "Evidence"), checked against nothing but
//! cluster.toml's public keys, and the bounded files that keep them.
//!
//! A proof is one replica's signed messages that no honest replica ever signs together:
//! - **wrong result**: a signed reply that contradicts, for the same request at the same
//!   non-zero height, another signed reply of its own, or the result q other replicas
//!   signed alike (one of those q is honest, and every honest replica executes the same
//!   committed block the same way);
//! - **equivocation**: the view's leader's two proposals that no honest leader signs both;
//! - **double vote**: one replica's votes for two blocks at one height of one view.
//!
//! Never a proof: a height-0 answer (a replica's refusal of the moment, or a replay
//! answer), and anything whose signature does not verify (anyone can make one).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use prost::Message as _;

use crate::config::ClusterConfig;
use crate::consensus::{self, Checker};
use crate::crypto::{self, PeerKeys, TAG_REPLY, VerifyingKey};
use crate::pb;

/// Proofs kept per accused replica and kind: one is enough to convince anyone, a few show
/// it was not a one-off; more would only let a liar fill the disk.
pub const PER_ACCUSED_KIND: usize = 4;
/// Bytes of one proof: two proposals as large as a peer message may be (an equivocating
/// leader's blocks can be, though no honest replica votes for a block over 1 MiB).
pub const PROOF_BYTES_MAX: usize = 2 * crate::wire::peer::MESSAGE_MAX + (1 << 20);
/// Bytes of the proofs against one replica: two faulty replicas' proofs both fit in a file,
/// so one cannot crowd the other's out.
pub const ACCUSED_BYTES_MAX: usize = 10 << 20;
/// Bytes of every proof in one file.
pub const FILE_BYTES_MAX: usize = 24 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    WrongResult,
    Equivocation,
    DoubleVote,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::WrongResult => "wrong results",
            Kind::Equivocation => "equivocation",
            Kind::DoubleVote => "double votes",
        }
    }

    pub fn of_evidence(e: &consensus::Evidence) -> Kind {
        match e {
            consensus::Evidence::Equivocation(_) | consensus::Evidence::ChainEquivocation(_) => Kind::Equivocation,
            consensus::Evidence::DoubleVote(_) => Kind::DoubleVote,
        }
    }

    pub fn of(proof: &pb::Proof) -> Option<Kind> {
        Some(match proof.kind.as_ref()? {
            pb::proof::Kind::WrongResult(_) => Kind::WrongResult,
            pb::proof::Kind::Equivocation(_) => Kind::Equivocation,
            pb::proof::Kind::DoubleVote(_) => Kind::DoubleVote,
        })
    }
}

/// Whom a checked proof accuses (the replica's index in cluster.toml), of what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Accusation {
    pub replica: usize,
    pub kind: Kind,
}

/// What checking needs: the replicas' ids and public keys, the cluster id (the protocol
/// signatures' domain) and the quorum.
pub struct Keys {
    ids: Vec<String>,
    keys: Vec<VerifyingKey>,
    peer: PeerKeys,
    quorum: usize,
    base: (crate::consensus::Height, crate::consensus::Hash),
}

impl Keys {
    pub fn new(config: &ClusterConfig) -> Self {
        let keys: Vec<VerifyingKey> = config.replicas.iter().map(|r| r.verifying_key()).collect();
        Keys {
            ids: config.replicas.iter().map(|r| r.id.clone()).collect(),
            peer: PeerKeys::new(keys.clone(), &config.signing_id()),
            keys,
            quorum: config.quorum(),
            base: config.base(),
        }
    }

    pub fn id(&self, index: usize) -> &str {
        self.ids.get(index).map_or("?", String::as_str)
    }

    fn checker(&self) -> Checker<'_> {
        let q = self.quorum;
        Checker { n: self.ids.len(), qc_size: q, quorum: q, certificate_size: q, repeats_count: false, votes_any_height: false, base: self.base, crypto: &self.peer }
    }

    /// A signed reply's signer (by the replica it names) and body, if its signature verifies.
    fn reply(&self, reply: &pb::SignedReply) -> Result<(usize, pb::ReplyBody), String> {
        let body = pb::ReplyBody::decode(reply.body.as_slice()).map_err(|_| "a reply that does not decode".to_owned())?;
        let index = self.ids.iter().position(|id| *id == body.replica).ok_or_else(|| format!("a reply from {:?}, no replica of this cluster", body.replica))?;
        crypto::verify(&self.keys[index], TAG_REPLY, &reply.body, &reply.signature)
            .map_err(|_| format!("a reply whose signature does not verify with {}'s key (anyone can make one)", self.ids[index]))?;
        Ok((index, body))
    }
}

/// Checks `proof`; `Ok` names whom it accuses.
pub fn check(proof: &pb::Proof, keys: &Keys) -> Result<Accusation, String> {
    if proof.encoded_len() > PROOF_BYTES_MAX {
        return Err(format!("a proof of {} bytes; at most {PROOF_BYTES_MAX}", proof.encoded_len()));
    }
    match &proof.kind {
        None => Err("an empty proof".into()),
        Some(pb::proof::Kind::WrongResult(conflict)) => wrong_result(conflict, keys),
        Some(_) => {
            let evidence = crate::wire::peer::evidence_in(proof.clone()).map_err(|e| format!("malformed: {e}"))?;
            let Some(evidence) = evidence else { return Err("malformed proof".into()) };
            keys.checker().evidence(&evidence).map_err(|e| e.to_owned())?;
            Ok(Accusation { replica: evidence.accused() as usize, kind: Kind::of_evidence(&evidence) })
        }
    }
}

fn canonical(outcome: &Option<pb::Outcome>) -> Vec<u8> {
    outcome.clone().unwrap_or_default().encode_to_vec()
}

/// Whether `body` can be part of a wrong-result proof: the answer of the execution itself
/// (a resend's answer from what was kept may say less: a result too large to keep, a
/// mailbox read again), at a non-zero height, of a result that depends on the committed
/// history alone (who is online and until when depend on each replica's `presence_ms`).
fn comparable(body: &pb::ReplyBody) -> Result<(), String> {
    if body.height == 0 {
        return Err("a height-0 answer is a replica's answer of the moment, never a proof".into());
    }
    if !body.executed || body.ordered.len() != 32 {
        return Err("an answer from what a replica kept, not of the execution itself".into());
    }
    match body.outcome.as_ref().and_then(|o| o.kind.as_ref()) {
        Some(pb::outcome::Kind::Alive(_) | pb::outcome::Kind::Online(_)) => Err("presence answers depend on each replica's settings".into()),
        _ => Ok(()),
    }
}

fn wrong_result(conflict: &pb::ReplyConflict, keys: &Keys) -> Result<Accusation, String> {
    if conflict.others.len() > keys.ids.len() {
        return Err(format!("{} other replies; a cluster of {} has fewer", conflict.others.len(), keys.ids.len()));
    }
    let accused = conflict.accused.as_ref().ok_or("no accused reply")?;
    let (who, body) = keys.reply(accused)?;
    comparable(&body)?;
    let said = canonical(&body.outcome);
    let mut own_other = false;
    let mut result: Option<Vec<u8>> = None;
    let mut signers = BTreeSet::new();
    for other in &conflict.others {
        let (index, b) = keys.reply(other)?;
        comparable(&b)?;
        if b.request_digest != body.request_digest || b.height != body.height || b.ordered != body.ordered {
            return Err("a reply for another request or height".into());
        }
        let outcome = canonical(&b.outcome);
        if outcome == said {
            return Err("a reply that says the same as the accused one".into());
        }
        if index == who {
            own_other = true;
            continue;
        }
        if result.as_ref().is_some_and(|r| *r != outcome) {
            return Err("the other replies do not agree with one another".into());
        }
        result = Some(outcome);
        signers.insert(index);
    }
    if own_other || signers.len() >= keys.quorum {
        Ok(Accusation { replica: who, kind: Kind::WrongResult })
    } else {
        Err(format!("the result it contradicts is signed by {} other replicas, not {}", signers.len(), keys.quorum))
    }
}

fn encoded<T: prost::Message>(part: &Option<T>) -> Vec<u8> {
    part.as_ref().map(T::encode_to_vec).unwrap_or_default()
}

/// What a proof shows, in a few words ("view 1: blocks at heights 9 and 1").
pub fn describe(proof: &pb::Proof) -> String {
    let block = |p: &Option<pb::Proposal>| p.as_ref().and_then(|p| p.block.as_ref()).map_or((0, 0), |b| (b.view, b.height));
    match &proof.kind {
        Some(pb::proof::Kind::Equivocation(e)) => {
            let ((view, a), (_, b)) = (block(&e.first), block(&e.second));
            let through = if e.between.is_empty() { String::new() } else { format!(" (through {} blocks between)", e.between.len()) };
            if a == b { format!("view {view}: two blocks at height {a}{through}") } else { format!("view {view}: blocks at heights {a} and {b}{through}") }
        }
        Some(pb::proof::Kind::DoubleVote(v)) => {
            let (view, height) = v.first.as_ref().map_or((0, 0), |v| (v.view, v.height));
            format!("view {view}: two blocks at height {height}")
        }
        Some(pb::proof::Kind::WrongResult(w)) => {
            let height = w.accused.as_ref().and_then(|r| pb::ReplyBody::decode(r.body.as_slice()).ok()).map_or(0, |b| b.height);
            format!("height {height}: against {} matching replies", w.others.len())
        }
        None => String::new(),
    }
}

/// One proof's identity: the same conflict told in either order is one proof.
pub fn identity(proof: &pb::Proof) -> [u8; 32] {
    let mut parts: Vec<Vec<u8>> = match &proof.kind {
        Some(pb::proof::Kind::Equivocation(e)) => {
            let mut parts = vec![encoded(&e.first), encoded(&e.second)];
            parts.sort();
            parts.extend(e.between.iter().map(|b| b.encode_to_vec()));
            return digest_of(parts);
        }
        Some(pb::proof::Kind::DoubleVote(v)) => vec![encoded(&v.first), encoded(&v.second)],
        Some(pb::proof::Kind::WrongResult(w)) => {
            let mut others: Vec<Vec<u8>> = w.others.iter().map(|o| o.encode_to_vec()).collect();
            others.sort();
            let mut parts = vec![encoded(&w.accused)];
            parts.extend(others);
            parts
        }
        None => vec![],
    };
    if !matches!(proof.kind, Some(pb::proof::Kind::WrongResult(_))) {
        parts.sort();
    }
    digest_of(parts)
}

fn digest_of(parts: Vec<Vec<u8>>) -> [u8; 32] {
    let mut all = Vec::new();
    for p in parts {
        all.extend((p.len() as u64).to_le_bytes());
        all.extend(p);
    }
    consensus::digest(&all)
}

/// A bounded, de-duplicated set of checked proofs, in a file when it has a path (a
/// replica's `evidence.pb`, a client's `evidence-USER.pb`), rewritten whole on each new one.
#[derive(Default)]
pub struct Store {
    /// Entries of the file that did not check as proofs when it was opened (they are not
    /// counted; the file is left as it is until a new proof is kept), with the first reason.
    pub rejected: (usize, Option<String>),
    path: Option<PathBuf>,
    proofs: Vec<(Accusation, pb::Proof)>,
    identities: BTreeSet<[u8; 32]>,
    bytes: usize,
}

impl Store {
    /// The proofs in `path` (none when it does not exist), each checked again: a damaged
    /// or edited file loses what no longer checks, nothing else. The warning says what.
    pub fn open(path: &Path, keys: &Keys) -> (Store, Option<String>) {
        let mut store = Store { path: Some(path.to_owned()), ..Store::default() };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (store, None),
            Err(e) => return (store, Some(format!("cannot read {}: {e}; starting with no proofs", path.display()))),
        };
        if bytes.len() > FILE_BYTES_MAX + (1 << 20) {
            return (store, Some(format!("{} is {} bytes, more than a store of proofs can be; not read", path.display(), bytes.len())));
        }
        let file = match pb::EvidenceFile::decode(bytes.as_slice()) {
            Ok(file) => file,
            Err(e) => return (store, Some(format!("{} does not decode ({e}); starting with no proofs", path.display()))),
        };
        let total = file.proofs.len();
        for proof in file.proofs {
            match check(&proof, keys) {
                Ok(accusation) => {
                    store.admit(proof, accusation);
                }
                Err(why) => {
                    store.rejected.0 += 1;
                    store.rejected.1.get_or_insert(why);
                }
            }
        }
        let warning = (store.rejected.0 > 0).then(|| format!("{}: {} of its {total} entries are not proofs here (not counted)", path.display(), store.rejected.0));
        (store, warning)
    }

    /// Keeps a checked proof unless it is known or its accused's kind is full; writes the
    /// file when it was kept. True when kept.
    pub fn keep(&mut self, proof: pb::Proof, accusation: Accusation) -> std::io::Result<bool> {
        if !self.admit(proof, accusation) {
            return Ok(false);
        }
        self.write()?;
        Ok(true)
    }

    /// Whether a proof of this accusation could still be kept (before making one).
    pub fn has_room(&self, accusation: Accusation) -> bool {
        self.proofs.iter().filter(|(a, _)| *a == accusation).count() < PER_ACCUSED_KIND
    }

    fn admit(&mut self, proof: pb::Proof, accusation: Accusation) -> bool {
        let size = proof.encoded_len();
        let against: usize = self.proofs.iter().filter(|(a, _)| a.replica == accusation.replica).map(|(_, p)| p.encoded_len()).sum();
        if !self.has_room(accusation)
            || size > PROOF_BYTES_MAX
            || against + size > ACCUSED_BYTES_MAX
            || self.bytes + size > FILE_BYTES_MAX
            || !self.identities.insert(identity(&proof))
        {
            return false;
        }
        self.bytes += size;
        self.proofs.push((accusation, proof));
        true
    }

    fn write(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let file = pb::EvidenceFile { proofs: self.proofs.iter().map(|(_, p)| p.clone()).collect() };
        // One partial file per process: two clients of one user may write at once.
        let partial = path.with_extension(format!("pb.{}.partial", std::process::id()));
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&partial)?;
            f.write_all(&file.encode_to_vec())?;
            f.sync_all()?;
        }
        std::fs::rename(&partial, path)
    }

    pub fn proofs(&self) -> impl Iterator<Item = &pb::Proof> {
        self.proofs.iter().map(|(_, p)| p)
    }

    pub fn accusations(&self) -> impl Iterator<Item = &(Accusation, pb::Proof)> {
        self.proofs.iter()
    }

    pub fn len(&self) -> usize {
        self.proofs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.proofs.is_empty()
    }
}

/// Proofs per accused replica and kind.
pub fn tally<'a>(accusations: impl IntoIterator<Item = &'a Accusation>) -> BTreeMap<usize, BTreeMap<Kind, usize>> {
    let mut by = BTreeMap::<usize, BTreeMap<Kind, usize>>::new();
    for a in accusations {
        *by.entry(a.replica).or_default().entry(a.kind).or_default() += 1;
    }
    by
}

/// A client's proofs file for `user`, beside its cluster.toml.
pub fn client_file(config_path: &Path, user: &str) -> PathBuf {
    config_path.parent().unwrap_or(Path::new(".")).join(format!("evidence-{user}.pb"))
}

#[cfg(test)]
mod tests;
