//! `quintet chat`: the line client. On a terminal it prompts for the password and reads
//! commands; from a pipe it reads one command per line and prints one result per line
//! (`--json`: one JSON object per line). Live deliveries are printed as they arrive and then
//! marked read. Ctrl-C and end of input log out cleanly. If no quorum answers, it prints why
//! once and exits with status 2: it never shows a result that a quorum did not sign.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::commands::{self, Command, HELP};
use super::editor::{self, LineEditor};
use super::{Exit, render};
use crate::chat::Op;
use crate::client::{Agreed, Agreement, ClientError, QuorumClient, Subscription};
use crate::config::ClusterConfig;
use crate::crypto::{self, SigningKey, TAG_REQUEST, TAG_SUBSCRIBE};
use crate::{pb, wire};

pub const EXIT_CODES: &str = "Exit status: 0 when every command succeeded; 1 when a command was refused (a \
usage error, or a refusal the replicas agreed on, such as a wrong password); 2 when no quorum \
of replicas answered (nothing is shown that 3 replicas did not sign), or when replicas only \
refused for now (busy, rate limited) until the deadline: then it is not known whether the \
request was applied (check history before sending it again).

Resends: a request is sent again, with the same number, to a replica that did not answer or \
refused for now, so it applies once. A resent list, who, history or inbox gets the same \
result only while it is small (64 KiB a session, 256 KiB a user); past that the answer is \
result_not_held: ask again.

Passwords: create refuses, on a terminal, a password that is easy to guess; with \
QUINTET_PASSWORD (scripts) it only warns.";

#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct ChatArgs {
    /// The cluster's cluster.toml [default: ./quintet-data/cluster.toml, which `up` writes]
    #[arg(long)]
    config: Option<PathBuf>,
    /// Your user name (1 to 32 letters, digits, '_', '-' or '.')
    #[arg(long)]
    user: String,
    /// One JSON object per output line (results, errors, deliveries), each with a "type"
    /// and, for results, which replicas agreed, differed and were silent.
    #[arg(long)]
    json: bool,
    /// Show beside each result which replicas agreed, differed and were silent.
    #[arg(long, short)]
    verbose: bool,
    /// Full screen: conversations, the selected one, an input line and the replicas'
    /// agreement, committed height and view (needs a terminal).
    #[arg(long)]
    tui: bool,
    /// Give up on a request after this long without a quorum (at least 1 ms) [default: 80
    /// times the cluster's Δ, at least 10 s: long enough for two misbehaving leaders in a
    /// row to be replaced; 16 s at the default Δ]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: Option<u64>,
}

#[path = "chat_live.rs"]
mod live;
#[path = "chat_pages.rs"]
mod pages;
#[path = "chat_show.rs"]
mod show;
#[path = "password.rs"]
mod password;
#[path = "tui.rs"]
mod tui;
#[path = "tui_view.rs"]
mod tui_view;

use live::next_delivery;

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_micros() as u64
}

fn now_ms() -> u64 {
    now_us() / 1000
}

/// How long a command waits before a person is told it is waiting.
const WAITING_NOTICE: Duration = Duration::from_secs(1);

