//! The append-only log: framing, scanning with torn-tail detection, and the writer.
//!
//! ```text
//! one record:
//! ┌────────────────┬────────────────┬─────────────────────────────────────────────┐
//! │ length: u32 LE │ crc32: u32 LE  │ payload (length bytes)                      │
//! └────────────────┴────────────────┴─────────────────────────────────────────────┘
//! payload:
//! ┌────────────────┬────────────────┬─────────────────────────────────────────────┐
//! │ height: u64 LE │ time_ms: u64 LE│ entry bytes (an encoded SignedRequest)       │
//! └────────────────┴────────────────┴─────────────────────────────────────────────┘
//! ```
//! The checksum covers the payload. A torn tail (a crash mid-write) is cut off by recovery:
//! a record that runs past the end of the file, zeros where a header should be, or a last
//! record whose checksum fails because its end never landed: zeros from a sector boundary
//! (`SECTOR`) to the end of the file, which is what a file extended before its data was
//! written reads as. Any other bad record is corruption, the last one included (a whole
//! last record with a flipped bit is damage, not a crash, and was acknowledged): recovery
//! refuses to go on and says where.

use std::io::Write;

use super::fs::WriteFile;

const HEADER: usize = 8;
/// Disks write whole sectors: a write that did not land leaves whole sectors unwritten.
const SECTOR: usize = 512;
const PAYLOAD_FIXED: usize = 16;
/// Largest payload accepted: a consensus record can hold several full blocks (1 MiB of
/// requests each, see `consensus::Config`).
pub const PAYLOAD_MAX: usize = 64 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub height: u64,
    pub time_ms: u64,
    pub bytes: Vec<u8>,
}

/// What scanning one segment found.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
    pub entries: Vec<LogEntry>,
    /// Bytes that hold whole, valid records; anything after is a torn tail.
    pub valid_len: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Corruption {
    pub offset: usize,
    pub reason: String,
}

pub fn encode(entry: &LogEntry, out: &mut Vec<u8>) {
    let len = PAYLOAD_FIXED + entry.bytes.len();
    assert!(len <= PAYLOAD_MAX, "log payload of {len} bytes is over the limit");
    let start = out.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&entry.height.to_le_bytes());
    out.extend_from_slice(&entry.time_ms.to_le_bytes());
    out.extend_from_slice(&entry.bytes);
    let crc = crc32fast::hash(&out[start + HEADER..]);
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// Reads every record of a segment. A torn tail ends the scan quietly (`valid_len` says
/// where); corruption before the tail is an error naming the offset.
pub fn scan(data: &[u8]) -> Result<Scan, Corruption> {
    let mut entries = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        if rest.len() < HEADER {
            break; // torn inside a header
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len == 0 && rest.iter().all(|&b| b == 0) {
            break; // zero-filled tail: the file grew but the data never landed
        }
        if !(PAYLOAD_FIXED..=PAYLOAD_MAX).contains(&len) {
            return Err(Corruption { offset: at, reason: format!("record length {len} is impossible") });
        }
        if rest.len() < HEADER + len {
            break; // torn inside the payload
        }
        let payload = &rest[HEADER..HEADER + len];
        if crc32fast::hash(payload) != crc {
            if rest.len() == HEADER + len && unwritten_tail(data, at) {
                break; // the last record, torn: its end never reached the disk
            }
            let reason = if rest.len() == HEADER + len {
                "checksum mismatch in the last record, which is whole (damage, not a torn write)"
            } else {
                "checksum mismatch"
            };
            return Err(Corruption { offset: at, reason: reason.into() });
        }
        entries.push(LogEntry {
            height: u64::from_le_bytes(payload[0..8].try_into().expect("8 bytes")),
            time_ms: u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes")),
            bytes: payload[PAYLOAD_FIXED..].to_vec(),
        });
        at += HEADER + len;
    }
    Ok(Scan { entries, valid_len: at })
}

/// Whether `data` ends in zeros that start at a sector boundary after `record` (the last
/// record's offset): sectors of the record that were never written.
fn unwritten_tail(data: &[u8], record: usize) -> bool {
    let zeros_from = data.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
    let sector = zeros_from.div_ceil(SECTOR) * SECTOR;
    sector > record && sector < data.len()
}

