//! # logferry-kube
//!
//! Kubernetes pod metadata for logferry: node-scoped watch, small store with deletion grace, file-to-pod mapping
