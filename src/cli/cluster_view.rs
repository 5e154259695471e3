//! The cluster at a glance, as `quintet status` and `quintet up` show it (after `etcdctl
//! endpoint status -w table`): one row per replica, read against what a quorum of replicas
//! reports. A quorum of views names the leader (one per table: a replica still in an
//! older view shows as behind), a quorum of heights says how far behind each replica is,
//! and a replica whose state differs from the others' at the same height is flagged.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::client::StatusError;
use crate::crypto::encode_hex;
use crate::pb;

/// Every replica's status (or why there is none), with what a quorum of them reports.
pub struct ClusterView {
    /// (id, address, status), in the config's order.
    pub rows: Vec<(String, String, Result<pb::StatusReply, StatusError>)>,
    pub quorum: usize,
    /// The highest view and height that a quorum of replicas has reached (the quorum-th
    /// highest reported), if a quorum answered.
    pub view: Option<u64>,
    pub height: Option<u64>,
    /// The leader of `view`, as the replicas in that view name it.
    pub leader: Option<String>,
    /// Replicas whose committed block or state digest differs from the most common one at
    /// the same height.
    pub differs: BTreeSet<String>,
    /// Replicas `up` started moments ago: not answering yet is "starting", not "down".
    pub starting: BTreeSet<String>,
    /// Checked proofs against each replica, by kind, from `quintet evidence`'s gathering.
    pub proofs: BTreeMap<String, BTreeMap<crate::evidence::Kind, usize>>,
}

/// The `quorum`-th highest of `values`.
fn at_least(quorum: usize, mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable_by(|a, b| b.cmp(a));
    values.get(quorum.checked_sub(1)?).copied()
}

/// Replicas whose value at a key differs from the value most of those at that key report.
fn minority<'a>(items: impl Iterator<Item = (&'a str, u64, &'a [u8])>) -> BTreeSet<String> {
    let mut by_key: BTreeMap<u64, Vec<(&str, &[u8])>> = BTreeMap::new();
    for (id, key, value) in items {
        by_key.entry(key).or_default().push((id, value));
    }
    let mut out = BTreeSet::new();
    for group in by_key.values() {
        let common = group.iter().max_by_key(|(_, v)| group.iter().filter(|(_, w)| w == v).count()).map(|(_, v)| *v);
        out.extend(group.iter().filter(|(_, v)| Some(*v) != common).map(|(id, _)| id.to_string()));
    }
    out
}

/// The statuses a client gathered, with each replica's address from the config.
pub fn rows(config: &crate::config::ClusterConfig, statuses: Vec<(String, Result<pb::StatusReply, StatusError>)>) -> Vec<(String, String, Result<pb::StatusReply, StatusError>)> {
    statuses
        .into_iter()
        .map(|(id, s)| {
            let address = config.replica(&id).map(|r| r.address.clone()).unwrap_or_default();
            (id, address, s)
        })
        .collect()
}

/// The modes a replica says it misbehaves in on purpose (`replica --byzantine`), shown
/// safely; none for an honest one (a liar may of course not say).
fn byzantine(s: &pb::StatusReply) -> Option<String> {
    (!s.byzantine.is_empty()).then(|| s.byzantine.iter().map(|m| crate::client::shown(m)).collect::<Vec<_>>().join(","))
}

fn short(bytes: &[u8]) -> String {
    encode_hex(&bytes[..bytes.len().min(4)])
}

fn seconds(ms: u64) -> String {
    if ms < 10_000 { format!("{:.1}s", ms as f64 / 1000.0) } else { format!("{}s", ms / 1000) }
}

