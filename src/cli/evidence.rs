//! `quintet evidence`: gathers the proofs of misbehaviour that the replicas and this host's
//! clients kept, checks every one against cluster.toml's keys, and tells whom they accuse.
//! `status` and `up` show the same counts per replica.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

use crate::config::ClusterConfig;
use crate::evidence::{self, Accusation, Keys, Kind};

/// What was gathered: checked proofs (by identity, with who holds them), what did not
/// check, the per-link claims, and who answered.
#[derive(Default)]
pub struct Gathered {
    ids: Vec<String>,
    proofs: BTreeMap<[u8; 32], (Accusation, BTreeSet<String>, String)>,
    /// Entries that did not check, by holder, with the first reason.
    invalid: BTreeMap<String, (usize, String)>,
    /// (reporting replica, peer, count): messages on that link that did not verify.
    unverifiable: Vec<(String, String, u64)>,
    pub answered: usize,
    quorum: usize,
    /// Replicas that could not be asked, with why.
    pub silent: Vec<(String, String)>,
}

impl Gathered {
    /// Checked proofs per accused replica id and kind.
    pub fn counts(&self) -> BTreeMap<String, BTreeMap<Kind, usize>> {
        evidence::tally(self.proofs.values().map(|(a, _, _)| a))
            .into_iter()
            .map(|(replica, kinds)| (self.ids.get(replica).cloned().unwrap_or_else(|| replica.to_string()), kinds))
            .collect()
    }

    pub fn found(&self) -> bool {
        !self.proofs.is_empty()
    }

    /// 1 when checked proofs were found, 2 when fewer than a quorum of replicas answered
    /// (and no proof was found), 0 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.found() {
            1
        } else if self.answered < self.quorum {
            2
        } else {
            0
        }
    }

    /// A proof a replica answered with: checked here (`checks` remembers the verdicts,
    /// so `up`, which gathers every round, checks each proof once).
    fn add(&mut self, keys: &Keys, checks: &mut Checks, holder: &str, proof: &crate::pb::Proof) {
        let identity = evidence::identity(proof);
        match checks.0.entry(identity).or_insert_with(|| evidence::check(proof, keys)).clone() {
            Ok(accusation) => self.add_checked(identity, accusation, holder, proof),
            Err(why) => {
                let entry = self.invalid.entry(holder.to_owned()).or_insert((0, why));
                entry.0 += 1;
            }
        }
    }

    fn add_checked(&mut self, identity: [u8; 32], accusation: Accusation, holder: &str, proof: &crate::pb::Proof) {
        let entry = self.proofs.entry(identity).or_insert_with(|| (accusation, BTreeSet::new(), evidence::describe(proof)));
        entry.1.insert(holder.to_owned());
    }

    /// A store's proofs (checked when it was opened), and the entries it refused then.
    fn add_store(&mut self, holder: &str, store: &evidence::Store) {
        if let (count @ 1.., why) = &store.rejected {
            let entry = self.invalid.entry(holder.to_owned()).or_insert((0, why.clone().unwrap_or_default()));
            entry.0 += count;
        }
        for (accusation, proof) in store.accusations() {
            self.add_checked(evidence::identity(proof), *accusation, holder, proof);
        }
    }

    pub fn table(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut by: BTreeMap<(String, Kind), (usize, BTreeSet<String>)> = BTreeMap::new();
        for (accusation, holders, _) in self.proofs.values() {
            let id = self.ids.get(accusation.replica).cloned().unwrap_or_default();
            let entry = by.entry((id, accusation.kind)).or_default();
            entry.0 += 1;
            entry.1.extend(holders.iter().cloned());
        }
        if !by.is_empty() {
            let rows: Vec<[String; 4]> = by
                .iter()
                .map(|((id, kind), (count, holders))| [id.clone(), kind.label().to_owned(), count.to_string(), holders.iter().cloned().collect::<Vec<_>>().join(", ")])
                .collect();
            let header = ["ACCUSED", "KIND", "PROOFS", "HELD BY"].map(String::from);
            let widths: Vec<usize> = (0..4).map(|c| rows.iter().chain([&header]).map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
            for row in [&header].into_iter().chain(rows.iter()) {
                lines.push(format!("{:<a$}  {:<b$}  {:<c$}  {}", row[0], row[1], row[2], row[3], a = widths[0], b = widths[1], c = widths[2]));
            }
        }
        for (holder, (count, why)) in &self.invalid {
            let entries = if *count == 1 { "1 entry is not a proof".to_owned() } else { format!("{count} entries are not proofs") };
            lines.push(format!("{holder}: {entries} (the first: {why}); not counted"));
        }
        for (reporter, peer, count) in &self.unverifiable {
            lines.push(format!("{reporter} says {count} messages from {peer} did not verify (a claim, not a proof: anyone can send such bytes)"));
        }
        for (id, why) in &self.silent {
            lines.push(format!("{id}: no answer ({why})"));
        }
        lines.push(self.summary());
        lines
    }

    pub fn summary(&self) -> String {
        let asked = format!("{} of {} replicas answered", self.answered, self.ids.len());
        let counts = self.counts();
        if counts.is_empty() {
            let quorum = if self.answered < self.quorum { format!("; fewer than the {} needed to say the cluster holds none", self.quorum) } else { String::new() };
            return format!("no proof of misbehaviour found ({asked}{quorum})");
        }
        let accused: Vec<String> = counts.iter().map(|(id, kinds)| format!("{id} ({})", kinds.keys().map(|k| k.label()).collect::<Vec<_>>().join(", "))).collect();
        format!("proven faulty: {} ({asked}; every proof checked against cluster.toml's keys)", accused.join(", "))
    }

    pub fn json(&self) -> Value {
        let proofs: Vec<Value> = self
            .proofs
            .values()
            .map(|(a, holders, detail)| json!({"accused": self.ids.get(a.replica), "kind": a.kind.label(), "detail": detail, "held_by": holders}))
            .collect();
        let invalid: Vec<Value> = self.invalid.iter().map(|(holder, (count, why))| json!({"holder": holder, "entries": count, "first_reason": why})).collect();
        let unverifiable: Vec<Value> =
            self.unverifiable.iter().map(|(reporter, peer, count)| json!({"reported_by": reporter, "peer": peer, "count": count})).collect();
        json!({
            "proofs": proofs,
            "counts": self.counts().into_iter().map(|(id, kinds)| (id, kinds.into_iter().map(|(k, n)| (k.label().to_owned(), n)).collect::<BTreeMap<_, _>>())).collect::<BTreeMap<_, _>>(),
            "not_proofs": invalid,
            "unverifiable": unverifiable,
            "answered": self.answered,
            "replicas": self.ids.len(),
            "quorum": self.quorum,
            "silent": self.silent.iter().map(|(id, why)| json!({"replica": id, "error": why})).collect::<Vec<_>>(),
        })
    }
}

