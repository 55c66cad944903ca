//! The `offset` clock of a task log (see [the module above](super) for how
//! Airflow's task handler reads it).

use crate::record::{LogFormat, Record};

/// The `offset` of `record`, given `last`, the offset of the previous record of
/// the same `log_id` (0 for the first one seen). One clock per log:
///
/// * **Plain files** (files mode, e.g. the sidecar reading Airflow's
///   `attempt=N.log`): the record's start byte + 1. Airflow writes one file per
///   attempt and never rotates it, so the byte position is a clock that is
///   strictly increasing in file order and identical whenever the record is
///   read again (restart, crash, replay): no state is involved.
/// * **Container logs** (CRI, docker json-file): the runtime's timestamp of
///   the line in nanoseconds, lifted to `last + 1` when it is not above `last`.
///   A task's stdout can span several files (kubelet rotation, container
///   restarts), which byte positions cannot order, whereas the runtime stamps
///   every line of a container with one clock as it writes it. The lift keeps
///   the order strict where two lines share a timestamp or where stdout and
///   stderr (stamped by separate goroutines) land in the file out of timestamp
///   order. `last` must survive restarts (the sink keeps it in a state file,
///   see `logferry-elasticsearch`): a line stamped before the previous one
///   that is the first read after a restart would otherwise fall to or below
///   an offset the handler's poll already passed. A record read again keeps
///   the offset Elasticsearch already holds (documents are sent with `create`).
///
/// The task's own `offset` field (Airflow 2: `time.time()` at emit; Airflow 3:
/// the line number at upload) is **not** used: text lines of the same file do
/// not carry it, and two clocks in one log make the handler's `offset > last`
/// polling skip lines that were written just before a JSON record.
/// The result is always ≥ 1 (the handler's first query is `offset > 0`).
pub fn next_offset(format: LogFormat, record: &Record, last: i64) -> i64 {
    match format {
        LogFormat::Plain => i64::try_from(record.start)
            .unwrap_or(i64::MAX - 1)
            .saturating_add(1),
        LogFormat::Cri | LogFormat::Docker => {
            record.timestamp_nanos.max(last.saturating_add(1)).max(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{RecordFlags, Stream};

    fn rec(start: u64, ts: i64) -> Record {
        Record {
            start,
            end: start + 10,
            timestamp_nanos: ts,
            stream: Stream::Stdout,
            flags: RecordFlags::NONE,
            message: bytes::Bytes::new(),
        }
    }

    #[test]
    fn one_clock_per_log() {
        // Plain files: the byte position, whatever the state.
        assert_eq!(next_offset(LogFormat::Plain, &rec(0, 5), 0), 1);
        assert_eq!(next_offset(LogFormat::Plain, &rec(4096, 5), 99_999), 4097);
        // Container logs: the runtime's clock, strictly increasing.
        assert_eq!(next_offset(LogFormat::Cri, &rec(0, 0), 0), 1);
        assert_eq!(next_offset(LogFormat::Cri, &rec(0, -5), 0), 1);
        assert_eq!(next_offset(LogFormat::Cri, &rec(0, 5), 10), 11);
        assert_eq!(next_offset(LogFormat::Docker, &rec(0, 50), 10), 50);
    }
}
