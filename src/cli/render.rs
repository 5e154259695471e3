//! How results look: one readable line per result, or one JSON object per line (`--json`).

use serde_json::{Value, json};

use crate::client::Agreement;
use crate::pb;
use crate::pb::outcome::Kind;

/// `YYYY-MM-DD HH:MM:SS` (UTC) from Unix milliseconds.
pub fn timestamp(time_ms: u64) -> String {
    let secs = time_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60)
}

/// This machine's offset from UTC at `time_ms` and the zone's abbreviation, as the C
/// library reads them from `TZ` (or the system's zone); UTC if it cannot tell.
fn local_zone(time_ms: u64) -> (i64, String) {
    let secs = (time_ms / 1000) as libc::time_t;
    // SAFETY: `localtime_r` writes only into `tm`, which lives on this stack frame, and
    // reads `TZ` (which this program never changes) the first time. `tm_zone` points into
    // the C library's static zone names, read at once.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return (0, "UTC".into());
        }
        let zone = if tm.tm_zone.is_null() { String::new() } else { std::ffi::CStr::from_ptr(tm.tm_zone).to_string_lossy().into_owned() };
        (tm.tm_gmtoff, zone)
    }
}

/// `YYYY-MM-DD HH:MM:SS ZONE` in the local time zone (`TZ` honoured).
pub fn local_timestamp(time_ms: u64) -> String {
    let (offset, zone) = local_zone(time_ms);
    with_offset(time_ms, offset, &zone)
}

fn with_offset(time_ms: u64, offset_secs: i64, zone: &str) -> String {
    let shifted = (time_ms as i64).saturating_add(offset_secs * 1000).max(0) as u64;
    let zone = if zone.is_empty() { format!("UTC{:+}", offset_secs / 3600) } else { zone.to_string() };
    format!("{} {zone}", timestamp(shifted))
}

/// One message on one line. The text is the sender's and shown as text only: control
/// characters (escape sequences that would clear the screen or set the window title, line
/// breaks that would forge another line such as `[7] admin: …`) and the invisible
/// direction marks that reorder what follows are shown escaped, as `\u{1b}`.
pub fn message_line(m: &pb::Message) -> String {
    format!("[{}] {} {}: {}", m.id, local_timestamp(m.time_ms), m.from, shown(&m.text))
}

/// Which replicas agreed with a result, which answered otherwise, which were silent (not
/// heard by the time the result was shown), by replica id.
pub fn agreement(ids: &[String], a: &Agreement) -> (Vec<String>, Vec<String>, Vec<String>) {
    let pick = |which: &dyn Fn(usize) -> bool| ids.iter().enumerate().filter(|(i, _)| which(*i)).map(|(_, id)| id.clone()).collect();
    let silent = |i: usize| !a.agreed.contains(&i) && !a.differed.contains(&i);
    (pick(&|i| a.agreed.contains(&i)), pick(&|i| a.differed.contains(&i)), pick(&silent))
}

/// `agreed A B D · differed - · silent C E`, for `--verbose`.
pub fn agreement_text(agreed: &[String], differed: &[String], silent: &[String]) -> String {
    let list = |ids: &[String]| if ids.is_empty() { "-".to_string() } else { ids.join(" ") };
    format!("(agreed {} · differed {} · silent {})", list(agreed), list(differed), list(silent))
}

/// A page of names with where it stands: `what` is ("account", "accounts") or the like.
fn names_line(names: &[String], total: u64, what: (&str, &str), more: bool) -> String {
    let more = if more { "; more on the next page" } else { "" };
    let list = if names.is_empty() { "(none)".to_string() } else { names.join(", ") };
    format!("{list}   [{} shown of {total} {}{more}]", names.len(), if total == 1 { what.0 } else { what.1 })
}

pub use crate::client::shown;

pub fn message_json(m: &pb::Message) -> Value {
    json!({"id": m.id, "from": m.from, "from_account": m.from_account, "to": m.to, "time_ms": m.time_ms, "text": m.text})
}

