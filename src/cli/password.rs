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

use super::{ClientError, Session};
use crate::crypto;

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
            why.push_str(&format!(": {}", warning.to_string().trim_end_matches('.')));
        }
        let hints: Vec<String> = feedback.suggestions().iter().map(|s| s.to_string()).collect();
        if !hints.is_empty() {
            why.push_str(&format!(". {}", hints.join(" ")));
        }
    }
    why.push_str(" A longer passphrase of unrelated words works well.");
    Some(why)
}

impl Session {
    /// Whether the password was typed at a prompt here (so it can be asked again).
    pub(super) fn prompted(&self) -> bool {
        self.terminal && !self.password_from_env && !self.json
    }

    /// At `create` on a terminal: the password once more, to catch a typo before it becomes
    /// the account's. False when they differ (nothing was sent; the first is asked again).
    pub(super) async fn password_confirmed(&mut self) -> Result<bool, ClientError> {
        if !self.prompted() {
            return Ok(true);
        }
        let Some(again) = self.derive_from_prompt(format!("password for {} again, to confirm: ", self.user)).await else {
            return Ok(false);
        };
        if again.verifying_key() == self.key.verifying_key() {
            return Ok(true);
        }
        self.print_error("create", "passwords_differ", "the two passwords differ; nothing was sent");
        self.ask_password_again().await;
        Ok(false)
    }

    /// After a wrong password (a login refused for its signature), on a terminal: the
    /// password again, without starting over. An empty answer keeps the old one.
    pub(super) async fn ask_password_again(&mut self) {
        let question = format!("password for {} (Enter keeps the last one): ", self.user);
        self.ask_password(question).await;
    }

    /// After `create` refused a weak password, on a terminal: another one at once.
    pub(super) async fn ask_stronger_password(&mut self) {
        let question = format!("another password for {} (Enter keeps the last one): ", self.user);
        self.ask_password(question).await;
    }

    async fn ask_password(&mut self, question: String) {
        if !self.prompted() {
            return;
        }
        if let Some(key) = self.derive_from_prompt(question).await {
            self.key = key;
            println!("type the command again to use it");
        }
    }

    /// Asks for a password on the terminal and derives its key (on a blocking thread: the
    /// derivation takes a few tenths of a second). `None` for an empty answer or an error.
    async fn derive_from_prompt(&mut self, question: String) -> Option<crypto::SigningKey> {
        let password = tokio::task::spawn_blocking(move || rpassword::prompt_password(question).map(zeroize::Zeroizing::new)).await.ok()?.ok()?;
        if password.is_empty() {
            return None;
        }
        self.weak_password = too_weak(&password, &self.user, &self.cluster_name);
        let (cluster, user, kdf) = (self.cluster_id.clone(), self.user.clone(), self.kdf);
        tokio::task::spawn_blocking(move || crypto::derive_user_key(&cluster, &user, &password, kdf)).await.ok()?.ok()
    }
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
