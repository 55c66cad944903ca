//! The stdout sink: one enriched document per line (NDJSON), the same
//! documents the Elasticsearch sink would index. The default when the
//! configuration has no `elasticsearch` section; handy for a first look and
//! for piping into other tools.

use crate::metrics::Metrics;
use logferry_core::{Acker, RecordBatch};
use logferry_elasticsearch::{DocumentEncoder, DocumentOptions};
use std::io::Write;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Writes every batch to stdout and acknowledges it once written and flushed.
///
/// # Errors
/// Writing to stdout failed (closed pipe); unacknowledged batches are read
/// again on the next start.
pub async fn stdout(
    mut input: mpsc::Receiver<RecordBatch>,
    acker: Acker,
    options: DocumentOptions,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let mut encoder = DocumentEncoder::new(options);
    let mut buf = Vec::with_capacity(1 << 20);
    while let Some(batch) = input.recv().await {
        buf.clear();
        for record in &batch.records {
            encoder.encode(&batch, record, &mut buf);
            buf.push(b'\n');
        }
        metrics
            .airflow_records_without_log_id
            .inc_by(encoder.take_records_without_log_id());
        for (reason, n) in encoder.take_json_messages_not_parsed() {
            if n > 0 {
                metrics
                    .json_messages_not_parsed
                    .with_label_values(&[reason.as_label()])
                    .inc_by(n);
            }
        }
        encoder.save_airflow_state(false);
        // Blocking write of one batch; stdout is a pipe or a terminal.
        let written = tokio::task::block_in_place(|| {
            let mut out = std::io::stdout().lock();
            out.write_all(&buf)?;
            out.flush()
        });
        written?;
        metrics
            .stdout_written_records
            .inc_by(batch.records.len() as u64);
        acker.ack(batch.ack);
    }
    encoder.save_airflow_state(true);
    Ok(())
}
