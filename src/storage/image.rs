//! State images (S11): the four snapshot CSV files of a chat state packed into one byte
//! string, whose sha256 the CHECKPOINTs sign, and the image folders of a replica store.
//! The CSV writer is deterministic, so replicas with equal states have byte-equal images.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::fs::Fs;
use super::replica_store::{corrupt, snap_dir};
use super::{StorageError, io_err, read_all, snapshot};
use crate::chat::ChatState;
use crate::consensus::{Block, Digest32, Height, StateCert};
use crate::crypto::decode_hex;
use crate::wire::peer;

const IMAGE_TAG: &[u8] = b"quintet-image-v1\n";
/// The files of a snapshot that make up its image, in image order.
const IMAGE_FILES: [&str; 4] = ["accounts.csv", "messages.csv", "sessions.csv", "meta.csv"];

/// The image of a snapshot folder: the tag, then per file its name and bytes, each with a
/// u64 length. Returns the bytes (when `keep`) and their sha256.
pub(super) fn pack(fs: &dyn Fs, dir: &Path, keep: bool) -> Result<(Vec<u8>, Digest32), StorageError> {
    let mut hasher = Sha256::new();
    let mut out = Vec::new();
    let mut put = |bytes: &[u8]| {
        hasher.update(bytes);
        if keep {
            out.extend_from_slice(bytes);
        }
    };
    put(IMAGE_TAG);
    for name in IMAGE_FILES {
        let data = read_all(fs, &dir.join(name))?;
        put(&(name.len() as u64).to_le_bytes());
        put(name.as_bytes());
        put(&(data.len() as u64).to_le_bytes());
        put(&data);
    }
    Ok((out, hasher.finalize().into()))
}

/// Splits an image into its files; `None` if it is not one.
pub(super) fn unpack(image: &[u8]) -> Option<Vec<(&'static str, &[u8])>> {
    fn take<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = usize::try_from(u64::from_le_bytes(rest.get(..8)?.try_into().ok()?)).ok()?;
        let bytes = rest.get(8..8usize.checked_add(len)?)?;
        *rest = &rest[8 + len..];
        Some(bytes)
    }
    let mut rest = image.strip_prefix(IMAGE_TAG)?;
    let mut files = Vec::new();
    for name in IMAGE_FILES {
        if take(&mut rest)? != name.as_bytes() {
            return None;
        }
        files.push((name, take(&mut rest)?));
    }
    rest.is_empty().then_some(files)
}

/// The image of a chat state, built on a scratch in-memory disk (tests and the simulator).
pub fn image_of(state: &ChatState) -> Result<Vec<u8>, StorageError> {
    let fs = super::MemFs::new();
    let dir = Path::new("/image");
    fs.create_dir_all(dir).map_err(io_err(dir))?;
    snapshot::write(&fs, dir, state)?;
    Ok(pack(&fs, dir, true)?.0)
}

/// One image folder as found on disk.
pub(super) struct Image {
    pub height: Height,
    pub block: Block,
    pub state: Digest32,
    pub cert: Option<StateCert>,
}

pub(super) fn read_image(fs: &dyn Fs, dir: &Path, height: Height) -> Result<Image, StorageError> {
    let folder = snap_dir(dir, height);
    let block_path = folder.join("block.pb");
    let block = peer::decode_block(&read_all(fs, &block_path)?).map_err(|e| corrupt(&block_path, e))?;
    let sha256 = |name: &str| -> Result<Digest32, StorageError> {
        let path = folder.join(name);
        let text = String::from_utf8(read_all(fs, &path)?).unwrap_or_default();
        decode_hex(text.trim()).and_then(|b| b.try_into().ok()).ok_or_else(|| corrupt(&path, "not a sha256"))
    };
    let state = sha256("image.sha256")?;
    let files = fs.list(&folder).map_err(io_err(&folder))?;
    // Images written before block.sha256 existed have none.
    if files.iter().any(|n| n == "block.sha256") && sha256("block.sha256")? != block.hash {
        return Err(corrupt(&block_path, "the block no longer hashes to block.sha256"));
    }
    let cert_path = folder.join("cert.pb");
    let cert = match files.iter().any(|n| n == "cert.pb") {
        true => Some(peer::decode_state_cert(&read_all(fs, &cert_path)?).map_err(|e| corrupt(&cert_path, e))?),
        false => None,
    };
    let cert_disagrees = |c: &StateCert| c.height != height || c.state != state || c.hash != block.hash;
    if block.height != height || cert.as_ref().is_some_and(cert_disagrees) {
        return Err(corrupt(&folder, "block.pb, image.sha256 and cert.pb disagree with the folder"));
    }
    Ok(Image { height, block, state, cert })
}
