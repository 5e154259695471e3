//! What the full-screen chat shows, drawn from a plain `Screen` value: the conversation list
//! (unread counts, who is online), the selected conversation, a notice line, the input line
//! and a status bar (the five replicas' agreement with the last answer, the committed
//! height, the view). Pure: the tests draw it on ratatui's test backend.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph};

use super::render;
use crate::pb;

/// One entry of the conversation list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conversation {
    pub with: String,
    pub unread: u64,
    pub online: bool,
}

/// Everything on screen.
#[derive(Debug, Default)]
pub struct Screen {
    pub user: String,
    pub cluster: String,
    /// Replica ids, and which of them agreed with / differed from the last answer.
    pub ids: Vec<String>,
    pub agreed: Vec<usize>,
    pub differed: Vec<usize>,
    /// The committed height and view that a quorum of replicas reported at least.
    pub height: u64,
    pub view: Option<u64>,
    pub conversations: Vec<Conversation>,
    pub selected: Option<usize>,
    /// The selected conversation, oldest first; `older`: more exist before the first.
    pub messages: Vec<pb::Message>,
    pub older: bool,
    /// Rows scrolled up from the newest message.
    pub scroll: usize,
    pub input: String,
    /// Cursor position in `input`, in characters.
    pub cursor: usize,
    /// The last result or error, one line; `error` paints it red.
    pub notice: String,
    pub error: bool,
}

impl Screen {
    pub fn selected_name(&self) -> Option<&str> {
        self.selected.and_then(|i| self.conversations.get(i)).map(|c| c.with.as_str())
    }

    /// The conversation with `name`, added at the top of the list if new.
    pub fn conversation(&mut self, name: &str) -> usize {
        if let Some(i) = self.conversations.iter().position(|c| c.with == name) {
            return i;
        }
        self.conversations.insert(0, Conversation { with: name.to_string(), ..Default::default() });
        if let Some(s) = self.selected.as_mut() {
            *s += 1;
        }
        0
    }

    pub fn say(&mut self, notice: impl Into<String>, error: bool) {
        (self.notice, self.error) = (notice.into(), error);
    }
}

/// `HH:MM` local time (`TZ` honoured), and the date too when it is not today's.
fn clock(time_ms: u64, today: &str) -> String {
    let full = render::local_timestamp(time_ms);
    if full.starts_with(today) { full[11..16].to_string() } else { full[..16].to_string() }
}

/// The conversation as screen rows of at most `width` characters (text wrapped; the id, for
/// `/delete`, dimmed, the time and the sender on the first row of each message). Text is
/// shown escaped (`render::shown`).
fn rows(screen: &Screen, width: usize) -> Vec<Line<'static>> {
    let today = render::local_timestamp(super::now_ms())[..10].to_string();
    let mut rows = Vec::new();
    if screen.older {
        rows.push(Line::styled("(older messages: /history)", Style::new().fg(Color::DarkGray)));
    }
    for m in &screen.messages {
        let id = format!("[{}] ", m.id);
        let head = format!("{} {}: ", clock(m.time_ms, &today), m.from);
        let mine = m.from == screen.user;
        let style = if mine { Style::new().fg(Color::Cyan) } else { Style::new().fg(Color::Yellow) };
        let text: Vec<char> = render::shown(&m.text).chars().collect();
        let first = width.saturating_sub(id.chars().count() + head.chars().count()).max(1);
        let mut chunk: String = text.iter().take(first).collect();
        let spans = vec![Span::styled(id, Style::new().fg(Color::DarkGray)), Span::styled(head, style.add_modifier(Modifier::BOLD)), Span::raw(chunk)];
        rows.push(Line::from(spans));
        let mut rest = &text[text.len().min(first)..];
        while !rest.is_empty() {
            let n = rest.len().min(width.saturating_sub(2).max(1));
            chunk = rest[..n].iter().collect();
            rows.push(Line::raw(format!("  {chunk}")));
            rest = &rest[n..];
        }
    }
    rows
}

