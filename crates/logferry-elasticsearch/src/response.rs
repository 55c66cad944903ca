//! Bulk API responses: what each item's status means for delivery.
//!
//! Format: <https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-bulk.html#bulk-api-response-body>.

use crate::events::ItemErrorReason;
use serde::Deserialize;

/// A bulk response body (the fields logferry reads).
#[derive(Deserialize, Debug)]
pub(crate) struct BulkResponse {
    /// One entry per request item, in request order.
    pub items: Vec<BulkItem>,
}

/// The top of a bulk response: `errors` and the number of items, read
/// without building the items (no string is allocated).
#[derive(Deserialize)]
struct BulkSummary {
    errors: bool,
    #[serde(deserialize_with = "count_items")]
    items: usize,
}

fn count_items<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    struct Count;
    impl<'de> serde::de::Visitor<'de> for Count {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of bulk items")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
    }
    d.deserialize_seq(Count)
}

impl BulkResponse {
    /// Parses a bulk response body. When Elasticsearch says `"errors": false`
    /// every item was created (a `409` sets `errors`), so the items are only
    /// counted, not built: the common case costs a scan, not an allocation per
    /// item.
    ///
    /// # Errors
    /// The body is not a bulk response.
    pub(crate) fn parse(body: &[u8]) -> Result<BulkResponse, serde_json::Error> {
        let summary: BulkSummary = serde_json::from_slice(body)?;
        if summary.errors {
            return serde_json::from_slice(body);
        }
        let created = || BulkItem {
            create: ItemResult {
                index: None,
                id: None,
                status: 201,
                error: None,
            },
        };
        Ok(BulkResponse {
            items: std::iter::repeat_with(created)
                .take(summary.items)
                .collect(),
        })
    }
}

/// `{"create": {...}}` (or `index`, `update`, `delete`).
#[derive(Deserialize, Debug)]
pub(crate) struct BulkItem {
    #[serde(alias = "index", alias = "update", alias = "delete")]
    pub create: ItemResult,
}

/// One item's result.
#[derive(Deserialize, Debug)]
pub(crate) struct ItemResult {
    #[serde(rename = "_index", default)]
    pub index: Option<String>,
    #[serde(rename = "_id", default)]
    pub id: Option<String>,
    pub status: u16,
    #[serde(default)]
    pub error: Option<ItemError>,
}

/// An item's error.
#[derive(Deserialize, Debug)]
pub(crate) struct ItemError {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// What to do with an item.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Verdict {
    /// Indexed.
    Delivered,
    /// 409 on `create`: already indexed, counts as delivered.
    Duplicate,
    /// 429, 5xx, 401/403: send again later. The label for `item_errors`.
    Retry(ItemErrorReason),
    /// Any other 4xx: dead-letter it. The label for `item_errors`.
    Reject(ItemErrorReason),
}

impl ItemResult {
    pub(crate) fn verdict(&self) -> Verdict {
        match self.status {
            200..=299 => Verdict::Delivered,
            409 => Verdict::Duplicate,
            429 => Verdict::Retry(ItemErrorReason::Rejected),
            // A security_exception: the credential may not write here. Not
            // the document's fault; dead-lettering would move the node's
            // whole log volume to the dead letter.
            401 | 403 => Verdict::Retry(ItemErrorReason::Unauthorized),
            500..=599 => Verdict::Retry(ItemErrorReason::ServerError),
            _ => {
                let parsing = self.error.as_ref().is_some_and(|e| {
                    e.kind == "mapper_parsing_exception" || e.kind == "document_parsing_exception"
                });
                Verdict::Reject(if parsing {
                    ItemErrorReason::MapperParsing
                } else {
                    ItemErrorReason::Other4xx
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_items() {
        let body = br#"{"took":3,"errors":true,"items":[
            {"create":{"_index":"i","_id":"a","status":201,"result":"created"}},
            {"create":{"_index":"i","_id":"b","status":409,"error":{"type":"version_conflict_engine_exception","reason":"x"}}},
            {"create":{"_index":"i","_id":"c","status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}},
            {"index":{"_index":"i","_id":"d","status":503,"error":{"type":"unavailable_shards_exception","reason":"x"}}},
            {"create":{"_index":"i","_id":"e","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse"}}},
            {"create":{"_index":"i","_id":"f","status":404,"error":{"type":"index_not_found_exception","reason":"no"}}}
        ]}"#;
        let r = BulkResponse::parse(body).unwrap();
        let v: Vec<_> = r.items.iter().map(|i| i.create.verdict()).collect();
        assert_eq!(
            v,
            [
                Verdict::Delivered,
                Verdict::Duplicate,
                Verdict::Retry(ItemErrorReason::Rejected),
                Verdict::Retry(ItemErrorReason::ServerError),
                Verdict::Reject(ItemErrorReason::MapperParsing),
                Verdict::Reject(ItemErrorReason::Other4xx),
            ]
        );
        assert_eq!(
            r.items[4].create.error.as_ref().unwrap().reason.as_deref(),
            Some("failed to parse")
        );
    }

    #[test]
    fn a_response_without_errors_is_counted_not_built() {
        let body = br#"{"took":1,"errors":false,"items":[
            {"create":{"_index":"i","_id":"a","_version":1,"result":"created","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}},
            {"create":{"_index":"i","_id":"b","_version":1,"result":"created","status":201}}
        ]}"#;
        let r = BulkResponse::parse(body).unwrap();
        assert_eq!(r.items.len(), 2);
        assert!(r
            .items
            .iter()
            .all(|i| i.create.verdict() == Verdict::Delivered));
        assert!(
            BulkResponse::parse(br#"{"errors":false}"#).is_err(),
            "items are required"
        );
        assert!(BulkResponse::parse(b"not json").is_err());
    }
}
