//! Storage tests on the fault-injecting `MemFs`: durability across crashes, torn tails,
//! corruption, failed fsyncs, and snapshots that rebuild the exact state.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::chat::tests::random_requests;
use crate::chat::{Context, Request};

const EVERY: u64 = 1_000_000; // snapshots only when a test asks

fn dir() -> PathBuf {
    PathBuf::from("/data/A")
}

fn open(fs: &MemFs, every: u64) -> Result<(Storage, Recovered), StorageError> {
    Storage::open(Arc::new(fs.clone()), &dir(), every)
}

fn entry(height: u64) -> LogEntry {
    LogEntry { height, time_ms: 1000 + height, bytes: format!("request {height}").into_bytes() }
}

fn heights(r: &Recovered) -> Vec<u64> {
    r.tail.iter().map(|e| e.height).collect()
}

/// A store holding heights 1 to 3, synced, closed.
fn three_synced_records() -> MemFs {
    let fs = MemFs::new();
    let (mut s, _) = open(&fs, EVERY).unwrap();
    for h in 1..=3 {
        s.append(&entry(h)).unwrap();
    }
    s.sync().unwrap();
    fs
}

/// Bytes one framed record of `entry(height)` takes.
fn record_len(height: u64) -> usize {
    let mut v = Vec::new();
    log::encode(&entry(height), &mut v);
    v.len()
}

fn segment(fs: &MemFs) -> PathBuf {
    fs.paths().into_iter().rfind(|p| p.extension().is_some_and(|e| e == "qlog")).expect("a segment")
}

#[test]
fn synced_records_survive_a_crash_and_unsynced_ones_do_not() {
    let fs = MemFs::new();
    let (mut s, r) = open(&fs, EVERY).unwrap();
    assert!(r.tail.is_empty());
    for h in 1..=3 {
        s.append(&entry(h)).unwrap();
    }
    s.sync().unwrap();
    s.append(&entry(4)).unwrap();
    s.append(&entry(5)).unwrap();
    drop(s);
    fs.crash();
    let (mut s, r) = open(&fs, EVERY).unwrap();
    assert_eq!(r.tail, (1..=3).map(entry).collect::<Vec<_>>());
    assert_eq!(s.last_height(), 3);
    // The log goes on from where the durable part ended.
    s.append(&entry(4)).unwrap();
    s.sync().unwrap();
    drop(s);
    assert_eq!(heights(&open(&fs, EVERY).unwrap().1), [1, 2, 3, 4]);
}

#[test]
fn a_torn_tail_is_cut_off_at_every_possible_length() {
    for keep in 1..record_len(4) {
        let fs = MemFs::new();
        let (mut s, _) = open(&fs, EVERY).unwrap();
        for h in 1..=3 {
            s.append(&entry(h)).unwrap();
        }
        s.sync().unwrap();
        s.append(&entry(4)).unwrap();
        s.append(&entry(5)).unwrap();
        // Write the bytes out without an fsync, then lose power part-way through them.
        s.log.file.write_all(&std::mem::take(&mut s.log.pending)).unwrap();
        drop(s);
        fs.crash_torn(keep);
        let (mut s, r) = open(&fs, EVERY).unwrap();
        assert_eq!(heights(&r), [1, 2, 3], "keep {keep}");
        let (path, before, after) = r.truncated.expect("the torn tail is reported");
        assert_eq!((path, before - after), (segment(&fs), keep));
        s.append(&entry(4)).unwrap();
        s.sync().unwrap();
        drop(s);
        assert_eq!(heights(&open(&fs, EVERY).unwrap().1), [1, 2, 3, 4], "keep {keep}");
    }
}

