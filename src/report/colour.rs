//! Colour on the console, only where it carries meaning: PASS (green), FAIL and NOT TRUSTWORTHY
//! (red), the `error:` (red) and `warning:` (yellow) prefixes. Only a stream that is a terminal
//! gets colour, and never when `NO_COLOR` is set to a non-empty value (https://no-color.org).
//! Texts are built plain (reports and files share them) and painted as they are printed.

use std::ffi::OsStr;
use std::fmt::Display;
use std::io::IsTerminal;

use anstyle::{AnsiColor, Style};

/// A standard stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// The decision: colour only on a terminal, and not when `NO_COLOR` holds a non-empty value.
pub(crate) fn use_colour(is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Whether `stream` gets colour now.
pub(crate) fn enabled(stream: Stream) -> bool {
    let terminal = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    use_colour(terminal, std::env::var_os("NO_COLOR").as_deref())
}

const RED: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
const GREEN: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
const YELLOW: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));

/// Words coloured wherever they stand as whole words.
const WORDS: &[(&str, Style)] = &[("NOT TRUSTWORTHY", RED), ("PASS", GREEN), ("FAIL", RED)];

/// Prefixes coloured at the start of a line (after its indentation).
const PREFIXES: &[(&str, Style)] = &[("error:", RED), ("warning:", YELLOW)];

fn is_word_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

fn paint_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let indent = line.len() - line.trim_start().len();
    let mut rest = line;
    if let Some((p, style)) = PREFIXES.iter().find(|(p, _)| line[indent..].starts_with(p)) {
        out.push_str(&line[..indent]);
        out.push_str(&format!("{style}{p}{style:#}"));
        rest = &line[indent + p.len()..];
    }
    loop {
        let hit = WORDS
            .iter()
            .filter_map(|(w, style)| find_whole(rest, w).map(|i| (i, *w, *style)))
            .min_by_key(|h| h.0);
        match hit {
            Some((i, w, style)) => {
                out.push_str(&rest[..i]);
                out.push_str(&format!("{style}{w}{style:#}"));
                rest = &rest[i + w.len()..];
            }
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    out
}

/// The first place `w` stands in `s` as a whole word.
fn find_whole(s: &str, w: &str) -> Option<usize> {
    s.match_indices(w).map(|(i, _)| i).find(|&i| {
        !is_word_char(s[..i].chars().next_back()) && !is_word_char(s[i + w.len()..].chars().next())
    })
}

/// `text` with its verdict words and message prefixes in colour.
pub(crate) fn paint(text: &str) -> String {
    text.split('\n')
        .map(paint_line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` as it should reach `stream`: painted on a terminal that takes colour, else as is.
pub(crate) fn for_stream(text: &str, stream: Stream) -> String {
    if enabled(stream) {
        paint(text)
    } else {
        text.to_string()
    }
}

/// "error: MSG" for standard error, the prefix in colour on a terminal.
pub(crate) fn error_line(msg: impl Display) -> String {
    let line = format!("error: {msg}");
    if enabled(Stream::Stderr) {
        let rest = &line["error:".len()..];
        format!("{RED}error:{RED:#}{rest}")
    } else {
        line
    }
}

/// `eprintln!` of "error: …" with the prefix in colour on a terminal.
macro_rules! eprint_error {
    ($($t:tt)*) => {
        eprintln!("{}", $crate::report::colour::error_line(format_args!($($t)*)))
    };
}
pub(crate) use eprint_error;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let set = OsStr::new("1");
        let empty = OsStr::new("");
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(empty)), "an empty NO_COLOR is unset");
        assert!(!use_colour(true, Some(set)));
        assert!(!use_colour(false, None));
        assert!(!use_colour(false, Some(set)));
        assert!(!use_colour(false, Some(empty)));
    }

    #[test]
    fn paints_verdicts_and_prefixes_only() {
        let red = |w: &str| format!("{RED}{w}{RED:#}");
        let green = |w: &str| format!("{GREEN}{w}{GREEN:#}");
        let t = "Targets:\n  PASS ttft_p95<200ms\n  FAIL tpot_p99<5ms\nwarning: low\nerror: bad";
        let p = paint(t);
        assert!(
            p.contains(&format!("  {} ttft_p95", green("PASS"))),
            "{p:?}"
        );
        assert!(p.contains(&format!("  {} tpot_p99", red("FAIL"))), "{p:?}");
        assert!(
            p.contains(&format!("{YELLOW}warning:{YELLOW:#} low")),
            "{p:?}"
        );
        assert!(p.contains(&format!("{} bad", red("error:"))), "{p:?}");
        assert_eq!(strip(&p), t);
        let c = "Client: 1 CPU s — NOT TRUSTWORTHY: the client was the limit";
        assert!(paint(c).contains(&red("NOT TRUSTWORTHY")));
        // Not inside other words, and a line without them is unchanged.
        for plain in [
            "PASSED FAILURE BYPASS xFAIL FAIL_X",
            "Throughput: 2.00 req/s",
            "",
        ] {
            assert_eq!(paint(plain), plain);
        }
        // A part-word hit before a whole one does not hide it.
        let mixed = "FAILED then FAIL";
        assert_eq!(paint(mixed), format!("FAILED then {}", red("FAIL")));
        assert_eq!(
            paint("ünicode FAIL é"),
            format!("ünicode {} é", red("FAIL"))
        );
    }

    fn strip(s: &str) -> String {
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c == '\x1b' {
                for d in it.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