struct Session {
    client: QuorumClient,
    /// Replica ids by index, to say who agreed.
    ids: Vec<String>,
    /// Replicas this session has said it holds proofs against (said once each).
    proven_told: std::collections::BTreeSet<usize>,
    cluster: String,
    user: String,
    key: SigningKey,
    json: bool,
    verbose: bool,
    /// Colour: on a terminal, without `NO_COLOR`.
    colour: bool,
    /// Stdin is a terminal: `delete-account` asks first.
    terminal: bool,
    /// The current session id (client clock in µs when it began) and its last sequence.
    session: u64,
    seq: u64,
    /// Whether the answer to `seq` settled it (`Agreed::settled`): if not (a refusal of the
    /// moment, or Ctrl-C while waiting), the next request reuses the number, so at most one
    /// of the two can apply.
    seq_spent: bool,
    /// The request being sent reuses the number of one the person stopped waiting for.
    number_reused: bool,
    logged_in: bool,
    deliveries: Option<Subscription>,
    /// Some command was refused (exit status 1).
    refused: bool,
    /// `delete-account` typed on a terminal: the next line must be "yes". Meanwhile the
    /// question is the prompt, and the usual one is kept here.
    confirming: bool,
    usual_prompt: (String, String),
    /// Why the password is too weak for a new account (`password::too_weak`), if it is.
    weak_password: Option<String>,
    /// The last `create` was stopped here before anything was sent (a weak password, or a
    /// confirmation that differed): the full-screen client's offer asks again.
    create_unsent: bool,
    /// What the key derivation takes besides the user and the password.
    cluster_id: String,
    kdf: crypto::KdfParams,
    /// The password came from `QUINTET_PASSWORD` (a script): a weak one is only warned of.
    password_from_env: bool,
    /// With line editing: the prompt (updated after each answer), the names seen (for
    /// completion), where output goes while a person is typing a line, and whether one is.
    prompt: editor::Prompt,
    names: editor::Names,
    cluster_name: String,
    printer: Option<editor::Printer>,
    reading: Option<std::sync::Arc<editor::Reading>>,
    /// Live messages shown, not yet marked read: by id, and how each was shown.
    unmarked: Vec<(u64, show::Shown)>,
    /// When the last request was sent, and how often an idle session says it is still here
    /// (a third of the cluster's presence time), so the user stays online.
    last_request: std::time::Instant,
    heartbeat_every: Duration,
    /// A heartbeat found no quorum: said once, until one gets through again.
    heartbeat_failed: bool,
}

impl Session {
    /// The exit status, once the reason for a fatal error is said (once: on stdout as JSON
    /// for scripts, or on stderr for a person).
    fn finish(&self, result: Result<(), ClientError>) -> Exit {
        match result {
            Ok(()) => if self.refused { Exit::Failed(1) } else { Exit::Ok },
            Err(e) => {
                let message = e.to_string();
                if self.json {
                    println!("{}", serde_json::json!({"type": "fatal", "message": message}));
                } else {
                    eprintln!("quintet chat: {message}");
                }
                Exit::Failed(2)
            }
        }
    }

    fn new_session(&mut self) {
        self.session = now_us().max(self.session + 1);
        self.seq = 0;
        self.seq_spent = true;
    }

    async fn request(&mut self, op: &Op) -> Result<Agreed, ClientError> {
        if self.seq_spent {
            self.seq += 1;
        }
        let body = pb::RequestBody {
            cluster: self.cluster.clone(),
            user: self.user.clone(),
            session: self.session,
            seq: self.seq,
            op: Some(wire::encode_op(op)),
        }
        .encode_to_vec();
        let signature = crypto::sign(&self.key, TAG_REQUEST, &body);
        // Not spent until an answer settles it: if this wait is given up (Ctrl-C drops this
        // future), the next request reuses the number.
        self.seq_spent = false;
        self.last_request = std::time::Instant::now();
        let submit = self.client.submit(pb::SignedRequest { body, signature });
        tokio::pin!(submit);
        // A person is told that the client waits, and how to stop waiting.
        let answer = tokio::select! {
            answer = &mut submit => answer,
            _ = tokio::time::sleep(WAITING_NOTICE), if self.terminal && !self.json => {
                let (needed, total) = (self.client.quorum(), self.ids.len());
                eprintln!("\r\x1b[Kwaiting for {needed} of {total} replicas to agree... (Ctrl-C stops waiting)");
                submit.await
            }
        };
        self.seq_spent = answer.as_ref().is_ok_and(|a| a.settled);
        answer
    }

    /// Ctrl-C while a command waited for the replicas: the request was sent and may still
    /// be applied. Its number is kept for the next request (`seq_spent` is false), so the
    /// two can never both apply: the same command again gets the first one's result if it
    /// was applied; another command is then refused as a replay.
    fn stopped_waiting(&mut self) {
        self.refused = true;
        self.number_reused = true;
        let message = "stopped waiting: the request was sent and may still be applied (check with history or read)";
        self.print(&[self.painted_error(format!("error: {message}"))], &serde_json::json!({"type": "error", "code": "interrupted", "message": message}));
    }

