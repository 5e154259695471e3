//! The chat client's paged commands: `list` and `who` (names, 20 a page) and `history`
//! (a conversation), each gathered across as many requests as the replicas' bounded scans
//! need.

use super::{ClientError, Op, Session, render};
use crate::chat::PAGE_LIMIT_MAX;
use crate::pb;

/// Names per `list` and `who` page.
const PAGE_SIZE: u32 = 20;

impl Session {
    /// `list` (accounts) or `who` (users online), page `page` of 20. Pages are followed by
    /// cursor. A replica looks at a bounded number of names per request, so one request may
    /// return fewer names than asked (even none) with a cursor to go on from; the names of
    /// page n are gathered across as many requests as needed.
    pub(super) async fn names(&mut self, online: bool, pattern: &str, page: u32) -> Result<bool, ClientError> {
        let command = if online { "who" } else { "list" };
        let want = page as usize * PAGE_SIZE as usize;
        let (mut names, mut after) = (Vec::new(), String::new());
        let (last, total) = loop {
            let limit = (want - names.len()).min(PAGE_LIMIT_MAX as usize) as u32;
            let op = if online {
                Op::Who { after: after.clone(), limit }
            } else {
                Op::ListAccounts { pattern: pattern.to_string(), after: after.clone(), limit }
            };
            let agreed = self.request(&op).await?;
            let (Some(pb::outcome::Kind::Accounts(p)) | Some(pb::outcome::Kind::Online(p))) = &agreed.outcome.kind else {
                self.show(command, &agreed);
                return Ok(true);
            };
            names.extend(p.names.iter().cloned());
            after = p.next.clone();
            let total = p.total;
            if names.len() >= want || after.is_empty() {
                break (agreed, total);
            }
        };
        let first = (page as usize - 1) * PAGE_SIZE as usize;
        let pages = total.div_ceil(PAGE_SIZE as u64).max(1);
        if first >= names.len() && page > 1 {
            let matching = names.len().div_ceil(PAGE_SIZE as usize).max(1) as u64;
            let what = match (pattern == "*", if pattern == "*" { pages } else { matching }) {
                (true, 1) => "there is only 1 page".to_string(),
                (true, n) => format!("there are only {n} pages"),
                (false, 1) => "only 1 page matches".to_string(),
                (false, n) => format!("only {n} pages match"),
            };
            self.print_error(command, "no_such_page", &what);
            return Ok(true);
        }
        let shown = pb::AccountPage { names: names[first..names.len().min(want)].to_vec(), next: after, total };
        let kind = if online { pb::outcome::Kind::Online(shown) } else { pb::outcome::Kind::Accounts(shown) };
        let outcome = pb::Outcome { kind: Some(kind) };
        let (mut lines, mut value) = render::outcome(command, &self.user, last.height, &outcome);
        value["page"] = serde_json::json!(page);
        value["pages"] = serde_json::json!(if pattern == "*" { Some(pages) } else { None });
        if pattern == "*"
            && let Some(line) = lines.last_mut()
            && line.ends_with(']')
        {
            line.insert_str(line.len() - 1, &format!("; page {page} of {pages}"));
        }
        self.show_lines(lines, value, &last.agreement, &outcome);
        Ok(true)
    }

    /// `history <user> [n]`: the last n messages between the two, oldest first, gathered
    /// across requests (each replica scans a bounded part of a mailbox per request).
    pub(super) async fn history(&mut self, with: &str, count: u32) -> Result<bool, ClientError> {
        let mut messages = Vec::new();
        let mut before = 0;
        let mut rounds = 0;
        let last = loop {
            rounds += 1;
            let op = Op::History { with: with.to_string(), before, limit: count - messages.len() as u32 };
            let agreed = self.request(&op).await?;
            let Some(pb::outcome::Kind::Conversation(c)) = &agreed.outcome.kind else {
                self.show("history", &agreed);
                return Ok(true);
            };
            // Older pages come before what is already gathered.
            messages.splice(0..0, c.messages.iter().cloned());
            before = c.before;
            if before == 0 || messages.len() >= count as usize || rounds == 50 {
                break agreed;
            }
        };
        let outcome = pb::Outcome { kind: Some(pb::outcome::Kind::Conversation(pb::Conversation { messages, before })) };
        let (lines, value) = render::outcome("history", &self.user, last.height, &outcome);
        self.show_lines(lines, value, &last.agreement, &outcome);
        Ok(true)
    }
}
