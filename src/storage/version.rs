//! The data folder's format version, in `DATA/VERSION` (one line: the number).
//!
//! - 1: folders written before the file existed (no VERSION): read as they are; the first
//!   start of this release writes VERSION (nothing in them needs converting: every file of
//!   version 1 is read by version 2, which only adds files).
//! - 2: adds `proofs.qlog` (CHECKPOINTs kept for `quintet recover`), `evidence.pb`, and a
//!   `[reset]` table in cluster.toml.
//!
//! A folder of a newer version is refused with one line: this release cannot know what it
//! holds, and writing into it could lose what a newer release relies on.

use std::path::Path;

/// The version this release writes.
pub const DATA_VERSION: u32 = 2;
pub const VERSION_FILE: &str = "VERSION";

/// The version of the folder at `dir` (1 without a VERSION file; none for a folder that
/// does not exist), or why it cannot be read.
pub fn read(dir: &Path) -> Result<Option<u32>, String> {
    let path = dir.join(VERSION_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(v) if (1..=DATA_VERSION).contains(&v) => Ok(Some(v)),
            Ok(v) => Err(format!(
                "{} holds data format version {v}, written by a newer release; this one reads versions 1 to {DATA_VERSION}: \
                 run the release that wrote it (or a newer one)",
                dir.display()
            )),
            Err(_) => Err(format!("{}: {:?} is not a data format version (a number)", path.display(), text.trim())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(dir.exists().then_some(1)),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Checks the folder's version and marks it as this release's (a version 1 folder is
/// opened as it is). Call before the folder is opened.
pub fn check_and_mark(dir: &Path) -> Result<(), String> {
    if read(dir)? == Some(DATA_VERSION) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (path, tmp) = (dir.join(VERSION_FILE), dir.join(format!("{VERSION_FILE}.tmp")));
    std::fs::write(&tmp, format!("{DATA_VERSION}\n"))
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&tmp, &path))
        .and_then(|_| std::fs::File::open(dir)?.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_folder_is_read_and_marked_a_newer_one_refused_and_garbage_named() {
        let dir = std::env::temp_dir().join(format!("quintet-version-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(read(&dir), Ok(None), "no folder yet");
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read(&dir), Ok(Some(1)), "a folder without VERSION is version 1");
        check_and_mark(&dir).unwrap();
        assert_eq!(read(&dir), Ok(Some(DATA_VERSION)));
        std::fs::write(dir.join(VERSION_FILE), "3\n").unwrap();
        let newer = check_and_mark(&dir).unwrap_err();
        assert!(newer.contains("version 3, written by a newer release"), "{newer}");
        std::fs::write(dir.join(VERSION_FILE), "three\n").unwrap();
        assert!(read(&dir).unwrap_err().contains("is not a data format version"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
