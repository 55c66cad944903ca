//! Hand-written JSON output: string escaping (RFC 8259 §7) and RFC 3339
//! timestamps, written straight into a byte buffer.

/// For each byte: 0 = copy as is, otherwise the character after `\`
/// (`u` = `\u00XX`).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string literal, quotes included. Invalid UTF-8
/// sequences are replaced by U+FFFD.
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    match std::str::from_utf8(s) {
        Ok(valid) => write_escaped(out, valid.as_bytes()),
        Err(_) => write_escaped(out, String::from_utf8_lossy(s).as_bytes()),
    }
    out.push(b'"');
}

/// Whether any of the 8 bytes of `w` must be escaped: `< 0x20`, `"` or `\\`
/// (exact "has less" / "has zero byte" word tricks, Bit Twiddling Hacks).
#[inline]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let q = w ^ (ONES * b'"' as u64);
    let quote = q.wrapping_sub(ONES) & !q & HIGH;
    let b = w ^ (ONES * b'\\' as u64);
    let backslash = b.wrapping_sub(ONES) & !b & HIGH;
    (control | quote | backslash) != 0
}

/// Appends the escaped contents of valid UTF-8 `s` (no quotes). Runs of
/// bytes that need no escaping are found 8 bytes at a time and copied at once.
pub fn write_escaped(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        if i + 8 <= s.len() {
            let w = u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
            if !word_needs_escape(w) {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(s.len());
        while i < end {
            let b = s[i];
            let e = ESCAPE[b as usize];
            if e != 0 {
                out.extend_from_slice(&s[start..i]);
                out.push(b'\\');
                out.push(e);
                if e == b'u' {
                    out.extend_from_slice(b"00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                }
                start = i + 1;
            }
            i += 1;
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// Appends `"key":` for a key that needs no escaping.
#[inline]
pub fn write_key(out: &mut Vec<u8>, key: &str) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends a signed integer.
#[inline]
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(itoa_buf(v.unsigned_abs()).as_slice());
}

/// Appends an unsigned integer.
#[inline]
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa_buf(v).as_slice());
}

struct Digits {
    buf: [u8; 20],
    at: usize,
}

impl Digits {
    fn as_slice(&self) -> &[u8] {
        &self.buf[self.at..]
    }
}

fn itoa_buf(mut v: u64) -> Digits {
    let mut d = Digits {
        buf: [0; 20],
        at: 20,
    };
    loop {
        d.at -= 1;
        d.buf[d.at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    d
}

/// Civil date `(year, month, day)` of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn push2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// Appends `nanos` (since the Unix epoch, UTC) as an RFC 3339 string literal
/// with all nine fraction digits: `"2026-11-22T15:04:05.123456789Z"`.
pub fn write_timestamp(out: &mut Vec<u8>, nanos: i64) {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    out.push(b'"');
    push2(out, y / 100);
    push2(out, y % 100);
    out.push(b'-');
    push2(out, m);
    out.push(b'-');
    push2(out, d);
    out.push(b'T');
    push2(out, sod / 3600);
    out.push(b':');
    push2(out, sod / 60 % 60);
    out.push(b':');
    push2(out, sod % 60);
    out.push(b'.');
    let mut f = [b'0'; 9];
    let mut v = frac;
    for slot in f.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&f);
    out.extend_from_slice(b"Z\"");
}

/// Copies a raw JSON value, turning insignificant line breaks into spaces
/// (a valid JSON text has no raw line break inside strings), so the document
/// stays on one NDJSON line.
pub(crate) fn write_raw(out: &mut Vec<u8>, raw: &serde_json::value::RawValue) {
    let bytes = raw.get().as_bytes();
    let at = out.len();
    out.extend_from_slice(bytes);
    for b in &mut out[at..] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        write_str(&mut out, bytes);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_serde_json() {
        for input in [
            "plain",
            "quote \" backslash \\ slash /",
            "tab\tnl\ncr\r\u{8}\u{c}\u{1}\u{1f}\u{7f}",
            "ünïcödé ✓ 𝄞",
            "",
        ] {
            assert_eq!(s(input.as_bytes()), serde_json::to_string(input).unwrap());
        }
    }

    #[test]
    fn word_trick_matches_the_table() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = [b'a'; 8];
                bytes[pos] = b;
                let w = u64::from_le_bytes(bytes);
                assert_eq!(
                    word_needs_escape(w),
                    ESCAPE[b as usize] != 0,
                    "byte {b:#x} at {pos}"
                );
            }
        }
        let long = "0123456789abcdef\"0123456789\n\u{1}é✓".repeat(3);
        assert_eq!(s(long.as_bytes()), serde_json::to_string(&long).unwrap());
    }

    #[test]
    fn replaces_invalid_utf8() {
        let out = s(b"ok \xff\xfe end");
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "ok \u{fffd}\u{fffd} end");
    }

    #[test]
    fn formats_timestamps_with_nanoseconds() {
        let mut out = Vec::new();
        write_timestamp(&mut out, 1_779_462_245_123_456_789);
        assert_eq!(out, b"\"2026-05-22T15:04:05.123456789Z\"");
        out.clear();
        write_timestamp(&mut out, 0);
        assert_eq!(out, b"\"1970-01-01T00:00:00.000000000Z\"");
        out.clear();
        write_timestamp(&mut out, -1);
        assert_eq!(out, b"\"1969-12-31T23:59:59.999999999Z\"");
        // Cross-check a spread of instants with chrono.
        for i in 0..2000i64 {
            let n = (i as i128 * 7_919_000_123_457_111 % 4_102_444_800_000_000_000) as i64;
            out.clear();
            write_timestamp(&mut out, n);
            let expected = chrono::DateTime::from_timestamp_nanos(n)
                .format("\"%Y-%m-%dT%H:%M:%S%.9fZ\"")
                .to_string();
            assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);
        }
    }

    #[test]
    fn writes_integers() {
        let mut out = Vec::new();
        for v in [0i64, 7, -7, 1234567890, i64::MIN, i64::MAX] {
            out.clear();
            write_i64(&mut out, v);
            assert_eq!(String::from_utf8(out.clone()).unwrap(), v.to_string());
        }
        out.clear();
        write_u64(&mut out, u64::MAX);
        assert_eq!(String::from_utf8(out).unwrap(), u64::MAX.to_string());
    }
}
