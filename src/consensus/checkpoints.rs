//! S11 checkpoints: commit certificates (q CHECKPOINTs naming one block), stable checkpoints
//! (q CHECKPOINTs naming one state image), and state transfer to a replica that is behind a
//! stable checkpoint whose blocks the others no longer keep.

use super::core::{Action, Core};
use super::types::*;
use super::Digest32;

/// State CHECKPOINTs kept per signer (its newest ones); older ones are dropped, so a replica
/// signing junk cannot grow this replica's memory.
const STATE_VOTES_PER_SIGNER: usize = 2;

/// Commit CHECKPOINTs kept per signer above the committed height (its newest ones): an
/// honest replica says its committed height, which only rises, so its newest is what a
/// replica behind can match with others'.
pub(super) const CHECKPOINTS_PER_SIGNER: usize = 16;

impl Core {
    fn own_checkpoint(&self, height: Height, hash: Hash, state: Option<Digest32>) -> Checkpoint {
        let signature = self.crypto.sign(&signed::checkpoint(height, &hash, state.as_ref()));
        Checkpoint { height, hash, state, voter: self.me, signature }
    }

    /// The checkpoints a restarted replica repeats (see `Core::new`).
    pub(super) fn restore_checkpoints(&mut self) {
        if self.committed_height > 0 {
            self.last_checkpoint = Some(self.own_checkpoint(self.committed_height, self.committed_hash, None));
        }
        if let Some((&height, &(hash, state))) = self.own_states.iter().next_back() {
            self.last_state_checkpoint = Some(self.own_checkpoint(height, hash, Some(state)));
        }
    }

    /// S11: after committing, say so, so a replica that missed the votes can follow.
    pub(super) fn after_commit(&mut self) {
        let checkpoint = self.own_checkpoint(self.committed_height, self.committed_hash, None);
        self.last_checkpoint = Some(checkpoint.clone());
        self.out.push(Action::Broadcast(Message::Checkpoint(checkpoint.clone())));
        self.release_proofs();
        self.keep_proof(checkpoint);
    }

    /// A new slot for kept proofs (each commit, and each retransmission period, so that a
    /// CHECKPOINT held on an idle cluster still reaches the disk): the held ones this
    /// replica has committed that far are kept now.
    pub(super) fn release_proofs(&mut self) {
        self.proof_slot += 1;
        let reached: Vec<ReplicaId> = self.proofs_held.iter().filter(|(_, c)| c.height <= self.committed_height).map(|(w, _)| *w).collect();
        for signer in reached {
            if let Some(held) = self.proofs_held.remove(&signer) {
                self.keep_proof(held);
            }
        }
    }

    /// Proofs of commit for `quintet recover`: each signer's newest verified CHECKPOINT is
    /// kept on disk once this replica has committed that far (`Action::KeepProof`); a newer
    /// one above the committed height waits in `proofs_held` (one per signer) until then.
    /// At most one record per signer and slot (`release_proofs`): a signer sending junk
    /// replaces only its own entry, and cannot make this replica write more than an honest
    /// signer does.
    fn keep_proof(&mut self, c: Checkpoint) {
        let kept = self.proofs_kept.get(&c.voter).copied();
        if kept.is_some_and(|(height, _)| c.height <= height) {
            return;
        }
        if c.height > self.committed_height || kept.is_some_and(|(_, slot)| slot == self.proof_slot) {
            if self.proofs_held.get(&c.voter).is_none_or(|held| held.height < c.height) {
                self.proofs_held.insert(c.voter, c);
            }
            return;
        }
        self.proofs_kept.insert(c.voter, (c.height, self.proof_slot));
        self.out.push(Action::KeepProof(c));
    }

