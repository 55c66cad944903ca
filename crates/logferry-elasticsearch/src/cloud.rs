//! Elastic Cloud's `cloud_id`: `<label>:<base64 of host$es_id$kibana_id>`,
//! resolved to the deployment's Elasticsearch URL the way Beats and the
//! official clients do
//! (<https://www.elastic.co/guide/en/beats/filebeat/current/configure-cloud-id.html>):
//! `https://<es_id>.<host>:<port>`, port 443 unless the host or the
//! Elasticsearch part names one.

use crate::error::Error;
use base64::Engine as _;

/// The Elasticsearch endpoint of `cloud_id`, e.g.
/// `https://cec6f261a74bf24ce33bb8811b84294f.us-east-1.aws.found.io:443`.
///
/// # Errors
///
/// [`Error::InvalidConfig`] naming `cloud_id` when it is not base64 of three
/// `$`-separated parts.
pub fn cloud_id_endpoint(cloud_id: &str) -> Result<String, Error> {
    let invalid = |reason: &str| Error::InvalidConfig {
        field: "cloud_id",
        reason: reason.to_owned(),
    };
    let encoded = cloud_id
        .rsplit_once(':')
        .map_or(cloud_id, |(_, e)| e)
        .trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| invalid("not base64 after the optional '<label>:'"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid("not UTF-8 once decoded"))?;
    let parts: Vec<&str> = decoded.trim_end_matches('\n').split('$').collect();
    if parts.len() < 2 || parts[0].is_empty() || parts[1].is_empty() {
        return Err(invalid(
            "expected host$elasticsearch_id$kibana_id once decoded",
        ));
    }
    let (host, host_port) = parts[0].split_once(':').unwrap_or((parts[0], "443"));
    let (es_id, port) = parts[1].split_once(':').unwrap_or((parts[1], host_port));
    if !port.bytes().all(|b| b.is_ascii_digit()) || port.is_empty() {
        return Err(invalid("the port is not a number"));
    }
    Ok(format!("https://{es_id}.{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_cloud_ids_like_beats() {
        // The example from the Beats documentation.
        let id = "staging:dXMtZWFzdC0xLmF3cy5mb3VuZC5pbyRjZWM2ZjI2MWE3NGJmMjRjZTMzYmI4ODExYjg0Mjk0ZiRjNmMyY2E2ZDA0MjI0OWFmMGNjN2Q3YTllOTYyNTc0Mw==";
        assert_eq!(
            cloud_id_endpoint(id).unwrap(),
            "https://cec6f261a74bf24ce33bb8811b84294f.us-east-1.aws.found.io:443"
        );
        let with_port =
            base64::engine::general_purpose::STANDARD.encode("eu-west-1.aws.found.io:9243$abc$def");
        assert_eq!(
            cloud_id_endpoint(&format!("x:{with_port}")).unwrap(),
            "https://abc.eu-west-1.aws.found.io:9243"
        );
        assert!(cloud_id_endpoint("x:!!!").is_err());
        let one_part = base64::engine::general_purpose::STANDARD.encode("host");
        assert!(cloud_id_endpoint(&one_part).is_err());
    }
}
