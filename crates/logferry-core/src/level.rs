//! Log level detection.

/// A log severity, ordered from least to most severe.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Level {
    /// `trace`.
    Trace,
    /// `debug`.
    Debug,
    /// `info`, `notice`.
    Info,
    /// `warn`, `warning`.
    Warn,
    /// `error`, `err`.
    Error,
    /// `fatal`, `critical`, `crit`, `panic`, `alert`, `emerg`.
    Fatal,
}

impl Level {
    /// The lower-case name written to `log.level`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// Parses a level word, case-insensitively (`INFO`, `Warning`, `err`, …).
    pub fn parse(word: &[u8]) -> Option<Level> {
        let mut buf = [0u8; 8];
        if word.len() < 3 || word.len() > buf.len() {
            return None;
        }
        // Cheap rejection of most words: every level name starts with one of these.
        if !matches!(
            word[0] | 0x20,
            b't' | b'd' | b'i' | b'n' | b'w' | b'e' | b'f' | b'c' | b'p' | b'a'
        ) {
            return None;
        }
        for (d, s) in buf.iter_mut().zip(word) {
            *d = s.to_ascii_lowercase();
        }
        Some(match &buf[..word.len()] {
            b"trace" => Level::Trace,
            b"debug" | b"dbg" => Level::Debug,
            b"info" | b"notice" | b"inf" => Level::Info,
            b"warn" | b"warning" | b"wrn" => Level::Warn,
            b"error" | b"err" | b"eror" => Level::Error,
            b"fatal" | b"critical" | b"crit" | b"panic" | b"alert" | b"emerg" => Level::Fatal,
            _ => return None,
        })
    }

    /// Finds the level of a message.
    ///
    /// * A JSON object: the first string value of a `level`, `severity`,
    ///   `levelname` or `log.level` key (a flat dotted key, as ECS loggers write it).
    /// * Text: a level word among the first four whitespace-separated words,
    ///   ignoring surrounding `[]`, `:`, `,` and `|` (`INFO ...`, `[WARN] ...`,
    ///   `2024-01-01 12:00:00,123 ERROR ...`).
    ///
    /// Returns `None` when neither finds a level. Never allocates.
    pub fn detect(message: &[u8]) -> Option<Level> {
        let trimmed = trim_start(message);
        if trimmed.first() == Some(&b'{') {
            return detect_json(trimmed);
        }
        trimmed
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .take(4)
            .find_map(|w| {
                let w = trim_punct(w);
                Level::parse(w)
            })
    }
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

fn trim_punct(mut w: &[u8]) -> &[u8] {
    while let [b'[' | b'(' | b'<', rest @ ..] = w {
        w = rest;
    }
    while let [rest @ .., b']' | b')' | b'>' | b':' | b',' | b'|'] = w {
        w = rest;
    }
    w
}

fn detect_json(obj: &[u8]) -> Option<Level> {
    // Look for `"<key>"` followed by optional spaces, `:`, spaces and a string.
    for key in [
        &b"\"level\""[..],
        b"\"severity\"",
        b"\"levelname\"",
        b"\"log.level\"",
    ] {
        let mut from = 0;
        while let Some(pos) = memfind(&obj[from..], key) {
            let after = &obj[from + pos + key.len()..];
            let after = trim_start(after);
            if let [b':', rest @ ..] = after {
                let rest = trim_start(rest);
                if let [b'"', value @ ..] = rest {
                    let end = value.iter().position(|&c| c == b'"')?;
                    if let Some(level) = Level::parse(&value[..end]) {
                        return Some(level);
                    }
                }
            }
            from += pos + key.len();
        }
    }
    None
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_levels_in_text_and_json() {
        assert_eq!(Level::detect(b"INFO starting"), Some(Level::Info));
        assert_eq!(Level::detect(b"[WARN] disk"), Some(Level::Warn));
        assert_eq!(
            Level::detect(b"2024-01-01 12:00:00,123 ERROR boom"),
            Some(Level::Error)
        );
        assert_eq!(Level::detect(b"WARNING: x"), Some(Level::Warn));
        assert_eq!(
            Level::detect(br#"{"msg":"x","level":"debug"}"#),
            Some(Level::Debug)
        );
        assert_eq!(
            Level::detect(br#"{"levelname": "ERROR","message":"x"}"#),
            Some(Level::Error)
        );
        assert_eq!(Level::detect(br#"{"log.level":"warn"}"#), Some(Level::Warn));
        assert_eq!(
            Level::detect(br#"{"severity":"CRITICAL"}"#),
            Some(Level::Fatal)
        );
        assert_eq!(Level::detect(b"hello world, all fine here today"), None);
        assert_eq!(Level::detect(br#"{"level":7}"#), None);
        assert!(Level::Info < Level::Warn);
    }
}
