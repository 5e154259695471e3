//! `quintet up` runs `init` first when the folder has no config, starts each replica of
//! this host as a child process (output in `DIR/<id>.log`), restarts one that exits (with
//! backoff; a reason that a restart cannot fix stops everything), shows what changes, and
//! stops them all on Ctrl-C.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::Exit;
use super::cluster_view::ClusterView;
use super::init::{InitArgs, init};
use crate::client::QuorumClient;
use crate::config::ClusterConfig;

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub cluster: InitArgs,
    /// Start replica ID misbehaving on purpose, for demos and tests (repeatable):
    /// --byzantine D=lie,equivocate --byzantine E=forge. Modes: lie, forge, equivocate,
    /// mute, censor[=alice+bob], replay, garbage, fork=PARTNER (two replicas that collude:
    /// --byzantine A=fork=B --byzantine B=fork=A)
    #[arg(long = "byzantine", value_name = "ID=MODES", value_parser = parse_byzantine)]
    pub byzantine: Vec<(String, crate::byzantine::Modes)>,
}

/// `--byzantine` against the cluster's ids (`None`: not known yet): each id once, written
/// in any case (returned as the cluster writes it).
fn check_byzantine(given: &[(String, crate::byzantine::Modes)], ids: Option<&[String]>, config: &Path) -> anyhow::Result<Vec<(String, crate::byzantine::Modes)>> {
    let Some(ids) = ids else { return Ok(Vec::new()) };
    let mut out: Vec<(String, crate::byzantine::Modes)> = Vec::new();
    for (id, modes) in given {
        let Some(known) = ids.iter().find(|k| k.eq_ignore_ascii_case(id)) else {
            anyhow::bail!("--byzantine {id}=…: there is no replica {id} in {} (it has {})", config.display(), ids.join(", "));
        };
        anyhow::ensure!(out.iter().all(|(other, _)| other != known), "--byzantine names replica {known} twice: give all its modes at once ({known}=lie,forge)");
        let mut modes = modes.clone();
        if let Some(partner) = modes.partner.clone() {
            let found = ids.iter().find(|k| k.eq_ignore_ascii_case(&partner) && *k != known);
            let Some(found) = found else {
                anyhow::bail!("--byzantine {known}=fork={partner}: the partner must be another replica of {} (it has {})", config.display(), ids.join(", "));
            };
            modes.partner = Some(found.clone());
        }
        out.push((known.clone(), modes));
    }
    for (id, modes) in &out {
        let Some(partner) = &modes.partner else { continue };
        let back = out.iter().any(|(other, m)| other == partner && m.partner.as_deref() == Some(id.as_str()));
        if !back {
            eprintln!("warning: {id} forks with {partner}, but {partner} does not collude back (add --byzantine {partner}=fork={id})");
        }
    }
    Ok(out)
}

fn parse_byzantine(text: &str) -> Result<(String, crate::byzantine::Modes), String> {
    let (id, modes) = text.split_once('=').ok_or_else(|| format!("{text:?} is not ID=MODES (for example D=lie,forge)"))?;
    if id.trim().is_empty() {
        return Err(format!("{text:?} names no replica: ID=MODES (for example D=lie,forge)"));
    }
    Ok((id.trim().to_string(), crate::byzantine::Modes::parse(modes)?))
}

/// How long replicas get to stop after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Least time between two progress lines (height and counts) while the cluster works.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How long a replica `up` (re)started may not answer before it is shown as down.
const STARTING_GRACE: Duration = Duration::from_secs(10);
/// Longest pause before restarting a replica that exited.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// What a replica's log says when it cannot start for a reason a restart will not fix.
const PERMANENT: [&str; 6] = ["cannot listen on", "in use by another replica", "holds the key", "is not in", "is not the one", "can be read or written by other users"];

/// The pause before restart number `restarts` + 1 of a replica: 1 s, doubling, capped.
fn backoff(restarts: u32) -> Duration {
    Duration::from_secs(1 << restarts.min(5)).min(BACKOFF_MAX)
}

