//! How the line client shows what the replicas agreed on: one line (or JSON object) per
//! result or error, who agreed beside it with `--verbose`, and above the line being typed
//! while a person edits one. Each answer also updates the prompt and the names completed.

use super::{Agreed, Agreement, Session, editor, render};
use crate::pb;

/// How a text reached the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// Written out (stdout, a pipe, the terminal).
    Written,
    /// Queued with the line editor during its read number n as its printer's text number
    /// m: on the screen once a later read has begun (`editor::Reading::shown`), or, while
    /// read n goes on, once rustyline took the text a moment ago (`Printer::taken_long_ago`).
    Queued(u64, u64),
}

impl Session {
    /// Prints one answer or delivery, and says how. While a person is typing a line, above
    /// it (the line editor's printer); otherwise on stdout, each line ended. On a terminal
    /// with line editing, from the start of the line, clearing what was typed ahead there
    /// (it stays in the input, and the editor shows it again): no text is glued to it.
    pub(super) fn print(&mut self, lines: &[String], value: &serde_json::Value) -> Shown {
        if self.json {
            println!("{value}");
            return Shown::Written;
        }
        if let (Some(printer), Some(read)) = (self.printer.as_ref(), self.reading.as_ref().and_then(|r| r.current()))
            && let Some(number) = printer.print(format!("{}\n", lines.join("\n")))
        {
            return Shown::Queued(read, number);
        }
        let start = if self.reading.is_some() { "\r\x1b[K" } else { "" };
        for (i, line) in lines.iter().enumerate() {
            println!("{}{line}", if i == 0 { start } else { "" });
        }
        Shown::Written
    }

    /// After an answer: the prompt shows who answered, and names it carried complete.
    fn remember(&mut self, agreement: &Agreement, outcome: &pb::Outcome) {
        *self.prompt.lock().unwrap_or_else(|e| e.into_inner()) =
            editor::prompt(&self.user, &self.cluster_name, self.ids.len(), &agreement.agreed, &agreement.differed, self.colour);
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        match &outcome.kind {
            Some(pb::outcome::Kind::Accounts(p) | pb::outcome::Kind::Online(p)) => names.extend(p.names.iter().cloned()),
            Some(pb::outcome::Kind::Conversation(c)) => names.extend(c.messages.iter().flat_map(|m| [m.from.clone(), m.to.clone()])),
            Some(pb::outcome::Kind::Messages(m)) => names.extend(m.messages.iter().map(|m| m.from.clone())),
            Some(pb::outcome::Kind::Inbox(i)) => names.extend(i.senders.iter().map(|e| e.from.clone())),
            _ => {}
        }
        while names.len() > 10_000 {
            names.pop_last();
        }
    }

    pub(super) fn print_error(&mut self, command: &str, code: &str, message: &str) {
        self.refused = true;
        let value = serde_json::json!({"type": "error", "command": command, "code": code, "message": message});
        self.print(&[self.painted_error(format!("error: {message}"))], &value);
    }

    /// An `error: ...` line, its label red on a colour terminal.
    pub(super) fn painted_error(&self, line: String) -> String {
        if self.colour { line.replacen("error:", "\x1b[31merror:\x1b[0m", 1) } else { line }
    }

    /// Who agreed, into the JSON always and onto the last line with `--verbose`.
    pub(super) fn add_agreement(&self, lines: &mut [String], value: &mut serde_json::Value, agreement: &Agreement) {
        let (yes, no, silent) = render::agreement(&self.ids, agreement);
        if self.verbose && let Some(last) = lines.last_mut() {
            last.push_str(&format!("   {}", render::agreement_text(&yes, &no, &silent)));
        }
        (value["agreed"], value["differed"], value["silent"]) = (yes.into(), no.into(), silent.into());
    }

    /// Says which replicas' signed answers, heard after a result was shown, differ from it
    /// (on stderr: the result stands; with at most two faulty replicas it is right).
    pub(super) fn tell_late(&mut self) {
        for late in self.client.take_late() {
            let index = self.ids.iter().position(|id| *id == late.replica);
            // Once per replica and session, as for the proofs found with the result.
            if index.is_some_and(|i| !self.proven_told.insert(i)) {
                continue;
            }
            let kept = if late.proven { "; a proof against it is kept (`quintet evidence`)" } else { "" };
            let f = self.ids.len().saturating_sub(1) / 2;
            eprintln!(
                "quintet chat: warning: replica {} signed another answer than the result shown at height {} ({} replicas signed that result alike: either {} lies, or more than {f} replicas do){kept}",
                late.replica, late.height, self.client.quorum(), late.replica
            );
        }
    }

    /// Prints an agreed outcome, with who agreed (always in JSON, with `--verbose` as text).
    pub(super) fn show(&mut self, command: &str, agreed: &Agreed) {
        self.tell_late();
        let (lines, mut value) = render::outcome(command, &self.user, agreed.height, &agreed.outcome);
        if !agreed.settled {
            // Refused by every replica that answered, as things stand: not applied now.
            value["settled"] = false.into();
        }
        if !agreed.proven.is_empty() {
            let proven: Vec<&str> = agreed.proven.iter().filter_map(|i| self.ids.get(*i).map(String::as_str)).collect();
            // Said once per replica and session; the JSON says it every time.
            let new: Vec<&str> = agreed.proven.iter().filter(|i| self.proven_told.insert(**i)).filter_map(|i| self.ids.get(*i).map(String::as_str)).collect();
            if !new.is_empty() {
                let file = self.client.evidence_file().map_or_else(String::new, |f| format!(" in {}", f.display()));
                let (who, they) = match new.as_slice() {
                    [one] => (format!("replica {one} signed another result"), format!("{one} lies")),
                    many => (format!("replicas {} signed other results", many.join(" and ")), "they lie".to_owned()),
                };
                eprintln!(
                    "quintet chat: warning: {who} than the one shown (signed alike by at least {} replicas): with at most {} faulty replicas, {they}; proofs are kept{file} (`quintet evidence` checks them)",
                    self.client.quorum(),
                    self.ids.len().saturating_sub(1) / 2
                );
            }
            value["proven"] = proven.into();
        }
        self.show_lines(lines, value, &agreed.agreement, &agreed.outcome);
    }

    /// `show` for lines already rendered (pages add where they stand).
    pub(super) fn show_lines(&mut self, mut lines: Vec<String>, mut value: serde_json::Value, agreement: &Agreement, outcome: &pb::Outcome) {
        if let Some(pb::outcome::Kind::Failure(f)) = &outcome.kind {
            self.refused = true;
            let replaced = match f.code.as_str() {
                // The replicas verify with the account's key; the key comes from the password.
                "bad_signature" => Some(format!("wrong password for {} (the replicas refused its signature)", self.user)),
                // This request reused the number of one the person stopped waiting for.
                "replayed" if self.number_reused => {
                    Some("not done: the request you stopped waiting for was applied in its place (see history); try again".to_string())
                }
                _ => None,
            };
            if let Some(message) = replaced {
                value["message"] = message.clone().into();
                lines = vec![format!("error: {message}")];
            }
            lines = lines.into_iter().map(|l| self.painted_error(l)).collect();
        }
        self.add_agreement(&mut lines, &mut value, agreement);
        self.print(&lines, &value);
        self.remember(agreement, outcome);
        if self.seq_spent {
            // The number was spent: the next request has a new one.
            self.number_reused = false;
        }
    }
}
