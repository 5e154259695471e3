//! The signatures a folder holds, checked against the config's keys: what fails is said and
//! not offered as history.

use std::collections::BTreeSet;

use super::Folder;
use crate::config::{ClusterConfig, signing_id};
use crate::consensus::{Block, Crypto, Height, signed};
use crate::crypto::PeerKeys;

/// Verifies the signatures a folder holds: its proofs (kept when they verify in the current
/// epoch), its images' certificates, the QCs of its chain above the reset's block, and its
/// vote record's QC.
pub(super) fn check_signatures(f: &mut Folder, config: &ClusterConfig, current: &PeerKeys, epoch: u64, base: Height, keys: &[crate::crypto::VerifyingKey], other_epoch: bool) {
    let n = config.replicas.len();
    let q = config.quorum();
    let mut bad_proofs = 0;
    for p in &f.found.proofs {
        let c = &p.checkpoint;
        if p.epoch != epoch {
            continue; // signed before the last reset: the reset's block is proven already
        }
        let ok = (c.voter as usize) < n && current.verify(c.voter, &signed::checkpoint(c.height, &c.hash, c.state.as_ref()), &c.signature);
        if ok {
            f.proofs.push((c.voter as usize, c.height, c.hash));
        } else {
            bad_proofs += 1;
        }
    }
    if bad_proofs > 0 {
        f.bad_signatures.push(format!("{bad_proofs} kept CHECKPOINTs whose signatures do not verify"));
    }
    // Certificates signed before the last reset are not used (the reset's own image is
    // trusted by its sha256 in cluster.toml): only a signature of this epoch counts.
    let earlier: Vec<PeerKeys> = (0..epoch).map(|e| PeerKeys::new(keys.to_vec(), &signing_id(&config.cluster_id, e))).collect();
    let mut uncertified = Vec::new();
    for image in &mut f.found.images {
        let Some(cert) = &image.cert else { continue };
        let valid = |keys: &PeerKeys| {
            let mut signers = BTreeSet::new();
            cert.signatures.iter().all(|(who, sig)| {
                (*who as usize) < n
                    && signers.insert(*who)
                    && keys.verify(*who, &signed::checkpoint(cert.height, &cert.hash, Some(&cert.state)), sig)
            }) && signers.len() >= q
        };
        let ok = cert.state == image.image_hash && cert.height == image.height && cert.hash == image.block.hash && valid(current);
        if !ok {
            if !earlier.iter().any(valid) {
                uncertified.push(image.height);
            }
            image.cert = None;
        }
    }
    for h in uncertified {
        f.bad_signatures.push(format!("the state certificate of the image at height {h} does not verify"));
    }
    let checker = crate::consensus::Checker {
        n,
        qc_size: q,
        quorum: q,
        certificate_size: q,
        repeats_count: false,
        votes_any_height: false,
        base: config.base(),
        crypto: current,
    };
    // Every block above the reset's must carry a valid QC of its parent (the block right
    // above it, the reset's vote-less base QC).
    let unproven_link = |b: &Block| b.height > base && (b.parent_qc.height + 1 != b.height || b.parent_qc.hash != b.parent || checker.qc(&b.parent_qc).is_err());
    let forged: Vec<Height> = f.found.images.iter().filter(|i| i.cert.is_none() && unproven_link(&i.block)).map(|i| i.height).collect();
    if !forged.is_empty() {
        f.bad_signatures.push(format!("images at heights {forged:?} whose block's QC does not verify (not used)"));
        f.found.images.retain(|i| !forged.contains(&i.height));
    }
    let bad_qcs: Vec<Height> = f.found.chain.values().filter(|b| unproven_link(b)).map(|b| b.height).collect();
    if let Some(first) = bad_qcs.first() {
        f.bad_signatures.push(format!("{} committed blocks from height {first} whose QC does not verify", bad_qcs.len()));
        // Not to be trusted as history: dropped from what this folder offers.
        f.found.chain.retain(|h, _| h < first);
    }
    if let Some(p) = &f.found.persistent
        && !other_epoch
        && p.high_qc.height > base
        && checker.qc(&p.high_qc).is_err()
    {
        f.bad_signatures.push("the vote record's QC does not verify".into());
    }
}

