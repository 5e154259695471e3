//! Damage on a replica's disk (NOTEBOOK, 2026-12-02, "protocol-aware repair"): what is set aside,
//! what is kept, which copy of the vote record wins, and when the replica still refuses.

use super::*;
use crate::storage::{DAMAGED, Fs};

fn path(name: &str) -> std::path::PathBuf {
    Path::new(DIR).join(name)
}

fn file(fs: &MemFs, name: &str) -> Vec<u8> {
    crate::storage::read_all(fs, &path(name)).unwrap()
}

fn set_aside(fs: &MemFs) -> Vec<String> {
    fs.list(&path(DAMAGED)).unwrap_or_default()
}

/// Blocks 1..=4 committed and a stable image of the state after 4 (chain-1 deleted), then
/// 5..=9 in chain-5.
fn committed_nine(fs: &MemFs) -> (Vec<Block>, ChatState) {
    let blocks = chain(9);
    let (mut store, _) = open(fs);
    for b in &blocks[..4] {
        store.commit(b).unwrap();
    }
    let s4 = state(4);
    let d4 = store.take_image(&blocks[3], &s4).unwrap();
    store.stable(&cert(&blocks[3], d4)).unwrap();
    for b in &blocks[4..] {
        store.commit(b).unwrap();
    }
    store.sync().unwrap();
    (blocks, s4)
}

#[test]
fn a_damaged_chain_record_is_set_aside_and_the_whole_blocks_before_it_are_kept() {
    let fs = MemFs::new();
    let (blocks, s4) = committed_nine(&fs);
    let segment = "chain-00000000000000000005.qlog";
    let original = file(&fs, segment);
    // A flipped byte in the third record (block 7): records are 8 + 16 + the block.
    let record = 8 + 16 + crate::wire::peer::encode_block(&blocks[4]).len();
    fs.corrupt(&path(segment), 2 * record + 40);

    let e = open_with(&fs, OnDamage::Refuse).err().expect("alone, a replica refuses");
    assert!(e.to_string().contains("reset.sh") && e.to_string().contains(segment), "{e}");

    let (mut store, opened) = open(&fs);
    assert_eq!(opened.state.digest(), s4.digest(), "the image is whole");
    assert_eq!(opened.replay, blocks[4..6].to_vec(), "blocks 5 and 6 are whole, 7 is not");
    assert_eq!(opened.restored.committed.last(), Some(&blocks[5]));
    let [note] = &opened.repairs[..] else { panic!("{:?}", opened.repairs) };
    assert!(note.contains(segment) && note.contains("checksum") && note.contains("up to 6"), "{note}");
    assert_eq!(set_aside(&fs), vec![format!("000-{segment}")]);
    let mut kept = original.clone();
    kept[2 * record + 40] ^= 0xff;
    assert_eq!(crate::storage::read_all(&fs, &path(DAMAGED).join(format!("000-{segment}"))).unwrap(), kept, "kept as found");

    // Blocks 7..9 come back from the others (the core commits them again).
    for b in &blocks[6..] {
        store.commit(b).unwrap();
    }
    store.sync().unwrap();
    drop(store);
    fs.crash();
    let (_, opened) = open(&fs);
    assert!(opened.repairs.is_empty(), "the repair is durable: {:?}", opened.repairs);
    assert_eq!(opened.replay, blocks[4..].to_vec());
}

#[test]
fn segments_after_a_damaged_one_are_set_aside_too() {
    let fs = MemFs::new();
    two_segments(&fs, 8);
    fs.corrupt(&path("chain-00000000000000000001.qlog"), 30); // inside block 1's record
    let (_, opened) = open(&fs);
    assert!(opened.replay.is_empty() && opened.restored.committed.is_empty(), "nothing whole before block 1");
    assert_eq!(opened.repairs.len(), 2, "{:?}", opened.repairs);
    assert!(opened.repairs[1].contains("chain-00000000000000000005.qlog follows a damaged segment"), "{:?}", opened.repairs);
    assert_eq!(set_aside(&fs).len(), 2);
}

