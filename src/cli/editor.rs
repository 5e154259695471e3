//! Line editing for the chat client on a terminal (rustyline): arrow keys, history (this
//! run's only: chat text is not written to disk), Tab completion of commands and of the user
//! names the client has seen, and a prompt with the user, the cluster and its health.
//!
//! rustyline blocks, so it runs on its own thread: it reads one line, hands it to the async
//! client and waits until that command is done (its output printed) before prompting
//! again. Live deliveries that arrive while a person is typing go through rustyline's
//! external printer, which prints them above the line being edited without breaking it.
//!
//! The printer only queues a text while rustyline is reading (it shows it at its next
//! look at the terminal, after any keys typed ahead), and writes it at once otherwise,
//! without ending the line. So the client asks `Reading` whether a line is being read, and
//! learns from it when a queued text has surely been shown: once a later read began, and
//! had time to look (`Reading::shown`), or, while the same read goes on, once rustyline
//! took the text from the printer a moment ago (`Printer::taken_long_ago`). The printer's queue holds one text: a second one
//! waits until rustyline takes the first, which it does only while reading. The printer
//! therefore runs on a thread of its own (`Printer`): the client never waits on it, and so
//! never stops answering the line that would let rustyline read again (a deadlock the
//! tmux test found).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};

use super::commands::WORDS;

/// The prompt: plain (for width) and styled (the same width), shared with the client.
pub type Prompt = Arc<Mutex<(String, String)>>;
/// User names seen, for completion.
pub type Names = Arc<Mutex<BTreeSet<String>>>;

struct Completion {
    names: Names,
}

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (before, _) = line.split_at(pos);
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &before[start..];
        let words_before: Vec<&str> = before[..start].split_whitespace().collect();
        let pair = |s: &str| Pair { display: s.to_string(), replacement: format!("{s} ") };
        let candidates: Vec<Pair> = match words_before.as_slice() {
            [] => WORDS.iter().filter(|w| w.starts_with(&word.to_ascii_lowercase())).map(|w| pair(w)).collect(),
            [command] if ["send", "history"].contains(&command.to_ascii_lowercase().as_str()) => {
                let names = self.names.lock().map(|n| n.clone()).unwrap_or_default();
                names.iter().filter(|n| n.starts_with(word)).map(|n| pair(n)).collect()
            }
            _ => Vec::new(),
        };
        Ok((start, candidates))
    }
}

/// Ctrl-C on a half-typed line clears the line (as a shell does); on an empty one it is
/// the interrupt that ends the client.
struct ClearOrInterrupt;

impl rustyline::ConditionalEventHandler for ClearOrInterrupt {
    fn handle(&self, _: &rustyline::Event, _: rustyline::RepeatCount, _: bool, ctx: &rustyline::EventContext) -> Option<rustyline::Cmd> {
        if ctx.line().is_empty() { Some(rustyline::Cmd::Interrupt) } else { Some(rustyline::Cmd::Kill(rustyline::Movement::WholeLine)) }
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}

/// What the editing thread hands the client: a line, or the end (Ctrl-D, Ctrl-C, an
/// error: the client logs out and exits).
pub struct LineEditor {
    pub lines: tokio::sync::mpsc::Receiver<String>,
    ready: std::sync::mpsc::Sender<()>,
    /// Taken by the client, which prints through it while a person types.
    pub printer: Option<Printer>,
    /// Whether a line is being read, and since when.
    pub reading: Arc<Reading>,
}

/// rustyline's external printer on a thread of its own: `print` hands the text over and
/// returns at once. Texts are numbered; the thread records the last one rustyline took,
/// and when.
pub struct Printer {
    tx: std::sync::mpsc::Sender<(u64, String)>,
    next: std::sync::atomic::AtomicU64,
    handed: Arc<Mutex<(u64, Option<std::time::Instant>)>>,
}

impl Printer {
    fn start(mut printer: Box<dyn ExternalPrinter + Send>) -> std::io::Result<Printer> {
        let (tx, rx) = std::sync::mpsc::channel::<(u64, String)>();
        let handed = Arc::new(Mutex::new((0, None)));
        let record = handed.clone();
        std::thread::Builder::new().name("printer".into()).spawn(move || {
            while let Ok((number, text)) = rx.recv() {
                if printer.print(text.clone()).is_err() {
                    // The editor is gone: straight to stdout.
                    print!("{text}");
                }
                *record.lock().unwrap_or_else(|e| e.into_inner()) = (number, Some(std::time::Instant::now()));
            }
        })?;
        Ok(Printer { tx, next: std::sync::atomic::AtomicU64::new(1), handed })
    }

    /// Hands `text` (ending with a newline) to the printer thread; its number.
    pub fn print(&self, text: String) -> Option<u64> {
        let number = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.tx.send((number, text)).ok().map(|_| number)
    }

    /// Whether rustyline took text `number` at least `SHOWN_AFTER` ago (it shows what it
    /// takes within a turn of its loop while it reads).
    pub fn taken_long_ago(&self, number: u64) -> bool {
        let (last, at) = *self.handed.lock().unwrap_or_else(|e| e.into_inner());
        last >= number && at.is_some_and(|t| t.elapsed() >= SHOWN_AFTER)
    }
}

/// How long a read must have been going before what was queued for it counts as shown
/// (rustyline looks at its queue within a loop turn; this is generous).
const SHOWN_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// The editing thread's state, for the client: reads are numbered as they begin.
#[derive(Default)]
pub struct Reading {
    /// The number of the read going on, or 0 between reads.
    now: std::sync::atomic::AtomicU64,
    /// The number of the last read begun, and when.
    last: Mutex<(u64, Option<std::time::Instant>)>,
}

impl Reading {
    /// The number of the read going on, if a line is being read.
    pub fn current(&self) -> Option<u64> {
        Some(self.now.load(std::sync::atomic::Ordering::SeqCst)).filter(|n| *n > 0)
    }

