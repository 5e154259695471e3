//! `quintet chat`: the interactive client. On a terminal it prompts for the password and
//! reads commands; from a pipe it reads one command per line and prints one result per line
//! (`--json`: one JSON object per line). Live deliveries are printed as they arrive and then
//! marked read. Ctrl-C and end of input log out cleanly. If no quorum answers, it prints why
//! and exits with status 2: it never shows a result that a quorum did not sign.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{Exit, render};
use crate::chat::{Op, PAGE_LIMIT_MAX, READ_LIMIT_MAX};
use crate::client::{ClientError, Live, QuorumClient, Subscription};
use crate::config::ClusterConfig;
use crate::crypto::{self, SigningKey, TAG_REQUEST, TAG_SUBSCRIBE};
use crate::{pb, wire};

#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    user: String,
    /// One JSON object per output line (results, errors, deliveries), each with a "type".
    #[arg(long)]
    json: bool,
    /// Give up on a request after this long without a quorum.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
}

/// Names per `list` page.
const PAGE_SIZE: u32 = 20;
/// Unread messages one `read` fetches when no count is given.
const READ_DEFAULT: u32 = 10;

const HELP: &str = "commands:
  create                      create the account (and log in)
  login | logout
  list [pattern] [page]       accounts matching * and ? wildcards, 20 a page
  send <user> <text>          send a message
  read [n]                    read up to n unread messages (default 10)
  delete <id>...              delete messages from your mailbox
  delete-account              delete your account and its mailbox
  help | quit";

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_micros() as u64
}

struct Session {
    client: QuorumClient,
    cluster: String,
    user: String,
    key: SigningKey,
    json: bool,
    /// The current session id (client clock in µs when it began) and its last sequence.
    session: u64,
    seq: u64,
    logged_in: bool,
    deliveries: Option<Subscription>,
}

impl Session {
    fn new_session(&mut self) {
        self.session = now_us().max(self.session + 1);
        self.seq = 0;
    }

    async fn request(&mut self, op: &Op) -> Result<crate::client::Agreed, ClientError> {
        self.seq += 1;
        let body = pb::RequestBody {
            cluster: self.cluster.clone(),
            user: self.user.clone(),
            session: self.session,
            seq: self.seq,
            op: Some(wire::encode_op(op)),
        }
        .encode_to_vec();
        let signature = crypto::sign(&self.key, TAG_REQUEST, &body);
        self.client.submit(pb::SignedRequest { body, signature }).await
    }

    fn print(&self, lines: &[String], value: &serde_json::Value) {
        if self.json {
            println!("{value}");
        } else {
            for line in lines {
                println!("{line}");
            }
        }
    }

