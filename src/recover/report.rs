//! The report `quintet recover` prints: one row per replica, then what is kept.

use super::{Finding, Plan};
use crate::consensus::Hash;

/// The report: one row per replica, then the history kept.
pub fn table(plan: &Plan) -> String {
    let mut out = format!("{:<8} {:>8} {:>8}  {:<24} {}\n", "REPLICA", "HEIGHT", "PROVEN", "IMAGE (HEIGHT: SHA256)", "FOUND");
    for r in &plan.rows {
        let proven = r.proven.map_or("-".to_string(), |p| p.to_string());
        let image = r.image.map_or("-".to_string(), |(h, d)| format!("{h}: {}…", &crate::crypto::encode_hex(&d)[..12]));
        let mut found = match &r.finding {
            Finding::UpToDate => "up to date".to_string(),
            Finding::Undecided if r.proven.is_some() => "holds a proven history".to_string(),
            Finding::Undecided => "nothing proven".to_string(),
            Finding::Unrelated => "holds a proven history that cannot be compared with the one kept".to_string(),
            Finding::Empty => "no data".to_string(),
            Finding::Behind => "behind".to_string(),
            Finding::Unprovable(n) => format!("{n} unprovable block{} above the history", if *n == 1 { "" } else { "s" }),
            Finding::DivergedAt(h) => format!("diverged at height {h}"),
        };
        if !r.damage.is_empty() {
            found.push_str(&format!("; damaged: {}", r.damage.join("; ")));
        }
        out.push_str(&format!("{:<8} {:>8} {:>8}  {:<24} {found}\n", r.id, r.height, proven, image));
    }
    for note in &plan.notes {
        out.push_str(note);
        out.push('\n');
    }
    let hex = |h: &Hash| crate::crypto::encode_hex(h)[..16].to_string();
    match (&plan.history, &plan.conflict) {
        (Some(h), _) => {
            out.push_str(&format!(
                "history kept: height {}, block {}…, from {}, proven by {}\n",
                h.block.height,
                hex(&h.block.hash),
                plan.folders[h.from].id,
                h.proof
            ));
            if plan.changes && let Some((top, most)) = plan.unproven.iter().max_by_key(|(i, n)| (*n, std::cmp::Reverse(*i))) {
                let holders: Vec<&str> = plan.unproven.iter().map(|(i, _)| plan.folders[*i].id.as_str()).collect();
                let top = &plan.folders[*top].id;
                out.push_str(&format!(
                    "not kept: up to {most} block{} above it that {} hold{} committed without q signed CHECKPOINTs \
                     (they stay in the backup; --keep {top} --unproven keeps them)\n",
                    if *most == 1 { "" } else { "s" },
                    holders.join(", "),
                    if holders.len() == 1 { "s" } else { "" }
                ));
            }
        }
        (None, Some(c)) => {
            let [(a, ..), (b, ..)] = &c.sides;
            let (a, b) = (&plan.folders[*a].id, &plan.folders[*b].id);
            match c.at {
                Some(at) => out.push_str(&format!("two proven histories conflict from height {at} (more than two replicas failed or lied):\n")),
                None => out.push_str(&format!(
                    "two proven histories cannot be compared: no folder holds the blocks between them (pruned), so {a}'s may \
                     extend {b}'s or conflict with it:\n"
                )),
            }
            for (i, height, hash, how) in &c.sides {
                out.push_str(&format!("  {}'s: height {height}, block {}…, proven by {how}\n", plan.folders[*i].id, hex(hash)));
            }
            out.push_str(&format!("choose one with --keep {a} or --keep {b} (the other stays in the backup)\n"));
        }
        (None, None) if plan.rows.iter().all(|r| r.finding == Finding::Empty) => out.push_str("every folder is empty: nothing to recover\n"),
        (None, None) => out.push_str("no proven history: no folder holds a block that q replicas signed CHECKPOINTs for\n"),
    }
    out
}