    fn start_deliveries(&mut self) {
        if self.deliveries.is_some() {
            return;
        }
        let (cluster, user, key, session) = (self.cluster.clone(), self.user.clone(), self.key.clone(), self.session);
        let sign = move |replica: &str, challenge: Vec<u8>| {
            let body = pb::SubscribeBody { cluster: cluster.clone(), user: user.clone(), replica: replica.into(), session, challenge }
                .encode_to_vec();
            pb::SignedSubscribe { signature: crypto::sign(&key, TAG_SUBSCRIBE, &body), body }
        };
        self.deliveries = Some(self.client.subscribe(sign));
    }

    /// Runs one command line. `Ok(false)`: quit. `Err` is fatal (no quorum).
    async fn command(&mut self, line: &str) -> Result<bool, ClientError> {
        if std::mem::take(&mut self.confirming) {
            // The question was the prompt: the usual one comes back.
            *self.prompt.lock().unwrap_or_else(|e| e.into_inner()) = self.usual_prompt.clone();
            if line.trim().eq_ignore_ascii_case("yes") {
                return self.op("delete-account", Op::DeleteAccount).await;
            }
            self.print(&["not deleted".into()], &serde_json::json!({"type": "cancelled", "command": "delete-account"}));
            return Ok(true);
        }
        let parsed = match commands::parse(line, self.key.verifying_key().to_bytes()) {
            None => return Ok(true),
            Some(Err(refused)) => {
                self.print_error(&refused.command, refused.code, &refused.message);
                return Ok(true);
            }
            Some(Ok(parsed)) => parsed,
        };
        match parsed {
            Command::Help => {
                self.print(&[HELP.to_string()], &serde_json::json!({"type": "help", "text": HELP}));
            }
            Command::Quit => return Ok(false),
            Command::List { pattern, page } => return self.names(false, &pattern, page).await,
            Command::Who { page } => return self.names(true, "*", page).await,
            Command::History { with, count } => return self.history(&with, count).await,
            Command::DeleteAccount { yes: false } if self.terminal && !self.json => {
                self.confirming = true;
                // The question is the next prompt (or a line of its own without line editing).
                let question = format!("delete account {} and every message in its mailbox for good? type yes to delete: ", self.user);
                let mut prompt = self.prompt.lock().unwrap_or_else(|e| e.into_inner());
                self.usual_prompt = prompt.clone();
                *prompt = (question.clone(), if self.colour { format!("\x1b[1;31m{question}\x1b[0m") } else { question.clone() });
                drop(prompt);
                if self.reading.is_none() {
                    println!("{question}");
                }
            }
            Command::DeleteAccount { yes: false } => {
                self.print_error("delete-account", "usage", "not on a terminal, so nobody can confirm: use delete-account --yes");
            }
            Command::DeleteAccount { yes: true } => return self.op("delete-account", Op::DeleteAccount).await,
            Command::Op(op) => return self.op(op.name(), op).await,
        }
        Ok(true)
    }

    /// What an agreed outcome changes in the session (both clients): logged in or out, the
    /// live stream, the read floor.
    fn follow(&mut self, outcome: &pb::Outcome) {
        match &outcome.kind {
            Some(pb::outcome::Kind::Messages(m)) => {
                if let (Some(deliveries), Some(newest)) = (&self.deliveries, m.messages.iter().map(|m| m.id).max()) {
                    deliveries.read_up_to(newest);
                }
            }
            Some(pb::outcome::Kind::AccountCreated(_) | pb::outcome::Kind::LoggedIn(_)) => {
                self.logged_in = true;
                self.start_deliveries();
            }
            Some(pb::outcome::Kind::LoggedOut(_) | pb::outcome::Kind::AccountDeleted(_)) => self.logged_out(),
            Some(pb::outcome::Kind::Failure(f)) if f.code == "session_closed" || f.code == "not_logged_in" => self.logged_out(),
            _ => {}
        }
    }

