//! An in-memory `Fs` with faults, for tests and the simulator.
//!
//! Model: each file has the bytes a reader sees now and the bytes that survive a crash (as of
//! its last `sync`). `crash` drops every unsynced byte, or with `crash_torn` keeps a prefix of
//! them, as a power cut in the middle of a write does. Directory operations (create, rename,
//! remove) are durable at once: a simplification stated here so no test relies on more.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::fs::{Fs, WriteFile};

/// The bytes a reader sees, and what survives a crash: `data[..durable_len]`, unless the file
/// was emptied since its last sync, in which case `replaced` holds its old durable bytes (so
/// a sync costs nothing per byte already written).
#[derive(Clone, Debug, Default)]
struct MemFile {
    data: Vec<u8>,
    durable_len: usize,
    replaced: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Inner {
    files: BTreeMap<PathBuf, MemFile>,
    dirs: BTreeSet<PathBuf>,
    /// Every sync from now on fails (an fsync error means the kernel may have dropped data).
    fail_syncs: bool,
    /// Every open or create from now on fails with EMFILE (out of file descriptors).
    out_of_descriptors: bool,
    syncs: u64,
}

/// Cloning shares the same "disk".
#[derive(Clone, Debug, Default)]
pub struct MemFs {
    inner: Arc<Mutex<Inner>>,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", path.display()))
}

impl MemFs {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Power cut: every file goes back to its last synced bytes.
    pub fn crash(&self) {
        self.crash_torn(0);
    }

    /// Power cut in the middle of writing: files keep up to `keep` of their unsynced bytes.
    pub fn crash_torn(&self, keep: usize) {
        for file in self.lock().files.values_mut() {
            match file.replaced.take() {
                Some(old) => file.data = old,
                None => file.data.truncate((file.durable_len + keep).min(file.data.len())),
            }
            file.durable_len = file.data.len();
        }
    }

    pub fn fail_syncs(&self, fail: bool) {
        self.lock().fail_syncs = fail;
    }

    pub fn out_of_descriptors(&self, out: bool) {
        self.lock().out_of_descriptors = out;
    }

    fn check_descriptors(&self) -> io::Result<()> {
        match self.lock().out_of_descriptors {
            true => Err(io::Error::from_raw_os_error(libc::EMFILE)),
            false => Ok(()),
        }
    }

    pub fn sync_count(&self) -> u64 {
        self.lock().syncs
    }

    /// Flips the bits of one byte, in what is read and in what survives a crash.
    pub fn corrupt(&self, path: &Path, offset: usize) {
        let mut inner = self.lock();
        let file = inner.files.get_mut(path).expect("corrupt: no such file");
        file.data[offset] ^= 0xff;
        if let Some(old) = file.replaced.as_mut().filter(|old| offset < old.len()) {
            old[offset] ^= 0xff;
        }
    }

    pub fn file_len(&self, path: &Path) -> Option<usize> {
        self.lock().files.get(path).map(|f| f.data.len())
    }

    /// Paths of all files, for tests that look for a file by kind.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.lock().files.keys().cloned().collect()
    }
}

struct MemWriter {
    fs: MemFs,
    path: PathBuf,
}

impl Write for MemWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self.fs.lock();
        let file = inner.files.get_mut(&self.path).ok_or_else(|| not_found(&self.path))?;
        file.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl WriteFile for MemWriter {
    fn sync(&mut self) -> io::Result<()> {
        let mut inner = self.fs.lock();
        inner.syncs += 1;
        if inner.fail_syncs {
            return Err(io::Error::other("injected fsync failure"));
        }
        let file = inner.files.get_mut(&self.path).ok_or_else(|| not_found(&self.path))?;
        file.replaced = None;
        file.durable_len = file.data.len();
        Ok(())
    }
}

impl Fs for MemFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut inner = self.lock();
        for ancestor in path.ancestors() {
            inner.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let inner = self.lock();
        if !inner.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let children = inner.files.keys().chain(inner.dirs.iter()).filter(|p| p.parent() == Some(dir));
        let mut names: Vec<String> =
            children.filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        let data = self.lock().files.get(path).ok_or_else(|| not_found(path))?.data.clone();
        Ok(Box::new(io::Cursor::new(data)))
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        self.check_descriptors()?;
        let mut inner = self.lock();
        let file = inner.files.entry(path.to_path_buf()).or_default();
        if file.replaced.is_none() {
            file.replaced = Some(file.data[..file.durable_len].to_vec());
        }
        file.data.clear();
        file.durable_len = 0;
        Ok(Box::new(MemWriter { fs: self.clone(), path: path.to_path_buf() }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        self.check_descriptors()?;
        self.lock().files.entry(path.to_path_buf()).or_default();
        Ok(Box::new(MemWriter { fs: self.clone(), path: path.to_path_buf() }))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut inner = self.lock();
        let file = inner.files.get_mut(path).ok_or_else(|| not_found(path))?;
        file.data.truncate(len as usize);
        file.replaced = None;
        file.durable_len = file.data.len();
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut inner = self.lock();
        if let Some(file) = inner.files.remove(from) {
            inner.files.insert(to.to_path_buf(), file);
            return Ok(());
        }
        if !inner.dirs.remove(from) {
            return Err(not_found(from));
        }
        inner.dirs.insert(to.to_path_buf());
        let moved: Vec<PathBuf> = inner.files.keys().filter(|p| p.starts_with(from)).cloned().collect();
        for old in moved {
            let file = inner.files.remove(&old).expect("listed above");
            let new = to.join(old.strip_prefix(from).expect("listed above"));
            inner.files.insert(new, file);
        }
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.lock().files.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut inner = self.lock();
        inner.files.retain(|p, _| !p.starts_with(path));
        inner.dirs.retain(|p| !p.starts_with(path));
        Ok(())
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        let inner = self.lock();
        if inner.fail_syncs {
            return Err(io::Error::other("injected fsync failure"));
        }
        Ok(())
    }
}
