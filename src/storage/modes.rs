//! Who may read what a replica keeps. Its folder holds every message and every account's
//! public key (in plain bytes: `strings` on a chain log shows them), its key file the
//! replica's identity. Quintet creates everything private to the user that runs it
//! (`private_umask`: folders 0700, files 0600), and a replica refuses to start on a folder
//! or key that other users can read or write, as ssh refuses a key file others can read:
//! the operator is told the one command that fixes it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// From now on this process creates files and folders for its user only.
pub fn private_umask() {
    // SAFETY: umask only sets the process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// The permission bits of `path`, if it exists.
pub fn mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777)
}

/// Ok when group and others have no access to `path` (or it does not exist); else the
/// reason, with the command that fixes it.
pub fn check_private(path: &Path, what: &str) -> Result<(), String> {
    match mode(path) {
        Some(mode) if mode & 0o077 != 0 => {
            let (fix, hint) = if path.is_dir() { ("700", "it holds every message") } else { ("600", "it is a private key") };
            Err(format!(
                "{what} {} can be read or written by other users (mode {mode:04o}; {hint}): run `chmod {fix} {}` and start again",
                path.display(),
                path.display()
            ))
        }
        _ => Ok(()),
    }
}

/// Takes group and others' access away from `path`; returns the mode it had if that
/// changed anything.
pub fn make_private(path: &Path) -> std::io::Result<Option<u32>> {
    let Some(mode) = mode(path) else { return Ok(None) };
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o077))?;
    Ok(Some(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_or_key_others_can_read_is_named_with_the_fix_and_made_private_on_request() {
        let dir = std::env::temp_dir().join(format!("quintet-modes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let refused = check_private(&dir, "data folder").unwrap_err();
        assert!(refused.contains("mode 0755") && refused.contains(&format!("chmod 700 {}", dir.display())), "{refused}");
        let key = dir.join("A.key");
        std::fs::write(&key, "k").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(check_private(&key, "key").unwrap_err().contains(&format!("chmod 600 {}", key.display())));
        assert_eq!(make_private(&key).unwrap(), Some(0o644));
        assert_eq!(make_private(&dir).unwrap(), Some(0o755));
        assert_eq!((mode(&key), mode(&dir)), (Some(0o600), Some(0o700)));
        assert_eq!(make_private(&dir).unwrap(), None, "nothing to change");
        assert!(check_private(&dir, "data folder").is_ok() && check_private(&key, "key").is_ok());
        assert!(check_private(&dir.join("absent"), "data folder").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
