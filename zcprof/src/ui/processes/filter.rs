//! The `/` filter of the processes section: a pid, or a case-insensitive regex on comm,
//! command line, cgroup path and container (a plain word is a substring); the prompt that edits it, its keys, and its
//! line in the footer. A refused regex keeps the previous filter and says why in the prompt.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::text::{Line, Span};
use regex::{Regex, RegexBuilder};

use super::rows::ProcRow;
use crate::ui::theme::Theme;

/// Longest text the prompt takes, in characters.
const MAX_LEN: usize = 200;

/// An applied filter: a PID, or a regex on comm and command line (a plain word is a
/// substring).
#[derive(Clone, Debug)]
pub enum Filter {
    Pid(u32),
    Pattern { text: String, regex: Regex },
}

impl Filter {
    /// `Ok(None)` for empty text (no filter); an error message when the regex does not
    /// compile.
    pub fn parse(text: &str) -> Result<Option<Filter>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if let Ok(pid) = text.parse::<u32>() {
            return Ok(Some(Filter::Pid(pid)));
        }
        RegexBuilder::new(text)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map(|regex| {
                Some(Filter::Pattern {
                    text: text.to_string(),
                    regex,
                })
            })
            .map_err(|err| {
                // The regex crate's message spans several lines; the footer has one.
                let msg = err.to_string();
                let last = msg.lines().last().unwrap_or("invalid regex").trim();
                format!("bad regex: {}", last.trim_start_matches("error: "))
            })
    }

    pub fn text(&self) -> String {
        match self {
            Filter::Pid(pid) => pid.to_string(),
            Filter::Pattern { text, .. } => text.clone(),
        }
    }

    pub fn matches(&self, row: &ProcRow) -> bool {
        match self {
            Filter::Pid(pid) => row.pid == *pid,
            Filter::Pattern { regex, .. } => {
                regex.is_match(&row.comm)
                    || regex.is_match(&row.cmdline)
                    || regex.is_match(&row.cgroup)
                    || regex.is_match(&row.container)
            }
        }
    }
}

/// The `/` prompt while it is open.
#[derive(Clone, Debug, Default)]
pub struct FilterInput {
    pub text: String,
    /// Why the last Enter was refused (the previous filter stays).
    pub error: Option<String>,
}

impl FilterInput {
    /// The prompt, seeded with the filter it edits.
    pub fn editing(filter: Option<&Filter>) -> Self {
        FilterInput {
            text: filter.map(Filter::text).unwrap_or_default(),
            error: None,
        }
    }

    /// Applies a key while the prompt is open: it stays open, is cancelled, or applies a
    /// filter.
    pub fn handle_key(&mut self, key: KeyEvent) -> Prompt {
        match key.code {
            KeyCode::Esc => return Prompt::Cancelled,
            KeyCode::Enter => match Filter::parse(&self.text) {
                Ok(filter) => return Prompt::Applied(filter),
                // The old filter stays; the prompt stays open with the message.
                Err(err) => self.error = Some(err),
            },
            KeyCode::Backspace => {
                self.text.pop();
                self.error = None;
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                if self.text.chars().count() < MAX_LEN {
                    self.text.push(c);
                }
                self.error = None;
            }
            _ => {}
        }
        Prompt::Open
    }

    /// The footer line while the prompt is open: the text, a cursor, and the error or a hint.
    pub fn line(&self, theme: Theme) -> Line<'static> {
        let mut spans = vec![
            Span::styled(" filter / ", theme.accent()),
            Span::raw(self.text.clone()),
            Span::styled("▏", theme.accent()),
        ];
        match &self.error {
            Some(err) => spans.push(Span::styled(format!("  {err}"), theme.alert())),
            None => spans.push(Span::styled(
                "  Enter apply · Esc cancel · word, regex or pid",
                theme.dim(),
            )),
        }
        Line::from(spans)
    }
}

/// What a key did to the open prompt.
pub enum Prompt {
    /// Still open (text edited, or Enter refused with an error).
    Open,
    /// Closed without changing the filter.
    Cancelled,
    /// Closed with this filter (`None`: no filter).
    Applied(Option<Filter>),
}
