//! # logferry-tail
//!
//! Checkpointed tailing of container log files: discovery, identity, CRI and docker decoding, rotation, checkpoints
