//! State images written away from the ordering path (S11): the driver starts an image
//! (`begin_image`: the chain goes on in a new segment at once), a worker thread writes the
//! files and hashes them (`ImageWriter::write`, on a copy of the state), and the driver puts
//! the finished folder in place (`place_image`). Until then the image does not exist: a
//! crash in between leaves only a `.tmp` folder, removed at the next open, and the chain
//! segments replay from the image before.

use std::path::PathBuf;
use std::sync::Arc;

use super::super::fs::Fs;
use super::super::image::pack;
use super::super::{StorageError, io_err, snapshot};
use super::{ReplicaStore, seal, snap_dir};
use crate::chat::ChatState;
use crate::consensus::{Block, Digest32};

/// What a worker needs to write one image.
pub struct ImageWriter {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    block: Block,
}

/// A complete image in its temp folder, not yet in place.
pub struct WrittenImage {
    pub block: Block,
    /// The image's hash (what CHECKPOINTs sign).
    pub digest: Digest32,
    /// The chat state's digest (`ChatState::digest`, in meta.csv).
    pub state_digest: Digest32,
    tmp: PathBuf,
}

impl ReplicaStore {
    /// Makes everything up to `block` durable and starts the chain's next segment; the
    /// image of the state after `block` may then be written on any thread.
    pub fn begin_image(&mut self, block: &Block) -> Result<ImageWriter, StorageError> {
        self.sync()?;
        assert_eq!(block.height, self.committed, "an image is of the state after the last commit");
        self.guard_retryable(|s| s.next_segment(block.height + 1))?;
        Ok(ImageWriter { fs: self.fs.clone(), dir: self.dir.clone(), block: block.clone() })
    }

    /// Puts a written image in place: from now on it is the newest image.
    pub fn place_image(&mut self, written: WrittenImage) -> Result<(), StorageError> {
        self.guard(|s| s.place(&written.tmp, &snap_dir(&s.dir, written.block.height)))?;
        self.newest_state = (written.block.height, written.state_digest);
        Ok(())
    }

    /// A worker's failure poisons the store like any failed write, except a descriptor
    /// shortage: then the image is dropped (its temp folder removed) and `None` returned.
    /// Nothing needs it: the chain segments replay from the image before, and the next
    /// checkpoint takes a new one.
    pub fn image_failed(&mut self, height: u64, e: StorageError) -> Option<StorageError> {
        if e.is_descriptor_shortage() {
            let _ = self.fs.remove_dir_all(&snap_dir(&self.dir, height).with_extension("tmp"));
            return None;
        }
        self.guard::<()>(|_| Err(e)).err()
    }
}

impl ImageWriter {
    /// Writes the snapshot files, block.pb and image.sha256 into `snap-H.tmp`, synced.
    pub fn write(self, state: &ChatState) -> Result<WrittenImage, StorageError> {
        let fs = self.fs.as_ref();
        let tmp = snap_dir(&self.dir, self.block.height).with_extension("tmp");
        let _ = fs.remove_dir_all(&tmp);
        fs.create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let meta = snapshot::write(fs, &tmp, state)?;
        let (_, digest) = pack(fs, &tmp, false)?;
        seal(fs, &tmp, &self.block, &digest, None)?;
        Ok(WrittenImage { block: self.block, digest, state_digest: meta.digest, tmp })
    }
}