    fn print_error(&self, command: &str, code: &str, message: &str) {
        let value = serde_json::json!({"type": "error", "command": command, "code": code, "message": message});
        self.print(&[format!("error: {message}")], &value);
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

    /// Runs one command line. `Err` is fatal (no quorum).
    async fn command(&mut self, line: &str) -> Result<bool, ClientError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&command, args)) = words.split_first() else { return Ok(true) };
        let op = match (command, args) {
            ("help", _) => {
                self.print(&[HELP.to_string()], &serde_json::json!({"type": "help", "text": HELP}));
                return Ok(true);
            }
            ("quit" | "exit", _) => return Ok(false),
            ("create", []) => Op::CreateAccount { public_key: self.key.verifying_key().to_bytes() },
            ("login", []) => Op::Login,
            ("logout", []) => Op::Logout,
            ("delete-account", []) => Op::DeleteAccount,
            ("list", [..]) if args.len() <= 2 => {
                let pattern = args.first().copied().unwrap_or("*");
                let page = match args.get(1).map(|p| p.parse::<u32>()) {
                    None => 1,
                    Some(Ok(p)) if p >= 1 => p,
                    _ => return self.usage(command, "page must be a number from 1"),
                };
                return self.list(pattern, page).await;
            }
            ("send", [to, ..]) if args.len() >= 2 => {
                // The text is the rest of the line after the recipient, spaces kept.
                let after_command = line.trim_start()[command.len()..].trim_start();
                let text = after_command[to.len()..].trim_start().to_string();
                // Refused here, before anything is sent: the one limit, in the state
                // machine's own words (the request-size limit is above it).
                if text.len() > crate::chat::TEXT_LEN_MAX {
                    let error = crate::chat::ChatError::TextTooLong(text.len());
                    self.print_error(command, error.code(), &error.to_string());
                    return Ok(true);
                }
                Op::Send { to: to.to_string(), text }
            }
            ("read", [..]) if args.len() <= 1 => match args.first().map(|n| n.parse::<u32>()) {
                None => Op::Read { max: READ_DEFAULT },
                Some(Ok(n)) if (1..=READ_LIMIT_MAX).contains(&n) => Op::Read { max: n },
                _ => return self.usage(command, "n must be a number from 1 to 100"),
            },
            ("delete", [_, ..]) => match args.iter().map(|a| a.parse::<u64>()).collect::<Result<Vec<_>, _>>() {
                Ok(ids) => Op::DeleteMessages { ids },
                Err(_) => return self.usage(command, "message ids are numbers"),
            },
            ("create" | "login" | "logout" | "delete-account" | "list" | "send" | "read" | "delete", _) => {
                return self.usage(command, "wrong arguments (type help)");
            }
            _ => return self.usage(command, &format!("unknown command {command:?} (type help)")),
        };
        if op.opens_session() && !self.logged_in {
            self.new_session();
        }
        let agreed = self.request(&op).await?;
        let outcome = agreed.outcome;
        let (lines, value) = render::outcome(command, &self.user, agreed.height, &outcome);
        self.print(&lines, &value);
        match outcome.kind {
            Some(pb::outcome::Kind::Messages(m)) => {
                if let (Some(deliveries), Some(newest)) = (&self.deliveries, m.messages.iter().map(|m| m.id).max()) {
                    deliveries.read_up_to(newest);
                }
            }
            Some(pb::outcome::Kind::AccountCreated(_) | pb::outcome::Kind::LoggedIn(_)) => {
                self.logged_in = true;
                self.start_deliveries();
            }
            Some(pb::outcome::Kind::LoggedOut(_) | pb::outcome::Kind::AccountDeleted(_)) => {
                self.logged_in = false;
                self.deliveries = None;
            }
            Some(pb::outcome::Kind::Failure(f)) if f.code == "session_closed" || f.code == "not_logged_in" => {
                self.logged_in = false;
                self.deliveries = None;
            }
            _ => {}
        }
        Ok(true)
    }

    fn usage(&self, command: &str, message: &str) -> Result<bool, ClientError> {
        self.print_error(command, "usage", message);
        Ok(true)
    }

    /// Pages are followed by cursor. A replica looks at a bounded number of names per
    /// request, so one request may return fewer names than asked (even none) with a cursor
    /// to go on from; the names of page n are gathered across as many requests as needed.
    async fn list(&mut self, pattern: &str, page: u32) -> Result<bool, ClientError> {
        let want = page as usize * PAGE_SIZE as usize;
        let (mut names, mut after) = (Vec::new(), String::new());
        let last = loop {
            let limit = (want - names.len()).min(PAGE_LIMIT_MAX as usize) as u32;
            let op = Op::ListAccounts { pattern: pattern.to_string(), after: after.clone(), limit };
            let agreed = self.request(&op).await?;
            let Some(pb::outcome::Kind::Accounts(p)) = &agreed.outcome.kind else {
                let (lines, value) = render::outcome("list", &self.user, agreed.height, &agreed.outcome);
                self.print(&lines, &value);
                return Ok(true);
            };
            names.extend(p.names.iter().cloned());
            after = p.next.clone();
            if names.len() >= want || after.is_empty() {
                break agreed;
            }
        };
        let first = (page as usize - 1) * PAGE_SIZE as usize;
        if first >= names.len() && page > 1 {
            let pages = names.len().div_ceil(PAGE_SIZE as usize).max(1);
            self.print_error("list", "no_such_page", &format!("there are only {pages} page(s)"));
            return Ok(true);
        }
        let shown = pb::AccountPage { names: names[first..names.len().min(want)].to_vec(), next: after };
        let outcome = pb::Outcome { kind: Some(pb::outcome::Kind::Accounts(shown)) };
        let (lines, mut value) = render::outcome("list", &self.user, last.height, &outcome);
        value["page"] = serde_json::json!(page);
        self.print(&lines, &value);
        Ok(true)
    }

    /// Shows what a quorum told on the live streams.
    async fn live(&mut self, live: Live) -> Result<(), ClientError> {
        match live {
            Live::Message(height, message) => self.delivered(height, message).await,
            Live::SessionClosed { height, session, reason } => {
                if self.logged_in && session == self.session {
                    self.logged_in = false;
                    self.deliveries = None;
                    let value = serde_json::json!({"type": "session_closed", "height": height, "reason": reason});
                    self.print(&[format!("your session was closed by the server ({reason}): log in again")], &value);
                }
                Ok(())
            }
        }
    }

    /// Shows a live delivery, then marks it read (the user has seen it).
    async fn delivered(&mut self, height: u64, message: pb::Message) -> Result<(), ClientError> {
        let mut value = render::message_json(&message);
        value["type"] = "delivery".into();
        value["height"] = height.into();
        self.print(&[format!("new message {}", render::message_line(&message))], &value);
        self.request(&Op::MarkRead { ids: vec![message.id] }).await.map(|_| ())
    }
}

async fn next_delivery(deliveries: &mut Option<Subscription>) -> Option<Live> {
    match deliveries {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
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

pub async fn run(args: ChatArgs) -> anyhow::Result<Exit> {
    let config = ClusterConfig::load(&args.config)?;
    anyhow::ensure!(crate::chat::valid_name(&args.user), crate::chat::ChatError::InvalidName(args.user.clone()));
    let password = password(&args.user)?;
    let (cluster, user, kdf) = (config.cluster_id.clone(), args.user.clone(), config.kdf);
    let key = tokio::task::spawn_blocking(move || crypto::derive_user_key(&cluster, &user, &password, kdf)).await??;
    let mut client = QuorumClient::new(&config)?;
    client.deadline = Duration::from_millis(args.timeout_ms);
    let interactive = std::io::stdin().is_terminal();
    let mut s = Session {
        client,
        cluster: config.tag(),
        user: args.user.clone(),
        key,
        json: args.json,
        session: 0,
        seq: 0,
        logged_in: false,
        deliveries: None,
    };
    if interactive && !s.json {
        println!("quintet chat as {}: type help for commands", s.user);
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let result: Result<(), ClientError> = async {
        loop {
            tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(line)) => if !s.command(&line).await? { break },
                    _ => break,
                },
                Some(live) = next_delivery(&mut s.deliveries) => s.live(live).await?,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        if s.logged_in {
            s.command("logout").await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(Exit::Ok),
        Err(e) => {
            let message = e.to_string();
            if s.json {
                println!("{}", serde_json::json!({"type": "fatal", "message": message}));
            } else {
                println!("fatal: {message}");
            }
            eprintln!("quintet chat: {message}");
            Ok(Exit::Failed(2))
        }
    }
}
