//! `quintet sim`: run the deterministic simulator. `--seed S` replays one run and prints
//! its fault settings and trace; `--seeds N` runs seeds 0..N (from `--from`) and prints a
//! summary of faults injected by kind and every violation with its seed.

use super::Exit;
use crate::consensus::Planted;
use crate::sim::{self, Mode, SimOptions};

#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Replay one seed and print its trace.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run this many seeds and print a summary.
    #[arg(long)]
    seeds: Option<u64>,
    /// First seed of `--seeds`.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Replicas (odd).
    #[arg(long, default_value_t = 5)]
    n: usize,
    /// Force one mode: crash (crash faults, any timing), byzantine (up to f Byzantine
    /// replicas with one behaviour each, synchrony), or coalition (byzantine, with the
    /// coalition adversary in every run: f replicas that choose and combine legal attacks
    /// per seed: split chains at different heights, hidden QCs, selective and far-future
    /// blames, replays, coalition certificates, forged QCs and requests, lies).
    #[arg(long, value_parser = ["crash", "byzantine", "coalition"])]
    mode: Option<String>,
    /// Crash runs with ten times more crashes between two actions of a batch.
    #[arg(long)]
    hostile: bool,
    /// Plant a known bug (negative control), one of: no-delta-wait, qc2, single-qc,
    /// cross-view, vote-before-persist, unchecked-state, first-statuses, same-height-equivocation,
    /// blame-prune-incoming, first-block-any-qc, keep-commit-timer, duplicate-votes,
    /// certificate2, high-qc-backwards, no-forward, client-quorum2, no-status-wait,
    /// vote-below-view, vote-per-height, unchecked-requests, votes-to-leader, unchecked-status, no-relay, no-relay-nudge,
    /// relay-nudge-shares-blames, no-blame-forward,
    /// no-blame-heard, no-recovery, recovery-without-high-qc, recovery-once-per-asker,
    /// unbounded-pools, commit-at-two-delta, deep-conflict-unseen,
    /// commit-with-unlinked, unchecked-image, late-image-unseen, votes-any-height.
    #[arg(long)]
    plant: Option<String>,
}

pub fn planted(name: &str) -> anyhow::Result<Planted> {
    let mut p = Planted::default();
    match name {
        "no-delta-wait" => p.no_delta_wait = true,
        "qc2" => p.qc_size = Some(2),
        "single-qc" => p.single_qc_commit = true,
        "cross-view" => p.cross_view_chain = true,
        "vote-before-persist" => p.vote_before_persist = true,
        "unchecked-state" => p.unchecked_state = true,
        "first-statuses" => p.first_statuses = true,
        "same-height-equivocation" => p.same_height_equivocation = true,
        "blame-prune-incoming" => p.blame_prune_incoming = true,
        "first-block-any-qc" => p.first_block_any_qc = true,
        "keep-commit-timer" => p.keep_commit_timer = true,
        "duplicate-votes" => p.duplicate_votes = true,
        "certificate2" => p.certificate_size = Some(2),
        "high-qc-backwards" => p.high_qc_backwards = true,
        "no-forward" => p.no_forward = true,
        "client-quorum2" => p.client_quorum = Some(2),
        "no-status-wait" => p.no_status_wait = true,
        "vote-below-view" => p.vote_below_view = true,
        "vote-per-height" => p.vote_per_height = true,
        "unchecked-requests" => p.unchecked_requests = true,
        "votes-to-leader" => p.votes_to_leader = true,
        "unchecked-status" => p.unchecked_status = true,
        "no-relay" => p.no_relay = true,
        "no-relay-nudge" => p.no_relay_nudge = true,
        "relay-nudge-shares-blames" => p.relay_nudge_shares_blames = true,
        "no-blame-forward" => p.no_blame_forward = true,
        "late-image-unseen" => p.late_image_unseen = true,
        "no-blame-heard" => p.no_blame_heard = true,
        "no-recovery" => p.no_recovery = true,
        "recovery-without-high-qc" => p.recovery_without_high_qc = true,
        "recovery-once-per-asker" => p.recovery_once_per_asker = true,
        "unbounded-pools" => p.unbounded_pools = true,
        "commit-at-two-delta" => p.commit_at_two_delta = true,
        "deep-conflict-unseen" => p.deep_conflict_unseen = true,
        "commit-with-unlinked" => p.commit_with_unlinked = true,
        "unchecked-image" => p.unchecked_image = true,
        "votes-any-height" => p.votes_any_height = true,
        other => anyhow::bail!("unknown planted bug {other:?}: `quintet sim --help` lists them"),
    }
    Ok(p)
}

pub fn run(args: SimArgs) -> anyhow::Result<Exit> {
    anyhow::ensure!(args.n % 2 == 1 && (3..=9).contains(&args.n), "--n must be 3, 5, 7 or 9");
    let options = SimOptions {
        n: args.n,
        mode: args.mode.as_deref().map(|m| if m == "crash" { Mode::Crash } else { Mode::Byzantine }),
        coalition: args.mode.as_deref() == Some("coalition"),
        planted: args.plant.as_deref().map(planted).transpose()?.unwrap_or_default(),
        trace: args.seed.is_some(),
        hostile: args.hostile,
        ..SimOptions::default()
    };
    if let Some(seed) = args.seed {
        let report = sim::run(seed, &options);
        println!("seed {seed}: {}", report.faults);
        for line in &report.trace {
            println!("{line}");
        }
        println!(
            "height {}, {} operations accepted, view {}, {} events",
            report.committed_height, report.accepted_ops, report.max_view, report.stats.events
        );
        for v in &report.violations {
            println!("VIOLATION: {v}");
        }
        return Ok(if report.violations.is_empty() { Exit::Ok } else { Exit::Failed(1) });
    }
    let count = args.seeds.unwrap_or(100);
    let mut summary = sim::Summary::default();
    for seed in args.from..args.from + count {
        let report = sim::run(seed, &options);
        for v in &report.violations {
            println!("seed {seed}: VIOLATION: {v}   [{}]", report.faults);
        }
        summary.add(&report);
        let done = seed - args.from + 1;
        if done.is_multiple_of(5_000) && done < count {
            eprintln!("{done} of {count} seeds run, {} violating so far", summary.violating_seeds);
        }
    }
    print!("{summary}");
    Ok(if summary.violating_seeds == 0 { Exit::Ok } else { Exit::Failed(1) })
}
