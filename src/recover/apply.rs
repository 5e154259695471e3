//! Carrying out a recovery plan: back up every folder and cluster.toml, write the new
//! cluster.toml (a new reset epoch, starting at the kept history's proven tip), and write
//! every replica's folder anew from the state at that block.

use std::path::{Path, PathBuf};

use super::{Index, Plan, folders_of};
use crate::chat::ChatState;
use crate::config::{ClusterConfig, Reset};
use crate::consensus::Block;
use crate::storage::RealFs;
use crate::storage::inspect;

/// What a reset did, for its last lines.
pub struct Done {
    pub backups: Vec<PathBuf>,
    pub epoch: u64,
}

/// `YYYYMMDD-HHMMSS` (UTC) of now: the backups' suffix.
fn stamp() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    // "YYYY-MM-DD HH:MM:SS" without its separators but one.
    crate::cli::render::timestamp(ms).replace(['-', ':'], "").replace(' ', "-")
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_name() == STAGE {
            continue;
        }
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Copies each folder that holds anything (not one with only the LOCK `lock_all` made) to
/// `NAME.backup-STAMP` beside it, and cluster.toml too when given; returns the copies.
fn back_up(config_path: Option<&Path>, dirs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let stamp = stamp();
    let beside = |p: &Path| PathBuf::from(format!("{}.backup-{stamp}", p.display()));
    let mut made = Vec::new();
    if let Some(config_path) = config_path {
        let to = beside(config_path);
        anyhow::ensure!(!to.exists(), "{} exists already; wait a second and run again", to.display());
        std::fs::copy(config_path, &to).map_err(|e| anyhow::anyhow!("backing up {}: {e}", config_path.display()))?;
        made.push(to);
    }
    for dir in dirs {
        let holds_something = std::fs::read_dir(dir).is_ok_and(|entries| entries.flatten().any(|e| e.file_name() != "LOCK"));
        if holds_something {
            let to = beside(dir);
            copy_tree(dir, &to).map_err(|e| anyhow::anyhow!("backing up {} to {}: {e}", dir.display(), to.display()))?;
            made.push(to);
        }
    }
    Ok(made)
}

/// Every replica folder of the config.
fn all_dirs(config: &ClusterConfig, root: &Path) -> Vec<PathBuf> {
    folders_of(config, root).into_iter().map(|(_, dir)| dir).collect()
}

/// Writes cluster.toml anew (temp file, rename), keeping its mode.
fn write_config(config: &ClusterConfig, path: &Path) -> anyhow::Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    std::fs::write(&tmp, config.to_toml())?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(&tmp, meta.permissions())?;
    }
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    // The new config is durable before any folder is replaced (see `apply`).
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(folder)?.sync_all()?;
    Ok(())
}

/// Where a replica folder's new contents are prepared, inside the folder itself (so a folder
/// that is a mount point or a symbolic link is filled in place, on its own disk).
pub const STAGE: &str = ".reset-stage";

/// Prepares `DIR/.reset-stage` with `fill` (mode 0700; `fill` writes EPOCH last, which
/// marks the stage complete); returns what `fill` does.
fn stage<T>(dir: &Path, fill: impl FnOnce(&Path) -> anyhow::Result<T>) -> anyhow::Result<T> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = dir.join(STAGE);
    let prepared = (|| {
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700))?;
        fill(&tmp)
    })();
    prepared.map_err(|e| anyhow::anyhow!("preparing {}: {e}", tmp.display()))
}

