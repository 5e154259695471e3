//! An exclusive lock on a file that says which process holds it: a replica's data folder
//! (`DATA/LOCK`: two replicas must never write one log) and an `up` folder (`DIR/up.lock`:
//! one supervisor per cluster folder). The lock is `flock`, released by the kernel when the
//! process ends however it ends; the file holds the holder's PID, so the one refused can say
//! who has it.

use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

/// Held for the life of the process.
pub struct PidLock(#[allow(dead_code)] std::fs::File);

/// Why a lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it (its PID, if it wrote one).
    Held(Option<u32>),
    Io(std::io::Error),
}

/// Takes the lock at `path` (creating the file) and writes this process's PID into it.
pub fn lock(path: &Path) -> Result<PidLock, LockError> {
    let mut file = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(LockError::Io)?;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        return Err(LockError::Held(text.trim().parse().ok()));
    }
    file.set_len(0).and_then(|_| file.rewind()).and_then(|_| writeln!(file, "{}", std::process::id())).map_err(LockError::Io)?;
    Ok(PidLock(file))
}

/// The PID recorded in the lock at `path`, if a process holds it now.
pub fn holder(path: &Path) -> Option<u32> {
    match lock(path) {
        Err(LockError::Held(pid)) => pid,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_and_free_again_once_dropped() {
        let dir = std::env::temp_dir().join(format!("quintet-pidlock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("LOCK");
        let held = lock(&path).unwrap();
        assert!(matches!(lock(&path), Err(LockError::Held(Some(pid))) if pid == std::process::id()));
        assert_eq!(holder(&path), Some(std::process::id()));
        drop(held);
        assert_eq!(holder(&path), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
