//! The replica store on the fault-injecting `MemFs`: what survives a crash, torn tails,
//! images, stable checkpoints, truncation, installs, and divergence.

use super::*;
use crate::chat::tests::random_requests;
use crate::consensus::{QuorumCert, SimCrypto, signed};
use crate::storage::{MemFs, image_of};

const DIR: &str = "/r";

fn open(fs: &MemFs) -> (ReplicaStore, Opened) {
    open_with(fs, OnDamage::Repair).expect("opens")
}

fn open_with(fs: &MemFs, on_damage: OnDamage) -> Result<(ReplicaStore, Opened), StorageError> {
    ReplicaStore::open(Arc::new(fs.clone()), Path::new(DIR), on_damage)
}

/// A chain of blocks 1..=n (parent links, no requests) with different times.
fn chain(n: u64) -> Vec<Block> {
    let mut parent = [0; 32];
    (1..=n)
        .map(|height| {
            let mut b = Block {
                view: 0,
                height,
                parent,
                parent_qc: QuorumCert::genesis(),
                proposer: 0,
                time_ms: 1_000 + height,
                requests: vec![height.to_le_bytes().to_vec()],
                hash: [0; 32],
            };
            b.hash = b.compute_hash();
            parent = b.hash;
            b
        })
        .collect()
}

fn persistent(view: u64) -> Persistent {
    Persistent {
        view,
        votes: chain(2).iter().map(Block::named).collect(),
        high_qc: QuorumCert::genesis(),
        proposals: Vec::new(),
        reported: Some((view, 1)),
        entered_by: None,
        justification: None,
    }
}

/// A chat state with some content, standing for "the state after block `h`".
fn state(seed: u64) -> ChatState {
    let mut s = ChatState::new();
    for (request, ctx) in random_requests(seed, 60) {
        s.apply(&request, ctx);
    }
    s
}

fn cert(b: &Block, state: Digest32) -> StateCert {
    let bytes = signed::checkpoint(b.height, &b.hash, Some(&state));
    let signatures = (0..3).map(|w| (w, crate::consensus::Crypto::sign(&SimCrypto { me: w }, &bytes))).collect();
    StateCert { height: b.height, hash: b.hash, state, signatures }
}

#[test]
fn what_was_synced_comes_back_and_what_was_not_is_gone() {
    let fs = MemFs::new();
    let blocks = chain(6);
    let (mut store, opened) = open(&fs);
    assert!(opened.restored.persistent.is_none() && opened.replay.is_empty());
    store.persist(&persistent(1)).unwrap();
    for b in &blocks[..4] {
        store.store_block(b).unwrap();
    }
    for b in &blocks[..2] {
        store.commit(b).unwrap();
    }
    store.sync().unwrap();
    store.persist(&persistent(2)).unwrap();
    store.commit(&blocks[2]).unwrap();
    drop(store);
    fs.crash();
    let (_, opened) = open(&fs);
    assert_eq!(opened.restored.persistent, Some(persistent(1)), "the unsynced Persist is gone");
    assert_eq!(opened.replay, blocks[..2].to_vec());
    assert_eq!(opened.restored.blocks, blocks[2..4].to_vec(), "stored blocks above the committed height");
}

#[test]
fn a_torn_tail_of_either_log_is_cut_and_the_rest_is_kept() {
    let blocks = chain(3);
    for keep in 0..400 {
        let fs = MemFs::new();
        let (mut store, _) = open(&fs);
        store.persist(&persistent(1)).unwrap();
        store.commit(&blocks[0]).unwrap();
        store.sync().unwrap();
        store.persist(&persistent(2)).unwrap();
        store.commit(&blocks[1]).unwrap();
        store.commit(&blocks[2]).unwrap();
        // Written but not synced, then a power cut that keeps `keep` bytes of each file.
        store.write_unsynced();
        drop(store);
        fs.crash_torn(keep);
        let (_, opened) = open_with(&fs, OnDamage::Repair).unwrap_or_else(|e| panic!("keep {keep}: {e}"));
        assert!(opened.repairs.is_empty(), "keep {keep}: a torn write is not damage: {:?}", opened.repairs);
        let p = opened.restored.persistent.expect("the first Persist at least");
        assert!(p == persistent(1) || p == persistent(2), "keep {keep}");
        assert!(!opened.replay.is_empty() && opened.replay[..] == blocks[..opened.replay.len()], "keep {keep}");
    }
}

