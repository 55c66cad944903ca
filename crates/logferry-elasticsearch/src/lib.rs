//! # logferry-elasticsearch
//!
//! Elasticsearch forwarder for logferry: document encoding, bulk batching, item results, retries, dead letters
