//! The protocol core and the chat state machine stay pure (NOTEBOOK §2): no
//! async runtime, network, files, clock, unseeded randomness, or hash maps whose iteration
//! order changes per process. This scans their source, outside comments.

use std::path::Path;

const FORBIDDEN: [&str; 11] = [
    "tokio", "tonic", "std::fs", "File::", "std::net", "SystemTime", "Instant::now", "thread_rng", "rand::",
    "HashMap", "HashSet",
];

/// (line number, forbidden word) for every code line that uses one.
fn offences(source: &str) -> Vec<(usize, &'static str)> {
    let mut found = Vec::new();
    for (i, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for word in FORBIDDEN {
            if code.contains(word) {
                found.push((i + 1, word));
            }
        }
    }
    found
}

#[test]
fn consensus_and_chat_do_no_io_and_read_no_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for module in ["consensus", "chat"] {
        for entry in std::fs::read_dir(root.join(module)).unwrap() {
            let path = entry.unwrap().path();
            let source = std::fs::read_to_string(&path).unwrap();
            assert_eq!(offences(&source), vec![], "{} must stay sans-IO", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 10, "the modules were found ({checked} files)");
}

#[test]
fn the_scanner_catches_a_planted_use_and_ignores_comments() {
    let planted = "//! tokio is mentioned in a comment only\nfn f() {\n    let t = std::time::SystemTime::now(); // clock\n}\n";
    assert_eq!(offences(planted), vec![(3, "SystemTime")]);
    assert_eq!(offences("use std::collections::HashMap;"), vec![(1, "HashMap")]);
}