#[test]
fn an_image_becomes_stable_and_everything_older_goes() {
    let fs = MemFs::new();
    let blocks = chain(10);
    let (mut store, _) = open(&fs);
    for b in &blocks[..4] {
        store.commit(b).unwrap();
    }
    let s4 = state(4);
    let d4 = store.take_image(&blocks[3], &s4).unwrap();
    for b in &blocks[4..8] {
        store.commit(b).unwrap();
    }
    let s8 = state(8);
    let d8 = store.take_image(&blocks[7], &s8).unwrap();
    store.commit(&blocks[8]).unwrap();
    store.sync().unwrap();
    // Served image: its bytes hash to what take_image reported.
    store.stable(&cert(&blocks[3], d4)).unwrap();
    let t = store.image(&cert(&blocks[3], d4)).unwrap();
    assert_eq!(crate::consensus::digest(&t.image), d4);
    assert_eq!(t.block, blocks[3]);
    store.stable(&cert(&blocks[7], d8)).unwrap();
    let names = fs.paths().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ");
    assert!(!names.contains("snap-00000000000000000004") && !names.contains("chain-00000000000000000001"), "{names}");
    assert!(!names.contains("chain-00000000000000000005"), "{names}");
    drop(store);
    let (_, opened) = open(&fs);
    assert_eq!(opened.state.digest(), s8.digest(), "the state comes from the newest image");
    assert_eq!(opened.replay, vec![blocks[8].clone()]);
    assert_eq!(opened.restored.committed, vec![blocks[7].clone(), blocks[8].clone()]);
    assert_eq!(opened.restored.stable, Some(cert(&blocks[7], d8)));
    assert_eq!(opened.restored.images, vec![(8, blocks[7].hash, d8)]);
}

#[test]
fn a_stable_checkpoint_naming_another_state_is_divergence() {
    let fs = MemFs::new();
    let blocks = chain(2);
    let (mut store, _) = open(&fs);
    store.commit(&blocks[0]).unwrap();
    store.commit(&blocks[1]).unwrap();
    let mut d = store.take_image(&blocks[1], &state(1)).unwrap();
    d[0] ^= 1;
    let e = store.stable(&cert(&blocks[1], d)).unwrap_err();
    assert!(matches!(e, StorageError::Diverged { height: 2, .. }), "{e}");
    assert!(e.to_string().contains("reset.sh"));
}

#[test]
fn an_installed_image_replaces_the_state_and_survives_a_restart() {
    let blocks = chain(6);
    let (from, to) = (MemFs::new(), MemFs::new());
    let (mut a, _) = open(&from);
    for b in &blocks[..5] {
        a.commit(b).unwrap();
    }
    let s5 = state(5);
    let d5 = a.take_image(&blocks[4], &s5).unwrap();
    a.stable(&cert(&blocks[4], d5)).unwrap();
    let transfer = a.image(&cert(&blocks[4], d5)).unwrap();

    let (mut b, _) = open(&to);
    b.commit(&blocks[0]).unwrap();
    b.sync().unwrap();
    let installed = b.install(&transfer).unwrap();
    assert_eq!(installed.digest(), s5.digest());
    b.commit(&blocks[5]).unwrap();
    b.sync().unwrap();
    drop(b);
    to.crash();
    let (_, opened) = open(&to);
    assert_eq!(opened.state.digest(), s5.digest());
    assert_eq!(opened.replay, vec![blocks[5].clone()]);
    assert_eq!(opened.restored.stable, Some(cert(&blocks[4], d5)));
}

#[test]
fn images_that_are_not_packed_snapshots_are_refused_without_panicking() {
    let blocks = chain(1);
    let good = image_of(&state(3)).unwrap();
    let mut bad = vec![Vec::new(), b"quintet-image-v1\n".to_vec(), good[..good.len() / 2].to_vec()];
    let mut flipped = good.clone();
    flipped[good.len() / 3] ^= 0x55;
    bad.push(flipped);
    bad.push([good.clone(), vec![0]].concat());
    for image in bad {
        let fs = MemFs::new();
        let (mut store, _) = open(&fs);
        let t = StateTransfer { cert: cert(&blocks[0], crate::consensus::digest(&image)), block: blocks[0].clone(), image };
        assert!(store.install(&t).is_err());
    }
}

