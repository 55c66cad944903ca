//! The hand-written RFC 3339 parser checked against a reference (`chrono`'s
//! `DateTime::parse_from_rfc3339`) on valid and invalid inputs.
//!
//! The parser is stricter or wider than the reference in documented places
//! only, which the comparison accounts for:
//! * a zone written `±HHMM` (no colon) is accepted, as some runtimes write it:
//!   compared with the reference given `±HH:MM`;
//! * more than 9 fraction digits: the extra digits are ignored (the reference
//!   also truncates to nanoseconds).

use logferry_tail::timestamp::{parse_rfc3339_nanos, TimestampCache};
use proptest::prelude::*;

/// The reference: nanoseconds since the epoch, `None` when chrono rejects the
/// text or the instant does not fit in an `i64` of nanoseconds.
fn reference(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()?
        .timestamp_nanos_opt()
}

#[derive(Clone, Debug)]
struct Parts {
    year: u32,
    month: u32,
    day: u32,
    sep: char,
    hour: u32,
    min: u32,
    sec: u32,
    frac: Option<String>,
    zone: Zone,
}

#[derive(Clone, Debug)]
enum Zone {
    Z(char),
    Offset {
        sign: char,
        h: u32,
        m: u32,
        colon: bool,
    },
    Missing,
}

impl Parts {
    fn render(&self, colon_always: bool) -> String {
        let mut s = format!(
            "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.sep, self.hour, self.min, self.sec
        );
        if let Some(f) = &self.frac {
            s.push('.');
            s.push_str(f);
        }
        match self.zone {
            Zone::Z(c) => s.push(c),
            Zone::Offset { sign, h, m, colon } => {
                let colon = if colon || colon_always { ":" } else { "" };
                s.push_str(&format!("{sign}{h:02}{colon}{m:02}"));
            }
            Zone::Missing => {}
        }
        s
    }
}

/// Mostly plausible timestamps, with every field sometimes out of range.
fn parts() -> impl Strategy<Value = Parts> {
    let zone = prop_oneof![
        4 => prop_oneof![Just('Z'), Just('z')].prop_map(Zone::Z),
        4 => (prop_oneof![Just('+'), Just('-')], 0u32..=25, 0u32..=61, any::<bool>())
            .prop_map(|(sign, h, m, colon)| Zone::Offset { sign, h, m, colon }),
        1 => Just(Zone::Missing),
    ];
    (
        (0u32..=9999, 0u32..=13, 0u32..=32),
        prop_oneof![8 => Just('T'), 1 => Just('t'), 1 => Just(' '), 1 => Just('x')],
        (0u32..=24, 0u32..=60, 0u32..=59),
        proptest::option::of("[0-9]{0,12}"),
        zone,
    )
        .prop_map(
            |((year, month, day), sep, (hour, min, sec), frac, zone)| Parts {
                year,
                month,
                day,
                sep,
                hour,
                min,
                sec,
                frac,
                zone,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    /// Structured inputs, valid and invalid (month 13, day 32, `2016-02-31`,
    /// hour 24, offsets beyond 23:59, empty fractions, missing zones…): the
    /// parser agrees with the reference on acceptance and on the instant.
    #[test]
    fn agrees_with_chrono(p in parts()) {
        let text = p.render(false);
        let expected = reference(&p.render(true));
        prop_assert_eq!(parse_rfc3339_nanos(text.as_bytes()), expected, "{}", text);
        prop_assert_eq!(TimestampCache::default().parse(text.as_bytes()), expected);
    }

    /// A valid timestamp with one byte replaced by any byte: still agrees.
    #[test]
    fn agrees_with_chrono_after_a_byte_changes(
        p in parts(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = p.render(true).into_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let expected = std::str::from_utf8(&bytes).ok().and_then(reference);
        prop_assert_eq!(parse_rfc3339_nanos(&bytes), expected, "{:?}", String::from_utf8_lossy(&bytes));
    }

    /// Consecutive lines through one cache give what the plain parser gives.
    #[test]
    fn the_cache_never_changes_an_answer(ps in proptest::collection::vec(parts(), 1..20)) {
        let mut cache = TimestampCache::default();
        for p in ps {
            let text = p.render(false);
            prop_assert_eq!(cache.parse(text.as_bytes()), parse_rfc3339_nanos(text.as_bytes()));
        }
    }
}

#[test]
fn impossible_dates_are_rejected_like_the_reference() {
    for s in [
        "2016-02-31T00:00:00Z",
        "2015-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2016-06-31T23:59:59Z",
    ] {
        assert_eq!(reference(s), None, "{s}");
        assert_eq!(parse_rfc3339_nanos(s.as_bytes()), None, "{s}");
    }
    assert!(parse_rfc3339_nanos(b"2000-02-29T00:00:00Z").is_some());
}
