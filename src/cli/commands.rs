//! The chat client's command language: one line in, one parsed command out (or a usage
//! error a person can act on). Pure, so every spelling is tested without a cluster.

use crate::chat::{Op, READ_LIMIT_MAX, TEXT_LEN_MAX};

/// Unread messages one `read` fetches when no count is given.
pub const READ_DEFAULT: u32 = 10;
/// Senders `inbox` shows.
pub const INBOX_LIMIT: u32 = 50;
/// Messages `history` shows when no count is given.
pub const HISTORY_DEFAULT: u32 = 20;

pub const HELP: &str = "commands (case does not matter):
  create                      create the account (and log in)
  login | logout
  list [pattern] [--page n]   accounts matching * and ? wildcards, 20 a page
  who                         who is logged in now
  inbox                       your conversations, latest first, with unread counts
  send <user> <text>          send a message
  read [n]                    read up to n unread messages (default 10)
  history <user> [n]          the last n messages between you and <user> (default 20)
  delete <id>...              delete messages you received or sent, for you
  block <user> | unblock <user>   refuse (or accept again) messages from <user>
  blocked                     who you block
  delete-account [--yes]      delete your account and its mailbox (asks first)
  help | quit";

/// Every command word, for completion and for telling a typo from a wrong argument.
pub const WORDS: &[&str] =
    &["create", "login", "logout", "list", "who", "inbox", "send", "read", "history", "delete", "delete-account", "block", "unblock", "blocked", "help", "quit", "exit"];

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Help,
    Quit,
    /// An operation sent as it is.
    Op(Op),
    List { pattern: String, page: u32 },
    Who { page: u32 },
    History { with: String, count: u32 },
    /// `yes`: confirmed on the command line (scripts); otherwise a terminal asks.
    DeleteAccount { yes: bool },
}

/// A line the client refuses before sending anything: the command word (lower case) and
/// why, with a stable code (`usage`, or the state machine's own code for its limits).
#[derive(Clone, Debug, PartialEq)]
pub struct Refused {
    pub command: String,
    pub code: &'static str,
    pub message: String,
}

fn usage(command: &str, message: impl Into<String>) -> Refused {
    Refused { command: command.into(), code: "usage", message: message.into() }
}

/// A page number from `--page n`, `--page=n` or a bare trailing number.
fn page_of(command: &str, args: &mut Vec<&str>) -> Result<u32, Refused> {
    let mut page = None;
    let mut i = 0;
    while i < args.len() {
        let value = if args[i] == "--page" {
            let v = args.get(i + 1).copied().ok_or_else(|| usage(command, "--page needs a number"))?;
            args.drain(i..i + 2);
            v
        } else if let Some(v) = args[i].strip_prefix("--page=") {
            args.remove(i);
            v
        } else {
            i += 1;
            continue;
        };
        page = Some(value);
    }
    if page.is_none() && args.len() == 2 {
        page = args.pop();
    }
    match page.map(|p| p.parse::<u32>()) {
        None => Ok(1),
        Some(Ok(p)) if p >= 1 => Ok(p),
        _ => Err(usage(command, "the page must be a number from 1")),
    }
}

/// The command word within two edits (insert, delete, replace, swap) of a typo, if one is.
fn closest(typed: &str) -> Option<&'static str> {
    let distance = |a: &[u8], b: &[u8]| {
        // Optimal string alignment distance, on two short words.
        let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        for j in 0..=b.len() {
            d[0][j] = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
                }
            }
        }
        d[a.len()][b.len()]
    };
    if typed.len() > 20 {
        return None;
    }
    WORDS.iter().map(|w| (distance(typed.as_bytes(), w.as_bytes()), *w)).filter(|(d, _)| *d <= 2).min().map(|(_, w)| w)
}