    /// S11: the driver executed the chain through `height` (a `TakeSnapshot` height), kept a
    /// state image of it, and the image hashes to `state`.
    pub(super) fn on_snapshot(&mut self, height: Height, hash: Hash, state: Digest32) {
        if height == 0 || height > self.committed_height {
            return;
        }
        if let Some(stable) = self.stable.clone().filter(|s| s.height >= height) {
            if stable.height == height {
                // The others made it stable while this image was being written. The driver
                // compares the two now that both exist (`Stable` finds the image): the same,
                // and the image is kept with its certificate and served; different, and
                // this replica's state is not the one q replicas signed, and it stops.
                if (stable.hash, stable.state) == (hash, state) {
                    self.own_states.insert(height, (hash, state));
                    self.last_state_checkpoint = Some(self.own_checkpoint(height, hash, Some(state)));
                } else if self.cfg.planted.late_image_unseen {
                    return;
                }
                self.out.push(Action::Stable(stable));
            }
            return;
        }
        self.own_states.insert(height, (hash, state));
        let checkpoint = self.own_checkpoint(height, hash, Some(state));
        self.last_state_checkpoint = Some(checkpoint.clone());
        self.out.push(Action::Broadcast(Message::Checkpoint(checkpoint.clone())));
        self.count_state_vote(&checkpoint, state);
    }

    /// S11: q matching CHECKPOINTs mean an honest replica committed the block: commit it too.
    /// q naming one state make a stable checkpoint.
    pub(super) fn on_checkpoint(&mut self, now: u64, c: Checkpoint) {
        if (c.voter as usize) >= self.cfg.n
            || !self.crypto.verify(c.voter, &signed::checkpoint(c.height, &c.hash, c.state.as_ref()), &c.signature)
        {
            return;
        }
        if let Some(state) = c.state {
            self.count_state_vote(&c, state);
        }
        self.keep_proof(c.clone());
        if c.height <= self.committed_height {
            return;
        }
        let mine = self.checkpoints_by_signer.entry(c.voter).or_default();
        let max = if self.cfg.planted.unbounded_pools { usize::MAX } else { CHECKPOINTS_PER_SIGNER };
        if let Some(oldest) = super::bounds::keep_highest(mine, (c.height, c.hash), max) {
            if let Some(signers) = self.checkpoints.get_mut(&oldest) {
                signers.remove(&c.voter);
                if signers.is_empty() {
                    self.checkpoints.remove(&oldest);
                }
            }
            if oldest == (c.height, c.hash) {
                return;
            }
        }
        let signers = self.checkpoints.entry((c.height, c.hash)).or_default();
        signers.insert(c.voter);
        if signers.len() >= self.cfg.certificate_size() {
            if !self.blocks.contains_key(&c.hash) {
                self.fetch(now, c.hash, c.voter);
            }
            self.certified_commits.insert((c.height, c.hash));
            self.try_certified_commits(now);
        }
    }

    /// Commits what checkpoint certificates proved, once the blocks are here (S9, S11).
    pub(super) fn try_certified_commits(&mut self, now: u64) {
        self.certified_commits.retain(|(h, _)| *h > self.committed_height);
        if let Some(&(_, hash)) = self.certified_commits.iter().next_back()
            && self.blocks.contains_key(&hash)
        {
            self.commit_through(now, hash);
        }
    }

    fn count_state_vote(&mut self, c: &Checkpoint, state: Digest32) {
        if c.height == 0 || self.stable.as_ref().is_some_and(|s| c.height <= s.height) {
            return;
        }
        let key = (c.height, c.hash, state);
        self.state_votes.entry(key).or_default().insert(c.voter, c.signature.clone());
        let mine: Vec<_> = self.state_votes.iter().filter(|(_, s)| s.contains_key(&c.voter)).map(|(k, _)| *k).collect();
        for old in mine.iter().take(mine.len().saturating_sub(STATE_VOTES_PER_SIGNER)) {
            if let Some(signers) = self.state_votes.get_mut(old) {
                signers.remove(&c.voter);
            }
        }
        self.state_votes.retain(|_, s| !s.is_empty());
        let Some(signers) = self.state_votes.get(&key).filter(|s| s.len() >= self.cfg.certificate_size()) else { return };
        let cert = StateCert {
            height: c.height,
            hash: c.hash,
            state,
            signatures: signers.iter().map(|(who, sig)| (*who, sig.clone())).collect(),
        };
        self.set_stable(cert);
    }

