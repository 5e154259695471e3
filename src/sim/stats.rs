//! What one run, or many, did: events, messages, and every fault injected by kind.

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub events: u64,
    pub messages: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub crashes: u64,
    pub mid_batch_crashes: u64,
    pub restarts: u64,
    pub partitions: u64,
    pub byzantine_actions: u64,
    pub images: u64,
    /// Replica messages refused by the codec (garbage bytes from Byzantine replicas).
    pub refused: u64,
    pub state_transfers: u64,
    /// Crashes that also damaged a byte of the replica's disk, and starts that repaired it.
    pub damaged: u64,
    pub repaired: u64,
    /// Replicas whose diverged state S11 found out, and which stopped (`images.rs`).
    pub diverged_stops: u64,
    /// Proofs of misbehaviour cores found (every one against a Byzantine replica), and
    /// those of them that carry the view's blocks between two proposals.
    pub proofs: u64,
    pub chain_proofs: u64,
}

impl Stats {
    /// Adds another run's counts (the destructuring makes a new field impossible to miss).
    pub fn add(&mut self, other: &Stats) {
        let Stats {
            events,
            messages,
            dropped,
            duplicated,
            crashes,
            mid_batch_crashes,
            restarts,
            partitions,
            byzantine_actions,
            images,
            refused,
            state_transfers,
            damaged,
            repaired,
            diverged_stops,
            proofs,
            chain_proofs,
        } = other;
        self.events += events;
        self.messages += messages;
        self.dropped += dropped;
        self.duplicated += duplicated;
        self.crashes += crashes;
        self.mid_batch_crashes += mid_batch_crashes;
        self.restarts += restarts;
        self.partitions += partitions;
        self.byzantine_actions += byzantine_actions;
        self.images += images;
        self.refused += refused;
        self.state_transfers += state_transfers;
        self.damaged += damaged;
        self.repaired += repaired;
        self.diverged_stops += diverged_stops;
        self.proofs += proofs;
        self.chain_proofs += chain_proofs;
    }
}
