//! `quintet recover` (what `reset.sh` runs): the operator's recovery after more than two
//! faults. See `crate::recover` for what counts as proven.

use std::io::BufRead;
use std::path::PathBuf;

use super::Exit;
use crate::config::ClusterConfig;

#[derive(clap::Args, Debug, Clone)]
pub struct RecoverArgs {
    /// The cluster's cluster.toml (rewritten with the new reset epoch; a copy is kept)
    #[arg(long, default_value = "quintet-data/cluster.toml")]
    pub config: PathBuf,
    /// The folder that holds the replicas' data folders (ROOT/A, ROOT/B, ...) [default: the
    /// config's folder]
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// When two proven histories conflict: keep this replica's (the other stays in the
    /// backup)
    #[arg(long, value_name = "REPLICA")]
    pub keep: Option<String>,
    /// With --keep: keep that replica's whole committed chain, even the blocks above what q
    /// signed CHECKPOINTs prove (a folder written before proofs were kept has none)
    #[arg(long, requires = "keep")]
    pub unproven: bool,
    /// Show what was found and what would be done; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Start the cluster over, empty, with the same keys (every folder is backed up first)
    #[arg(long)]
    pub wipe: bool,
    /// With --wipe: do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: RecoverArgs) -> anyhow::Result<Exit> {
    let config = match ClusterConfig::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("reset: {e}");
            return Ok(Exit::Failed(1));
        }
    };
    let root = args.data_root.clone().unwrap_or_else(|| {
        args.config.parent().filter(|p| !p.as_os_str().is_empty()).map_or(PathBuf::from("."), PathBuf::from)
    });
    let _locks = match crate::recover::lock_all(&config, &root) {
        Ok(locks) => locks,
        Err(running) => {
            eprintln!("reset: refused: {running}; stop every replica of the cluster first (Ctrl-C in `quintet up`)");
            return Ok(Exit::Failed(1));
        }
    };
    if args.wipe {
        if !args.yes && !confirm(&config, &root)? {
            eprintln!("reset: not confirmed; nothing changed");
            return Ok(Exit::Failed(1));
        }
        if args.dry_run {
            println!("would back up every folder and start the cluster over, empty, in reset epoch {}", config.epoch() + 1);
            return Ok(Exit::Ok);
        }
        let done = crate::recover::wipe(&config, &args.config, &root)?;
        print_done(&done, &args.config, "every replica emptied");
        return Ok(Exit::Ok);
    }
    let finished = crate::recover::resume(&config, &root, args.dry_run)?;
    if !finished.is_empty() {
        println!(
            "{} the reset to epoch {} that stopped half-way: re-seeded folder{} of {}",
            if args.dry_run { "would finish" } else { "finished" },
            config.epoch(),
            if finished.len() == 1 { "" } else { "s" },
            finished.join(", ")
        );
    }
    let choice = crate::recover::Choice { keep: args.keep.clone(), unproven: args.unproven };
    let plan = crate::recover::plan(&config, &root, &choice)?;
    print!("{}", crate::recover::table(&plan));
    let Some(history) = &plan.history else {
        let empty = plan.rows.iter().all(|r| r.finding == crate::recover::Finding::Empty);
        return Ok(if empty { Exit::Ok } else { Exit::Failed(2) });
    };
    if !plan.changes && !plan.refill.is_empty() {
        let ids: Vec<&str> = plan.refill.iter().map(|i| plan.folders[*i].id.as_str()).collect();
        if args.dry_run {
            println!("would re-seed {} in place at height {} (reset epoch stays {}; the others hold the history)", ids.join(", "), history.block.height, config.epoch());
            return Ok(Exit::Ok);
        }
        let backups = crate::recover::refill(&plan, &config, &root)?;
        println!("re-seeded {} in place at height {}: start {} again; the reset epoch stays {} and cluster.toml is unchanged", ids.join(", "), history.block.height, if ids.len() == 1 { "it" } else { "them" }, config.epoch());
        for backup in backups {
            println!("backup: {}", backup.display());
        }
        return Ok(Exit::Ok);
    }
    if !plan.changes {
        println!(
            "the cluster recovers by itself: at least {} replicas hold the proven history, none is damaged or diverged, and the ones \
             behind catch up once started: nothing to do (reset epoch stays {})",
            config.quorum(),
            config.epoch()
        );
        return Ok(Exit::Ok);
    }
    if args.dry_run {
        println!("would back up every folder and re-seed every replica at height {} in reset epoch {}", history.block.height, config.epoch() + 1);
        return Ok(Exit::Ok);
    }
    let done = crate::recover::apply(&plan, &config, &args.config, &root)?;
    print_done(&done, &args.config, &format!("every replica re-seeded at height {}", history.block.height));
    Ok(Exit::Ok)
}

fn confirm(config: &ClusterConfig, root: &std::path::Path) -> anyhow::Result<bool> {
    eprintln!(
        "reset: --wipe empties the data folders of replicas {} under {} (after a backup): every account and message is gone from the running cluster",
        config.replicas.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", "),
        root.display()
    );
    eprint!("type wipe to go on: ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == "wipe")
}

fn print_done(done: &crate::recover::Done, config: &std::path::Path, what: &str) {
    println!("{what}, reset epoch {}", done.epoch);
    for backup in &done.backups {
        println!("backup: {}", backup.display());
    }
    println!(
        "{} now says [reset] epoch = {}: copy it to every host of the cluster and to every client before they start \
         (a client with the old file is told the cluster was reset)",
        config.display(),
        done.epoch
    );
}