/// A folder that an older version made readable by other users (every message is in it):
/// its folder, data folders, keys and logs become this user's only, said once each. The
/// replicas refuse to start otherwise (`storage::modes`).
fn make_private(dir: &Path, config: &ClusterConfig) -> anyhow::Result<()> {
    let mut paths = vec![dir.to_path_buf()];
    for r in &config.replicas {
        paths.extend([dir.join(&r.id), dir.join(format!("{}.key", r.id)), dir.join(format!("{}.log", r.id))]);
    }
    for path in paths {
        if let Some(was) = crate::storage::modes::make_private(&path)? {
            println!("{} was readable by other users (mode {was:04o}): made private to this user", path.display());
        }
    }
    Ok(())
}

/// The lines of a replica's log that say why it exited: among its last lines, the warnings,
/// errors and whatever it printed that is not a routine log line (a panic, its last word);
/// else simply its last lines.
fn log_tail(dir: &Path, id: &str, lines: usize) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(format!("{id}.log"))).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let recent = &all[all.len().saturating_sub(50)..];
    let routine = |l: &&str| l.contains(" INFO ") || l.contains(" DEBUG ") || l.contains(" TRACE ");
    let telling: Vec<&str> = recent.iter().copied().filter(|l| !routine(l)).collect();
    let chosen = if telling.is_empty() { recent } else { &telling[..] };
    chosen[chosen.len().saturating_sub(lines)..].iter().map(|l| l.to_string()).collect()
}

fn spawn(exe: &Path, config_path: &Path, dir: &Path, id: &str, byzantine: Option<&crate::byzantine::Modes>) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{id}.log")))?;
    let mut command = Command::new(exe);
    // SAFETY: prctl only sets a flag of the new process; nothing is allocated between fork
    // and exec. The replica gets SIGTERM (and writes its snapshot) if `up` dies, however
    // it dies, so no replica outlives the cluster it belongs to.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = command
        .args(["replica", "--config"])
        .arg(config_path)
        .args(["--id", id])
        .args(byzantine.map(|m| format!("--byzantine={}", m.names().join(","))))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    Ok(child)
}

fn signal(child: &Child, signal: i32) {
    if let Some(pid) = child.id() {
        // SAFETY: sends a signal to our own child, by its PID; no memory is involved.
        unsafe { libc::kill(pid as i32, signal) };
    }
}

/// One child replica and its restarts.
struct Supervised {
    id: String,
    child: Option<Child>,
    started: tokio::time::Instant,
    restarts: u32,
    restart_at: Option<tokio::time::Instant>,
}

