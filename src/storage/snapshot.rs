//! CSV snapshots of the chat state: one folder per snapshot, four files.
//!
//! ```text
//! accounts.csv  name,number,public_key,created_ms,blocked (blocked: "number:name;..." of
//!               the accounts it blocks; v2 files have no such column)
//! messages.csv  id,to,from,from_account,time_ms,unread,hidden,text (hidden: 1 deleted by
//!               its recipient, 2 by its sender; v2 files have no such column)
//! sessions.csv  user,session,account,last_seq,open,reply,request,active_ms (reply: JSON,
//!               what the session keeps of it (`chat::Held`); request: the hex SHA-256 of
//!               the body the reply answers; active_ms: the committed time of its last
//!               request; v2 files have no such column)
//! meta.csv      key,value  (format, height, time_ms, next_message_id, next_account,
//!                           accounts, messages, sessions, digest)
//! ```
//! meta.csv is written last; a folder without it is incomplete. Loading rebuilds the state
//! row by row and then checks its digest against meta.csv.

use std::path::Path;

use csv::{ByteRecord, ReaderBuilder, Writer};

use super::{StorageError, io_err};
use super::fs::Fs;
use crate::chat::{ChatState, Held, RestoreMeta, Restorer, SessionRecord, StoredMessage};
use crate::crypto::{decode_hex, encode_hex};

/// Written now. v3 added kept replies of the form `{"read": ...}` (a `read`'s ids) and
/// `result_not_held`; a v2 folder holds only whole replies, which v3 reads the same way.
const FORMAT: &str = "quintet-snapshot-v3";
/// Formats this code reads.
const FORMATS_READ: [&str; 2] = ["quintet-snapshot-v2", FORMAT];
const ACCOUNTS: (&str, &[&str]) = ("accounts.csv", &["name", "number", "public_key", "created_ms", "blocked"]);
/// accounts.csv before block lists (format v2).
const ACCOUNTS_V2: &[&str] = &["name", "number", "public_key", "created_ms"];
const MESSAGES: (&str, &[&str]) = ("messages.csv", &["id", "to", "from", "from_account", "time_ms", "unread", "hidden", "text"]);
/// messages.csv before per-user deletion (format v2): nothing hidden.
const MESSAGES_V2: &[&str] = &["id", "to", "from", "from_account", "time_ms", "unread", "text"];
const SESSIONS: (&str, &[&str]) = ("sessions.csv", &["user", "session", "account", "last_seq", "open", "reply", "request", "active_ms"]);
/// sessions.csv before presence (format v2): a session's activity is its start time.
const SESSIONS_V2: &[&str] = &["user", "session", "account", "last_seq", "open", "reply", "request"];
const META: (&str, &[&str]) = ("meta.csv", &["key", "value"]);

/// What meta.csv says about a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub height: u64,
    pub digest: [u8; 32],
}

fn csv_err(path: &Path, line: u64, reason: impl ToString) -> StorageError {
    StorageError::Snapshot { path: path.display().to_string(), line, reason: reason.to_string() }
}

/// Writes one CSV file and makes it durable.
fn write_csv(
    fs: &dyn Fs,
    dir: &Path,
    (name, header): (&str, &[&str]),
    rows: impl FnOnce(&mut Writer<Box<dyn super::fs::WriteFile>>) -> csv::Result<()>,
) -> Result<(), StorageError> {
    let path = dir.join(name);
    let file = fs.create(&path).map_err(io_err(&path))?;
    let mut writer = Writer::from_writer(file);
    let result = writer.write_record(header).and_then(|_| rows(&mut writer)).and_then(|_| Ok(writer.flush()?));
    result.map_err(|e| csv_err(&path, 0, e))?;
    let mut file = writer.into_inner().map_err(|e| csv_err(&path, 0, e.error().to_string()))?;
    file.sync().map_err(io_err(&path))
}