impl ClusterView {
    pub fn new(rows: Vec<(String, String, Result<pb::StatusReply, StatusError>)>, quorum: usize) -> ClusterView {
        let up: Vec<&pb::StatusReply> = rows.iter().filter_map(|(_, _, s)| s.as_ref().ok()).collect();
        let view = at_least(quorum, up.iter().map(|s| s.view).collect());
        let height = at_least(quorum, up.iter().map(|s| s.height).collect());
        let leader = view.and_then(|v| up.iter().find(|s| s.view == v).map(|s| s.leader.clone()));
        let mut differs = minority(up.iter().map(|s| (s.replica.as_str(), s.height, s.committed_hash.as_slice())));
        differs.extend(minority(up.iter().map(|s| (s.replica.as_str(), s.state_height, s.state_digest.as_slice()))));
        ClusterView { rows, quorum, view, height, leader, differs, starting: BTreeSet::new(), proofs: BTreeMap::new() }
    }

    pub fn up(&self) -> usize {
        self.rows.iter().filter(|(_, _, s)| s.is_ok()).count()
    }

    pub fn available(&self) -> bool {
        self.up() >= self.quorum
    }

    /// A replica's role against the quorum's view.
    fn role(&self, s: &pb::StatusReply) -> &'static str {
        match self.view {
            Some(view) if s.view < view => "behind",
            _ if self.leader.as_deref() == Some(s.replica.as_str()) && Some(s.view) == self.view => "leader",
            _ => "follower",
        }
    }

    fn behind(&self, s: &pb::StatusReply) -> u64 {
        self.height.map_or(0, |h| h.saturating_sub(s.height))
    }

    /// One short line per replica for `up`: it changes only when something happens to
    /// that replica (up or down, its role, its state differing), not with every commit.
    pub fn line(&self, id: &str) -> String {
        let Some((_, _, status)) = self.rows.iter().find(|(i, _, _)| i == id) else { return format!("{id}: not in the config") };
        match status {
            Err(_) if self.starting.contains(id) => format!("{id}: starting"),
            Err(e) => format!("{id}: {}", crate::client::shown(&e.to_string())),
            Ok(s) => {
                let mut line = format!("{id}: up, {}", self.role(s));
                if let Some(modes) = byzantine(s) {
                    line.push_str(&format!(", BYZANTINE on purpose ({modes})"));
                }
                if self.differs.contains(id) {
                    line.push_str(", its state DIFFERS from the others' at the same height");
                }
                if let Some(proofs) = self.proofs.get(id) {
                    line.push_str(&format!(", {} against it", super::evidence::proofs_text(proofs)));
                }
                line
            }
        }
    }

    /// What `up` prints when it looks again: a line per replica whose line changed, the
    /// leader when it changed, and the quorum when it was lost or regained.
    pub fn changes(&self, before: Option<&ClusterView>) -> Vec<String> {
        let mut out = Vec::new();
        for (id, _, _) in &self.rows {
            let line = self.line(id);
            if before.is_none_or(|b| b.line(id) != line) {
                out.push(line);
            }
        }
        let was = before.map(|b| (b.available(), b.leader.clone(), b.view));
        if let Some((available, _, _)) = &was
            && *available != self.available()
        {
            out.push(if self.available() {
                format!("the cluster has a quorum: {}", self.summary())
            } else {
                format!("the cluster lost its quorum: {}", self.summary())
            });
        }
        if self.available() && was.is_none_or(|(_, leader, view)| leader != self.leader || view != self.view) {
            if let (Some(leader), Some(view)) = (&self.leader, self.view) {
                out.push(format!("leader: {leader} in view {view}"));
            }
        }
        out
    }

    /// The committed height a quorum reached, and the counts (the highest any replica told
    /// an operator): `up`'s progress line.
    pub fn progress(&self) -> Option<String> {
        let height = self.height?;
        let up: Vec<&pb::StatusReply> = self.rows.iter().filter_map(|(_, _, s)| s.as_ref().ok()).collect();
        let counts = match up.iter().filter(|s| !s.counts_hidden).map(|s| (s.accounts, s.messages)).max() {
            Some((accounts, messages)) => {
                let plural = |n: u64, what: &str| if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") };
                format!(": {}, {}", plural(accounts, "account"), plural(messages, "message"))
            }
            None => String::new(),
        };
        Some(format!("height {height}{counts}"))
    }

    /// The summary under the table.
    pub fn summary(&self) -> String {
        let n = self.rows.len();
        if !self.available() {
            return format!("no quorum: {} of {n} replicas up, {} needed: requests wait until enough are back", self.up(), self.quorum);
        }
        let leader = match (&self.leader, self.view) {
            (Some(l), Some(v)) => format!("leader {l} in view {v}"),
            _ => "no leader yet".to_string(),
        };
        format!("{} of {n} replicas up, {} needed: {leader}, height {}", self.up(), self.quorum, self.height.unwrap_or(0))
    }

    /// `quintet status`: a table, then the summary.
    pub fn table(&self) -> Vec<String> {
        let mut rows = vec![[
            "REPLICA", "ADDRESS", "PID", "VERSION", "ROLE", "VIEW", "HEIGHT", "BEHIND", "BLOCK", "STATE@IMAGE", "PEERS", "LAST COMMIT", "UP", "ACCOUNTS", "MESSAGES", "PROOFS",
        ]
        .map(String::from)
        .to_vec()];
        for (id, address, status) in &self.rows {
            match status {
                Err(e) => {
                    let proofs = self.proofs.get(id).map_or_else(String::new, |p| format!("; {} against it", super::evidence::proofs_text(p)));
                    rows.push(vec![id.clone(), address.clone(), format!("{}{proofs}", crate::client::shown(&e.to_string()))])
                }
                Ok(s) => {
                    let state = format!("{}@{}{}", short(&s.state_digest), s.state_height, if self.differs.contains(id) { " DIFFERS" } else { "" });
                    let commit = if s.height == 0 { "-".to_string() } else { format!("{} ago", seconds(s.last_commit_age_ms)) };
                    let (accounts, messages) = if s.counts_hidden { ("-".to_string(), "-".to_string()) } else { (s.accounts.to_string(), s.messages.to_string()) };
                    rows.push(vec![
                        id.clone(),
                        address.clone(),
                        if s.pid == 0 { "-".into() } else { s.pid.to_string() },
                        crate::client::shown(&s.version),
                        match byzantine(s) {
                            Some(modes) => format!("{} BYZANTINE:{modes}", self.role(s)),
                            None => self.role(s).into(),
                        },
                        s.view.to_string(),
                        s.height.to_string(),
                        self.behind(s).to_string(),
                        short(&s.committed_hash),
                        state,
                        format!("{}/{}", s.peers_reachable, self.rows.len() - 1),
                        commit,
                        seconds(s.uptime_ms),
                        accounts,
                        messages,
                        self.proofs.get(id).map_or_else(|| "-".into(), super::evidence::proofs_text),
                    ]);
                }
            }
        }
        let columns = rows[0].len();
        let widths: Vec<usize> = (0..columns).map(|c| rows.iter().filter(|r| r.len() == columns).map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        let mut lines: Vec<String> = rows
            .iter()
            .map(|r| {
                let cells: Vec<String> = r.iter().enumerate().map(|(c, cell)| if c + 1 < r.len() { format!("{cell:<w$}", w = widths[c]) } else { cell.clone() }).collect();
                cells.join("  ").trim_end().to_string()
            })
            .collect();
        if self.rows.iter().any(|(_, _, s)| s.as_ref().is_ok_and(|s| s.counts_hidden)) {
            lines.push("(PID, ACCOUNTS and MESSAGES are shown beside a replica key: run status where cluster.toml has one)".into());
        }
        lines.push(self.summary());
        lines
    }

    /// Checked proofs against replica `id` by kind ({} when none).
    fn proofs_json(&self, id: &str) -> Value {
        let kinds = self.proofs.get(id).cloned().unwrap_or_default();
        Value::Object(kinds.into_iter().map(|(k, n)| (k.label().to_owned(), n.into())).collect())
    }

    /// `status --json`: a row per replica and what a quorum reports.
    pub fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|(id, address, status)| match status {
                Ok(s) => json!({
                    "replica": id,
                    "address": address,
                    "up": true,
                    "pid": (s.pid != 0).then_some(s.pid),
                    "version": s.version,
                    "role": self.role(s),
                    "view": s.view,
                    "leader": s.leader,
                    "height": s.height,
                    "behind": self.behind(s),
                    "committed_hash": encode_hex(&s.committed_hash),
                    "state": encode_hex(&s.state_digest),
                    "state_height": s.state_height,
                    "differs": self.differs.contains(id),
                    "accounts": (!s.counts_hidden).then_some(s.accounts),
                    "messages": (!s.counts_hidden).then_some(s.messages),
                    "peers_reachable": s.peers_reachable,
                    "peers_heard": s.peers_heard,
                    // None before this replica committed anything since it started.
                    "last_commit_age_ms": (s.height > 0).then_some(s.last_commit_age_ms),
                    "uptime_ms": s.uptime_ms,
                    "byzantine": s.byzantine.iter().map(|m| crate::client::shown(m)).collect::<Vec<_>>(),
                    "proofs": self.proofs_json(id),
                }),
                Err(e) => json!({
                    "replica": id,
                    "address": address,
                    "up": false,
                    "wrong_identity": matches!(e, StatusError::WrongIdentity(_)),
                    "error": e.to_string(),
                    "proofs": self.proofs_json(id),
                }),
            })
            .collect();
        json!({
            "replicas": rows,
            "up": self.up(),
            "quorum": self.quorum,
            "available": self.available(),
            "view": self.view,
            "leader": self.leader,
            "height": self.height,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str, view: u64, height: u64, block: u8, state: u8) -> pb::StatusReply {
        pb::StatusReply {
            replica: id.into(),
            view,
            leader: ["A", "B", "C", "D", "E"][view as usize % 5].into(),
            height,
            committed_hash: vec![block; 32],
            state_digest: vec![state; 32],
            state_height: 100,
            version: "0.1.0".into(),
            ..Default::default()
        }
    }

    fn view(rows: Vec<(&str, Result<pb::StatusReply, StatusError>)>) -> ClusterView {
        ClusterView::new(rows.into_iter().map(|(id, s)| (id.to_string(), format!("10.0.0.1:{id}"), s)).collect(), 3)
    }

    #[test]
    fn proofs_against_a_replica_are_counted_on_every_view() {
        use crate::evidence::Kind;
        let mut v = view(vec![("A", Ok(status("A", 0, 5, 1, 1))), ("D", Ok(status("D", 0, 5, 1, 1))), ("E", Err(StatusError::Down("connection refused".into())))]);
        v.proofs.insert("D".into(), [(Kind::WrongResult, 12), (Kind::Equivocation, 2)].into());
        v.proofs.insert("E".into(), [(Kind::DoubleVote, 1)].into());
        assert!(v.line("D").ends_with(", 14 proofs (wrong results, equivocation) against it"), "{}", v.line("D"));
        assert!(!v.line("A").contains("proof"));
        let table = v.table().join("\n");
        assert!(table.contains("PROOFS") && table.contains("14 proofs (wrong results, equivocation)"), "{table}");
        assert!(table.contains("down (connection refused); 1 proof (double votes) against it"), "{table}");
        let json = v.json();
        assert_eq!(json["replicas"][1]["proofs"], serde_json::json!({"wrong results": 12, "equivocation": 2}));
        assert_eq!(json["replicas"][0]["proofs"], serde_json::json!({}));
        assert_eq!(json["replicas"][2]["proofs"], serde_json::json!({"double votes": 1}));
    }

    #[test]
    fn a_replica_byzantine_on_purpose_is_marked_on_every_view() {
        let mut d = status("D", 2, 52, 2, 7);
        d.byzantine = vec!["lie".into(), "censor=alice+bob".into()];
        let v = view(vec![("C", Ok(status("C", 2, 52, 2, 7))), ("D", Ok(d))]);
        assert_eq!(v.line("D"), "D: up, follower, BYZANTINE on purpose (lie,censor=alice+bob)");
        assert!(!v.line("C").contains("BYZANTINE"), "{}", v.line("C"));
        let table = v.table().join("\n");
        assert!(table.lines().any(|l| l.starts_with('D') && l.contains("follower BYZANTINE:lie,censor=alice+bob")), "{table}");
        assert!(!table.lines().any(|l| l.starts_with('C') && l.contains("BYZANTINE")), "{table}");
        assert_eq!(v.json()["replicas"][1]["byzantine"], serde_json::json!(["lie", "censor=alice+bob"]));
        assert_eq!(v.json()["replicas"][0]["byzantine"], serde_json::json!([]));
    }

    #[test]
    fn one_leader_per_table_behind_by_the_quorums_height_and_a_differing_state_flagged() {
        let v = view(vec![
            ("A", Ok(status("A", 1, 50, 1, 7))),
            ("B", Ok(status("B", 2, 52, 2, 7))),
            ("C", Ok(status("C", 2, 52, 2, 7))),
            ("D", Ok(status("D", 2, 52, 9, 8))),
            ("E", Err(StatusError::Down("connection refused".into()))),
        ]);
        assert_eq!((v.view, v.height, v.leader.as_deref()), (Some(2), Some(52), Some("C")));
        let table = v.table().join("\n");
        let row = |id: &str| table.lines().find(|l| l.starts_with(id)).unwrap().to_string();
        assert!(row("A").contains("behind") && row("A").split_whitespace().nth(7) == Some("2"), "{table}");
        assert!(row("C").contains("leader") && !row("B").contains("leader"), "{table}");
        assert!(row("D").contains("DIFFERS") && !row("B").contains("DIFFERS"), "{table}");
        assert!(row("E").contains("down (connection refused)"), "{table}");
        assert!(table.ends_with("4 of 5 replicas up, 3 needed: leader C in view 2, height 52"), "{table}");
        assert_eq!(v.json()["replicas"][3]["differs"], true);
        assert_eq!(v.json()["replicas"][0]["last_commit_age_ms"], 0, "a replica that committed");
        let fresh = view(vec![("A", Ok(status("A", 0, 0, 0, 0)))]);
        assert!(fresh.json()["replicas"][0]["last_commit_age_ms"].is_null(), "nothing committed: no age");
        assert_eq!(v.line("A"), "A: up, behind");
        let mut starting = v;
        starting.starting.insert("E".into());
        assert_eq!(starting.line("E"), "E: starting", "just started by up, not answering yet");
        // What `up` prints when the same cluster is looked at again: only what changed.
        let all_up = |views: [u64; 5]| view(["A", "B", "C", "D", "E"].iter().zip(views).map(|(id, v)| (*id, Ok(status(id, v, 52, 2, 7)))).collect());
        let before = all_up([2; 5]);
        assert_eq!(before.changes(Some(&before)), Vec::<String>::new(), "nothing changed: nothing printed");
        let mut three_down = all_up([2; 5]);
        for i in [0, 1, 3] {
            three_down.rows[i].2 = Err(StatusError::Down("connection refused".into()));
        }
        let three_down = ClusterView::new(three_down.rows, 3);
        let lines = three_down.changes(Some(&before));
        for down in ["A: down (connection refused)", "B: down (connection refused)", "D: down (connection refused)"] {
            assert!(lines.iter().any(|l| l == down), "{lines:?}");
        }
        // Without a quorum no leader is named (C led view 2; a quorum no longer says so).
        assert!(lines.iter().any(|l| l == "C: up, follower") && !lines.iter().any(|l| l.starts_with("E:")), "{lines:?}");
        assert!(lines.last().unwrap().starts_with("the cluster lost its quorum: no quorum: 2 of 5 replicas up, 3 needed"), "{lines:?}");
        let back = all_up([3; 5]);
        let lines = back.changes(Some(&three_down));
        assert!(lines.iter().any(|l| l.starts_with("the cluster has a quorum: 5 of 5")) && lines.last().unwrap() == "leader: D in view 3", "{lines:?}");
        // Two up: no quorum, said as such.
        let v = view(vec![("A", Ok(status("A", 1, 5, 1, 7))), ("B", Ok(status("B", 1, 5, 1, 7)))]);
        assert!(!v.available() && v.summary().starts_with("no quorum: 2 of 2 replicas up, 3 needed"));
    }
}
