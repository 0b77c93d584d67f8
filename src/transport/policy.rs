//! What the transport may show and when it tries again: credential headers and their
//! scrubbing from every error text, which failures are retried, and the backoff.

use std::time::Duration;

use crate::measure::record::{Outcome, Record};

/// Whether a header's value is a credential (never shown, and scrubbed from error texts).
pub fn is_sensitive_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || [
        "key",
        "token",
        "secret",
        "auth",
        "password",
        "session",
        "signature",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// The strings never to write: every `--header` value (the README promises none is written,
/// credential or not; values under 4 characters are left, as they would cut up ordinary text),
/// the credential after an authorization scheme (`Bearer sk-...` gives both the whole value
/// and `sk-...`), and the forms a server may echo them in: JSON-escaped (`\/`, `\"`) and
/// URL-encoded.
pub fn secrets_of(headers: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in headers {
        let v = v.trim();
        if v.len() >= 4 {
            out.push(v.to_string());
        }
        if is_sensitive_header(k)
            && let Some((_, cred)) = v.split_once(' ')
            && cred.trim().len() >= 4
        {
            out.push(cred.trim().to_string());
        }
    }
    let escaped: Vec<String> = out
        .iter()
        .flat_map(|s| {
            let json = serde_json::to_string(s).unwrap_or_default();
            let json = json.trim_matches('"').to_string();
            [json.replace('/', "\\/"), json, percent_encoded(s)]
        })
        .collect();
    out.extend(escaped);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `s` with every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
fn percent_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Replaces every secret in `text` by `<redacted>`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut t = text.to_string();
    for s in secrets {
        if t.contains(s.as_str()) {
            t = t.replace(s.as_str(), "<redacted>");
        }
    }
    t
}

/// Whether a failed attempt may be sent again under `--retries`: HTTP 408, 429, 500, 502, 503,
/// 504, and transport errors (nothing was received). Timeouts, in-band errors and cut streams
/// are not retried: the server may have done (or still be doing) the work.
pub fn retryable(rec: &Record) -> bool {
    match rec.outcome {
        Some(Outcome::HttpError) => {
            matches!(rec.http_status, Some(408 | 429 | 500 | 502 | 503 | 504))
        }
        Some(Outcome::TransportError) => true,
        _ => false,
    }
}

/// The wait a `Retry-After` value asks for, in either form HTTP allows: delay seconds (`120`)
/// or an HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`, counted from `now`; a date already past
/// is no wait). At most an hour; `None` for anything else.
pub fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    let secs = match v.parse::<f64>() {
        Ok(s) => s,
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
            (at.with_timezone(&chrono::Utc) - now)
                .num_milliseconds()
                .max(0) as f64
                / 1000.0
        }
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// Wait before retry number `attempt` (1-based) when the server gave no Retry-After:
/// 100 ms doubled per attempt.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.saturating_sub(1).min(16)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_value_and_its_echoed_forms_are_scrubbed() {
        let s = secrets_of(&[
            ("Authorization".into(), "Bearer sk-ab/cd+ef=".into()),
            ("X-Tenant".into(), "acme-corp-42".into()),
            ("X-Small".into(), "on".into()),
        ]);
        for echoed in [
            "key sk-ab/cd+ef= was refused",
            r#"{"error":"bad key sk-ab\/cd+ef="}"#,
            "GET /v1?key=sk-ab%2Fcd%2Bef%3D",
            "tenant acme-corp-42 unknown",
        ] {
            let t = scrub(echoed, &s);
            assert!(
                !t.contains("sk-ab") && !t.contains("acme-corp-42"),
                "{echoed} -> {t}"
            );
        }
        assert_eq!(scrub("turned on", &s), "turned on");
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2026 07:28:00 GMT")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(" 0.5 ", now), Some(Duration::from_millis(500)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2026 07:28:03 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2026 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("99999", now), Some(Duration::from_secs(3600)));
        assert_eq!(retry_after("-1", now), None);
        assert_eq!(retry_after("soon", now), None);
    }
}
