//! `json_message`: messages that are JSON objects parsed into the document
//! (under a key or at the root) and the bounds on that parse.

use super::reader::{Problems, Section};
use logferry_elasticsearch::{JsonMessageOptions, JsonTarget};

/// `json_message` (see `logferry_elasticsearch::json_message`): `None` unless
/// `enabled: true`; the other keys are checked either way.
pub(super) fn read_json_message(
    mut s: Section<'_>,
    p: &mut Problems,
) -> Option<JsonMessageOptions> {
    let d = JsonMessageOptions::default();
    let enabled = s.boolean("enabled", p).unwrap_or(false);
    let root = s
        .choice("target", p, &[("key", false), ("root", true)])
        .unwrap_or(false);
    let key = s.string("key", p).unwrap_or_else(|| "json".into());
    let options = JsonMessageOptions {
        target: if root {
            JsonTarget::Root
        } else {
            JsonTarget::Key(key)
        },
        keep_message: s.boolean("keep_message", p).unwrap_or(d.keep_message),
        max_bytes: s
            .size("max_bytes", p)
            .map_or(d.max_bytes, |b| usize::try_from(b).unwrap_or(usize::MAX)),
        max_depth: s.positive("max_depth", p).unwrap_or(d.max_depth),
        max_fields: s.positive("max_fields", p).unwrap_or(d.max_fields),
    };
    s.finish(p);
    enabled.then_some(options)
}
