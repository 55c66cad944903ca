//! A hand-written RFC 3339 parser for log line timestamps.
//!
//! Accepts `YYYY-MM-DDTHH:MM:SS[.fraction](Z|z|±HH:MM|±HHMM)` with 0 to 9 fraction
//! digits (more are ignored), as written by containerd (Go `time.RFC3339Nano`,
//! trailing zeros trimmed, `Z`), CRI-O/conmon (9 digits and `+00:00`) and Docker.
//! See <https://www.rfc-editor.org/rfc/rfc3339#section-5.6>.

#[inline]
fn digits2(b: &[u8], i: usize) -> Option<u32> {
    let a = b.get(i)?.wrapping_sub(b'0');
    let c = b.get(i + 1)?.wrapping_sub(b'0');
    if a > 9 || c > 9 {
        return None;
    }
    Some(a as u32 * 10 + c as u32)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
#[inline]
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days in `month` (1–12) of the proleptic Gregorian `year`.
#[inline]
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS` (the first 19 bytes) into seconds since the
/// epoch as if the time were UTC.
#[inline]
fn parse_prefix(b: &[u8]) -> Option<i64> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b'T' && b[10] != b't' && b[10] != b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits2(b, 0)? * 100 + digits2(b, 2)?;
    let month = digits2(b, 5)?;
    let day = digits2(b, 8)?;
    let hour = digits2(b, 11)?;
    let min = digits2(b, 14)?;
    let sec = digits2(b, 17)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    // Only days 29 to 31 need the month's length (`2016-02-31` does not exist).
    if day > 28 && day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year as i64, month, day);
    Some(days * 86_400 + (hour * 3600 + min * 60 + sec) as i64)
}

/// Parses the fraction and zone after the first 19 bytes, given the seconds
/// of the prefix.
#[inline]
fn parse_tail(b: &[u8], local_secs: i64) -> Option<i64> {
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = 100_000_000i64;
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            nanos += d as i64 * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_secs: i64 = match b.get(i)? {
        b'Z' | b'z' => {
            i += 1;
            0
        }
        &sign @ (b'+' | b'-') => {
            let oh = digits2(b, i + 1)?;
            let (om, len) = if b.get(i + 3) == Some(&b':') {
                (digits2(b, i + 4)?, 6)
            } else {
                (digits2(b, i + 3)?, 5)
            };
            if oh > 23 || om > 59 {
                return None;
            }
            i += len;
            let s = (oh * 3600 + om * 60) as i64;
            if sign == b'+' {
                s
            } else {
                -s
            }
        }
        _ => return None,
    };
    if i != b.len() {
        return None;
    }
    (local_secs - offset_secs)
        .checked_mul(1_000_000_000)?
        .checked_add(nanos)
}

/// Parses an RFC 3339 timestamp into nanoseconds since the Unix epoch (UTC).
/// Returns `None` for anything else (including trailing bytes).
pub fn parse_rfc3339_nanos(b: &[u8]) -> Option<i64> {
    parse_tail(b, parse_prefix(b)?)
}

/// [`parse_rfc3339_nanos`] with a one-entry cache of the date and time up to
/// the seconds: consecutive log lines mostly share them, so only the fraction
/// and zone are parsed again.
#[derive(Clone, Debug, Default)]
pub struct TimestampCache {
    prefix: [u8; 19],
    secs: i64,
    valid: bool,
}

impl TimestampCache {
    /// Parses like [`parse_rfc3339_nanos`].
    #[inline]
    pub fn parse(&mut self, b: &[u8]) -> Option<i64> {
        if self.valid && b.len() >= 20 && b[..19] == self.prefix {
            return parse_tail(b, self.secs);
        }
        let secs = parse_prefix(b)?;
        self.prefix.copy_from_slice(&b[..19]);
        self.secs = secs;
        self.valid = true;
        parse_tail(b, secs)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339_nanos as p;

    #[test]
    fn containerd_trims_trailing_zeros_with_z() {
        // 2016-10-06T00:17:09Z = 1475713029 s
        assert_eq!(
            p(b"2016-10-06T00:17:09.669794202Z"),
            Some(1_475_713_029_669_794_202)
        );
        assert_eq!(
            p(b"2016-10-06T00:17:09.6697942Z"),
            Some(1_475_713_029_669_794_200)
        );
        assert_eq!(
            p(b"2016-10-06T00:17:09.6Z"),
            Some(1_475_713_029_600_000_000)
        );
        assert_eq!(p(b"2016-10-06T00:17:09Z"), Some(1_475_713_029_000_000_000));
    }

    #[test]
    fn crio_nine_digits_with_numeric_offset() {
        assert_eq!(
            p(b"2016-10-06T00:17:09.669794202+00:00"),
            Some(1_475_713_029_669_794_202)
        );
        assert_eq!(
            p(b"2016-10-06T02:17:09.000000001+02:00"),
            Some(1_475_713_029_000_000_001)
        );
        assert_eq!(
            p(b"2016-10-05T22:17:09.000000000-0200"),
            Some(1_475_713_029_000_000_000)
        );
    }

    #[test]
    fn epoch_leap_years_and_pre_epoch() {
        assert_eq!(p(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(p(b"2000-03-01T00:00:00Z"), Some(951_868_800_000_000_000));
        assert_eq!(p(b"2024-02-29T12:00:00Z"), Some(1_709_208_000_000_000_000));
        assert!(
            p(b"2000-02-29T00:00:00Z").is_some(),
            "divisible by 400: leap"
        );
        assert!(p(b"2016-12-31T00:00:00Z").is_some());
        assert_eq!(p(b"1969-12-31T23:59:59Z"), Some(-1_000_000_000));
    }

    #[test]
    fn cache_gives_the_same_answers() {
        let mut c = super::TimestampCache::default();
        for t in [
            &b"2016-10-06T00:17:09.669794202Z"[..],
            b"2016-10-06T00:17:09.1Z",
            b"2016-10-06T00:17:09.1+02:00",
            b"2016-10-06T00:17:09.1x",
            b"2016-10-06T00:17:10Z",
            b"2016-10-06T00:17:10",
            b"garbage",
        ] {
            assert_eq!(c.parse(t), p(t));
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b""[..],
            b"2016-10-06",
            b"2016-10-06T00:17:09",
            b"2016-10-06T00:17:09.Z",
            b"2016-13-06T00:17:09Z",
            b"2016-10-06T24:17:09Z",
            b"2016-10-06T00:17:09Zx",
            b"2016-10-06T00:17:09+0",
            b"20a6-10-06T00:17:09Z",
            b"2016-10-06T00:17:09.123\xff",
            b"2016-02-31T00:00:00Z",
            b"2016-02-30T00:00:00Z",
            b"2015-02-29T00:00:00Z",
            b"1900-02-29T00:00:00Z",
            b"2016-04-31T00:00:00Z",
            b"2016-11-31T00:00:00Z",
        ] {
            assert_eq!(p(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