/// Verdicts on proofs already checked, by identity (bounded: a replica answers at most a
/// store's worth, `crate::evidence::FILE_BYTES_MAX`, each round).
#[derive(Default)]
pub struct Checks(BTreeMap<[u8; 32], Result<Accusation, String>>);

/// Checks remembered at most; past that they are forgotten and made again.
const CHECKS_MAX: usize = 4096;

/// Asks every replica and reads every client's file beside `config_path`.
pub async fn gather(config: &ClusterConfig, config_path: &Path, client: &crate::client::QuorumClient, checks: &mut Checks) -> Gathered {
    if checks.0.len() > CHECKS_MAX {
        checks.0.clear();
    }
    let keys = Keys::new(config);
    let mut g = Gathered { ids: config.replicas.iter().map(|r| r.id.clone()).collect(), quorum: config.quorum(), ..Gathered::default() };
    for (id, reply) in client.evidence().await {
        match reply {
            Ok(reply) => {
                g.answered += 1;
                let holder = format!("replica {id}");
                for proof in &reply.proofs {
                    g.add(&keys, checks, &holder, proof);
                }
                for link in reply.unverifiable {
                    g.unverifiable.push((id.clone(), crate::client::shown(&link.peer), link.count));
                }
            }
            Err(why) => g.silent.push((id, crate::client::shown(&why))),
        }
    }
    let folder = config_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // A replica that did not answer may have left its proofs in its folder (the default
    // place beside cluster.toml, on the operator's host): read them there.
    let silent: Vec<String> = g.silent.iter().map(|(id, _)| id.clone()).collect();
    for id in silent {
        let file = folder.join(&id).join("evidence.pb");
        if file.exists() {
            let (store, _) = evidence::Store::open(&file, &keys);
            g.add_store(&format!("replica {id}'s folder"), &store);
        }
    }
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("evidence-") && n.ends_with(".pb")))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for file in files {
        let holder = format!("client file {}", file.file_name().and_then(|n| n.to_str()).unwrap_or_default());
        let (store, _) = evidence::Store::open(&file, &keys);
        g.add_store(&holder, &store);
    }
    g
}

/// Per replica id, its checked proofs by kind, for `status` and `up`.
pub fn per_replica(g: &Gathered) -> BTreeMap<String, BTreeMap<Kind, usize>> {
    g.counts()
}

/// "N proofs (kinds)".
pub fn proofs_text(kinds: &BTreeMap<Kind, usize>) -> String {
    let total: usize = kinds.values().sum();
    let labels: Vec<&str> = kinds.keys().map(|k| k.label()).collect();
    format!("{total} proof{} ({})", if total == 1 { "" } else { "s" }, labels.join(", "))
}
