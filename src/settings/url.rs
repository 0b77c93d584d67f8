//! The target URL: base or full endpoint, its query kept apart (sent on every request, shown
//! with credential values redacted), and errors that never repeat a password or a key.

use anyhow::{Context, bail};

/// A target URL split into base and endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    /// What requests are sent to: a base (`http://h:p`) or a full endpoint.
    pub url: String,
    /// Whether `url` is a full endpoint.
    pub is_endpoint: bool,
    /// The query, kept apart so paths go before it (`?api-version=…` on every request).
    pub query: Option<String>,
}

/// `raw` with any `user:password@` before the host replaced by `<redacted>@`.
fn mask_userinfo(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://<redacted>@{}", &rest[at + 1..]),
        None => raw.to_string(),
    }
}

/// A target URL as shown and stored: credential-looking query values redacted.
pub fn shown_url(url: &str, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("{url}?{}", redact_query(q)),
        None => url.to_string(),
    }
}

/// Query parameter names whose values are credentials (compared without case, `-`/`_`).
const SECRET_PARAMS: [&str; 14] = [
    "key",
    "apikey",
    "api_key",
    "token",
    "access_token",
    "id_token",
    "auth",
    "sig",
    "signature",
    "secret",
    "password",
    "code",
    "session",
    "credential",
];

/// A query with credential-looking values replaced by `<redacted>` (`api_key=`, `key=`,
/// `token=`, `sig=`, `access_token=`, …). The query on the wire is unchanged.
pub fn redact_query(q: &str) -> String {
    q.split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let name = k.to_ascii_lowercase().replace('-', "_");
            let secret = SECRET_PARAMS.contains(&name.as_str())
                || ["key", "token", "secret", "password", "sig"]
                    .iter()
                    .any(|w| name.split('_').any(|part| part == *w));
            if secret && !v.is_empty() {
                format!("{k}=<redacted>")
            } else {
                pair.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Parses a user's URL: `http://h:p`, `http://h:p/v1` (base) or a full endpoint path.
pub fn parse_url(raw: &str) -> anyhow::Result<TargetUrl> {
    // Errors never repeat a password or a query's key.
    let shown = mask_userinfo(raw);
    let shown = match shown.split_once('?') {
        Some((u, q)) => format!("{u}?{}", redact_query(q)),
        None => shown,
    };
    if !raw.contains("://") {
        bail!("URL {shown:?} has no scheme: did you mean http://{shown} ?");
    }
    let u = reqwest::Url::parse(raw)
        .with_context(|| format!("URL {shown:?} is not a valid URL (expected http://host:port)"))?;
    if !u.username().is_empty() || u.password().is_some() {
        bail!("the URL carries credentials: put them in --api-key-env or --header instead");
    }
    if !matches!(u.scheme(), "http" | "https") {
        bail!("URL {shown:?}: only http and https are supported");
    }
    let path = u.path().trim_end_matches('/');
    let endpoint = ["/chat/completions", "/completions", "/generate"]
        .iter()
        .any(|e| path.ends_with(e));
    let mut base = u.clone();
    base.set_query(None);
    base.set_fragment(None);
    if !endpoint {
        base.set_path(path.strip_suffix("/v1").unwrap_or(path));
    }
    Ok(TargetUrl {
        url: base.as_str().trim_end_matches('/').to_string(),
        is_endpoint: endpoint,
        query: u.query().filter(|q| !q.is_empty()).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_bases_or_endpoints() {
        let t = parse_url("http://localhost:8000/v1/").unwrap();
        assert_eq!(t.url, "http://localhost:8000");
        assert!(!t.is_endpoint);
        let t = parse_url("http://h:1/generate").unwrap();
        assert_eq!(
            (t.url.as_str(), t.is_endpoint),
            ("http://h:1/generate", true)
        );
        let t = parse_url("https://api.example.com/v1/chat/completions").unwrap();
        assert!(t.is_endpoint);
        assert!(parse_url("localhost:8000").is_err());
        assert!(parse_url("ftp://x").is_err());
        let e = parse_url("http://user:secret@h:1").unwrap_err().to_string();
        assert!(!e.contains("secret") && e.contains("credentials"), "{e}");
        // A bad port after a password: the error names the URL without the password.
        let e = format!(
            "{:#}",
            parse_url("http://user:hunter2@h:99999/v1").unwrap_err()
        );
        assert!(
            !e.contains("hunter2") && e.contains("<redacted>@h:99999"),
            "{e}"
        );
        let t = parse_url("https://h/v1/chat/completions?api-version=1&key=K").unwrap();
        assert!(t.is_endpoint);
        assert_eq!(t.url, "https://h/v1/chat/completions");
        assert_eq!(t.query.as_deref(), Some("api-version=1&key=K"));
        assert_eq!(
            shown_url(&t.url, t.query.as_deref()),
            "https://h/v1/chat/completions?api-version=1&key=<redacted>"
        );
        assert_eq!(
            redact_query("sig=abc&se=2026&access_token=x&tokens=5&monkey=1"),
            "sig=<redacted>&se=2026&access_token=<redacted>&tokens=5&monkey=1"
        );
    }
}
