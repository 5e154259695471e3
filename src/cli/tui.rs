//! `quintet chat --tui`: the full-screen client (ratatui on crossterm). It logs in on the
//! plain terminal first (asking to create the account if there is none), then shows the
//! conversations, the selected one, an input line and the cluster's health. Everything it
//! shows is what 3 replicas signed, as in the line client; a line starting with `/` is a
//! command, any other line is sent to the selected conversation. Ctrl-C (or `/quit`) logs
//! out and restores the terminal. No quorum: the terminal is restored, the reason printed
//! once, and the client exits with status 2.

use std::io::Write as _;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc;

use super::live::next_delivery;
use super::tui_view::{self, Screen};
use super::{ClientError, Op, Session, render};
use crate::client::{Agreed, Live, QuorumClient};
use crate::pb;
use crate::pb::outcome::Kind;

/// Messages of a conversation fetched when it is opened.
const HISTORY_SHOWN: u32 = 50;
/// How often the replicas' status (view, height) is asked, and `who` every so many of those.
const STATUS_EVERY: Duration = Duration::from_secs(2);
const WHO_EVERY_TICKS: u32 = 5;

pub const HELP: &str = "/open <user> · /who · /inbox · /history (older) · /delete <id>... · /logout · /delete-account · /quit · Up/Down or Tab: next conversation · PgUp/PgDn: scroll";

/// The terminal in raw mode on the alternate screen, restored when dropped (also on a
/// panic: `ratatui::init` installs a hook that restores it first).
struct Terminal(ratatui::DefaultTerminal);

impl Drop for Terminal {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// How many passwords the create offer takes before it gives up.
const CREATE_TRIES: usize = 5;

/// Logs in (or, when asked, creates the account) on the plain terminal. `Ok(false)`: refused,
/// and the reason was printed.
async fn log_in(s: &mut Session) -> Result<bool, ClientError> {
    s.new_session();
    let agreed = s.request(&Op::Login).await?;
    if let Some(Kind::Failure(f)) = &agreed.outcome.kind
        && f.code == "unknown_user"
    {
        print!("no account named {} on this cluster: create it? [y/N] ", s.user);
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !answer.trim().eq_ignore_ascii_case("y") && !answer.trim().eq_ignore_ascii_case("yes") {
            println!("not created");
            s.refused = true;
            return Ok(false);
        }
        // A weak password or a differing confirmation sends nothing and asks for another:
        // the offer then tries again with it (a few times, then gives up).
        for _ in 0..CREATE_TRIES {
            s.op("create", Op::CreateAccount { public_key: s.key.verifying_key().to_bytes() }).await?;
            if !s.create_unsent {
                break;
            }
        }
        return Ok(s.logged_in);
    }
    s.show("login", &agreed);
    s.follow(&agreed.outcome);
    Ok(s.logged_in)
}

/// Asks every replica's status on a task of its own (over the session's connections), so
/// a slow replica never holds the screen.
fn watch_status(client: QuorumClient) -> mpsc::Receiver<(u64, Option<u64>)> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            let replies: Vec<pb::StatusReply> = client.status().await.into_iter().filter_map(|(_, r)| r.ok()).collect();
            let quorum = client.quorum();
            // What at least a quorum reported: the quorum-th highest.
            let at_least = |mut v: Vec<u64>| {
                v.sort_unstable_by(|a, b| b.cmp(a));
                v.get(quorum - 1).copied()
            };
            let height = at_least(replies.iter().map(|r| r.height).collect()).unwrap_or(0);
            let view = at_least(replies.iter().map(|r| r.view).collect());
            if tx.send((height, view)).await.is_err() {
                return;
            }
            tokio::time::sleep(STATUS_EVERY).await;
        }
    });
    rx
}

/// Key presses from a thread of their own (crossterm's reader blocks).
fn keys() -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        while let Ok(e) = event::read() {
            if tx.blocking_send(e).is_err() {
                return;
            }
        }
    });
    rx
}