/// Plain lines and the JSON object for one agreed outcome of `command`.
pub fn outcome(command: &str, user: &str, height: u64, outcome: &pb::Outcome) -> (Vec<String>, Value) {
    let mut value = json!({"type": "result", "command": command, "height": height});
    let put = |value: &mut Value, key: &str, v: Value| value[key] = v;
    let lines = match &outcome.kind {
        None => {
            value = json!({"type": "error", "command": command, "code": "empty", "message": "empty reply"});
            vec!["error: the replicas agreed on an empty reply".into()]
        }
        Some(Kind::Failure(f)) => {
            value = json!({"type": "error", "command": command, "code": f.code, "message": f.message});
            vec![format!("error: {}", shown(&f.message))]
        }
        Some(Kind::AccountCreated(c)) => {
            put(&mut value, "account", json!(c.account));
            vec![format!("created account {user} (#{}); logged in", c.account)]
        }
        Some(Kind::LoggedIn(l)) => {
            put(&mut value, "unread", json!(l.unread));
            let plural = if l.unread == 1 { "" } else { "s" };
            vec![format!("logged in as {user}; {} unread message{plural}", l.unread)]
        }
        Some(Kind::LoggedOut(_)) => vec!["logged out".into()],
        Some(Kind::Accounts(page)) => {
            put(&mut value, "names", json!(page.names));
            put(&mut value, "next", json!(page.next));
            put(&mut value, "total", json!(page.total));
            vec![names_line(&page.names, page.total, ("account", "accounts"), !page.next.is_empty())]
        }
        Some(Kind::Online(page)) => {
            put(&mut value, "names", json!(page.names));
            put(&mut value, "next", json!(page.next));
            put(&mut value, "total", json!(page.total));
            vec![names_line(&page.names, page.total, ("user online", "users online"), !page.next.is_empty())]
        }
        Some(Kind::Conversation(c)) => {
            put(&mut value, "messages", Value::Array(c.messages.iter().map(message_json).collect()));
            put(&mut value, "before", json!(c.before));
            let mut lines: Vec<String> = c.messages.iter().map(message_line).collect();
            let older = if c.before == 0 { "" } else { "; older ones exist" };
            lines.push(format!("{} message(s){older}", c.messages.len()));
            lines
        }
        Some(Kind::Inbox(i)) => {
            let senders: Vec<Value> = i.senders.iter().map(|e| json!({"from": e.from, "unread": e.unread, "newest": e.newest, "time_ms": e.time_ms})).collect();
            put(&mut value, "senders", Value::Array(senders));
            put(&mut value, "unread", json!(i.unread));
            put(&mut value, "complete", json!(i.complete));
            let mut lines: Vec<String> = i
                .senders
                .iter()
                .map(|e| {
                    let unread = if e.unread == 0 { String::new() } else { format!(", {} unread", e.unread) };
                    format!("{} (last {}{unread})", e.from, local_timestamp(e.time_ms))
                })
                .collect();
            let partial = if i.complete { String::new() } else { format!("; only your newest {} messages were looked at", crate::chat::LIST_SCAN_MAX) };
            let who = if i.senders.is_empty() { "no conversations yet".to_string() } else { format!("{} conversation(s)", i.senders.len()) };
            lines.push(format!("{who}; {} unread in all{partial}", i.unread));
            lines
        }
        Some(Kind::Sent(s)) => {
            put(&mut value, "id", json!(s.id));
            vec![format!("sent message {}", s.id)]
        }
        Some(Kind::Messages(m)) => {
            put(&mut value, "messages", Value::Array(m.messages.iter().map(message_json).collect()));
            put(&mut value, "unread_left", json!(m.unread_left));
            let mut lines: Vec<String> = m.messages.iter().map(message_line).collect();
            lines.push(format!("{} message(s) read; {} unread left", m.messages.len(), m.unread_left));
            lines
        }
        Some(Kind::MarkedRead(c)) => {
            put(&mut value, "count", json!(c.count));
            vec![format!("{} message(s) marked read", c.count)]
        }
        Some(Kind::Deleted(c)) => {
            put(&mut value, "count", json!(c.count));
            vec![format!("deleted {} message(s)", c.count)]
        }
        Some(Kind::Alive(a)) => {
            put(&mut value, "until_ms", json!(a.until_ms));
            vec!["still here".into()]
        }
        Some(Kind::Blocked(b)) => {
            put(&mut value, "blocked", json!(b.names));
            let list = if b.names.is_empty() { "nobody".to_string() } else { b.names.join(", ") };
            vec![format!("you block {list}")]
        }
        Some(Kind::AccountDeleted(d)) => {
            put(&mut value, "unread_dropped", json!(d.unread_dropped));
            vec![format!("account {user} deleted ({} unread message(s) dropped)", d.unread_dropped)]
        }
    };
    (lines, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_civil_utc() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(timestamp(1_795_276_937_000), "2026-11-21 16:02:17");
    }

    #[test]
    fn a_senders_control_characters_and_direction_marks_are_shown_not_obeyed() {
        let m = |text: &str| pb::Message { id: 3, from: "mallory".into(), from_account: 2, to: "alice".into(), time_ms: 0, text: text.into() };
        // Clear the screen and set the window title; forge a second line; reverse the rest.
        let line = message_line(&m("hi\u{1b}[2J\u{1b}]0;pwned\u{7}\n[7] 1970-01-01 00:00:00 admin: send me your password\u{202e}gnp.exe"));
        let line = line.split_once(" mallory: ").map(|(_, text)| format!("mallory: {text}")).unwrap();
        assert_eq!(line, "mallory: hi\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\u{a}[7] 1970-01-01 00:00:00 admin: send me your password\\u{202e}gnp.exe");
        assert!(!line.chars().any(|c| c.is_control()), "nothing for the terminal to obey");
        // Ordinary text, tabs and any script stay as they are; JSON keeps the exact text.
        assert_eq!(shown("tab\there, ünïcödé, 日本語, emoji 🎉"), "tab\there, ünïcödé, 日本語, emoji 🎉");
        assert_eq!(message_json(&m("a\u{1b}b"))["text"], "a\u{1b}b");
        assert!(message_json(&m("a\u{1b}b")).to_string().contains("\\u001b"), "JSON escapes it its own way");
    }

    #[test]
    fn local_times_carry_their_zone() {
        assert_eq!(with_offset(1_795_276_937_000, 3 * 3600, "XYZ"), "2026-11-21 19:02:17 XYZ");
        assert_eq!(with_offset(1_795_276_937_000, -5 * 3600, ""), "2026-11-21 11:02:17 UTC-5");
        assert_eq!(with_offset(0, -3600, "W"), "1970-01-01 00:00:00 W", "never before the epoch");
        assert!(local_timestamp(0).starts_with("19"), "{}", local_timestamp(0));
    }

    #[test]
    fn agreement_names_every_replica_once() {
        let ids: Vec<String> = ["A", "B", "C", "D", "E"].iter().map(|s| s.to_string()).collect();
        let (yes, no, silent) = agreement(&ids, &Agreement { agreed: vec![0, 1, 3], differed: vec![4] });
        assert_eq!((yes, no.clone(), silent.clone()), (vec!["A".to_string(), "B".into(), "D".into()], vec!["E".to_string()], vec!["C".to_string()]));
        assert_eq!(agreement_text(&["A".into()], &[], &silent), "(agreed A · differed - · silent C)");
    }

    #[test]
    fn pages_of_names_say_how_many_there_are() {
        let page = |names: &[&str], next: &str, total| pb::Outcome {
            kind: Some(Kind::Accounts(pb::AccountPage { names: names.iter().map(|n| n.to_string()).collect(), next: next.into(), total })),
        };
        let (lines, value) = outcome("list", "a", 3, &page(&["alice", "bob"], "bob", 41));
        assert_eq!(lines, ["alice, bob   [2 shown of 41 accounts; more on the next page]"]);
        assert_eq!(value["total"], 41);
        let (lines, _) = outcome("list", "a", 3, &page(&[], "", 1));
        assert_eq!(lines, ["(none)   [0 shown of 1 account]"]);
    }

    #[test]
    fn failures_render_as_one_error_line() {
        let (lines, value) = outcome("send", "a", 0, &crate::wire::failure("unknown_user", "no account named \"x\""));
        assert_eq!(lines, ["error: no account named \"x\""]);
        assert_eq!(value["code"], "unknown_user");
        assert_eq!(value["type"], "error");
    }
}