    fn logged_out(&mut self) {
        self.logged_in = false;
        self.deliveries = None;
    }

    /// A session-closed notice from the live streams: true when it closed this session.
    fn closed_by_server(&mut self, session: u64) -> bool {
        let mine = self.logged_in && session == self.session;
        if mine {
            self.logged_out();
        }
        mine
    }

    /// Sends one operation and shows its agreed outcome.
    async fn op(&mut self, command: &str, op: Op) -> Result<bool, ClientError> {
        self.create_unsent = false;
        if matches!(op, Op::CreateAccount { .. }) && self.logged_in {
            // The session's account exists; asking for its password again could only change
            // the key the session signs with.
            let why = format!("you are logged in as {}, so the account exists (nothing was sent)", self.user);
            self.print_error(command, "exists", &why);
            return Ok(true);
        }
        if let (Op::CreateAccount { .. }, Some(why)) = (&op, &self.weak_password) {
            if !self.password_from_env {
                let next = if self.prompted() { "choose another" } else { "start again with another password" };
                let why = format!("{why} (nothing was sent; {next})");
                self.print_error(command, "weak_password", &why);
                self.ask_stronger_password().await;
                self.create_unsent = true;
                return Ok(true);
            }
            eprintln!("quintet chat: warning: {why} (QUINTET_PASSWORD is used as given)");
        }
        if matches!(op, Op::CreateAccount { .. }) && !self.password_confirmed().await? {
            self.create_unsent = true;
            return Ok(true);
        }
        if op.opens_session() && !self.logged_in {
            self.new_session();
        }
        let agreed = self.request(&op).await?;
        self.show(command, &agreed);
        self.follow(&agreed.outcome);
        if matches!(&agreed.outcome.kind, Some(pb::outcome::Kind::Failure(f)) if f.code == "bad_signature") {
            self.ask_password_again().await;
        }
        Ok(true)
    }
}

/// The next command line: from the line editor on a terminal, else from stdin. `None`
/// at the end of input (or Ctrl-D, or a read error).
async fn next_line(editor: &mut Option<LineEditor>, lines: &mut tokio::io::Lines<BufReader<tokio::io::Stdin>>) -> Option<String> {
    match editor {
        Some(editor) => editor.lines.recv().await,
        None => lines.next_line().await.ok().flatten(),
    }
}

/// The password, wiped from memory when dropped.
fn password(user: &str) -> anyhow::Result<zeroize::Zeroizing<String>> {
    let password = zeroize::Zeroizing::new(match std::env::var("QUINTET_PASSWORD") {
        Ok(p) => p,
        Err(_) if std::io::stdin().is_terminal() => rpassword::prompt_password(format!("password for {user}: "))?,
        Err(_) => anyhow::bail!("stdin is not a terminal: set QUINTET_PASSWORD to give the password"),
    });
    anyhow::ensure!(!password.is_empty(), "the password must not be empty");
    Ok(password)
}

/// `--config`, or `./quintet-data/cluster.toml` (what `up` writes) when it exists.
fn config_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    let default = PathBuf::from("quintet-data/cluster.toml");
    anyhow::ensure!(
        default.exists(),
        "no --config given and ./quintet-data/cluster.toml does not exist: start a cluster here with `{} up`, or give --config <cluster.toml>",
        super::invocation()
    );
    Ok(default)
}

