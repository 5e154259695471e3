//! The cluster's locks, taken by recovery for as long as it reads and rewrites.

use std::path::Path;

use super::folders_of;
use crate::config::ClusterConfig;

/// The cluster's locks, held while recovery reads and rewrites its folders: every replica
/// folder's LOCK (where the folder exists) and the root's up.lock. Refused with what holds
/// one when a replica or `quintet up` runs.
pub struct Locks(#[allow(dead_code)] Vec<crate::storage::pidlock::PidLock>);

pub fn lock_all(config: &ClusterConfig, root: &Path) -> Result<Locks, String> {
    // A missing folder is made (mode 0700) and locked too: a replica started meanwhile would
    // otherwise make it and run on it while it is being re-seeded.
    use std::os::unix::fs::DirBuilderExt;
    if root.is_dir() {
        for (_, dir) in folders_of(config, root) {
            if !dir.exists() {
                std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
        }
    }
    let folders = folders_of(config, root).into_iter().filter(|(_, dir)| dir.is_dir()).map(|(id, dir)| (format!("replica {id}"), dir.join("LOCK")));
    let up = root.is_dir().then(|| ("`quintet up`".to_string(), root.join("up.lock")));
    let mut held = Vec::new();
    for (what, lock) in folders.chain(up) {
        match crate::storage::pidlock::lock(&lock) {
            Ok(guard) => held.push(guard),
            Err(crate::storage::pidlock::LockError::Held(pid)) => {
                return Err(format!("{what} is running{} ({} is locked)", pid.map_or(String::new(), |p| format!(" as pid {p}")), lock.display()));
            }
            Err(crate::storage::pidlock::LockError::Io(e)) => return Err(format!("{}: {e}", lock.display())),
        }
    }
    Ok(Locks(held))
}