    /// A new stable checkpoint: everything below it may be forgotten, here and on disk.
    fn set_stable(&mut self, cert: StateCert) {
        let height = cert.height;
        self.state_votes.retain(|(h, _, _), _| *h > height);
        self.own_states.retain(|h, _| *h >= height);
        let keep_from = height.min(self.committed_height);
        self.blocks.retain(|_, b| b.height >= keep_from);
        self.stable = Some(cert.clone());
        self.out.push(Action::Stable(cert));
    }

    /// S11: every retransmission period, a replica behind a stable checkpoint that made no
    /// progress since the last period asks one of the certificate's signers for its image.
    /// Without a certificate, a replica behind the state CHECKPOINTs of others asks one of
    /// their signers: after a repair (or with most replicas restarted) fewer than q replicas
    /// may repeat a checkpoint, and the certificate then comes with the image (checked by
    /// `on_state` like any other).
    pub(super) fn maybe_fetch_state(&mut self) {
        let stalled = self.state_fetch_seen == Some(self.committed_height);
        self.state_fetch_seen = Some(self.committed_height);
        if !stalled {
            return;
        }
        let (height, signers): (Height, Vec<ReplicaId>) = match self.stable.as_ref() {
            Some(cert) if cert.height > self.committed_height => {
                (cert.height, cert.signatures.iter().map(|(who, _)| *who).collect())
            }
            Some(_) => return,
            // Any stable image above this replica will do: ask for one above its height,
            // in turn of everyone who signed a state CHECKPOINT above it.
            None => {
                let above = self.state_votes.iter().filter(|((h, _, _), _)| *h > self.committed_height);
                let signers: std::collections::BTreeSet<ReplicaId> = above.flat_map(|(_, s)| s.keys().copied()).collect();
                (self.committed_height + 1, signers.into_iter().collect())
            }
        };
        let signers: Vec<ReplicaId> = signers.into_iter().filter(|w| *w != self.me).collect();
        if signers.is_empty() {
            return;
        }
        let who = signers[self.state_fetch_turn % signers.len()];
        self.state_fetch_turn += 1;
        self.out.push(Action::Send(who, Message::FetchState(height)));
    }

    /// S11: answer with the newest stable image this replica holds, at most once per
    /// retransmission period per asker (an image can be large).
    pub(super) fn on_fetch_state(&mut self, now: u64, from: ReplicaId, height: Height) {
        let Some(cert) = self.stable.clone().filter(|s| s.height >= height) else { return };
        if self.own_states.get(&cert.height) != Some(&(cert.hash, cert.state)) {
            return;
        }
        if self.state_served.get(&from).is_some_and(|t| now < t + 4 * self.cfg.delta_ms) {
            return;
        }
        self.state_served.insert(from, now);
        self.out.push(Action::SendState(from, cert));
    }

    /// S11: a state image with a valid certificate above the committed height replaces the
    /// chain below it. The driver installs it (`InstallState`) before anything else.
    pub(super) fn on_state(&mut self, now: u64, t: StateTransfer) {
        let unchecked = self.cfg.planted.unchecked_state;
        let checked = if self.cfg.planted.unchecked_image {
            self.checker().state_transfer_but_image(&t)
        } else {
            self.checker().state_transfer(&t)
        };
        if t.cert.height <= self.committed_height || (!unchecked && checked.is_err()) {
            return;
        }
        let (height, hash, state) = (t.cert.height, t.cert.hash, t.cert.state);
        self.blocks.insert(hash, t.block.clone());
        self.committed_height = height;
        self.committed_hash = hash;
        for r in &t.block.requests {
            self.remember_committed(super::digest(r));
        }
        // Pooled requests may have been executed inside the image; clients resend the rest.
        self.pending.clear();
        self.pending_order.clear();
        self.relayed.clear();
        self.relayed_in.clear();
        self.own_states.insert(height, (hash, state));
        let cert = t.cert.clone();
        self.out.push(Action::InstallState(Box::new(t)));
        if self.stable.as_ref().is_none_or(|s| s.height < height) {
            self.set_stable(cert);
        }
        self.last_progress_ms = now;
        self.failures = 0;
        self.prune();
        self.after_commit();
        self.try_certified_commits(now);
    }
}