pub async fn run(args: ChatArgs) -> anyhow::Result<Exit> {
    let path = config_path(args.config)?;
    let config = ClusterConfig::load(&path)?;
    anyhow::ensure!(crate::chat::valid_name(&args.user), crate::chat::ChatError::InvalidName(args.user.clone()));
    let password = password(&args.user)?;
    let weak_password = password::too_weak(&password, &args.user, &config.name);
    let (cluster, user, kdf) = (config.cluster_id.clone(), args.user.clone(), config.kdf);
    let key = tokio::task::spawn_blocking(move || crypto::derive_user_key(&cluster, &user, &password, kdf)).await??;
    let mut client = QuorumClient::new(&config)?;
    client.keep_evidence(crate::evidence::client_file(&path, &args.user));
    if let Some(ms) = args.timeout_ms {
        client.deadline = Duration::from_millis(ms);
    }
    let terminal = std::io::stdin().is_terminal();
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && !args.json;
    let mut s = Session {
        ids: client.ids(),
        proven_told: Default::default(),
        client,
        cluster: config.tag(),
        user: args.user.clone(),
        key,
        json: args.json,
        verbose: args.verbose,
        colour,
        terminal,
        session: 0,
        seq: 0,
        seq_spent: true,
        number_reused: false,
        logged_in: false,
        deliveries: None,
        refused: false,
        confirming: false,
        create_unsent: false,
        usual_prompt: Default::default(),
        weak_password,
        cluster_id: config.cluster_id.clone(),
        kdf: config.kdf,
        password_from_env: std::env::var_os("QUINTET_PASSWORD").is_some(),
        prompt: Default::default(),
        names: Default::default(),
        cluster_name: config.name.clone(),
        printer: None,
        reading: None,
        unmarked: Vec::new(),
        last_request: std::time::Instant::now(),
        heartbeat_every: Duration::from_millis(config.presence_ms / 3),
        heartbeat_failed: false,
    };
    if args.tui {
        anyhow::ensure!(
            terminal && std::io::stdout().is_terminal() && !s.json,
            "--tui needs a terminal (and no --json): in a pipe, use the line client"
        );
        let interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let result = tui::run(&mut s, interrupt).await;
        return Ok(s.finish(result));
    }
    *s.prompt.lock().unwrap_or_else(|e| e.into_inner()) = editor::prompt(&s.user, &s.cluster_name, s.ids.len(), &[], &[], colour);
    // A person at a terminal gets line editing; a pipe (or --json) is read line by line.
    let mut line_editor = None;
    if terminal && !s.json {
        println!("quintet chat as {}: type help for commands, Tab completes, Ctrl-D or quit leaves", s.user);
        match LineEditor::start(s.prompt.clone(), s.names.clone()) {
            Ok(mut e) => {
                s.printer = e.printer.take();
                s.reading = Some(e.reading.clone());
                line_editor = Some(e);
            }
            Err(e) => eprintln!("quintet chat: no line editing ({e}); reading plain lines"),
        }
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    // Installed before the first command: `ctrl_c()` made anew in each turn of the loop is
    // only listening once polled, and a turn whose line is already waiting never polls it,
    // so a Ctrl-C during that command would kill the client without logging out.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    // Live messages shown are marked read in batches, between commands.
    let mut mark = tokio::time::interval(live::MARK_EVERY);
    let mut heartbeat = tokio::time::interval(s.heartbeat_every / 4);
    // Answers that differ from a result already shown come in after it.
    let mut late = tokio::time::interval(live::MARK_EVERY);
    let result: Result<(), ClientError> = async {
        loop {
            tokio::select! {
                line = next_line(&mut line_editor, &mut lines) => match line {
                    Some(line) => {
                        // The editor prompts again only once the command is done, or the
                        // person stopped waiting for it (Ctrl-C: the terminal is not in the
                        // editor's hands then, so it is the process's interrupt).
                        let done = tokio::select! {
                            done = s.command(&line) => Some(done?),
                            _ = interrupt.recv(), if s.terminal => None,
                        };
                        match done {
                            Some(false) => break,
                            Some(true) => {}
                            None => s.stopped_waiting(),
                        }
                        if let Some(editor) = &line_editor {
                            editor.next();
                        }
                    }
                    None => break,
                },
                Some(live) = next_delivery(&mut s.deliveries) => s.live(live).await?,
                _ = mark.tick(), if !s.unmarked.is_empty() => s.mark_shown().await?,
                _ = heartbeat.tick(), if s.logged_in => s.keep_alive().await,
                _ = late.tick() => s.tell_late(),
                _ = interrupt.recv() => break,
            }
        }
        s.mark_shown().await?;
        if s.logged_in {
            s.command("logout").await?;
        }
        Ok(())
    }
    .await;
    s.tell_late();
    Ok(s.finish(result))
}