pub fn write(fs: &dyn Fs, dir: &Path, state: &ChatState) -> Result<SnapshotMeta, StorageError> {
    write_csv(fs, dir, ACCOUNTS, |w| {
        for (name, a) in &state.accounts {
            let blocked: Vec<String> = a.blocked.iter().map(|(number, name)| format!("{number}:{name}")).collect();
            w.write_record([name.clone(), a.number.to_string(), encode_hex(&a.public_key), a.created_ms.to_string(), blocked.join(";")])?;
        }
        Ok(())
    })?;
    write_csv(fs, dir, MESSAGES, |w| {
        let mut record = ByteRecord::new();
        for (to, a) in &state.accounts {
            for (id, m) in &a.mailbox {
                record.clear();
                record.push_field(id.to_string().as_bytes());
                record.push_field(to.as_bytes());
                record.push_field(m.from.as_bytes());
                record.push_field(m.from_account.to_string().as_bytes());
                record.push_field(m.time_ms.to_string().as_bytes());
                record.push_field(if a.unread.contains(id) { b"1" } else { b"0" });
                record.push_field(m.hidden.to_string().as_bytes());
                record.push_field(m.text.as_bytes());
                w.write_byte_record(&record)?;
            }
        }
        Ok(())
    })?;
    write_csv(fs, dir, SESSIONS, |w| {
        for ((user, session), r) in state.sessions.iter() {
            let reply = serde_json::to_string(&r.reply).expect("replies always encode");
            let open = if r.open { "1" } else { "0" };
            let fields = [
                user.clone(),
                session.to_string(),
                r.account.to_string(),
                r.last_seq.to_string(),
                open.into(),
                reply,
                encode_hex(&r.request),
                r.active_ms.to_string(),
            ];
            w.write_record(&fields)?;
        }
        Ok(())
    })?;
    let digest = state.digest();
    let meta = [
        ("format", FORMAT.to_string()),
        ("height", state.height.to_string()),
        ("time_ms", state.time_ms.to_string()),
        ("next_message_id", state.next_message_id.to_string()),
        ("next_account", state.next_account.to_string()),
        ("accounts", state.accounts.len().to_string()),
        ("messages", state.message_count.to_string()),
        ("sessions", state.sessions.len().to_string()),
        ("digest", encode_hex(&digest)),
    ];
    write_csv(fs, dir, META, |w| meta.iter().try_for_each(|(k, v)| w.write_record([k, v.as_str()])))?;
    Ok(SnapshotMeta { height: state.height, digest })
}

/// Reads one CSV file, checking its header, and hands each row to `row` with its line.
fn read_csv(
    fs: &dyn Fs,
    dir: &Path,
    file: (&str, &[&str]),
    row: impl FnMut(&ByteRecord, u64) -> Result<(), String>,
) -> Result<(), StorageError> {
    read_csv_or(fs, dir, file, None, row)
}

/// `read_csv` that also takes the `older` header (rows then have its fields).
fn read_csv_or(
    fs: &dyn Fs,
    dir: &Path,
    (name, header): (&str, &[&str]),
    older: Option<&[&str]>,
    mut row: impl FnMut(&ByteRecord, u64) -> Result<(), String>,
) -> Result<(), StorageError> {
    let path = dir.join(name);
    let file = fs.open_read(&path).map_err(io_err(&path))?;
    let mut reader = ReaderBuilder::new().has_headers(true).from_reader(file);
    let found = reader.byte_headers().map_err(|e| csv_err(&path, 1, e))?.clone();
    let is = |h: &[&str]| found.iter().eq(h.iter().map(|h| h.as_bytes()));
    let header = match older {
        Some(older) if is(older) => older,
        _ if is(header) => header,
        _ => return Err(csv_err(&path, 1, format!("header is not {}", header.join(",")))),
    };
    let mut record = ByteRecord::new();
    let mut line = 1;
    while reader.read_byte_record(&mut record).map_err(|e| csv_err(&path, line + 1, e))? {
        line += 1;
        if record.len() != header.len() {
            return Err(csv_err(&path, line, format!("{} fields, expected {}", record.len(), header.len())));
        }
        row(&record, line).map_err(|reason| csv_err(&path, line, reason))?;
    }
    Ok(())
}

fn text(record: &ByteRecord, i: usize) -> Result<&str, String> {
    std::str::from_utf8(&record[i]).map_err(|_| format!("field {} is not UTF-8", i + 1))
}

fn number(record: &ByteRecord, i: usize) -> Result<u64, String> {
    text(record, i)?.parse().map_err(|_| format!("field {} is not a number", i + 1))
}

fn flag(record: &ByteRecord, i: usize) -> Result<bool, String> {
    match &record[i] {
        b"0" => Ok(false),
        b"1" => Ok(true),
        _ => Err(format!("field {} is not 0 or 1", i + 1)),
    }
}

