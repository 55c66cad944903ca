//! The per-file part of a document (file path, pod, owner workloads, labels,
//! container, host; ECS or Fluentd names), encoded once per file and copied
//! into each of its documents by [`crate::document`].

use crate::json::{write_key, write_str};
use crate::meta::MetaView;
use std::collections::BTreeMap;

/// The ECS version the documents follow (`ecs.version`).
pub const ECS_VERSION: &str = "8.11.0";

/// Writes JSON objects whose members are all optional; empty objects vanish.
struct ObjWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    stack: Vec<(usize, bool)>,
}

impl<'a> ObjWriter<'a> {
    fn new(out: &'a mut Vec<u8>, first: bool) -> Self {
        ObjWriter {
            out,
            first,
            stack: Vec::new(),
        }
    }
    fn sep(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }
    fn str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.sep();
            write_key(self.out, key);
            write_str(self.out, v.as_bytes());
        }
    }
    fn open(&mut self, key: &str) {
        let mark = self.out.len();
        let saved = self.first;
        self.sep();
        write_key(self.out, key);
        self.out.push(b'{');
        self.stack.push((mark, saved));
        self.first = true;
    }
    fn close(&mut self) {
        let (mark, saved) = self.stack.pop().expect("close matches open");
        if self.first {
            self.out.truncate(mark);
            self.first = saved;
        } else {
            self.out.push(b'}');
            self.first = false;
        }
    }
    fn map(&mut self, key: &str, map: Option<&BTreeMap<String, String>>) {
        let Some(map) = map else { return };
        self.open(key);
        let mut dedot = String::new();
        for (k, v) in map {
            self.sep();
            dedot.clear();
            dedot.extend(k.chars().map(|c| if c == '.' { '_' } else { c }));
            write_str(self.out, dedot.as_bytes());
            self.out.push(b':');
            write_str(self.out, v.as_bytes());
        }
        self.close();
    }
}

/// `,"file":{"path":…}}` (closing `log`), then `kubernetes`, `container`, `host`.
pub(crate) fn encode_ecs_tail(v: &MetaView<'_>, cluster_name: Option<&str>, out: &mut Vec<u8>) {
    let path = v.path.to_string_lossy();
    let mut w = ObjWriter::new(out, false);
    w.open("file");
    w.str("path", Some(&path));
    w.close();
    w.out.push(b'}');
    w.open("kubernetes");
    w.str("namespace", v.namespace);
    w.open("pod");
    w.str("name", v.pod_name);
    w.str("uid", v.pod_uid);
    w.str("ip", v.pod_ip);
    w.close();
    w.open("node");
    w.str("name", v.node_name);
    w.close();
    w.open("container");
    w.str("name", v.container_name);
    w.close();
    if let Some((kind, name)) = v.owner {
        for (object, name) in crate::owner::workloads(kind, name) {
            w.open(object);
            w.str("name", Some(name));
            w.close();
        }
    }
    w.map("labels", v.labels);
    w.map("annotations", v.annotations);
    w.map("namespace_labels", v.namespace_labels);
    w.close();
    if cluster_name.is_some() {
        w.open("orchestrator");
        w.open("cluster");
        w.str("name", cluster_name);
        w.close();
        w.close();
    }
    w.open("ecs");
    w.str("version", Some(ECS_VERSION));
    w.close();
    w.open("container");
    w.str("id", v.container_id);
    w.open("image");
    w.str("name", v.container_image);
    w.close();
    w.str("runtime", v.container_runtime);
    w.close();
    w.open("host");
    w.str("name", v.host_name);
    w.close();
}

/// `,"kubernetes":{…},"docker":{"container_id":…}`.
pub(crate) fn encode_fluentd_tail(v: &MetaView<'_>, out: &mut Vec<u8>) {
    let mut w = ObjWriter::new(out, false);
    w.open("kubernetes");
    w.str("pod_name", v.pod_name);
    w.str("namespace_name", v.namespace);
    w.str("pod_id", v.pod_uid);
    w.str("container_name", v.container_name);
    w.str("container_image", v.container_image);
    w.str("host", v.node_name);
    w.map("labels", v.labels);
    w.map("namespace_labels", v.namespace_labels);
    w.close();
    w.open("docker");
    w.str("container_id", v.container_id);
    w.close();
}