pub(super) async fn run(s: &mut Session, mut interrupt: tokio::signal::unix::Signal) -> Result<(), ClientError> {
    if !log_in(s).await? {
        return Ok(());
    }
    let mut status = watch_status(s.client.clone());
    // Raw mode first, then the reader: keys are read one by one, not a line at a time.
    let mut terminal = Terminal(ratatui::init());
    let mut keys = keys();
    let mut screen = Screen { user: s.user.clone(), cluster: s.cluster_name.clone(), ids: s.ids.clone(), ..Default::default() };
    let mut app = App { s, screen: &mut screen };
    app.refresh_inbox().await?;
    app.refresh_who().await?;
    if !app.screen.error {
        let pick = if app.screen.conversations.is_empty() { "/open <user> starts a conversation" } else { "↑↓ picks a conversation" };
        let notice = format!("logged in as {} · {} · {pick} · /help", app.s.user, app.screen.notice);
        app.screen.say(notice, false);
    }
    let mut tick = tokio::time::interval(STATUS_EVERY);
    let mut ticks = 0u32;
    loop {
        let _ = terminal.0.draw(|frame| tui_view::draw(frame, app.screen));
        tokio::select! {
            key = keys.recv() => match key {
                Some(Event::Key(key)) if key.kind != KeyEventKind::Release => {
                    if !app.key(key).await? {
                        break;
                    }
                }
                Some(_) => {} // a resize: drawn again at the top of the loop
                None => break,
            },
            Some(live) = next_delivery(&mut app.s.deliveries) => app.live(live).await?,
            Some((height, view)) = status.recv() => {
                app.screen.height = app.screen.height.max(height);
                app.screen.view = view;
            }
            _ = tick.tick() => {
                ticks += 1;
                // Idle: the who list now and then, and the heartbeat that keeps this user
                // online. Without a quorum an idle screen says so and keeps trying.
                let who = if ticks.is_multiple_of(WHO_EVERY_TICKS) { app.refresh_who().await.err() } else { None };
                match (who, app.s.heartbeat_if_idle().await) {
                    (Some(e), _) | (None, Some(Err(e))) => app.screen.say(format!("disconnected, retrying ({e})"), true),
                    (None, Some(Ok(()))) => app.screen.say("connected again", false),
                    (None, None) => {}
                }
            }
            _ = interrupt.recv() => break,
        }
        if !app.s.logged_in {
            break;
        }
    }
    drop(terminal);
    if app.s.logged_in {
        app.s.command("logout").await?;
    } else if app.screen.error {
        println!("{}", render::shown(&app.screen.notice));
    }
    Ok(())
}

struct App<'a> {
    s: &'a mut Session,
    screen: &'a mut Screen,
}