#[test]
fn corruption_before_the_tail_refuses_to_start_naming_file_and_offset() {
    let fs = three_synced_records();
    let second = record_len(1);
    fs.corrupt(&segment(&fs), second + 12);
    let err = open(&fs, EVERY).err().expect("corruption is an error");
    match &err {
        StorageError::Corrupt { path, offset, .. } => {
            assert_eq!((path.as_str(), *offset), (segment(&fs).to_str().unwrap(), second));
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert!(err.to_string().contains("byte offset"), "{err}");
    // Nothing was cut: the file is as long as before.
    assert_eq!(fs.file_len(&segment(&fs)), Some(3 * second));
}

#[test]
fn a_failed_fsync_poisons_the_storage_until_restart() {
    let fs = MemFs::new();
    let (mut s, _) = open(&fs, EVERY).unwrap();
    s.append(&entry(1)).unwrap();
    s.sync().unwrap();
    fs.fail_syncs(true);
    s.append(&entry(2)).unwrap();
    assert!(matches!(s.sync(), Err(StorageError::Failed(_))));
    // Even once the disk is fine again, this instance refuses: the data may be gone.
    fs.fail_syncs(false);
    assert!(matches!(s.append(&entry(3)), Err(StorageError::Failed(_))));
    assert!(matches!(s.sync(), Err(StorageError::Failed(_))));
    drop(s);
    fs.crash();
    let (_, r) = open(&fs, EVERY).unwrap();
    assert_eq!(heights(&r), [1]);
}

/// Applies the requests named by log entries (each entry's bytes hold an index).
fn replay(state: &mut crate::chat::ChatState, tail: &[LogEntry], requests: &[(Request, Context)]) {
    for e in tail {
        let i = u64::from_le_bytes(e.bytes[..8].try_into().unwrap()) as usize;
        state.apply(&requests[i].0, Context { height: e.height, position: 0, time_ms: e.time_ms });
    }
}

#[test]
fn snapshot_plus_log_tail_rebuilds_the_exact_state_for_random_workloads() {
    for seed in 0..12 {
        let requests = random_requests(seed, 300);
        let fs = MemFs::new();
        let (mut s, _) = open(&fs, 1 + seed * 13).unwrap();
        let mut state = crate::chat::ChatState::new();
        for (i, (request, ctx)) in requests.iter().enumerate() {
            s.append(&LogEntry { height: ctx.height, time_ms: ctx.time_ms, bytes: (i as u64).to_le_bytes().to_vec() })
                .unwrap();
            state.apply(request, *ctx);
            if s.snapshot_due(&state) {
                s.write_snapshot(&state).unwrap();
            }
        }
        s.sync().unwrap();
        let snapshot_height = s.snapshot_height();
        assert!(snapshot_height > 0, "seed {seed}: some snapshot was written");
        drop(s);
        fs.crash();
        let (s, r) = open(&fs, EVERY).unwrap();
        assert_eq!(s.snapshot_height(), snapshot_height);
        assert_eq!(r.state.height(), snapshot_height);
        let mut rebuilt = r.state;
        replay(&mut rebuilt, &r.tail, &requests);
        assert_eq!(rebuilt, state, "seed {seed}");
        assert_eq!(rebuilt.digest(), state.digest(), "seed {seed}");
        // Older segments and snapshots are gone: one snapshot, one segment.
        let names = fs.paths();
        assert_eq!(names.iter().filter(|p| p.extension().is_some_and(|e| e == "qlog")).count(), 1);
        assert!(names.iter().all(|p| !p.to_string_lossy().contains(".tmp")));
    }
}

fn file_in_snapshot(fs: &MemFs, name: &str) -> PathBuf {
    fs.paths().into_iter().find(|p| p.ends_with(name) && p.to_string_lossy().contains("snap-")).expect(name)
}

fn snapshotted_store() -> (MemFs, crate::chat::ChatState) {
    let requests = random_requests(5, 200);
    let fs = MemFs::new();
    let (mut s, _) = open(&fs, EVERY).unwrap();
    let mut state = crate::chat::ChatState::new();
    for (i, (request, ctx)) in requests.iter().enumerate() {
        s.append(&LogEntry { height: ctx.height, time_ms: ctx.time_ms, bytes: (i as u64).to_le_bytes().to_vec() }).unwrap();
        state.apply(request, *ctx);
    }
    s.write_snapshot(&state).unwrap();
    assert!(state.message_count() > 0 && state.account_count() > 0);
    (fs, state)
}

#[test]
fn a_snapshot_that_does_not_match_its_digest_refuses_to_start() {
    let (fs, state) = snapshotted_store();
    assert_eq!(open(&fs, EVERY).unwrap().1.state, state);
    // Flip one byte of a message text: still valid CSV, but a different state.
    let messages = file_in_snapshot(&fs, "messages.csv");
    let len = fs.file_len(&messages).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut fs.open_read(&messages).unwrap(), &mut text).unwrap();
    let offset = text.rfind('t').expect("a text field") + 1;
    assert!(offset < len);
    fs.corrupt(&messages, offset);
    let err = open(&fs, EVERY).err().expect("refused");
    assert!(matches!(err, StorageError::Digest { .. } | StorageError::Snapshot { .. }), "{err}");
}

#[test]
fn a_malformed_snapshot_row_names_its_file_and_line() {
    let (fs, _) = snapshotted_store();
    let accounts = file_in_snapshot(&fs, "accounts.csv");
    let mut w = fs.create(&accounts).unwrap();
    let row = format!("name,number,public_key,created_ms\nann,notanumber,{},1\n", "ab".repeat(32));
    w.write_all(row.as_bytes()).unwrap();
    w.sync().unwrap();
    let err = open(&fs, EVERY).err().expect("refused").to_string();
    assert!(err.contains("accounts.csv, line 2") && err.contains("not a number"), "{err}");
}

#[test]
fn a_snapshot_folder_named_for_another_height_is_an_error_naming_it_not_a_panic() {
    let (fs, state) = snapshotted_store();
    let meta = file_in_snapshot(&fs, "meta.csv");
    let folder = meta.parent().unwrap().to_path_buf();
    let renamed = folder.with_file_name(format!("snap-{:020}", state.height() + 5));
    fs.rename(&folder, &renamed).unwrap();
    let err = open(&fs, EVERY).err().expect("refused").to_string();
    assert!(err.contains(&renamed.join("meta.csv").display().to_string()) && err.contains("meta.csv says"), "{err}");
}

#[test]
fn a_half_written_snapshot_is_ignored_and_the_old_state_loads() {
    let fs = three_synced_records();
    let tmp: &Path = Path::new("/data/A/snap-00000000000000000003.tmp");
    fs.create_dir_all(tmp).unwrap();
    fs.create(&tmp.join("accounts.csv")).unwrap().write_all(b"garbage").unwrap();
    let (_, r) = open(&fs, EVERY).unwrap();
    assert_eq!(heights(&r), [1, 2, 3]);
    assert!(fs.paths().iter().all(|p| !p.starts_with(tmp)), "the .tmp folder is removed");
}

#[test]
fn a_failed_fsync_while_writing_a_snapshot_poisons_and_keeps_the_log() {
    let (fs, state) = snapshotted_store();
    let (mut s, r) = open(&fs, EVERY).unwrap();
    let mut state2 = r.state;
    assert_eq!(state2, state);
    let request = Request { user: "ann".into(), session: 1, seq: 1, op: crate::chat::Op::Login };
    let ctx = Context { height: state.height() + 1, position: 0, time_ms: state.time_ms() + 1 };
    s.append(&LogEntry { height: ctx.height, time_ms: ctx.time_ms, bytes: vec![0; 8] }).unwrap();
    state2.apply(&request, ctx);
    s.sync().unwrap();
    fs.fail_syncs(true);
    assert!(s.write_snapshot(&state2).is_err());
    assert!(matches!(s.append(&entry(ctx.height + 1)), Err(StorageError::Failed(_))));
    fs.fail_syncs(false);
    drop(s);
    fs.crash();
    let (s, r) = open(&fs, EVERY).unwrap();
    assert_eq!(s.snapshot_height(), state.height());
    assert_eq!(r.tail.len(), 1);
}

use std::io::Write;
