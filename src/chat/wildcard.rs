//! Wildcard matching for listing accounts: `*` matches any run of characters, `?` exactly one.

use super::types::PATTERN_LEN_MAX;

/// A pattern may use the name characters plus `*` and `?`; empty means "everything".
pub fn valid_pattern(pattern: &str) -> bool {
    pattern.len() <= PATTERN_LEN_MAX
        && pattern
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'*' | b'?'))
}

/// Matches ASCII case-insensitively, like name uniqueness. Linear time: on a mismatch after
/// a `*`, retry from one character later than the last retry (no exponential backtracking).
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    if p.is_empty() {
        return true;
    }
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None; // (pattern index after '*', name index tried)
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi].eq_ignore_ascii_case(&n[ni])) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi + 1, ni));
            pi += 1;
        } else if let Some((after_star, tried)) = star {
            pi = after_star;
            ni = tried + 1;
            star = Some((after_star, tried + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_star_and_question_mark() {
        assert!(matches("alice", "alice"));
        assert!(matches("ALICE", "alice"));
        assert!(!matches("alice", "alic"));
        assert!(!matches("alic", "alice"));
        assert!(matches("a*", "alice"));
        assert!(matches("*e", "alice"));
        assert!(matches("*", "alice"));
        assert!(matches("", "alice"));
        assert!(matches("a?ice", "alice"));
        assert!(!matches("a?ice", "aice"));
        assert!(matches("*l*c*", "alice"));
        assert!(!matches("*z*", "alice"));
        assert!(matches("a**e", "alice"));
        assert!(matches("?*", "a"));
        assert!(!matches("??", "a"));
        assert!(matches("*ab", "aab"));
        assert!(!matches("*ab", "aaba"));
    }

    #[test]
    fn pattern_charset_and_length() {
        assert!(valid_pattern(""));
        assert!(valid_pattern("al*_?.-9"));
        assert!(!valid_pattern("a b"));
        assert!(!valid_pattern("a/"));
        assert!(!valid_pattern("é"));
        assert!(valid_pattern(&"*".repeat(64)));
        assert!(!valid_pattern(&"*".repeat(65)));
    }
}
