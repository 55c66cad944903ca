//! What the forwarder reports, for the binary's metrics (Vector's
//! "internal events" style: the library never touches a registry).

/// The outcome of one bulk HTTP request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum BulkOutcome {
    /// HTTP 2xx and every item delivered (2xx, or 409 on `create`).
    Success,
    /// HTTP 2xx with some items to retry or dead-letter.
    PartialFailure,
    /// HTTP 429 for the whole request.
    Rejected429,
    /// HTTP 5xx for the whole request.
    ServerError,
    /// HTTP 413: the body is split and sent again.
    TooLarge,
    /// HTTP 401 or 403: the credential is refused (a configuration problem;
    /// retried, and a 401 re-reads the secret files first).
    Unauthorized,
    /// Any other HTTP status (e.g. 400).
    ClientError,
    /// Connection refused, reset or closed without a response.
    ConnectionError,
    /// No complete response within `request_timeout`.
    Timeout,
    /// A 2xx response whose body is not a bulk response.
    InvalidResponse,
}

impl BulkOutcome {
    /// Every outcome, for pre-registering metric series.
    pub const ALL: &'static [BulkOutcome] = &[
        BulkOutcome::Success,
        BulkOutcome::PartialFailure,
        BulkOutcome::Rejected429,
        BulkOutcome::ServerError,
        BulkOutcome::TooLarge,
        BulkOutcome::Unauthorized,
        BulkOutcome::ClientError,
        BulkOutcome::ConnectionError,
        BulkOutcome::Timeout,
        BulkOutcome::InvalidResponse,
    ];

    /// A label from a closed set, for metrics.
    pub fn as_label(self) -> &'static str {
        match self {
            BulkOutcome::Success => "success",
            BulkOutcome::PartialFailure => "partial_failure",
            BulkOutcome::Rejected429 => "rejected",
            BulkOutcome::ServerError => "server_error",
            BulkOutcome::TooLarge => "too_large",
            BulkOutcome::Unauthorized => "unauthorized",
            BulkOutcome::ClientError => "client_error",
            BulkOutcome::ConnectionError => "connection_error",
            BulkOutcome::Timeout => "timeout",
            BulkOutcome::InvalidResponse => "invalid_response",
        }
    }
}

/// Why a bulk item failed (the `reason` of
/// [`ForwarderEvents::item_errors`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ItemErrorReason {
    /// 429 (`es_rejected_execution_exception`): retried.
    Rejected,
    /// 5xx: retried.
    ServerError,
    /// 401/403 `security_exception`: the credential may not write to the
    /// target. A configuration problem, not bad data: retried with backoff,
    /// never dead-lettered.
    Unauthorized,
    /// 400 `mapper_parsing_exception` / `document_parsing_exception`:
    /// dead-lettered.
    MapperParsing,
    /// Any other 4xx: dead-lettered.
    Other4xx,
    /// A single document over the server's body limit (413 when sent alone):
    /// written to the dead-letter file.
    TooLarge,
}

impl ItemErrorReason {
    /// Every reason, for pre-registering metric series.
    pub const ALL: &'static [ItemErrorReason] = &[
        ItemErrorReason::Rejected,
        ItemErrorReason::ServerError,
        ItemErrorReason::Unauthorized,
        ItemErrorReason::MapperParsing,
        ItemErrorReason::Other4xx,
        ItemErrorReason::TooLarge,
    ];

    /// A label from a closed set, for metrics.
    pub fn as_label(self) -> &'static str {
        match self {
            ItemErrorReason::Rejected => "rejected",
            ItemErrorReason::ServerError => "server_error",
            ItemErrorReason::Unauthorized => "unauthorized",
            ItemErrorReason::MapperParsing => "mapper_parsing",
            ItemErrorReason::Other4xx => "other_4xx",
            ItemErrorReason::TooLarge => "too_large",
        }
    }
}

/// Receives the forwarder's measurements. Every method has a no-op default;
/// each is called per request or per batch, never per record.
///
/// For every record sent, the counts add up: each record eventually appears in
/// exactly one of `records_sent` (including `duplicates`) or `dead_lettered`,
/// unless the forwarder was stopped by `hard_stop`; `item_errors` and
/// `retries` count attempts on the way.
pub trait ForwarderEvents: Send + Sync + 'static {
    /// One bulk request finished with `outcome` after `seconds` (wall time).
    fn bulk_request(&self, outcome: BulkOutcome, seconds: f64) {
        let _ = (outcome, seconds);
    }
    /// `records` were delivered (2xx or 409 on `create`); `bytes` is their
    /// share of the uncompressed bulk body (action line and document).
    fn records_sent(&self, records: u64, bytes: u64) {
        let _ = (records, bytes);
    }
    /// `records` answered 409 on `create`: they were already indexed (a retry
    /// or a replay) and count as delivered.
    fn duplicates(&self, records: u64) {
        let _ = records;
    }
    /// `records` items failed with `reason`.
    fn item_errors(&self, reason: ItemErrorReason, records: u64) {
        let _ = (reason, records);
    }
    /// `records` are sent again (after an item error or a failed request).
    fn retries(&self, records: u64) {
        let _ = records;
    }
    /// `records` refused documents could not be written because the
    /// dead-letter file is full (see [`crate::DeadLetterFileConfig`]); they
    /// stay unacknowledged and are retried. Called per attempt.
    fn dead_letter_file_full(&self, records: u64) {
        let _ = records;
    }
    /// `records` went to the dead-letter index (`to_file == false`) or, when
    /// that refused them too, to the dead-letter file.
    fn dead_lettered(&self, records: u64, to_file: bool) {
        let _ = (records, to_file);
    }
    /// `records` of an Airflow-enabled encoder were shipped without `log_id`
    /// and `offset`: no rule named their task (see `DocumentEncoder`), so
    /// Airflow's task log handler cannot show them.
    fn airflow_records_without_log_id(&self, records: u64) {
        let _ = records;
    }
    /// `records` whose message looked like a JSON object were shipped with
    /// the text only (the JSON-message option's bounds or a parse error, see
    /// [`crate::json_message`]). Called per batch.
    fn json_messages_not_parsed(&self, reason: crate::JsonSkipReason, records: u64) {
        let _ = (reason, records);
    }
    /// Bulk requests now in flight.
    fn in_flight_requests(&self, n: usize) {
        let _ = n;
    }
}

/// Events that go nowhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopEvents;

impl ForwarderEvents for NoopEvents {}