/// Appends records to the open segment; `sync` makes everything appended so far durable.
pub struct LogWriter {
    pub(super) file: Box<dyn WriteFile>,
    /// Encoded records not yet handed to the file.
    pub(super) pending: Vec<u8>,
    /// Records were appended since the last successful sync (none: nothing to fsync).
    dirty: bool,
}

impl LogWriter {
    pub fn new(file: Box<dyn WriteFile>) -> Self {
        LogWriter { file, pending: Vec::new(), dirty: false }
    }

    pub fn append(&mut self, entry: &LogEntry) {
        encode(entry, &mut self.pending);
        self.dirty = true;
    }

    /// Writes and fsyncs what was appended; with nothing appended since the last sync it
    /// does nothing (a batch that commits nothing costs no fsync of the chain).
    pub fn sync(&mut self) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if !self.pending.is_empty() {
            self.file.write_all(&self.pending)?;
            self.pending.clear();
        }
        self.file.sync()?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(height: u64, len: usize) -> LogEntry {
        LogEntry { height, time_ms: height * 10, bytes: vec![height as u8; len] }
    }

    fn three() -> Vec<u8> {
        let mut data = Vec::new();
        for (h, len) in [(1, 5), (2, 0), (3, 300)] {
            encode(&entry(h, len), &mut data);
        }
        data
    }

    #[test]
    fn round_trip() {
        let data = three();
        let scan = scan(&data).unwrap();
        assert_eq!(scan.entries, vec![entry(1, 5), entry(2, 0), entry(3, 300)]);
        assert_eq!(scan.valid_len, data.len());
    }

    #[test]
    fn every_torn_tail_is_cut_at_the_last_whole_record() {
        let data = three();
        let two = {
            let mut d = Vec::new();
            encode(&entry(1, 5), &mut d);
            encode(&entry(2, 0), &mut d);
            d.len()
        };
        for cut in two..data.len() {
            let s = scan(&data[..cut]).unwrap();
            assert_eq!((s.entries.len(), s.valid_len), (2, two), "cut at {cut}");
        }
        // A last record whose end never landed: zeros from a sector boundary to the end.
        let mut big = Vec::new();
        encode(&entry(1, 5), &mut big);
        encode(&entry(2, 0), &mut big);
        encode(&entry(3, 3_000), &mut big);
        let mut unwritten = big.clone();
        for b in &mut unwritten[2 * SECTOR..] {
            *b = 0;
        }
        assert_eq!(scan(&unwritten).unwrap().valid_len, two, "sectors never written");
        // Zeroes after the end: the file was extended but the bytes never landed.
        let mut zeroed = data.clone();
        zeroed.extend_from_slice(&[0; 100]);
        assert_eq!(scan(&zeroed).unwrap().valid_len, data.len());
    }

    #[test]
    fn a_whole_last_record_with_a_bad_checksum_is_corruption_not_a_torn_write() {
        let data = three();
        let two = scan(&data).unwrap().entries[..2].iter().map(|e| HEADER + PAYLOAD_FIXED + e.bytes.len()).sum::<usize>();
        // One flipped bit in the last record: the record is whole, so it is damage.
        let mut flipped = data.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let e = scan(&flipped).unwrap_err();
        assert_eq!(e.offset, two);
        assert!(e.reason.contains("whole"), "{}", e.reason);
        // Zeros at its end that do not start at a sector boundary are damage too.
        let mut zeroed = data.clone();
        let n = zeroed.len();
        for b in &mut zeroed[n - 10..] {
            *b = 0;
        }
        assert!(scan(&zeroed).is_err(), "ten zeros inside one sector are not an unwritten sector");
    }

    #[test]
    fn corruption_in_the_middle_is_an_error_with_its_offset() {
        let mut data = three();
        data[HEADER + 2] ^= 0x40; // inside the first record's payload
        assert_eq!(scan(&data), Err(Corruption { offset: 0, reason: "checksum mismatch".into() }));
        let mut data = three();
        data[0] = 0xff; // an impossible length in the first header
        data[3] = 0x7f;
        assert_eq!(scan(&data).unwrap_err().offset, 0);
    }
}
