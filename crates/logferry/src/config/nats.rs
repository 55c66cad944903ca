//! `source.nats` (the NATS source) and the top-level `nats` section (the
//! JetStream sink): read into `logferry_nats`'s configurations, whose
//! defaults and `validate()` are the library's; problems get their key path.

use super::reader::{Problems, Section};
use logferry_nats as nats;
use std::path::PathBuf;
use std::time::Duration;

/// Reports the library's validation problems under `section`'s key path.
fn report(section: &Section<'_>, result: Result<(), Vec<nats::Invalid>>, p: &mut Problems) {
    if let Err(problems) = result {
        for i in problems {
            p.push(&section.path_of(&i.key), i.message);
        }
    }
}

fn secret(
    a: &mut Section<'_>,
    file_key: &str,
    env_key: &str,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<nats::Secret> {
    let file = a.string(file_key, p).map(PathBuf::from);
    let var = a.string(env_key, p);
    match (file, var) {
        (Some(f), None) => Some(nats::Secret::File(f)),
        (None, Some(v)) => {
            if env(&v).filter(|s| !s.is_empty()).is_none() {
                p.push(
                    &a.path_of(env_key),
                    format!("environment variable {v} is not set or empty"),
                );
            }
            Some(nats::Secret::Env(v))
        }
        (Some(_), Some(_)) => {
            p.push(
                &a.path_of(env_key),
                format!("set either {file_key} or {env_key}, not both"),
            );
            None
        }
        (None, None) => None,
    }
}

fn connection(
    s: &mut Section<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> nats::Connection {
    let d = nats::Connection::default();
    let servers = s.strings("servers", p).unwrap_or(d.servers);
    let mut a = s.section("auth", p);
    let auth = if a.is_present() {
        let user = a.string("user", p);
        let password = secret(&mut a, "password_file", "password_env", env, p);
        let token = secret(&mut a, "token_file", "token_env", env, p);
        let seed = a.string("nkey_seed_file", p).map(PathBuf::from);
        let creds = a.string("credentials_file", p).map(PathBuf::from);
        match (user, password, token, seed, creds) {
            (Some(user), Some(password), None, None, None) => {
                Some(nats::Auth::UserPassword { user, password })
            }
            (None, None, Some(token), None, None) => Some(nats::Auth::Token { token }),
            (None, None, None, Some(seed_file), None) => Some(nats::Auth::NKey { seed_file }),
            (None, None, None, None, Some(credentials_file)) => {
                Some(nats::Auth::Credentials { credentials_file })
            }
            (Some(_), None, None, None, None) => {
                p.push(
                    &a.path_of("password_file"),
                    "required with user: password_file or password_env",
                );
                None
            }
            _ => {
                p.push(
                    &s.path_of("auth"),
                    "expected exactly one of {user, password_file | password_env} | {token_file | token_env} | {nkey_seed_file} | {credentials_file}",
                );
                None
            }
        }
    } else {
        None
    };
    a.finish(p);
    let mut t = s.section("tls", p);
    let tls = t.is_present().then(|| nats::TlsConfig {
        ca_file: t.string("ca_file", p).map(PathBuf::from),
        cert_file: t.string("cert_file", p).map(PathBuf::from),
        key_file: t.string("key_file", p).map(PathBuf::from),
        required: t.boolean("required", p).unwrap_or(false),
    });
    t.finish(p);
    let mut r = s.section("reconnect", p);
    let reconnect = nats::Backoff {
        initial: r
            .duration("initial_backoff", p)
            .unwrap_or(d.reconnect.initial),
        max: r.duration("max_backoff", p).unwrap_or(d.reconnect.max),
    };
    r.finish(p);
    nats::Connection {
        servers,
        auth,
        tls,
        name: s.string("name", p).unwrap_or(d.name),
        connect_timeout: s
            .duration("connect_timeout", p)
            .unwrap_or(d.connect_timeout),
        retry_on_start: s.boolean("retry_on_start", p).unwrap_or(d.retry_on_start),
        reconnect,
    }
}

/// Reads `source.nats`; `include` / `exclude` are `source.include` /
/// `source.exclude` (subject patterns in this mode).
pub(super) fn read_source(
    mut s: Section<'_>,
    include: Vec<String>,
    exclude: Vec<String>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> nats::SourceConfig {
    let d = nats::SourceConfig::default();
    let connection = connection(&mut s, env, p);
    let subjects = s.strings("subjects", p).unwrap_or(d.subjects);
    let queue_group = s.string("queue", p).filter(|q| !q.is_empty());
    let mut j = s.section("jetstream", p);
    let jetstream = if j.is_present() {
        let stream = j.string("stream", p).unwrap_or_default();
        let durable = j.string("durable", p).unwrap_or_default();
        let dj = nats::JetStreamConsumer::new(stream, durable);
        Some(nats::JetStreamConsumer {
            ack_wait: j.duration("ack_wait", p).unwrap_or(dj.ack_wait),
            max_ack_pending: j
                .positive("max_ack_pending", p)
                .unwrap_or(dj.max_ack_pending),
            ..dj
        })
    } else {
        None
    };
    j.finish(p);
    let format = s
        .choice(
            "payload",
            p,
            &[
                ("fly", nats::PayloadFormat::Fly),
                ("document", nats::PayloadFormat::Document),
            ],
        )
        .unwrap_or(d.payload.format);
    let extra_fields_under = match s.raw("extra_fields_under") {
        None => d.payload.extra_fields_under.clone(),
        Some(serde_yaml_ng::Value::String(v)) if v.is_empty() || v == "." => None,
        Some(serde_yaml_ng::Value::String(v)) => Some(v.clone()),
        Some(_) => {
            p.push(
                &s.path_of("extra_fields_under"),
                "expected a field name, or \".\" for the top level",
            );
            None
        }
    };
    let c = nats::SourceConfig {
        connection,
        subjects: if jetstream.is_some() && s.raw("subjects").is_none() {
            Vec::new()
        } else {
            subjects
        },
        queue_group,
        jetstream,
        payload: nats::PayloadOptions {
            format,
            extra_fields_under,
        },
        include,
        exclude,
        batch_max_records: s
            .positive("batch_max_records", p)
            .unwrap_or(d.batch_max_records),
        subscription_capacity: s
            .positive("subscription_capacity", p)
            .unwrap_or(d.subscription_capacity),
    };
    // include/exclude problems belong to `source.include` / `source.exclude`.
    let mut own = Vec::new();
    let mut outer = Vec::new();
    if let Err(problems) = c.validate() {
        for i in problems {
            if i.key.starts_with("include") || i.key.starts_with("exclude") {
                outer.push(i);
            } else {
                own.push(i);
            }
        }
    }
    report(&s, if own.is_empty() { Ok(()) } else { Err(own) }, p);
    for i in outer {
        p.push(&format!("source.{}", i.key), i.message);
    }
    s.finish(p);
    c
}

/// Reads the top-level `nats` section (the JetStream sink).
pub(super) fn read_sink(
    mut s: Section<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> nats::SinkConfig {
    let d = nats::SinkConfig::default();
    let connection = connection(&mut s, env, p);
    let mut st = s.section("stream", p);
    let stream = st.is_present().then(|| nats::StreamSetup {
        name: st.string("name", p).unwrap_or_default(),
        subjects: st.strings("subjects", p).unwrap_or_default(),
        duplicate_window: st
            .duration("duplicate_window", p)
            .unwrap_or(Duration::from_secs(120)),
    });
    st.finish(p);
    let mut r = s.section("retry", p);
    let retry = nats::Backoff {
        initial: r.duration("initial_backoff", p).unwrap_or(d.retry.initial),
        max: r.duration("max_backoff", p).unwrap_or(d.retry.max),
    };
    r.finish(p);
    let c = nats::SinkConfig {
        connection,
        subject: s.string("subject", p).unwrap_or(d.subject),
        stream,
        max_in_flight: s.positive("max_in_flight", p).unwrap_or(d.max_in_flight),
        ack_timeout: s.duration("ack_timeout", p).unwrap_or(d.ack_timeout),
        retry,
    };
    report(&s, c.validate(), p);
    s.finish(p);
    c
}
