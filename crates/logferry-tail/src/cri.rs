//! The CRI log line format (containerd, CRI-O).
//!
//! `<RFC3339Nano timestamp> SP <stdout|stderr> SP <tags> SP <message>`, where
//! `tags` are `:`-separated and only the first one matters: `P` marks a partial
//! chunk to be joined with the following chunks of the same stream up to an
//! `F` chunk. The message is not escaped. Source: kubelet's `parseCRILog`
//! (kubernetes/kubernetes `pkg/kubelet/kuberuntime/logs/logs.go`) and the CRI
//! logging design <https://github.com/kubernetes/design-proposals-archive/blob/main/node/kubelet-cri-logging.md>.

use crate::timestamp::TimestampCache;
use logferry_core::Stream;

/// One decoded CRI line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CriLine {
    /// Line time, nanoseconds since the Unix epoch.
    pub timestamp_nanos: i64,
    /// `stdout` or `stderr`.
    pub stream: Stream,
    /// The first tag is `P`: more chunks follow.
    pub partial: bool,
    /// Byte index in the line where the message starts (the message runs to the
    /// end of the line).
    pub message_start: usize,
}

/// Decodes one CRI line. `line` excludes the trailing `\n`; a trailing `\r`
/// is part of the message (containerd strips `\r\n` before framing). Returns
/// `None` if the framing is not CRI.
#[inline]
pub fn decode_cri(line: &[u8]) -> Option<CriLine> {
    decode_cri_cached(line, &mut TimestampCache::default())
}

/// [`decode_cri`] with a timestamp cache kept across the lines of a file.
#[inline]
pub fn decode_cri_cached(line: &[u8], ts: &mut TimestampCache) -> Option<CriLine> {
    let sp1 = memchr::memchr(b' ', line)?;
    let timestamp_nanos = ts.parse(&line[..sp1])?;
    let rest = &line[sp1 + 1..];
    let (stream, after_stream) = if rest.starts_with(b"stdout ") {
        (Stream::Stdout, sp1 + 8)
    } else if rest.starts_with(b"stderr ") {
        (Stream::Stderr, sp1 + 8)
    } else {
        return None;
    };
    let tags = &line[after_stream..];
    // Tags end at the next space, or at end of line for an empty message
    // without the separating space (seen from some runtimes for empty lines).
    let (tag_len, message_start) = match memchr::memchr(b' ', tags) {
        Some(n) => (n, after_stream + n + 1),
        None => (tags.len(), line.len()),
    };
    let tag = &tags[..tag_len];
    if tag.is_empty() {
        return None;
    }
    let first = match memchr::memchr(b':', tag) {
        Some(n) => &tag[..n],
        None => tag,
    };
    Some(CriLine {
        timestamp_nanos,
        stream,
        partial: first == b"P",
        message_start,
    })
}

/// Writes one CRI line (with trailing `\n`) into `out`, as containerd would.
/// Used by tests, benchmarks and the fuzz targets' seed corpus.
pub fn encode_cri(
    out: &mut Vec<u8>,
    timestamp: &str,
    stream: Stream,
    partial: bool,
    message: &[u8],
) {
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(message);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_full_and_partial_lines() {
        let l = b"2016-10-06T00:17:09.669794202Z stdout P log content 1";
        let d = decode_cri(l).unwrap();
        assert_eq!(d.stream, Stream::Stdout);
        assert!(d.partial);
        assert_eq!(&l[d.message_start..], b"log content 1");
        let l = b"2016-10-06T00:17:09.669794203+00:00 stderr F:x:y  two spaces";
        let d = decode_cri(l).unwrap();
        assert_eq!(d.stream, Stream::Stderr);
        assert!(!d.partial);
        assert_eq!(&l[d.message_start..], b" two spaces");
    }

    #[test]
    fn empty_messages() {
        let l = b"2016-10-06T00:17:09Z stdout F ";
        assert_eq!(decode_cri(l).unwrap().message_start, l.len());
        let l = b"2016-10-06T00:17:09Z stdout F";
        assert_eq!(decode_cri(l).unwrap().message_start, l.len());
    }

    #[test]
    fn rejects_non_cri() {
        assert!(decode_cri(b"hello world").is_none());
        assert!(decode_cri(b"2016-10-06T00:17:09Z stdin F x").is_none());
        assert!(decode_cri(b"2016-10-06T00:17:09Z stdout  x").is_none());
        assert!(decode_cri(b"{\"log\":\"x\"}").is_none());
    }
}