pub async fn run(args: UpArgs) -> anyhow::Result<Exit> {
    let dir = args.cluster.dir.clone();
    // One `up` per folder, found out before anything starts.
    std::fs::create_dir_all(&dir)?;
    let _running = match crate::storage::pidlock::lock(&dir.join("up.lock")) {
        Ok(lock) => lock,
        Err(crate::storage::pidlock::LockError::Held(pid)) => {
            let pid = pid.map_or("another process".to_string(), |pid| format!("pid {pid}"));
            anyhow::bail!("a cluster already runs here ({pid}, {}): stop it first (Ctrl-C in its terminal), or use another --dir", dir.display());
        }
        Err(crate::storage::pidlock::LockError::Io(e)) => return Err(e.into()),
    };
    let config_path = dir.join("cluster.toml");
    let existing = if config_path.exists() { Some(ClusterConfig::load(&config_path)?) } else { None };
    // `--byzantine` is checked before a new cluster is made: a wrong id makes nothing.
    let ids: Option<Vec<String>> = match &existing {
        Some(config) => Some(config.replicas.iter().map(|r| r.id.clone()).collect()),
        None if args.cluster.from.is_empty() => Some(super::init::ids(args.cluster.replicas)),
        None => None, // the ids are in the parts; checked once they are read
    };
    let mut byzantine = check_byzantine(&args.byzantine, ids.as_deref(), &config_path)?;
    let config = match existing {
        Some(config) => config,
        None => init(&args.cluster)?,
    };
    if ids.is_none() {
        let ids: Vec<String> = config.replicas.iter().map(|r| r.id.clone()).collect();
        byzantine = check_byzantine(&args.byzantine, Some(&ids), &config_path)?;
    }
    make_private(&dir, &config)?;
    // The program's path, taken once: a rebuild replaces the file under a running cluster,
    // and restarts then start the program now at that path (the running one's own file,
    // `/proc/self/exe`, is gone).
    let exe = std::env::current_exe()?;
    for (id, modes) in &byzantine {
        println!("replica {id} misbehaves on purpose: {}", modes.names().join(","));
    }
    let f = (config.replicas.len() - 1) / 2;
    if byzantine.len() > f {
        println!("{} Byzantine replicas is more than the {f} the cluster tolerates: what it promises no longer holds (for showing exactly that)", byzantine.len());
    }
    let byzantine_of = |id: &str| byzantine.iter().find(|(b, _)| b == id).map(|(_, m)| m);
    let mut children = Vec::new();
    // Only this host's replicas: an address no socket here can bind, or a replica whose key
    // is not beside cluster.toml, is another host's.
    let (here, elsewhere): (Vec<_>, Vec<_>) = config
        .replicas
        .iter()
        .partition(|r| std::net::TcpListener::bind((r.socket_addr().ip(), 0)).is_ok() && dir.join(format!("{}.key", r.id)).exists());
    anyhow::ensure!(!here.is_empty(), "no replica of {} has its address and its key on this host: run `quintet up` (or `quintet replica`) on each replica's own host", config_path.display());
    if !elsewhere.is_empty() {
        let ids: Vec<&str> = elsewhere.iter().map(|r| r.id.as_str()).collect();
        println!(
            "replicas {} run on other hosts (their address is not on this one, or their key is not here): start each on its own host \
             (quintet up there, or quintet replica --config cluster.toml --id ID)",
            ids.join(", ")
        );
    }
    for r in here {
        let child = spawn(&exe, &config_path, &dir, &r.id, byzantine_of(&r.id))?;
        children.push(Supervised { id: r.id.clone(), child: Some(child), started: tokio::time::Instant::now(), restarts: 0, restart_at: None });
        println!("started replica {} on {} (log: {})", r.id, r.address, dir.join(format!("{}.log", r.id)).display());
    }
    // The hint names the command the way this one was started, and leaves out --config
    // when the chat client's default finds the same file.
    let config_flag = if config_path == Path::new("quintet-data/cluster.toml") { String::new() } else { format!(" --config {}", config_path.display()) };
    println!("chat with: {} chat{config_flag} --user <name>    (Ctrl-C here stops the cluster)", super::invocation());
    let mut client = QuorumClient::new(&config)?;
    client.operator = config.operator_key(&config_path);
    // What was shown last: each replica's line, the leader, the quorum; and the progress
    // line, at most every `PROGRESS_EVERY`.
    let mut shown: Option<ClusterView> = None;
    let mut progress: (Option<String>, Option<tokio::time::Instant>) = (None, None);
    // Proofs checked in earlier rounds are not checked again.
    let mut checks = super::evidence::Checks::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // One listener for the whole run: a Ctrl-C that lands while the status poll runs is kept
    // for the next turn (a listener made anew each turn would miss it).
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut failed = None;
    'watch: loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut ctrl_c => break,
        }
        let now = tokio::time::Instant::now();
        for s in children.iter_mut() {
            if let Some(c) = &mut s.child
                && let Ok(Some(status)) = c.try_wait()
            {
                s.child = None;
                let tail = log_tail(&dir, &s.id, 5);
                println!("{}: exited ({status}); the end of its log:", s.id);
                for line in &tail {
                    println!("    {line}");
                }
                let quick = now.duration_since(s.started) < Duration::from_secs(5);
                if let Some(reason) = tail.iter().find(|l| quick && PERMANENT.iter().any(|p| l.contains(p))) {
                    failed = Some(format!("replica {} cannot start: {reason}", s.id));
                    break 'watch;
                }
                let pause = backoff(s.restarts);
                s.restarts = if quick { s.restarts + 1 } else { 0 };
                s.restart_at = Some(now + pause);
                println!("{}: restarting in {}s", s.id, pause.as_secs());
            }
            if s.child.is_none() && s.restart_at.is_some_and(|t| now >= t) {
                s.restart_at = None;
                s.started = now;
                match spawn(&exe, &config_path, &dir, &s.id, byzantine_of(&s.id)) {
                    Ok(child) => {
                        s.child = Some(child);
                        println!("{}: restarted", s.id);
                    }
                    // The other replicas keep serving; this one is tried again later.
                    Err(e) => {
                        let pause = backoff(s.restarts);
                        s.restarts += 1;
                        s.restart_at = Some(now + pause);
                        println!("{}: cannot restart ({e}); trying again in {}s", s.id, pause.as_secs());
                    }
                }
            }
        }
        let (statuses, evidence) = tokio::join!(client.status(), super::evidence::gather(&config, &config_path, &client, &mut checks));
        let mut view = ClusterView::new(super::cluster_view::rows(&config, statuses), config.quorum());
        view.proofs = super::evidence::per_replica(&evidence);
        // A replica started moments ago that does not answer yet is starting, not down.
        let now = tokio::time::Instant::now();
        let young = |s: &&Supervised| s.child.is_some() && now.duration_since(s.started) < STARTING_GRACE;
        view.starting = children.iter().filter(young).map(|s| s.id.clone()).collect();
        for line in view.changes(shown.as_ref()) {
            println!("{line}");
        }
        let now = tokio::time::Instant::now();
        if let Some(line) = view.progress()
            && progress.0.as_ref() != Some(&line)
            && progress.1.is_none_or(|at| now.duration_since(at) >= PROGRESS_EVERY)
        {
            println!("{line}");
            progress = (Some(line), Some(now));
        }
        shown = Some(view);
    }
    println!("stopping the replicas");
    for s in &children {
        if let Some(c) = &s.child {
            signal(c, libc::SIGTERM);
        }
    }
    for s in children.iter_mut() {
        if let Some(c) = &mut s.child {
            match tokio::time::timeout(STOP_GRACE, c.wait()).await {
                Ok(Ok(status)) => println!("{}: stopped ({status})", s.id),
                _ => {
                    let _ = c.kill().await;
                    println!("{}: killed after {}s", s.id, STOP_GRACE.as_secs());
                }
            }
        }
    }
    if let Some(reason) = failed {
        eprintln!("quintet up: {reason}");
        return Ok(Exit::Failed(1));
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_crashed_replicas_reason_is_shown_not_its_routine_lines() {
        let dir = std::env::temp_dir().join(format!("quintet-log-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let routine = (0..20).map(|i| format!("2026-12-07T00:00:{i:02}Z  INFO quintet::replica: entered a new view view={i}\n")).collect::<String>();
        let text = format!(
            "{routine}2026-12-07T00:00:21Z  WARN quintet::replica: repaired: chain-1.qlog\n{routine}thread 'driver-C' panicked at src/x.rs:1:1:\nno room left on device\n{routine}"
        );
        std::fs::write(dir.join("C.log"), text).unwrap();
        let tail = super::log_tail(&dir, "C", 5);
        assert_eq!(tail.len(), 3, "the warning and the panic, no routine line: {tail:?}");
        assert!(tail[0].contains("WARN") && tail[1].contains("panicked") && tail[2] == "no room left on device", "{tail:?}");
        // A log of routine lines only: its last lines.
        std::fs::write(dir.join("D.log"), &routine).unwrap();
        assert_eq!(super::log_tail(&dir, "D", 3).len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
