//! `_search` and `_count`: a small subset of the query DSL, evaluated over
//! every document of the matched indices.
//!
//! Supported: `match_all`, `term`, `terms`, `match` (any token, or all with
//! `"operator":"and"`), `match_phrase` (consecutive tokens), `range`
//! (`gt`/`gte`/`lt`/`lte`), `exists`, `ids`, and `bool` with `must`,
//! `filter`, `should`, `must_not`. Text is tokenized like a very small
//! standard analyzer: lower-cased runs of letters and digits. `term` compares
//! exact values (strings or numbers); a `.keyword` suffix on a field is
//! ignored. Fields are dotted paths into the source (nested objects or dotted
//! keys). Sorting by fields (`asc`/`desc`, missing values last), `_doc` (write
//! order), `size`, `from` and `search_after`.

use super::store::Store;
use serde_json::{json, Value};
use std::cmp::Ordering;

#[derive(Debug)]
enum Query {
    All,
    Term(String, Vec<Value>),
    Match {
        field: String,
        tokens: Vec<String>,
        all: bool,
    },
    Phrase(String, Vec<String>),
    Range {
        field: String,
        gt: Option<Value>,
        gte: Option<Value>,
        lt: Option<Value>,
        lte: Option<Value>,
    },
    Exists(String),
    Ids(Vec<String>),
    Bool {
        must: Vec<Query>,
        should: Vec<Query>,
        must_not: Vec<Query>,
    },
}

fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn one_field(v: &Value, kind: &str) -> Result<(String, Value), String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("[{kind}] query malformed, no start_object"))?;
    let mut it = obj.iter();
    let (k, v) = it
        .next()
        .ok_or_else(|| format!("[{kind}] query doesn't have a field"))?;
    if it.next().is_some() {
        return Err(format!("[{kind}] query doesn't support multiple fields"));
    }
    Ok((k.clone(), v.clone()))
}

fn list(v: Option<&Value>) -> Result<Vec<Query>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(parse_query).collect(),
        Some(q) => Ok(vec![parse_query(q)?]),
    }
}

fn parse_query(q: &Value) -> Result<Query, String> {
    let obj = q
        .as_object()
        .ok_or("query malformed, must start with start_object")?;
    let (kind, body) = obj
        .iter()
        .next()
        .ok_or("query malformed, empty clause found")?;
    Ok(match kind.as_str() {
        "match_all" => Query::All,
        "term" => {
            let (f, v) = one_field(body, kind)?;
            let v = v.get("value").cloned().unwrap_or(v);
            Query::Term(f, vec![v])
        }
        "terms" => {
            let (f, v) = one_field(body, kind)?;
            Query::Term(
                f,
                v.as_array()
                    .cloned()
                    .ok_or("[terms] query requires an array")?,
            )
        }
        "match" | "match_phrase" => {
            let (f, v) = one_field(body, kind)?;
            let all = v
                .get("operator")
                .and_then(Value::as_str)
                .is_some_and(|o| o.eq_ignore_ascii_case("and"));
            let q = v.get("query").cloned().unwrap_or(v);
            let text = match &q {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if kind == "match" {
                Query::Match {
                    field: f,
                    tokens: tokens(&text),
                    all,
                }
            } else {
                Query::Phrase(f, tokens(&text))
            }
        }
        "range" => {
            let (f, v) = one_field(body, kind)?;
            Query::Range {
                field: f,
                gt: v.get("gt").cloned(),
                gte: v.get("gte").cloned(),
                lt: v.get("lt").cloned(),
                lte: v.get("lte").cloned(),
            }
        }
        "exists" => Query::Exists(
            body["field"]
                .as_str()
                .ok_or("[exists] requires a field")?
                .to_owned(),
        ),
        "ids" => Query::Ids(
            body["values"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        "bool" => {
            let mut must = list(body.get("must"))?;
            must.extend(list(body.get("filter"))?);
            Query::Bool {
                must,
                should: list(body.get("should"))?,
                must_not: list(body.get("must_not"))?,
            }
        }
        other => return Err(format!("unknown query [{other}]")),
    })
}

/// The values at a dotted path (objects nested or with dotted keys; arrays
/// yield each element).
fn lookup<'a>(v: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(a) => {
            for e in a {
                lookup(e, path, out);
            }
        }
        Value::Object(o) => {
            if let Some(x) = o.get(path) {
                match x {
                    Value::Array(a) => out.extend(a.iter()),
                    x => out.push(x),
                }
            }
            for (i, _) in path.match_indices('.') {
                if let Some(child) = o.get(&path[..i]) {
                    lookup(child, &path[i + 1..], out);
                }
            }
        }
        _ => {}
    }
}

fn values<'a>(doc: &'a Value, field: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    lookup(doc, field, &mut out);
    if out.is_empty() {
        if let Some(f) = field.strip_suffix(".keyword") {
            lookup(doc, f, &mut out);
        }
    }
    out
}