/// `committed_nine`, plus a newer image after block 9.
fn two_images(fs: &MemFs) -> (Vec<Block>, ChatState) {
    let (blocks, s4) = committed_nine(fs);
    let (mut store, _) = open(fs);
    store.take_image(&blocks[8], &state(9)).unwrap();
    (blocks, s4)
}

/// Three Persists, each synced (block 1 stored between the second and the third).
fn three_persists(fs: &MemFs) {
    let (mut store, _) = open(fs);
    store.persist(&persistent(1)).unwrap();
    store.sync().unwrap();
    store.persist(&persistent(2)).unwrap();
    store.store_block(&chain(1)[0]).unwrap();
    store.sync().unwrap();
    store.persist(&persistent(3)).unwrap();
    store.sync().unwrap();
}

#[test]
fn one_damaged_copy_of_the_vote_record_loses_nothing() {
    for damaged in [CONSENSUS, MIRROR] {
        let fs = MemFs::new();
        three_persists(&fs);
        // The last record (the newest vote record), whole with a flipped byte: the damaged
        // copy's whole part ends with an older one.
        let len = file(&fs, damaged).len();
        fs.corrupt(&path(damaged), len - 1);
        let (_, opened) = open(&fs);
        assert_eq!(opened.restored.persistent, Some(persistent(3)), "{damaged}: the newest record, from the other copy");
        assert_eq!(opened.restored.blocks, chain(1), "{damaged}: the stored block too");
        assert!(opened.repairs.iter().any(|r| r.contains(damaged)), "{damaged}: {:?}", opened.repairs);
        assert_eq!(set_aside(&fs), vec![format!("000-{damaged}")]);
        let (_, opened) = open(&fs);
        assert!(opened.repairs.is_empty(), "{damaged}: both copies were written whole again");
        assert_eq!(opened.restored.persistent, Some(persistent(3)));
    }
    // Alone in its cluster, a replica repairs one damaged copy from the other too.
    for damaged in [CONSENSUS, MIRROR] {
        let fs = MemFs::new();
        three_persists(&fs);
        fs.corrupt(&path(damaged), 12);
        let (_, opened) = open_with(&fs, OnDamage::Refuse).expect("one copy is whole");
        assert_eq!((opened.restored.persistent, opened.restored.blocks), (Some(persistent(3)), chain(1)), "{damaged}");
    }
}

#[test]
fn a_missing_copy_is_written_again_from_the_other() {
    for missing in [CONSENSUS, MIRROR] {
        let fs = MemFs::new();
        three_persists(&fs);
        fs.remove_file(&path(missing)).unwrap();
        let (_, opened) = open(&fs);
        assert_eq!(opened.restored.persistent, Some(persistent(3)), "{missing}");
        assert!(opened.repairs.iter().any(|r| r.contains(&format!("{missing} is missing"))), "{:?}", opened.repairs);
        assert!(!file(&fs, missing).is_empty(), "{missing} written again");
    }
}

#[test]
fn with_both_copies_deleted_from_a_folder_with_a_chain_the_replica_refuses_to_start() {
    let fs = MemFs::new();
    committed_nine(&fs);
    fs.remove_file(&path(CONSENSUS)).unwrap();
    fs.remove_file(&path(MIRROR)).unwrap();
    let e = open_with(&fs, OnDamage::Repair).err().expect("refused: not a new replica");
    assert!(e.to_string().contains("both copies"), "{e}");
}

#[test]
fn with_both_copies_damaged_the_replica_refuses_to_start() {
    let fs = MemFs::new();
    three_persists(&fs);
    let consensus_len = file(&fs, CONSENSUS).len();
    fs.corrupt(&path(CONSENSUS), consensus_len - 1);
    fs.corrupt(&path(MIRROR), 12);
    let e = open_with(&fs, OnDamage::Repair).err().expect("refused");
    let text = e.to_string();
    assert!(text.contains("both copies") && text.contains("vote twice") && text.contains("reset.sh"), "{text}");
    assert!(set_aside(&fs).is_empty(), "nothing is moved when the replica refuses");
}