/// A block list as accounts.csv keeps it: "number:name;...".
fn block_list(field: &str) -> Result<std::collections::BTreeMap<u64, String>, String> {
    field
        .split(';')
        .map(|entry| {
            let (number, name) = entry.split_once(':').ok_or_else(|| format!("block list entry {entry:?} is not number:name"))?;
            Ok((number.parse().map_err(|_| format!("block list entry {entry:?} is not number:name"))?, name.to_owned()))
        })
        .collect()
}

fn bytes32(value: &str) -> Result<[u8; 32], String> {
    decode_hex(value).and_then(|b| b.try_into().ok()).ok_or_else(|| format!("{value:?} is not 32 bytes of hex"))
}

/// Reads meta.csv: the counters, the height and the digest the files must rebuild.
pub fn read_meta(fs: &dyn Fs, dir: &Path) -> Result<(RestoreMeta, [u8; 32]), StorageError> {
    let mut values = std::collections::BTreeMap::new();
    read_csv(fs, dir, META, |r, _| {
        values.insert(text(r, 0)?.to_owned(), text(r, 1)?.to_owned());
        Ok(())
    })?;
    let path = dir.join(META.0);
    let get = |key: &str| values.get(key).ok_or_else(|| csv_err(&path, 0, format!("no {key} row")));
    let format = get("format")?;
    if !FORMATS_READ.contains(&format.as_str()) {
        return Err(csv_err(&path, 0, format!("format {format:?} is not one this version reads ({})", FORMATS_READ.join(", "))));
    }
    let num = |key: &str| get(key)?.parse::<u64>().map_err(|_| csv_err(&path, 0, format!("{key} is not a number")));
    let meta = RestoreMeta {
        height: num("height")?,
        time_ms: num("time_ms")?,
        next_message_id: num("next_message_id")?,
        next_account: num("next_account")?,
    };
    let digest = bytes32(get("digest")?).map_err(|e| csv_err(&path, 0, e))?;
    Ok((meta, digest))
}

/// Loads a snapshot folder and checks the rebuilt state against its digest.
pub fn load(fs: &dyn Fs, dir: &Path) -> Result<ChatState, StorageError> {
    load_with_digest(fs, dir).map(|(state, _)| state)
}

/// `load`, and the state digest it checked.
pub fn load_with_digest(fs: &dyn Fs, dir: &Path) -> Result<(ChatState, [u8; 32]), StorageError> {
    let (meta, digest) = read_meta(fs, dir)?;
    let mut restorer = Restorer::new(meta);
    read_csv_or(fs, dir, ACCOUNTS, Some(ACCOUNTS_V2), |r, _| {
        let key = bytes32(text(r, 2)?)?;
        let name = text(r, 0)?;
        restorer.account(name, number(r, 1)?, key, number(r, 3)?).map_err(|e| e.to_string())?;
        if r.len() == ACCOUNTS.1.len() && !r[4].is_empty() {
            restorer.blocked(name, block_list(text(r, 4)?)?).map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;
    read_csv_or(fs, dir, MESSAGES, Some(MESSAGES_V2), |r, _| {
        let (hidden, text_at) = if r.len() == MESSAGES.1.len() { (number(r, 6)?, 7) } else { (0, 6) };
        let message = StoredMessage {
            from: text(r, 2)?.to_owned(),
            from_account: number(r, 3)?,
            time_ms: number(r, 4)?,
            text: text(r, text_at)?.to_owned(),
            hidden: u8::try_from(hidden).ok().filter(|h| *h <= 3).ok_or("field 7 is not a hidden mark (0 to 3)")?,
        };
        restorer.message(number(r, 0)?, text(r, 1)?, message, flag(r, 5)?).map_err(|e| e.to_string())
    })?;
    read_csv_or(fs, dir, SESSIONS, Some(SESSIONS_V2), |r, _| {
        let reply: Held = serde_json::from_str(text(r, 5)?).map_err(|e| format!("reply: {e}"))?;
        let session = number(r, 1)?;
        let active_ms = if r.len() == SESSIONS.1.len() { number(r, 7)? } else { session / 1000 };
        let record = SessionRecord { account: number(r, 2)?, last_seq: number(r, 3)?, reply, request: bytes32(text(r, 6)?)?, open: flag(r, 4)?, active_ms };
        restorer.session(text(r, 0)?, session, record).map_err(|e| e.to_string())
    })?;
    let state = restorer.finish();
    let found = state.digest();
    if found != digest {
        return Err(StorageError::Digest {
            path: dir.display().to_string(),
            expected: encode_hex(&digest),
            found: encode_hex(&found),
        });
    }
    Ok((state, digest))
}
