//! The file-system seam. Storage does all its I/O through `Fs`, so tests and the simulator
//! can run it on `MemFs`, which loses unsynced writes on a crash, tears writes, fails fsyncs
//! and corrupts bytes on request. `RealFs` is the thin std::fs version.

use std::io::{self, Read, Write};
use std::path::Path;

/// A file being written. Bytes are durable only after `sync` returns Ok.
pub trait WriteFile: Write + Send {
    fn sync(&mut self) -> io::Result<()>;
}

pub trait Fs: Send + Sync {
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names (not paths) of the entries of a directory, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>>;
    /// Creates the file, or empties an existing one.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WriteFile>>;
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>>;
    /// Cuts a file to `len` bytes, durably.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Makes creations, renames and removals inside `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

pub struct RealFs;

struct RealFile(std::io::BufWriter<std::fs::File>);

impl Write for RealFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Planted bug for the nemesis test's negative control (`QUINTET_PLANTED=ack-before-fsync`
/// in a replica's environment): `sync` returns at once, so records stay in the write
/// buffer, in the process's memory, while the replica votes and acknowledges. A SIGKILL
/// then loses them, as a power cut loses unsynced pages.
pub static PLANTED_SKIP_SYNC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl WriteFile for RealFile {
    fn sync(&mut self) -> io::Result<()> {
        if PLANTED_SKIP_SYNC.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        self.0.flush()?;
        self.0.get_ref().sync_data()
    }
}

/// Buffer for file writes: large enough that a snapshot is written in big chunks.
const WRITE_BUFFER: usize = 256 * 1024;

impl Fs for RealFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(io::BufReader::with_capacity(WRITE_BUFFER, std::fs::File::open(path)?)))
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let file = std::fs::File::create(path)?;
        Ok(Box::new(RealFile(io::BufWriter::with_capacity(WRITE_BUFFER, file))))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Box::new(RealFile(io::BufWriter::with_capacity(WRITE_BUFFER, file))))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
}

