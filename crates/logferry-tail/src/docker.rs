//! Docker's `json-file` log format.
//!
//! One JSON object per line: `{"log":"text\n","stream":"stdout","time":"2019-01-01T11:11:11.111111111Z"}`
//! (<https://docs.docker.com/engine/logging/drivers/json-file/>). Docker's log
//! copier splits lines at 16 KiB: every chunk but the last has a `log` value
//! without trailing `\n` (moby/moby `daemon/logger/copier.go`,
//! <https://github.com/moby/moby/issues/34855>), so a missing `\n` marks a
//! partial chunk. Other keys (`attrs`) are skipped.

use crate::timestamp::parse_rfc3339_nanos;
use logferry_core::Stream;
use std::ops::Range;

/// One decoded docker json-file line.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DockerLine {
    /// `time`, nanoseconds since the Unix epoch.
    pub timestamp_nanos: i64,
    /// `stream`.
    pub stream: Stream,
    /// The raw (still escaped) bytes of the `log` string, inside the quotes.
    pub log: Range<usize>,
    /// Whether `log` holds any escape sequence.
    pub escaped: bool,
}

impl DockerLine {
    /// The message without its trailing newline, and whether it is a partial
    /// chunk (no trailing newline). When the only escape is the trailing `\n`
    /// (the common case) the result borrows `line`; otherwise the message is
    /// unescaped into `scratch` and `Err(range in scratch)`-style
    /// [`DockerMessage::Unescaped`] is returned.
    ///
    /// Returns `None` if the string holds an invalid escape.
    pub fn message(&self, line: &[u8], scratch: &mut Vec<u8>) -> Option<(DockerMessage, bool)> {
        let raw = &line[self.log.clone()];
        if !self.escaped {
            return Some((DockerMessage::Borrowed(self.log.clone()), true));
        }
        // Fast path: a single escape, the final `\n`.
        if raw.ends_with(b"\\n") && memchr::memchr(b'\\', raw) == Some(raw.len() - 2) {
            // Make sure the backslash before `n` is not itself escaped: it is the only one.
            return Some((
                DockerMessage::Borrowed(self.log.start..self.log.end - 2),
                false,
            ));
        }
        let start = scratch.len();
        unescape_json(raw, scratch)?;
        let partial = scratch.last() != Some(&b'\n');
        let end = if partial {
            scratch.len()
        } else {
            scratch.len() - 1
        };
        Some((DockerMessage::Unescaped(start..end), partial))
    }
}

/// Where a docker message's bytes are.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DockerMessage {
    /// A range of the line itself (no unescaping needed).
    Borrowed(Range<usize>),
    /// A range of the scratch buffer passed to [`DockerLine::message`].
    Unescaped(Range<usize>),
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// Scans a JSON string starting at the opening quote `b[i]`. Returns the range
/// inside the quotes, whether it has escapes, and the index after the closing quote.
#[inline]
fn scan_string(b: &[u8], i: usize) -> Option<(Range<usize>, bool, usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let mut j = start;
    let mut escaped = false;
    loop {
        let n = memchr::memchr2(b'"', b'\\', &b[j..])?;
        j += n;
        if b[j] == b'"' {
            return Some((start..j, escaped, j + 1));
        }
        escaped = true;
        j += 2;
        if j > b.len() {
            return None;
        }
    }
}