/// Compares two JSON scalars: numbers numerically (integers exactly), a
/// number and a numeric string as numbers, strings lexicographically.
fn cmp_values(a: &Value, b: &Value) -> Option<Ordering> {
    fn int(v: &Value) -> Option<i128> {
        match v {
            Value::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from)),
            Value::String(s) => s.trim().parse::<i128>().ok(),
            _ => None,
        }
    }
    fn float(v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
    }
    let numeric = matches!(a, Value::Number(_)) || matches!(b, Value::Number(_));
    if numeric {
        if let (Some(x), Some(y)) = (int(a), int(b)) {
            return Some(x.cmp(&y));
        }
        if let (Some(x), Some(y)) = (float(a), float(b)) {
            return x.partial_cmp(&y);
        }
        return None;
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn matches(q: &Query, id: &str, doc: &Value) -> bool {
    match q {
        Query::All => true,
        Query::Term(f, wanted) => values(doc, f).iter().any(|v| {
            wanted
                .iter()
                .any(|w| cmp_values(v, w) == Some(Ordering::Equal))
        }),
        Query::Match {
            field,
            tokens: want,
            all,
        } => values(doc, field).iter().any(|v| {
            let have = tokens(&as_text(v));
            if *all {
                want.iter().all(|t| have.contains(t))
            } else {
                want.iter().any(|t| have.contains(t))
            }
        }),
        Query::Phrase(f, want) => values(doc, f).iter().any(|v| {
            let have = tokens(&as_text(v));
            want.is_empty() || have.windows(want.len()).any(|w| w == want.as_slice())
        }),
        Query::Range {
            field,
            gt,
            gte,
            lt,
            lte,
        } => values(doc, field).iter().any(|v| {
            let ok = |bound: &Option<Value>, accept: &[Ordering]| {
                bound
                    .as_ref()
                    .is_none_or(|b| cmp_values(v, b).is_some_and(|o| accept.contains(&o)))
            };
            ok(gt, &[Ordering::Greater])
                && ok(gte, &[Ordering::Greater, Ordering::Equal])
                && ok(lt, &[Ordering::Less])
                && ok(lte, &[Ordering::Less, Ordering::Equal])
        }),
        Query::Exists(f) => values(doc, f).iter().any(|v| !v.is_null()),
        Query::Ids(ids) => ids.iter().any(|i| i == id),
        Query::Bool {
            must,
            should,
            must_not,
        } => {
            must.iter().all(|q| matches(q, id, doc))
                && (should.is_empty()
                    || !must.is_empty()
                    || should.iter().any(|q| matches(q, id, doc)))
                && !must_not.iter().any(|q| matches(q, id, doc))
        }
    }
}

#[derive(Debug)]
struct SortKey {
    field: String,
    desc: bool,
}

fn parse_sort(v: &Value) -> Result<Vec<SortKey>, String> {
    let one = |v: &Value| -> Result<SortKey, String> {
        match v {
            Value::String(s) => {
                let (f, order) = s.split_once(':').unwrap_or((s, "asc"));
                Ok(SortKey {
                    field: f.to_owned(),
                    desc: order.eq_ignore_ascii_case("desc"),
                })
            }
            Value::Object(o) => {
                let (f, spec) = o.iter().next().ok_or("empty sort")?;
                let order = spec
                    .as_str()
                    .or_else(|| spec["order"].as_str())
                    .unwrap_or("asc");
                Ok(SortKey {
                    field: f.clone(),
                    desc: order.eq_ignore_ascii_case("desc"),
                })
            }
            _ => Err("malformed sort".into()),
        }
    };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// A search request: the body merged with URL parameters.
pub(crate) struct SearchRequest {
    pub body: Value,
    pub size: Option<usize>,
    pub from: Option<usize>,
    pub sort: Option<String>,
}

struct Hit {
    index: String,
    id: String,
    seq_no: u64,
    source: Value,
    sort: Vec<Value>,
}

fn hit_cmp(a: &Hit, b: &Hit, keys: &[SortKey]) -> Ordering {
    for (i, k) in keys.iter().enumerate() {
        let (x, y) = (&a.sort[i], &b.sort[i]);
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ => cmp_values(x, y).unwrap_or(Ordering::Equal),
        };
        let o = if k.desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.seq_no.cmp(&b.seq_no)
}

fn collect(store: &Store, indices: &[String], query: &Query, keys: &[SortKey]) -> Vec<Hit> {
    let mut hits = Vec::new();
    for name in indices {
        let Some(index) = store.indices.get(name) else {
            continue;
        };
        for (id, doc) in &index.docs {
            let Ok(source) = serde_json::from_slice::<Value>(&doc.source) else {
                continue;
            };
            if !matches(query, id, &source) {
                continue;
            }
            let sort = keys
                .iter()
                .map(|k| {
                    if k.field == "_doc" {
                        json!(doc.seq_no)
                    } else {
                        values(&source, &k.field)
                            .first()
                            .map(|v| (*v).clone())
                            .unwrap_or(Value::Null)
                    }
                })
                .collect();
            hits.push(Hit {
                index: name.clone(),
                id: id.clone(),
                seq_no: doc.seq_no,
                source,
                sort,
            });
        }
    }
    hits
}

fn query_of(body: &Value) -> Result<Query, String> {
    match body.get("query") {
        None | Some(Value::Null) => Ok(Query::All),
        Some(q) => parse_query(q),
    }
}

/// Runs `_search`. Errors are 400 `parsing_exception` reasons.
pub(crate) fn search(
    store: &Store,
    indices: &[String],
    req: &SearchRequest,
) -> Result<Value, String> {
    let query = query_of(&req.body)?;
    let mut keys = parse_sort(req.body.get("sort").unwrap_or(&Value::Null))?;
    if let Some(s) = &req.sort {
        keys = s
            .split(',')
            .map(|s| parse_sort(&Value::String(s.to_owned())))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
    }
    let size = req
        .size
        .or_else(|| req.body["size"].as_u64().map(|n| n as usize))
        .unwrap_or(10);
    let from = req
        .from
        .or_else(|| req.body["from"].as_u64().map(|n| n as usize))
        .unwrap_or(0);
    let mut hits = collect(store, indices, &query, &keys);
    let total = hits.len();
    hits.sort_by(|a, b| hit_cmp(a, b, &keys));
    if let Some(after) = req.body.get("search_after").and_then(Value::as_array) {
        if after.len() != keys.len() {
            return Err("search_after has a different number of values than sort".into());
        }
        let probe = Hit {
            index: String::new(),
            id: String::new(),
            seq_no: u64::MAX,
            source: Value::Null,
            sort: after.clone(),
        };
        hits.retain(|h| hit_cmp(h, &probe, &keys) == Ordering::Greater);
    }
    let page: Vec<Value> = hits
        .into_iter()
        .skip(from)
        .take(size)
        .map(|h| {
            let mut v = json!({"_index": h.index, "_id": h.id, "_score": if keys.is_empty() { json!(1.0) } else { Value::Null }, "_source": h.source});
            if !keys.is_empty() {
                v["sort"] = Value::Array(h.sort);
            }
            v
        })
        .collect();
    Ok(json!({
        "took": 1,
        "timed_out": false,
        "_shards": {"total": indices.len(), "successful": indices.len(), "skipped": 0, "failed": 0},
        "hits": {"total": {"value": total, "relation": "eq"}, "max_score": if keys.is_empty() && total > 0 { json!(1.0) } else { Value::Null }, "hits": page}
    }))
}

/// Runs `_count`.
pub(crate) fn count(store: &Store, indices: &[String], body: &Value) -> Result<Value, String> {
    let query = query_of(body)?;
    let n = collect(store, indices, &query, &[]).len();
    Ok(
        json!({"count": n, "_shards": {"total": indices.len(), "successful": indices.len(), "skipped": 0, "failed": 0}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_airflow_handler_queries() {
        let doc = json!({"log_id": "d-t-manual__2025-08-12T15:05:57.691303+00:00--1-1", "offset": 1626427744958776832u64, "message": "Marking task as SUCCESS", "host": {"name": "n1"}});
        let q = parse_query(&json!({"bool": {"filter": [{"range": {"offset": {"gt": "1626427744958776831"}}}], "must": [{"match_phrase": {"log_id": "d-t-manual__2025-08-12T15:05:57.691303+00:00--1-1"}}]}})).unwrap();
        assert!(matches(&q, "x", &doc));
        let q = parse_query(
            &json!({"bool": {"filter": [{"range": {"offset": {"gt": 1626427744958776832u64}}}]}}),
        )
        .unwrap();
        assert!(!matches(&q, "x", &doc));
        let q = parse_query(&json!({"match_phrase": {"log_id": "d-t-manual__2025-08-12T15:05:57.691303+00:00--1-10"}})).unwrap();
        assert!(!matches(&q, "x", &doc));
        assert!(matches(
            &parse_query(&json!({"term": {"host.name": "n1"}})).unwrap(),
            "x",
            &doc
        ));
        assert!(matches(
            &parse_query(&json!({"term": {"host.name.keyword": {"value": "n1"}}})).unwrap(),
            "x",
            &doc
        ));
        assert!(matches(
            &parse_query(&json!({"match": {"message": "success nothing"}})).unwrap(),
            "x",
            &doc
        ));
        assert!(!matches(
            &parse_query(
                &json!({"match": {"message": {"query": "success nothing", "operator": "and"}}})
            )
            .unwrap(),
            "x",
            &doc
        ));
        let dotted = json!({"kubernetes.namespace": "a"});
        assert!(matches(
            &parse_query(&json!({"term": {"kubernetes.namespace": "a"}})).unwrap(),
            "x",
            &dotted
        ));
        assert!(parse_query(&json!({"fuzzy": {}})).is_err());
    }
}
