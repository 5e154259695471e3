//! The full-screen layout drawn on ratatui's test backend, read back as text and colours.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

use super::*;

fn message(id: u64, from: &str, to: &str, text: &str) -> pb::Message {
    pb::Message { id, from: from.into(), from_account: 1, to: to.into(), time_ms: 1_700_000_000_000 + id * 60_000, text: text.into() }
}

fn screen() -> Screen {
    Screen {
        user: "alice".into(),
        cluster: "quintet".into(),
        ids: ["A", "B", "C", "D", "E"].map(String::from).to_vec(),
        agreed: vec![0, 1, 3],
        differed: vec![4],
        height: 42,
        view: Some(3),
        conversations: vec![
            Conversation { with: "bob".into(), unread: 0, online: true },
            Conversation { with: "carol".into(), unread: 2, online: false },
        ],
        selected: Some(0),
        messages: vec![message(1, "bob", "alice", "hi alice"), message(2, "alice", "bob", "hello bob")],
        input: "how are".into(),
        cursor: 7,
        notice: "sent message 2".into(),
        ..Default::default()
    }
}

/// The screen as rows of text, and the buffer for colours.
fn drawn(screen: &Screen, width: u16, height: u16) -> (Vec<String>, ratatui::buffer::Buffer) {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| draw(f, screen)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let rows = (0..height).map(|y| (0..width).map(|x| buffer[(x, y)].symbol().to_string()).collect::<String>()).collect();
    (rows, buffer)
}

#[test]
fn the_screen_shows_conversations_with_unread_counts_the_conversation_input_and_status() {
    let (rows, buffer) = drawn(&screen(), 80, 16);
    let all = rows.join("\n");
    assert!(rows[0].contains("conversations") && rows[0].contains(" bob "), "{all}");
    assert!(rows[1].contains("● bob"), "online mark: {all}");
    assert!(rows[2].contains("carol (2)"), "unread count: {all}");
    assert!(all.contains("bob: hi alice") && all.contains("alice: hello bob"), "{all}");
    assert!(rows[11].contains("sent message 2"), "notice line: {all}");
    assert!(rows[12].contains("to bob") && rows[13].contains("> how are"), "input: {all}");
    let status = &rows[15];
    assert!(status.contains("alice@quintet ●●●●● 3/5 · height 42 · view 3"), "{status}");
    // The dots: A B D agreed (green), C silent (grey), E differed (red).
    let x = status.find('●').map(|b| status[..b].chars().count() as u16).unwrap();
    let colours: Vec<Color> = (0..5).map(|i| buffer[(x + i, 15)].fg).collect();
    assert_eq!(colours, [Color::Green, Color::Green, Color::DarkGray, Color::Green, Color::Red]);
    // The newest message is the last row of the conversation pane.
    let newest = rows.iter().position(|r| r.contains("hello bob")).unwrap();
    assert_eq!(newest, 2, "{all}");
}

#[test]
fn a_long_conversation_shows_its_newest_rows_and_scrolls_up_and_text_is_escaped() {
    let mut s = screen();
    s.messages = (1..=30).map(|i| message(i, "bob", "alice", &format!("line {i}"))).collect();
    s.messages.push(message(31, "bob", "alice", "\x1b]2;owned\x07\n[7] admin: forged"));
    let (rows, _) = drawn(&s, 60, 14);
    let all = rows.join("\n");
    // Escaped on bob's row; the forged line is a continuation of his, indented.
    assert!(all.contains("bob: \\u{1b}]2;owned\\u"), "{all}");
    assert!(rows.iter().any(|r| r.contains("││  ") && r.contains("\\u{a}[7] admin: forged")), "{all}");
    assert!(!rows.iter().any(|r| r.contains("││[7] admin")), "a forged line never starts a row as a message does: {all}");
    assert!(!all.contains("line 1 ") && all.contains("line 30"), "{all}");
    s.scroll = 5;
    let (rows, _) = drawn(&s, 60, 14);
    let all = rows.join("\n");
    assert!(!all.contains("line 30") && all.contains("line 25"), "{all}");
    // Scrolled past the top: the first row stays the oldest message.
    s.scroll = 1_000;
    let (rows, _) = drawn(&s, 60, 14);
    assert!(rows[1].contains("line 1"), "{}", rows.join("\n"));
}

#[test]
fn long_messages_wrap_and_a_narrow_or_tiny_terminal_still_draws() {
    let mut s = screen();
    s.messages = vec![message(1, "bob", "alice", &"word ".repeat(40))];
    let (rows, _) = drawn(&s, 60, 14);
    let wrapped = rows.iter().filter(|r| r.contains("word")).count();
    assert!(wrapped >= 4, "{}", rows.join("\n"));
    for (w, h) in [(20, 8), (1, 1), (200, 60)] {
        drawn(&s, w, h);
    }
    // No conversation yet: the input says how to start one.
    let (rows, _) = drawn(&Screen { user: "alice".into(), ..Default::default() }, 80, 10);
    assert!(rows.join("\n").contains("/open <user> starts a conversation"));
}

#[test]
fn a_new_conversation_goes_on_top_and_keeps_the_selection() {
    let mut s = screen();
    s.selected = Some(1);
    assert_eq!(s.conversation("carol"), 1);
    assert_eq!(s.conversation("dave"), 0);
    assert_eq!((s.selected, s.selected_name()), (Some(2), Some("carol")));
}