    /// Whether a text queued during read `read` has surely been shown: a later read began
    /// at least `SHOWN_AFTER` ago (every read shows what waits in the queue when it starts).
    pub fn shown(&self, read: u64) -> bool {
        let (last, since) = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        last > read && since.is_some_and(|t| t.elapsed() >= SHOWN_AFTER)
    }

    fn begin(&self) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = (last.0 + 1, Some(std::time::Instant::now()));
        self.now.store(last.0, std::sync::atomic::Ordering::SeqCst);
    }

    fn end(&self) {
        self.now.store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

impl LineEditor {
    pub fn start(prompt: Prompt, names: Names) -> rustyline::Result<LineEditor> {
        let config = rustyline::Config::builder().auto_add_history(true).history_ignore_space(true).build();
        let mut editor: Editor<Completion, rustyline::history::DefaultHistory> = Editor::with_config(config)?;
        editor.set_helper(Some(Completion { names }));
        editor.bind_sequence(
            rustyline::KeyEvent::ctrl('C'),
            rustyline::EventHandler::Conditional(Box::new(ClearOrInterrupt)),
        );
        let printer = Some(Printer::start(Box::new(editor.create_external_printer()?))?);
        let (tx, lines) = tokio::sync::mpsc::channel(1);
        let (ready, wait) = std::sync::mpsc::channel::<()>();
        let reading = Arc::new(Reading::default());
        let state = reading.clone();
        std::thread::spawn(move || {
            while wait.recv().is_ok() {
                let current = prompt.lock().map(|p| p.clone()).unwrap_or_else(|_| ("> ".into(), "> ".into()));
                state.begin();
                let read = editor.readline(&current);
                state.end();
                match read {
                    Ok(line) => {
                        if tx.blocking_send(line).is_err() {
                            return;
                        }
                    }
                    Err(ReadlineError::Interrupted | ReadlineError::Eof) | Err(_) => return,
                }
            }
        });
        let editor = LineEditor { lines, ready, printer, reading };
        editor.next();
        Ok(editor)
    }

    /// The last line's command is done: prompt for the next one.
    pub fn next(&self) {
        let _ = self.ready.send(());
    }
}

/// `alice@quintet 3/5> `, and with colour five dots for the last answer (green agreed, red
/// differed, grey silent) in front of the count.
pub fn prompt(user: &str, cluster: &str, replicas: usize, agreed: &[usize], differed: &[usize], colour: bool) -> (String, String) {
    let health = if agreed.is_empty() && differed.is_empty() { format!("-/{replicas}") } else { format!("{}/{replicas}", agreed.len()) };
    let plain = format!("{user}@{cluster} {health}> ");
    if !colour {
        return (plain.clone(), plain);
    }
    let dots: String = (0..replicas)
        .map(|i| {
            let code = if agreed.contains(&i) { "32" } else if differed.contains(&i) { "31" } else { "90" };
            format!("\x1b[{code}m●\x1b[0m")
        })
        .collect();
    let plain_dots = "●".repeat(replicas);
    (format!("{user}@{cluster} {plain_dots} {health}> "), format!("\x1b[1m{user}@{cluster}\x1b[0m {dots} {health}> "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_offers_commands_then_the_names_seen() {
        let names: Names = Arc::new(Mutex::new(["alice", "albert", "bob"].iter().map(|s| s.to_string()).collect()));
        let c = Completion { names };
        let history = rustyline::history::DefaultHistory::new();
        let ctx = Context::new(&history);
        let shown = |line: &str| {
            let (start, pairs) = c.complete(line, line.len(), &ctx).unwrap();
            (start, pairs.into_iter().map(|p| p.display).collect::<Vec<_>>())
        };
        assert_eq!(shown("hi"), (0, vec!["history".to_string()]));
        assert_eq!(shown("DEL"), (0, vec!["delete".to_string(), "delete-account".into()]));
        assert_eq!(shown("send al"), (5, vec!["albert".to_string(), "alice".into()]));
        assert_eq!(shown("history b"), (8, vec!["bob".to_string()]));
        assert_eq!(shown("read 1"), (5, vec![]));
    }

    #[test]
    fn the_prompt_shows_the_user_the_cluster_and_who_answered() {
        assert_eq!(prompt("alice", "quintet", 5, &[], &[], false).0, "alice@quintet -/5> ");
        assert_eq!(prompt("alice", "quintet", 5, &[0, 1, 3], &[], false).0, "alice@quintet 3/5> ");
        let (plain, styled) = prompt("alice", "quintet", 5, &[0, 1, 3], &[4], true);
        assert_eq!(plain, "alice@quintet ●●●●● 3/5> ");
        assert!(styled.contains("\x1b[32m●") && styled.contains("\x1b[31m●") && styled.contains("\x1b[90m●"));
        let strip = |s: &str| {
            let mut out = String::new();
            let mut escape = false;
            for c in s.chars() {
                match (escape, c) {
                    (false, '\x1b') => escape = true,
                    (true, 'm') => escape = false,
                    (false, c) => out.push(c),
                    _ => {}
                }
            }
            out
        };
        assert_eq!(strip(&styled), plain, "the same width as the plain prompt");
    }
}