/// Puts a complete stage in place: everything else in the folder but its LOCK (held by this
/// process) is removed, the staged files are moved in, the stage goes.
fn swap_in(dir: &Path) -> anyhow::Result<()> {
    let tmp = dir.join(STAGE);
    let swapped = (|| -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if name == STAGE || name == "LOCK" {
                continue;
            }
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        for entry in std::fs::read_dir(&tmp)? {
            let entry = entry?;
            std::fs::rename(entry.path(), dir.join(entry.file_name()))?;
        }
        std::fs::remove_dir(&tmp)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    swapped.map_err(|e| anyhow::anyhow!("putting the re-seeded files in place in {}: {e}", dir.display()))
}

/// A reset that stopped after it wrote cluster.toml: every folder whose stage is complete
/// for the config's epoch is put in place now (stages of a reset that never wrote its
/// config are removed). Returns the replicas finished. With `dry`, changes nothing.
pub fn resume(config: &ClusterConfig, root: &Path, dry: bool) -> anyhow::Result<Vec<String>> {
    let mut finished = Vec::new();
    for (id, dir) in folders_of(config, root) {
        let tmp = dir.join(STAGE);
        if !tmp.is_dir() {
            continue;
        }
        let epoch = std::fs::read_to_string(tmp.join(crate::storage::version::EPOCH_FILE)).ok().and_then(|t| crate::storage::version::parse_epoch(&t));
        if config.epoch() > 0 && epoch.is_some_and(|(e, cluster)| e == config.epoch() && cluster.as_deref().is_none_or(|c| c == config.cluster_id)) {
            if !dry {
                swap_in(&dir)?;
            }
            finished.push(id);
        } else if !dry {
            std::fs::remove_dir_all(&tmp).map_err(|e| anyhow::anyhow!("removing {}: {e}", tmp.display()))?;
        }
    }
    Ok(finished)
}

/// The chat state after the kept history's tip: the highest image on that history (from
/// any folder), then the history's blocks above it, executed as the replicas execute them.
fn state_at(plan: &Plan, config: &ClusterConfig) -> anyhow::Result<(Block, ChatState)> {
    let history = plan.history.as_ref().expect("apply needs a history");
    let index = Index::of(&plan.folders);
    let tip = &history.block;
    let on_history = |height, hash| index.ancestor(&tip.hash, height) == Some(hash);
    // Only an image that is vouched for: one with a state certificate of this epoch (q
    // replicas signed its sha256), or the last reset's own image (its sha256 is in
    // cluster.toml). Any other may hold whatever its folder's replica made of it.
    let (base, base_image) = (config.base(), config.base_image());
    let trusted = |i: &inspect::FoundImage| {
        i.cert.is_some() || (i.height == base.0 && i.block.hash == base.1 && base_image == Some(i.image_hash))
    };
    let source = plan
        .folders
        .iter()
        .flat_map(|f| f.found.images.iter().map(move |i| (f, i)))
        .filter(|(_, i)| i.height <= tip.height && trusted(i) && on_history(i.height, i.block.hash))
        .max_by_key(|(_, i)| i.height);
    let (mut state, from) = match source {
        Some((f, image)) => {
            let state = inspect::image_state(&RealFs, &f.dir, image.height).map_err(|e| anyhow::anyhow!("{e}"))?;
            (state, image.height)
        }
        // From genesis only when the history starts there: blocks from before a reset ran
        // under another epoch's name.
        None if base.0 == 0 => (ChatState::new(), 0),
        None => anyhow::bail!(
            "no folder holds a state image this reset can trust on the kept history: the last reset's image (height {}) \
             or one with a state certificate. Restore one from a backup (NAME.backup-*) into its folder and run again",
            base.0
        ),
    };
    state.set_presence_ms(config.presence_ms);
    let mut blocks = Vec::new();
    let mut at = tip.clone();
    while at.height > from {
        let parent = at.parent;
        blocks.push(at);
        if blocks.last().is_some_and(|b| b.height == from + 1) {
            break;
        }
        at = index.0.get(&parent).cloned().ok_or_else(|| {
            anyhow::anyhow!("the blocks between the newest image ({from}) and the history's tip ({}) are not all held by any folder", tip.height)
        })?;
    }
    // The chat state's own height is that of the last request it applied (an empty block
    // leaves it): what must hold is that every block from the image up to the tip runs.
    let heights: Vec<u64> = blocks.iter().rev().map(|b| b.height).collect();
    anyhow::ensure!(
        heights.iter().copied().eq(from + 1..=tip.height),
        "the history's blocks from the image at height {from} to its tip at {} are not all at hand",
        tip.height
    );
    let cluster = config.tag();
    for block in blocks.iter().rev() {
        crate::execute::execute_committed(&mut state, block, &cluster, &crate::execute::Ed25519Requests, false);
    }
    Ok((tip.clone(), state))
}

/// The folder's VERSION and EPOCH files (EPOCH last: it marks a stage complete).
fn mark(dir: &Path, config: &ClusterConfig, epoch: u64) -> anyhow::Result<()> {
    crate::storage::version::check_and_mark(dir).map_err(|e| anyhow::anyhow!(e))?;
    crate::storage::version::mark_epoch(dir, epoch, &config.cluster_id).map_err(|e| anyhow::anyhow!(e))
}

/// A folder's new contents: the image of `state` after `block`, empty vote records, VERSION,
/// then EPOCH. Returns the image's sha256.
fn seeded(tmp: &Path, block: &Block, state: &ChatState, config: &ClusterConfig, epoch: u64) -> anyhow::Result<[u8; 32]> {
    let image = inspect::seed(&RealFs, tmp, block, state).map_err(|e| anyhow::anyhow!("{e}"))?;
    mark(tmp, config, epoch)?;
    Ok(image)
}

/// Every folder staged (`fill` gives each one's image sha256, if it has an image: all the
/// same), then the config `next` makes of it, then every stage put in place: a reset
/// stopped anywhere is either not begun (the stages are removed by the next run) or
/// finished by the next run (`resume`).
fn carry_out(
    config: &ClusterConfig,
    config_path: &Path,
    root: &Path,
    fill: impl Fn(&Path) -> anyhow::Result<Option<[u8; 32]>>,
    next: impl FnOnce(Option<[u8; 32]>) -> ClusterConfig,
) -> anyhow::Result<u64> {
    let dirs = all_dirs(config, root);
    let mut image = None;
    for dir in &dirs {
        let made = stage(dir, &fill)?;
        anyhow::ensure!(image.is_none() || image == made, "the image staged in {} hashes differently from the first one", dir.display());
        image = made;
    }
    let next = next(image);
    write_config(&next, config_path).map_err(|e| anyhow::anyhow!("writing {}: {e}", config_path.display()))?;
    // Tests only: a reset stopped after its config and one folder (a crash, a full disk).
    let stop_early = std::env::var("QUINTET_PLANTED").is_ok_and(|p| p == "reset-stops-half-way");
    for (k, dir) in dirs.iter().enumerate() {
        if stop_early && k == 1 {
            anyhow::bail!("stopped half-way (QUINTET_PLANTED=reset-stops-half-way)");
        }
        swap_in(dir).map_err(|e| anyhow::anyhow!("{e}; {} already says reset epoch {}: run the reset again to finish it", config_path.display(), next.epoch()))?;
    }
    Ok(next.epoch())
}

/// Re-seeds every replica from the plan's history in a new reset epoch.
pub fn apply(plan: &Plan, config: &ClusterConfig, config_path: &Path, root: &Path) -> anyhow::Result<Done> {
    let (block, state) = state_at(plan, config)?;
    let backups = back_up(Some(config_path), &all_dirs(config, root))?;
    let epoch = config.epoch() + 1;
    let epoch = carry_out(
        config,
        config_path,
        root,
        |tmp| seeded(tmp, &block, &state, config, epoch).map(Some),
        |image| {
            let mut next = config.clone();
            let (hash, image) = (crate::crypto::encode_hex(&block.hash), image.map(|i| crate::crypto::encode_hex(&i)));
            next.reset = Some(Reset { epoch, height: block.height, hash, image });
            next
        },
    )?;
    Ok(Done { backups, epoch })
}

/// Re-seeds, in place and in the same epoch, the folders that cannot start (empty, or
/// below the last reset's block) while q others hold the history: each gets the state at
/// the history's tip (backed up first, when it holds anything). cluster.toml is unchanged.
pub fn refill(plan: &Plan, config: &ClusterConfig, root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let (block, state) = state_at(plan, config)?;
    let dirs: Vec<PathBuf> = plan.refill.iter().map(|i| root.join(&plan.folders[*i].id)).collect();
    let backups = back_up(None, &dirs)?;
    for dir in &dirs {
        stage(dir, |tmp| seeded(tmp, &block, &state, config, config.epoch()))?;
        swap_in(dir)?;
    }
    Ok(backups)
}

/// `--wipe`: every folder emptied (after the backup), the cluster started over in a new
/// reset epoch with the same keys.
pub fn wipe(config: &ClusterConfig, config_path: &Path, root: &Path) -> anyhow::Result<Done> {
    let backups = back_up(Some(config_path), &all_dirs(config, root))?;
    let epoch = config.epoch() + 1;
    let epoch = carry_out(
        config,
        config_path,
        root,
        |tmp| mark(tmp, config, epoch).map(|()| None),
        |_| {
            let mut next = config.clone();
            next.reset = Some(Reset { epoch, height: 0, hash: crate::crypto::encode_hex(&[0; 32]), image: None });
            next
        },
    )?;
    Ok(Done { backups, epoch })
}