#[test]
fn after_a_crash_between_the_two_copies_the_newest_whole_record_wins() {
    // The sync writes consensus.qlog, then its mirror: a crash between them leaves one copy
    // a record behind, whole. Either way the newer one is taken (it is the one numbered
    // higher, wherever it is).
    for behind in [CONSENSUS, MIRROR] {
        let fs = MemFs::new();
        three_persists(&fs);
        let data = file(&fs, behind);
        let last = crate::storage::log::scan(&data).unwrap().entries.iter().rposition(|e| e.height == 0).unwrap();
        let cut: usize = crate::storage::log::scan(&data).unwrap().entries[..last].iter().map(|e| 24 + e.bytes.len()).sum();
        fs.truncate(&path(behind), cut as u64).unwrap();
        let (_, opened) = open(&fs);
        assert_eq!(opened.restored.persistent, Some(persistent(3)), "{behind} one record behind");
        assert!(opened.repairs.is_empty(), "a crash is not damage: {:?}", opened.repairs);
    }
}

#[test]
fn a_damaged_image_is_set_aside_and_an_older_one_or_the_others_give_the_state() {
    let fs = MemFs::new();
    let (blocks, s4) = two_images(&fs);
    // The newest image (after block 9) is damaged: the one after block 4 and the chain
    // after it give the same committed height back.
    let messages = path("snap-00000000000000000009").join("messages.csv");
    fs.corrupt(&messages, 5);
    let (_, opened) = open(&fs);
    assert_eq!(opened.state.digest(), s4.digest());
    assert_eq!(opened.replay, blocks[4..].to_vec());
    assert!(opened.repairs[0].contains("snap-00000000000000000009"), "{:?}", opened.repairs);

    // The only image left is damaged: nothing whole to start from but the empty state; the
    // chain after it cannot be replayed without it, and is set aside too.
    fs.corrupt(&path("snap-00000000000000000004").join("accounts.csv"), 5);
    let (_, opened) = open(&fs);
    assert_eq!(opened.state.digest(), ChatState::new().digest());
    assert!(opened.replay.is_empty() && opened.restored.stable.is_none() && opened.restored.images.is_empty());
    let [image, chain, after] = &opened.repairs[..] else { panic!("{:?}", opened.repairs) };
    assert!(image.contains("snap-00000000000000000004: damaged (the image's files no longer hash"), "{image}");
    assert!(chain.contains("chain-00000000000000000005.qlog: the chain jumps from height 1 to 5"), "{chain}");
    assert!(after.contains("chain-00000000000000000010.qlog follows a damaged segment"), "{after}");
    assert!(!opened.repairs.iter().any(|r| r.contains("refusing")), "a repair is not a refusal: {:?}", opened.repairs);
    assert_eq!(open_with(&fs, OnDamage::Refuse).map(|_| ()).err().map(|e| e.to_string()), None, "nothing left damaged");
}

#[test]
fn an_image_whose_block_changed_is_damaged_even_when_the_block_still_decodes() {
    let fs = MemFs::new();
    let (blocks, s4) = two_images(&fs);
    // The last byte of block.pb is the last byte of its request: it still decodes.
    let block = path("snap-00000000000000000009").join("block.pb");
    let len = fs.file_len(&block).unwrap();
    fs.corrupt(&block, len - 1);
    assert!(crate::wire::peer::decode_block(&file(&fs, "snap-00000000000000000009/block.pb")).is_ok());
    let (_, opened) = open(&fs);
    assert!(opened.repairs[0].contains("no longer hashes to block.sha256"), "{:?}", opened.repairs);
    assert_eq!(opened.state.digest(), s4.digest());
    assert_eq!(opened.replay, blocks[4..].to_vec());
}

#[test]
fn an_image_folder_missing_a_file_is_damage_set_aside_not_a_refusal() {
    let fs = MemFs::new();
    let (blocks, s4) = two_images(&fs);
    fs.remove_file(&path("snap-00000000000000000009").join("image.sha256")).unwrap();
    let (_, opened) = open(&fs);
    assert!(opened.repairs[0].contains("snap-00000000000000000009"), "{:?}", opened.repairs);
    assert_eq!((opened.state.digest(), opened.replay), (s4.digest(), blocks[4..].to_vec()));
}
