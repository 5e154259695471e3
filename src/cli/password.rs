//! How strong a password is, judged on the client when an account is created.
//!
//! Every replica keeps each account's public key, and the key is Argon2id(password) with a
//! salt anyone can compute: whoever holds a replica's log can guess passwords offline, at
//! the cost of one derivation a guess. So the client refuses, at `create`, a password that
//! zxcvbn (Dropbox's estimator, which knows common passwords, names, keyboard walks, dates
//! and l33t) expects to fall within 10^8 guesses: at the default cost (about 0.17 s a
//! guess on one core) that is some 200 core-days or more. A modified client can skip the
//! check; nothing on a replica can tell a weak password from a strong one.

use zxcvbn::Score;

/// The lowest acceptable score: `Three` is "more than 10^8 guesses".
const SCORE_MIN: Score = Score::Three;

/// Why `password` is too weak for an account named `user` on `cluster`, or `None`.
pub fn too_weak(password: &str, user: &str, cluster: &str) -> Option<String> {
    let estimate = zxcvbn::zxcvbn(password, &[user, cluster, "quintet"]);
    if estimate.score() >= SCORE_MIN {
        return None;
    }
    let mut why = format!("this password is too easy to guess (about 10^{:.0} guesses", estimate.guesses_log10());
    why.push(')');
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            why.push_str(&format!(": {warning}"));
        }
        let hints: Vec<String> = feedback.suggestions().iter().map(|s| s.to_string()).collect();
        if !hints.is_empty() {
            why.push_str(&format!(". {}", hints.join(" ")));
        }
    }
    why.push_str(" A longer passphrase of unrelated words works well.");
    Some(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_and_personal_passwords_are_weak_and_a_passphrase_is_not() {
        for weak in ["sunshine", "password1", "alice2024", "qwertyuiop", "correcthorse", "P@ssw0rd"] {
            assert!(too_weak(weak, "alice", "quintet-local").is_some(), "{weak} passed");
        }
        let why = too_weak("sunshine", "alice", "quintet-local").unwrap();
        assert!(why.starts_with("this password is too easy to guess") && why.contains("passphrase"), "{why}");
        for strong in ["plinth-garnet-oboe-marrow", "tW9#kq!2Lz@8vRx", "lantern orbit whisker tundra"] {
            assert_eq!(too_weak(strong, "alice", "quintet-local"), None, "{strong} refused");
        }
    }
}