/// Five dots, green agreed, red differed, grey silent; and `3/5`.
fn dots(screen: &Screen) -> Vec<Span<'static>> {
    let mut spans: Vec<Span> = (0..screen.ids.len())
        .map(|i| {
            let colour = if screen.agreed.contains(&i) {
                Color::Green
            } else if screen.differed.contains(&i) {
                Color::Red
            } else {
                Color::DarkGray
            };
            Span::styled("●", Style::new().fg(colour))
        })
        .collect();
    let health = if screen.agreed.is_empty() && screen.differed.is_empty() {
        format!(" -/{}", screen.ids.len())
    } else {
        format!(" {}/{}", screen.agreed.len(), screen.ids.len())
    };
    spans.push(Span::raw(health));
    spans
}

pub fn draw(frame: &mut Frame, screen: &Screen) {
    let [main, notice, input, status] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(1), Constraint::Length(3), Constraint::Length(1)]).areas(frame.area());
    let list_width = (main.width / 4).clamp(14, 28);
    let [list, pane] = Layout::horizontal([Constraint::Length(list_width), Constraint::Min(10)]).areas(main);
    draw_list(frame, screen, list);
    draw_conversation(frame, screen, pane);

    let style = if screen.error { Style::new().fg(Color::Red) } else { Style::new() };
    frame.render_widget(Paragraph::new(Line::styled(render::shown(&screen.notice), style)), notice);

    let title = match screen.selected_name() {
        Some(name) => format!(" to {name} · Enter sends · /help "),
        None => " /open <user> starts a conversation · /help ".to_string(),
    };
    // The input scrolls sideways so the cursor stays in view.
    let inner = input.width.saturating_sub(4) as usize;
    let skip = screen.cursor.saturating_sub(inner.saturating_sub(1));
    let shown: String = screen.input.chars().skip(skip).take(inner).collect();
    frame.render_widget(Paragraph::new(format!("> {shown}")).block(Block::new().borders(Borders::ALL).title(title)), input);
    frame.set_cursor_position(Position::new(input.x + 3 + (screen.cursor - skip) as u16, input.y + 1));

    let mut bar = vec![Span::styled(format!("{}@{} ", screen.user, screen.cluster), Style::new().add_modifier(Modifier::BOLD))];
    bar.extend(dots(screen));
    bar.push(Span::raw(format!(" · height {}", screen.height)));
    bar.push(Span::raw(match screen.view {
        Some(view) => format!(" · view {view}"),
        None => " · view ?".to_string(),
    }));
    bar.push(Span::styled(" · ↑↓ conversation · PgUp/PgDn scroll · Ctrl-C quit", Style::new().fg(Color::DarkGray)));
    frame.render_widget(Paragraph::new(Line::from(bar)).style(Style::new().add_modifier(Modifier::REVERSED)), status);
}

fn draw_list(frame: &mut Frame, screen: &Screen, area: Rect) {
    let items: Vec<ListItem> = screen
        .conversations
        .iter()
        .map(|c| {
            let online = if c.online { Span::styled("● ", Style::new().fg(Color::Green)) } else { Span::raw("  ") };
            let mut spans = vec![online];
            if c.unread > 0 {
                spans.push(Span::styled(c.with.clone(), Style::new().add_modifier(Modifier::BOLD)));
                spans.push(Span::styled(format!(" ({})", c.unread), Style::new().fg(Color::Yellow)));
            } else {
                spans.push(Span::raw(c.with.clone()));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let list = List::new(items)
        .block(Block::new().borders(Borders::ALL).title(" conversations "))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = ListState::default().with_selected(screen.selected);
    frame.render_stateful_widget(list, area, &mut state);
}

fn draw_conversation(frame: &mut Frame, screen: &Screen, area: Rect) {
    let title = match screen.selected_name() {
        Some(name) => format!(" {name} "),
        None => " no conversation ".to_string(),
    };
    let block = Block::new().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    let rows = rows(screen, inner.width as usize);
    let height = inner.height as usize;
    // The newest rows at the bottom, `scroll` rows up from there.
    let end = rows.len().saturating_sub(screen.scroll.min(rows.len().saturating_sub(height)));
    let start = end.saturating_sub(height);
    let shown: Vec<Line> = rows[start..end].to_vec();
    frame.render_widget(Paragraph::new(shown).block(block), area);
}

#[cfg(test)]
#[path = "tui_view_tests.rs"]
mod tests;