impl App<'_> {
    /// Sends one operation; the dots and height follow its answer. A refusal is shown on the
    /// notice line and yields `None`.
    async fn ask(&mut self, op: Op) -> Result<Option<Agreed>, ClientError> {
        let agreed = self.s.request(&op).await?;
        (self.screen.agreed, self.screen.differed) = (agreed.agreement.agreed.clone(), agreed.agreement.differed.clone());
        self.screen.height = self.screen.height.max(agreed.height);
        self.s.follow(&agreed.outcome);
        if let Some(Kind::Failure(f)) = &agreed.outcome.kind {
            self.s.refused = true;
            self.screen.say(format!("{}: {}", op.name(), f.message), true);
            return Ok(None);
        }
        Ok(Some(agreed))
    }

    /// The conversation list from `inbox`: who wrote, latest first, with unread counts.
    async fn refresh_inbox(&mut self) -> Result<(), ClientError> {
        let Some(agreed) = self.ask(Op::Inbox { limit: super::commands::INBOX_LIMIT }).await? else { return Ok(()) };
        if let Some(Kind::Inbox(inbox)) = agreed.outcome.kind {
            for entry in inbox.senders.iter().rev() {
                let i = self.screen.conversation(&entry.from);
                self.screen.conversations[i].unread = if Some(i) == self.screen.selected { 0 } else { entry.unread };
            }
            let plural = if inbox.unread == 1 { "" } else { "s" };
            self.screen.say(format!("{} unread message{plural}", inbox.unread), false);
        }
        Ok(())
    }

    /// Who is online, for the green marks in the list.
    async fn refresh_who(&mut self) -> Result<(), ClientError> {
        let Some(agreed) = self.ask(Op::Who { after: String::new(), limit: 100 }).await? else { return Ok(()) };
        if let Some(Kind::Online(page)) = agreed.outcome.kind {
            for c in self.screen.conversations.iter_mut() {
                c.online = page.names.contains(&c.with);
            }
        }
        Ok(())
    }

    /// Opens conversation `i`: its last messages, and what was unread in it marked read.
    /// `Ok(false)`: the replicas refused (said on the notice line).
    async fn select(&mut self, i: usize) -> Result<bool, ClientError> {
        self.screen.selected = Some(i);
        (self.screen.messages, self.screen.older, self.screen.scroll) = (Vec::new(), false, 0);
        let with = self.screen.conversations[i].with.clone();
        let Some(agreed) = self.ask(Op::History { with: with.clone(), before: 0, limit: HISTORY_SHOWN }).await? else { return Ok(false) };
        if let Some(Kind::Conversation(c)) = agreed.outcome.kind {
            (self.screen.messages, self.screen.older) = (c.messages, c.before != 0);
        }
        if self.screen.conversations[i].unread > 0 {
            let ids: Vec<u64> = self.screen.messages.iter().filter(|m| m.from == with && m.to == self.s.user).map(|m| m.id).collect();
            if !ids.is_empty() {
                self.ask(Op::MarkRead { ids }).await?;
            }
            self.screen.conversations[i].unread = 0;
        }
        Ok(true)
    }

    /// One key. `Ok(false)`: quit.
    async fn key(&mut self, key: KeyEvent) -> Result<bool, ClientError> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let count = self.screen.conversations.len();
        match key.code {
            KeyCode::Char('c' | 'd') if ctrl => return Ok(false),
            KeyCode::Char(c) if !ctrl => {
                let at = self.byte_at(self.screen.cursor);
                self.screen.input.insert(at, c);
                self.screen.cursor += 1;
            }
            KeyCode::Backspace if self.screen.cursor > 0 => {
                self.screen.cursor -= 1;
                let at = self.byte_at(self.screen.cursor);
                self.screen.input.remove(at);
            }
            KeyCode::Left => self.screen.cursor = self.screen.cursor.saturating_sub(1),
            KeyCode::Right => self.screen.cursor = (self.screen.cursor + 1).min(self.screen.input.chars().count()),
            KeyCode::Home => self.screen.cursor = 0,
            KeyCode::End => self.screen.cursor = self.screen.input.chars().count(),
            KeyCode::Esc => (self.screen.input, self.screen.cursor) = (String::new(), 0),
            KeyCode::Up | KeyCode::BackTab if count > 0 => {
                let i = self.screen.selected.map_or(0, |i| (i + count - 1) % count);
                self.select(i).await?;
            }
            KeyCode::Down | KeyCode::Tab if count > 0 => {
                let i = self.screen.selected.map_or(0, |i| (i + 1) % count);
                self.select(i).await?;
            }
            KeyCode::PageUp => self.screen.scroll += 10,
            KeyCode::PageDown => self.screen.scroll = self.screen.scroll.saturating_sub(10),
            KeyCode::Enter => {
                let line = std::mem::take(&mut self.screen.input);
                self.screen.cursor = 0;
                return self.line(line.trim()).await;
            }
            _ => {}
        }
        Ok(true)
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.screen.input.char_indices().nth(chars).map_or(self.screen.input.len(), |(i, _)| i)
    }

    /// A typed line: a `/command`, or a message to the selected conversation.
    async fn line(&mut self, line: &str) -> Result<bool, ClientError> {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (None, ..) => {}
            (Some("/quit" | "/exit"), None, _) => return Ok(false),
            (Some("/help"), ..) => self.screen.say(HELP, false),
            (Some("/open" | "/to"), Some(name), None) => {
                if !crate::chat::valid_name(name) {
                    self.screen.say(format!("/open: {}", crate::chat::ChatError::InvalidName(name.into())), true);
                } else {
                    let known = self.screen.conversations.iter().any(|c| c.with == name);
                    // What was shown, to come back to if the name is nobody's.
                    let shown = (self.screen.selected, self.screen.messages.clone(), self.screen.older, self.screen.scroll);
                    let i = self.screen.conversation(name);
                    if self.select(i).await? {
                        self.refresh_who().await?;
                    } else if !known {
                        // No such account (or refused): no conversation is left behind, and
                        // the one that was open stays open (indices are as before the insert).
                        self.screen.conversations.remove(i);
                        (self.screen.selected, self.screen.messages, self.screen.older, self.screen.scroll) = shown;
                        let why = self.screen.notice.trim_start_matches("history: ").to_string();
                        self.screen.say(format!("/open: {why}"), true);
                    }
                }
            }
            (Some("/who"), None, _) => {
                if let Some(agreed) = self.ask(Op::Who { after: String::new(), limit: 100 }).await?
                    && let Some(Kind::Online(page)) = agreed.outcome.kind
                {
                    let more = if page.next.is_empty() { "" } else { ", …" };
                    self.screen.say(format!("online ({}): {}{more}", page.total, page.names.join(", ")), false);
                }
            }
            (Some("/inbox"), None, _) => self.refresh_inbox().await?,
            (Some("/logout"), None, _) => {
                self.ask(Op::Logout).await?;
            }
            (Some("/delete-account"), None, _) => {
                self.screen.say(format!("delete account {} and every message in its mailbox for good? type /delete-account yes", self.s.user), true);
            }
            (Some("/delete-account"), Some("yes"), None) => {
                self.ask(Op::DeleteAccount).await?;
            }
            (Some("/delete"), Some(_), _) => {
                let ids: Result<Vec<u64>, _> = line.split_whitespace().skip(1).map(str::parse).collect();
                match ids {
                    Err(_) => self.screen.say("/delete: message ids are numbers (the [n] before each message; /help)", true),
                    Ok(ids) => {
                        if let Some(agreed) = self.ask(Op::DeleteMessages { ids: ids.clone() }).await?
                            && let Some(Kind::Deleted(count)) = agreed.outcome.kind
                        {
                            self.screen.messages.retain(|m| !ids.contains(&m.id));
                            self.screen.say(format!("deleted {} message(s)", count.count), false);
                        }
                    }
                }
            }
            (Some("/history"), None, _) => self.older().await?,
            (Some(command), ..) if command.starts_with('/') => {
                self.screen.say(format!("{command}: not a command here; {HELP}"), true);
            }
            _ => self.send(line).await?,
        }
        Ok(true)
    }

    /// Older messages of the selected conversation, before the first one shown.
    async fn older(&mut self) -> Result<(), ClientError> {
        let (Some(with), Some(first)) = (self.screen.selected_name().map(str::to_string), self.screen.messages.first().map(|m| m.id)) else {
            return Ok(());
        };
        if !self.screen.older {
            self.screen.say("no older messages", false);
            return Ok(());
        }
        if let Some(agreed) = self.ask(Op::History { with, before: first, limit: HISTORY_SHOWN }).await?
            && let Some(Kind::Conversation(c)) = agreed.outcome.kind
        {
            self.screen.older = c.before != 0;
            self.screen.say(format!("{} older message(s)", c.messages.len()), false);
            self.screen.messages.splice(0..0, c.messages);
        }
        Ok(())
    }

    async fn send(&mut self, text: &str) -> Result<(), ClientError> {
        let Some(to) = self.screen.selected_name().map(str::to_string) else {
            self.screen.say("no conversation selected: /open <user> first", true);
            return Ok(());
        };
        if let Some(agreed) = self.ask(Op::Send { to: to.clone(), text: text.to_string() }).await?
            && let Some(Kind::Sent(sent)) = agreed.outcome.kind
        {
            let message = pb::Message { id: sent.id, from: self.s.user.clone(), from_account: 0, to, time_ms: super::now_ms(), text: text.into() };
            self.show_message(message);
            self.screen.say(format!("sent message {}", sent.id), false);
        }
        Ok(())
    }

    /// Adds a message to the open conversation (once: a note to oneself also comes live).
    fn show_message(&mut self, message: pb::Message) {
        if !self.screen.messages.iter().any(|m| m.id == message.id) {
            self.screen.messages.push(message);
            self.screen.scroll = 0;
        }
    }

    /// What a quorum delivered live.
    async fn live(&mut self, live: Live) -> Result<(), ClientError> {
        match live {
            Live::Message(_, message, agreement) => {
                (self.screen.agreed, self.screen.differed) = (agreement.agreed, agreement.differed);
                let i = self.screen.conversation(&message.from);
                self.screen.conversations[i].online = true;
                if Some(i) == self.screen.selected {
                    let id = message.id;
                    self.show_message(message);
                    self.ask(Op::MarkRead { ids: vec![id] }).await?;
                } else {
                    self.screen.conversations[i].unread += 1;
                    self.screen.say(format!("new message from {}", message.from), false);
                }
            }
            Live::SessionClosed { session, reason, .. } => {
                if self.s.closed_by_server(session) {
                    self.screen.say(format!("your session was closed by the server ({reason}): log in again"), true);
                }
            }
        }
        Ok(())
    }
}