/// Parses one line. `None` for a blank line.
pub fn parse(line: &str, public_key: [u8; 32]) -> Option<Result<Command, Refused>> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (&first, args) = words.split_first()?;
    let command = first.to_ascii_lowercase();
    let c = command.as_str();
    let mut args = args.to_vec();
    let parsed = match (c, args.as_slice()) {
        ("help" | "?", _) => Ok(Command::Help),
        ("quit" | "exit", []) => Ok(Command::Quit),
        ("create", []) => Ok(Command::Op(Op::CreateAccount { public_key })),
        ("login", []) => Ok(Command::Op(Op::Login)),
        ("inbox", []) => Ok(Command::Op(Op::Inbox { limit: INBOX_LIMIT })),
        ("logout", []) => Ok(Command::Op(Op::Logout)),
        ("delete-account", []) => Ok(Command::DeleteAccount { yes: false }),
        ("delete-account", ["--yes" | "-y"]) => Ok(Command::DeleteAccount { yes: true }),
        ("list", _) => page_of(c, &mut args).and_then(|page| match args.as_slice() {
            [] => Ok(Command::List { pattern: "*".into(), page }),
            [pattern] => Ok(Command::List { pattern: pattern.to_string(), page }),
            _ => Err(usage(c, "usage: list [pattern] [--page n]")),
        }),
        ("who", _) => match page_of(c, &mut args) {
            Ok(page) if args.is_empty() => Ok(Command::Who { page }),
            _ => Err(usage(c, "usage: who [--page n]")),
        },
        ("send", [to, _, ..]) => {
            // The text is the rest of the line after the recipient, spaces kept.
            let after_command = line.trim_start()[first.len()..].trim_start();
            let text = after_command[to.len()..].trim_start().to_string();
            if text.len() > TEXT_LEN_MAX {
                // Refused before anything is sent, in the state machine's own words.
                let error = crate::chat::ChatError::TextTooLong(text.len());
                return Some(Err(Refused { command: command.clone(), code: error.code(), message: error.to_string() }));
            }
            Ok(Command::Op(Op::Send { to: to.to_string(), text }))
        }
        ("read", []) => Ok(Command::Op(Op::Read { max: READ_DEFAULT })),
        ("read", [n]) => match n.parse::<u32>() {
            Ok(n) if (1..=READ_LIMIT_MAX).contains(&n) => Ok(Command::Op(Op::Read { max: n })),
            _ => Err(usage(c, format!("n must be a number from 1 to {READ_LIMIT_MAX}"))),
        },
        ("history", [with]) => Ok(Command::History { with: with.to_string(), count: HISTORY_DEFAULT }),
        ("history", [with, n]) => match n.parse::<u32>() {
            Ok(n) if (1..=READ_LIMIT_MAX).contains(&n) => Ok(Command::History { with: with.to_string(), count: n }),
            _ => Err(usage(c, format!("n must be a number from 1 to {READ_LIMIT_MAX}"))),
        },
        ("delete", [_, ..]) => match args.iter().map(|a| a.parse::<u64>()).collect::<Result<Vec<_>, _>>() {
            Ok(ids) => Ok(Command::Op(Op::DeleteMessages { ids })),
            Err(_) => Err(usage(c, "message ids are numbers (the [n] before each message)")),
        },
        ("block", [user]) => Ok(Command::Op(Op::Block { user: user.to_string(), unblock: false })),
        ("unblock", [user]) => Ok(Command::Op(Op::Block { user: user.to_string(), unblock: true })),
        ("blocked", []) => Ok(Command::Op(Op::Block { user: String::new(), unblock: false })),
        ("block" | "unblock", _) => Err(usage(c, format!("usage: {c} <user>"))),
        ("read", _) => Err(usage(c, "usage: read [n]")),
        ("send", _) => Err(usage(c, "usage: send <user> <text>")),
        ("history", _) => Err(usage(c, "usage: history <user> [n]")),
        ("delete", _) => Err(usage(c, "usage: delete <id>...")),
        ("delete-account", _) => Err(usage(c, "usage: delete-account [--yes]")),
        _ if WORDS.contains(&c) => Err(usage(c, format!("{c} takes no arguments (type help)"))),
        _ => Err(usage(c, match closest(c) {
            Some(word) => format!("unknown command {}: did you mean {word}? (type help)", crate::chat::quote(first)),
            None => format!("unknown command {} (type help)", crate::chat::quote(first)),
        })),
    };
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse(line, [7; 32]).expect("not blank").unwrap_or_else(|e| panic!("{line}: {e:?}"))
    }

    fn refused(line: &str) -> Refused {
        parse(line, [7; 32]).expect("not blank").expect_err(line)
    }

    #[test]
    fn commands_are_case_insensitive_and_arguments_keep_their_case() {
        assert_eq!(ok("LOGIN"), Command::Op(Op::Login));
        assert_eq!(ok("Send Bob Hello  There"), Command::Op(Op::Send { to: "Bob".into(), text: "Hello  There".into() }));
        assert_eq!(ok("  send bob  x"), Command::Op(Op::Send { to: "bob".into(), text: "x".into() }));
        assert_eq!(ok("History bob 5"), Command::History { with: "bob".into(), count: 5 });
        assert!(parse("   ", [0; 32]).is_none());
    }

    #[test]
    fn list_pages_work_with_and_without_a_pattern() {
        assert_eq!(ok("list"), Command::List { pattern: "*".into(), page: 1 });
        assert_eq!(ok("list --page 2"), Command::List { pattern: "*".into(), page: 2 });
        assert_eq!(ok("list --page=3 a*"), Command::List { pattern: "a*".into(), page: 3 });
        assert_eq!(ok("list a* 2"), Command::List { pattern: "a*".into(), page: 2 });
        assert_eq!(ok("who --page 2"), Command::Who { page: 2 });
        assert_eq!(ok("INBOX"), Command::Op(Op::Inbox { limit: INBOX_LIMIT }));
        assert_eq!(refused("list --page 0").code, "usage");
        assert_eq!(refused("list --page").message, "--page needs a number");
        assert_eq!(refused("list a b c").code, "usage");
    }

    #[test]
    fn wrong_input_gets_a_reason_a_person_can_act_on() {
        assert_eq!(refused("frobnicate").message, "unknown command \"frobnicate\" (type help)");
        assert_eq!(refused("sned bob hi").message, "unknown command \"sned\": did you mean send? (type help)");
        assert_eq!(refused("histroy").message, "unknown command \"histroy\": did you mean history? (type help)");
        assert_eq!(refused("send bob").message, "usage: send <user> <text>");
        assert_eq!(refused("read 0").message, "n must be a number from 1 to 100");
        assert_eq!(refused("LOGIN now").message, "login takes no arguments (type help)");
        assert_eq!(refused("read 5 6").message, "usage: read [n]");
        assert_eq!(refused("who x").message, "usage: who [--page n]");
        assert_eq!(refused("who --page 0").message, "usage: who [--page n]");
        assert_eq!(refused("delete").message, "usage: delete <id>...");
        assert_eq!(refused("delete x").code, "usage");
        assert_eq!(refused("delete-account now").message, "usage: delete-account [--yes]");
        let long = refused(&format!("send bob {}", "x".repeat(TEXT_LEN_MAX + 1)));
        assert_eq!((long.code, long.message.as_str()), ("text_too_long", "message text is 65537 bytes; the limit is 65536"));
        assert_eq!(ok("Block mallory"), Command::Op(Op::Block { user: "mallory".into(), unblock: false }));
        assert_eq!(ok("unblock mallory"), Command::Op(Op::Block { user: "mallory".into(), unblock: true }));
        assert_eq!(ok("blocked"), Command::Op(Op::Block { user: String::new(), unblock: false }));
        assert_eq!(refused("block").message, "usage: block <user>");
        assert_eq!(refused("unblock a b").message, "usage: unblock <user>");
        assert_eq!(ok("delete-account --yes"), Command::DeleteAccount { yes: true });
        assert_eq!(ok("delete-account"), Command::DeleteAccount { yes: false });
    }
}