/// Skips any JSON value at `b[i]`; returns the index after it.
fn skip_value(b: &[u8], i: usize, depth: u32) -> Option<usize> {
    if depth > 32 {
        return None;
    }
    match *b.get(i)? {
        b'"' => scan_string(b, i).map(|(_, _, e)| e),
        b'{' | b'[' => {
            let close = if b[i] == b'{' { b'}' } else { b']' };
            let mut j = skip_ws(b, i + 1);
            if b.get(j) == Some(&close) {
                return Some(j + 1);
            }
            loop {
                if close == b'}' {
                    let (_, _, e) = scan_string(b, j)?;
                    j = skip_ws(b, e);
                    if b.get(j) != Some(&b':') {
                        return None;
                    }
                    j = skip_ws(b, j + 1);
                }
                j = skip_ws(b, skip_value(b, j, depth + 1)?);
                match b.get(j)? {
                    b',' => j = skip_ws(b, j + 1),
                    &c if c == close => return Some(j + 1),
                    _ => return None,
                }
            }
        }
        _ => {
            let mut j = i;
            while j < b.len()
                && matches!(b[j], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'a'..=b'z')
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// Decodes one docker json-file line (without the trailing `\n`). Returns
/// `None` unless it is a JSON object with a string `log`, a `stream` of
/// `stdout`/`stderr` and an RFC 3339 `time`.
pub fn decode_docker(line: &[u8]) -> Option<DockerLine> {
    let mut i = skip_ws(line, 0);
    if line.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(line, i + 1);
    let mut log = None;
    let mut stream = None;
    let mut time = None;
    loop {
        let (key, _, e) = scan_string(line, i)?;
        i = skip_ws(line, e);
        if line.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(line, i + 1);
        let key = &line[key];
        if key == b"log" || key == b"stream" || key == b"time" {
            let (range, escaped, e) = scan_string(line, i)?;
            i = e;
            match key {
                b"log" => log = Some((range, escaped)),
                b"stream" => {
                    stream = Some(match &line[range] {
                        b"stdout" => Stream::Stdout,
                        b"stderr" => Stream::Stderr,
                        _ => return None,
                    })
                }
                _ => time = Some(parse_rfc3339_nanos(&line[range])?),
            }
        } else {
            i = skip_value(line, i, 0)?;
        }
        i = skip_ws(line, i);
        match line.get(i)? {
            b',' => i = skip_ws(line, i + 1),
            b'}' => {
                if skip_ws(line, i + 1) != line.len() {
                    return None;
                }
                break;
            }
            _ => return None,
        }
    }
    let (log, escaped) = log?;
    Some(DockerLine {
        timestamp_nanos: time?,
        stream: stream?,
        log,
        escaped,
    })
}

fn push_utf8(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn hex4(b: &[u8]) -> Option<u32> {
    if b.len() < 4 {
        return None;
    }
    let mut v = 0u32;
    for &c in &b[..4] {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// Appends the unescaped form of a JSON string body to `out`. Returns `None`
/// on an invalid escape (lone surrogates become U+FFFD, as Go's decoder does).
pub fn unescape_json(raw: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    out.reserve(raw.len());
    while i < raw.len() {
        let Some(n) = memchr::memchr(b'\\', &raw[i..]) else {
            out.extend_from_slice(&raw[i..]);
            break;
        };
        out.extend_from_slice(&raw[i..i + n]);
        i += n + 1;
        let c = *raw.get(i)?;
        i += 1;
        match c {
            b'"' => out.push(b'"'),
            b'\\' => out.push(b'\\'),
            b'/' => out.push(b'/'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let hi = hex4(&raw[i..])?;
                i += 4;
                let ch = if (0xD800..0xDC00).contains(&hi) {
                    if raw.get(i) == Some(&b'\\') && raw.get(i + 1) == Some(&b'u') {
                        match hex4(&raw[i + 2..]) {
                            Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                i += 6;
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                            }
                            _ => None,
                        }
                    } else {
                        None
                    }
                } else {
                    char::from_u32(hi)
                };
                push_utf8(out, ch.unwrap_or('\u{FFFD}'));
            }
            _ => return None,
        }
    }
    Some(())
}

/// Writes one docker json-file line (with trailing `\n`) into `out`, escaping
/// `log` as Go's `encoding/json` does (including `<`, `>`, `&` as `\u003c`…).
/// Used by tests, benchmarks and fuzz seeds.
pub fn encode_docker(out: &mut Vec<u8>, time: &str, stream: Stream, log: &[u8]) {
    out.extend_from_slice(b"{\"log\":\"");
    for ch in String::from_utf8_lossy(log).chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.extend_from_slice(format!("\\u{:04x}", ch as u32).as_bytes())
            }
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => push_utf8(out, c),
        }
    }
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(line: &[u8]) -> (Vec<u8>, bool, Stream) {
        let d = decode_docker(line).unwrap();
        let mut scratch = Vec::new();
        let (m, partial) = d.message(line, &mut scratch).unwrap();
        let bytes = match m {
            DockerMessage::Borrowed(r) => line[r].to_vec(),
            DockerMessage::Unescaped(r) => scratch[r].to_vec(),
        };
        (bytes, partial, d.stream)
    }

    #[test]
    fn decodes_common_lines() {
        let l = br#"{"log":"Log line is here\n","stream":"stdout","time":"2019-01-01T11:11:11.111111111Z"}"#;
        assert_eq!(
            msg(l),
            (b"Log line is here".to_vec(), false, Stream::Stdout)
        );
        let l = br#"{"log":"a \"q\" \u003cb\u003e\ttab\n","stream":"stderr","attrs":{"k":["v",1]},"time":"2019-01-01T11:11:11Z"}"#;
        assert_eq!(
            msg(l),
            (b"a \"q\" <b>\ttab".to_vec(), false, Stream::Stderr)
        );
        let l = br#"{"log":"partial chunk","stream":"stdout","time":"2019-01-01T11:11:11Z"}"#;
        assert_eq!(msg(l), (b"partial chunk".to_vec(), true, Stream::Stdout));
        let l = br#"{"log":"\ud83d\ude00 \\n\n","stream":"stdout","time":"2019-01-01T11:11:11Z"}"#;
        assert_eq!(
            msg(l),
            ("😀 \\n".as_bytes().to_vec(), false, Stream::Stdout)
        );
    }

    #[test]
    fn rejects_non_docker() {
        for bad in [
            &br#"{"log":"x\n","stream":"stdout"}"#[..],
            br#"{"log":"x\n","stream":"stdin","time":"2019-01-01T11:11:11Z"}"#,
            br#"{"log":"x\n","stream":"stdout","time":"2019-01-01T11:11:11Z"} x"#,
            br#"{"log":"x\n","stream":"stdout","time":"2019-01-01T11:11:11Z""#,
            b"2016-10-06T00:17:09Z stdout F x",
        ] {
            assert!(
                decode_docker(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let l = br#"{"log":"bad \q\n","stream":"stdout","time":"2019-01-01T11:11:11Z"}"#;
        let d = decode_docker(l).unwrap();
        assert!(d.message(l, &mut Vec::new()).is_none());
    }

    #[test]
    fn encode_roundtrip() {
        let mut out = Vec::new();
        encode_docker(
            &mut out,
            "2019-01-01T11:11:11Z",
            Stream::Stdout,
            "x<\"\\\u{1}é\n".as_bytes(),
        );
        let line = &out[..out.len() - 1];
        assert_eq!(
            msg(line),
            ("x<\"\\\u{1}é".as_bytes().to_vec(), false, Stream::Stdout)
        );
    }
}