/// Blocks 1..=n committed in two segments, chain-1 (blocks 1..=4) and chain-5: an image
/// begun after block 4 but never placed still starts a segment, and no image covers chain-1.
fn two_segments(fs: &MemFs, n: u64) -> Vec<Block> {
    let blocks = chain(n);
    let (mut store, _) = open(fs);
    for b in &blocks[..4] {
        store.commit(b).unwrap();
    }
    let _ = store.begin_image(&blocks[3]).unwrap();
    for b in &blocks[4..] {
        store.commit(b).unwrap();
    }
    store.sync().unwrap();
    blocks
}

#[test]
fn a_damaged_end_of_a_chain_segment_that_later_ones_follow_is_corruption_not_a_torn_tail() {
    let fs = MemFs::new();
    let blocks = two_segments(&fs, 5);
    let first = Path::new(DIR).join("chain-00000000000000000001.qlog");
    let len = fs.file_len(&first).unwrap();
    // A short end looks torn, but a later segment follows: damage.
    crate::storage::fs::Fs::truncate(&fs, &first, len as u64 - 1).unwrap();
    let e = open_with(&fs, OnDamage::Refuse).err().expect("refused");
    assert!(e.to_string().contains("later ones follow"), "{e}");
    // With others to repair from, the whole blocks are kept and the segment set aside.
    let (_, opened) = open(&fs);
    assert_eq!(opened.replay, blocks[..3].to_vec(), "block 4's record lost a byte");
    assert!(opened.repairs.iter().any(|r| r.contains("later ones follow")), "{:?}", opened.repairs);
}

#[test]
fn running_out_of_file_descriptors_skips_an_image_and_never_poisons_the_store() {
    let fs = MemFs::new();
    let blocks = chain(6);
    let (mut store, _) = open(&fs);
    for b in &blocks[..3] {
        store.commit(b).unwrap();
    }
    // Starting an image needs a new chain segment: out of descriptors, it is skipped.
    fs.out_of_descriptors(true);
    let e = store.begin_image(&blocks[2]).err().expect("the segment cannot be opened");
    assert!(e.is_descriptor_shortage(), "{e}");
    fs.out_of_descriptors(false);
    store.commit(&blocks[3]).unwrap();
    store.sync().expect("not poisoned: the shortage changed nothing");
    // The image writer runs out of descriptors: the image is dropped, the store goes on.
    let writer = store.begin_image(&blocks[3]).unwrap();
    fs.out_of_descriptors(true);
    let e = writer.write(&state(4)).err().expect("the image files cannot be created");
    fs.out_of_descriptors(false);
    assert!(store.image_failed(4, e).is_none(), "a shortage is not a failed write");
    assert!(!fs.paths().iter().any(|p| p.display().to_string().contains(".tmp")), "the temp folder is gone");
    store.commit(&blocks[4]).unwrap();
    store.sync().unwrap();
    // Any other failure of the writer still poisons.
    let poisoned = store.image_failed(5, StorageError::Failed("disk full".into()));
    assert!(poisoned.is_some());
    assert!(store.sync().is_err());
    // What was committed comes back, across the segment without an image.
    drop(store);
    let (_, opened) = open(&fs);
    assert_eq!(opened.replay, blocks[..5].to_vec());
}

#[path = "repair_tests.rs"]
mod repair;

/// Found by the simulator (three replicas, seed 33 of the crash sweep, after a change of
/// timing): a replica restarted with an image at 4 that no checkpoint had made stable held
/// only block 4 in memory, so it could serve neither blocks 2 and 3 (FETCH) nor the image
/// (no certificate), and the two replicas behind it waited for ever. The blocks above the
/// stable checkpoint that the newest image covers come back too.
#[test]
fn a_restart_keeps_the_blocks_between_the_stable_checkpoint_and_the_newest_image() {
    let fs = MemFs::new();
    let blocks = chain(10);
    let (mut store, _) = open(&fs);
    for b in &blocks[..4] {
        store.commit(b).unwrap();
    }
    let d4 = store.take_image(&blocks[3], &state(4)).unwrap();
    for b in &blocks[4..8] {
        store.commit(b).unwrap();
    }
    store.take_image(&blocks[7], &state(8)).unwrap();
    store.commit(&blocks[8]).unwrap();
    store.sync().unwrap();
    store.stable(&cert(&blocks[3], d4)).unwrap();
    drop(store);
    let (_, opened) = open(&fs);
    assert_eq!(opened.replay, vec![blocks[8].clone()]);
    assert_eq!(opened.restored.committed, blocks[4..9].to_vec(), "blocks 5 to 9: above the stable image at 4");
}
