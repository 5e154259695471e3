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

/// Why a folder's version cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum VersionError {
    /// Written by a newer release: this one cannot know what the folder holds.
    Newer(String),
    /// The VERSION file cannot be read or is not a number.
    Unreadable(String),
}

impl std::fmt::Display for VersionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (VersionError::Newer(text) | VersionError::Unreadable(text)) = self;
        f.write_str(text)
    }
}

/// The version of the folder at `dir` (1 without a VERSION file; none for a folder that
/// does not exist), or why it cannot be read.
pub fn read(dir: &Path) -> Result<Option<u32>, VersionError> {
    let path = dir.join(VERSION_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(v) if (1..=DATA_VERSION).contains(&v) => Ok(Some(v)),
            Ok(v) => Err(VersionError::Newer(format!(
                "{} holds data format version {v}, written by a newer release; this one reads versions 1 to {DATA_VERSION}: \
                 run the release that wrote it (or a newer one)",
                dir.display()
            ))),
            Err(_) => Err(VersionError::Unreadable(format!("{}: {:?} is not a data format version (a number)", path.display(), text.trim()))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(dir.exists().then_some(1)),
        Err(e) => Err(VersionError::Unreadable(format!("{}: {e}", path.display()))),
    }
}

/// Writes `DIR/NAME` as `text` and makes it durable (a temp file synced, renamed, the folder
/// synced).
fn write_durably(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let (path, tmp) = (dir.join(name), dir.join(format!("{name}.tmp")));
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&tmp, &path))
        .and_then(|_| std::fs::File::open(dir)?.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Checks the folder's version and marks it as this release's (a version 1 folder is
/// opened as it is). Call before the folder is opened.
pub fn check_and_mark(dir: &Path) -> Result<(), String> {
    if read(dir).map_err(|e| e.to_string())? == Some(DATA_VERSION) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    write_durably(dir, VERSION_FILE, &format!("{DATA_VERSION}\n"))
}

pub const EPOCH_FILE: &str = "EPOCH";

/// `DATA/EPOCH`: the reset epoch a folder belongs to and its cluster's id (two lines),
/// written when a folder is first used and when `quintet recover` re-seeds it. A folder
/// left out of a reset (another host's, a restored backup) must not start under the new
/// cluster.toml, a re-seeded folder not under the old one, and no folder under another
/// cluster's. A folder without the file holds epoch 0 of an unknown cluster.
pub fn parse_epoch(text: &str) -> Option<(u64, Option<String>)> {
    let mut lines = text.lines().map(str::trim);
    let epoch = lines.next()?.parse().ok()?;
    Some((epoch, lines.next().filter(|l| !l.is_empty()).map(str::to_string)))
}

/// Checks a folder's EPOCH against the config (a folder with no replica files yet takes
/// the config's).
pub fn check_epoch(dir: &Path, epoch: u64, cluster_id: &str, config: &Path) -> Result<(), String> {
    let path = dir.join(EPOCH_FILE);
    let held = match std::fs::read_to_string(&path) {
        Ok(text) => Some(parse_epoch(&text).ok_or_else(|| format!("{}: {:?} is not a reset epoch (a number)", path.display(), text.trim()))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let fresh = || {
        std::fs::read_dir(dir).map_or(true, |entries| {
            entries.flatten().all(|e| [VERSION_FILE, "LOCK"].contains(&e.file_name().to_string_lossy().as_ref()))
        })
    };
    if let Some((_, Some(other))) = &held
        && other != cluster_id
    {
        return Err(format!(
            "{} holds data of another cluster (id {other}), not of the one {} names (id {cluster_id}): use that cluster's cluster.toml, or move the folder away",
            dir.display(),
            config.display()
        ));
    }
    match held {
        Some((held, Some(_))) if held == epoch => Ok(()),
        // Written before the file named the cluster: name it now.
        Some((held, None)) if held == epoch => mark_epoch(dir, epoch, cluster_id),
        None if epoch == 0 || fresh() => mark_epoch(dir, epoch, cluster_id),
        held => {
            let held = held.map_or(0, |(e, _)| e);
            Err(if held < epoch {
                format!(
                    "{} holds data of reset epoch {held}, but {} is at reset epoch {epoch}: the reset left this folder out. \
                     Stop every replica and run `./reset.sh --config {}` with this folder under its --data-root (it is backed up and re-seeded)",
                    dir.display(),
                    config.display(),
                    config.display()
                )
            } else {
                format!(
                    "{} was re-seeded by the reset to epoch {held}, but {} is at reset epoch {epoch}: copy the cluster.toml that reset wrote here",
                    dir.display(),
                    config.display()
                )
            })
        }
    }
}

/// Writes `DATA/EPOCH` (synced, then the folder).
pub fn mark_epoch(dir: &Path, epoch: u64, cluster_id: &str) -> Result<(), String> {
    write_durably(dir, EPOCH_FILE, &format!("{epoch}\n{cluster_id}\n"))
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
        assert!(read(&dir).unwrap_err().to_string().contains("is not a data format version"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_folder_of_another_reset_epoch_or_cluster_is_refused_and_a_fresh_one_takes_the_configs() {
        let dir = std::env::temp_dir().join(format!("quintet-epoch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = Path::new("cluster.toml");
        std::fs::create_dir_all(&dir).unwrap();
        check_and_mark(&dir).unwrap();
        check_epoch(&dir, 2, "c1", config).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join(EPOCH_FILE)).unwrap(), "2\nc1\n", "a fresh folder takes the config's epoch");
        let newer = check_epoch(&dir, 1, "c1", config).unwrap_err();
        assert!(newer.contains("re-seeded by the reset to epoch 2") && newer.contains("copy the cluster.toml"), "{newer}");
        let other = check_epoch(&dir, 2, "c2", config).unwrap_err();
        assert!(other.contains("another cluster (id c1)"), "{other}");
        // A folder with data and no EPOCH file was written in epoch 0.
        std::fs::remove_file(dir.join(EPOCH_FILE)).unwrap();
        std::fs::write(dir.join("consensus.qlog"), b"").unwrap();
        check_epoch(&dir, 0, "c1", config).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join(EPOCH_FILE)).unwrap(), "0\nc1\n");
        std::fs::write(dir.join(EPOCH_FILE), "0\n").unwrap();
        let left_out = check_epoch(&dir, 1, "c1", config).unwrap_err();
        assert!(left_out.contains("holds data of reset epoch 0") && left_out.contains("./reset.sh --config cluster.toml"), "{left_out}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
