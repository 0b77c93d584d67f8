//! Where the results store is: a SQLite file (the default) or a PostgreSQL URL, as `--store` or
//! `LLMBENCH_STORE` gives it, shown everywhere with its password redacted.

use std::path::PathBuf;

use anyhow::bail;

/// A results store's location, parsed (not yet opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLoc {
    /// An embedded SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL server: the connection URL as given (it may hold a password: never print it,
    /// use `Display`, which redacts).
    Postgres(String),
}

impl StoreLoc {
    /// `--store` (or `LLMBENCH_STORE`) as given, else the default SQLite file under
    /// `$LLMBENCH_HOME`. A `postgres://` or `postgresql://` URL is a PostgreSQL store; anything
    /// else is a SQLite file path.
    pub fn parse(arg: Option<&str>) -> anyhow::Result<Self> {
        let Some(arg) = arg.map(str::trim).filter(|a| !a.is_empty()) else {
            return Ok(Self::Sqlite(super::db_path()?));
        };
        if is_postgres(arg) {
            if let Err(e) = super::pg_tls::parse(arg) {
                bail!("--store {}: {e:#}", redact_url(arg));
            }
            return Ok(Self::Postgres(arg.to_string()));
        }
        if arg.contains("://") {
            bail!(
                "--store {}: unknown kind of store (give a postgres:// URL or a SQLite file path)",
                redact_url(arg)
            );
        }
        Ok(Self::Sqlite(PathBuf::from(arg)))
    }

    /// Whether the store already exists (a SQLite file that is there; a server is assumed to).
    pub fn exists(&self) -> bool {
        match self {
            Self::Sqlite(p) => p.exists(),
            Self::Postgres(_) => true,
        }
    }
}

impl std::fmt::Display for StoreLoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "{}", p.display()),
            Self::Postgres(u) => f.write_str(&redact_url(u)),
        }
    }
}

fn is_postgres(arg: &str) -> bool {
    let lower = arg.to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// A connection URL with the password (in the user part, or a `password=` parameter) replaced
/// by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                out.replace_range(start..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{head}{query}");
    }
    out
}

/// Removes every occurrence of the URL's password from a message (an error from a driver may
/// quote what it was given).
pub fn scrub(message: &str, url: &str) -> String {
    let Ok(cfg) = super::pg_tls::parse(url).map(|t| t.config) else {
        return message.replace(url, &redact_url(url));
    };
    let mut m = message.replace(url, &redact_url(url));
    if let Some(pw) = cfg.get_password().and_then(|p| std::str::from_utf8(p).ok())
        && !pw.is_empty()
    {
        m = m.replace(pw, "***");
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db.example:5432/bench"),
            "postgres://bob:***@db.example:5432/bench"
        );
        assert_eq!(
            redact_url("postgresql://bob@db/bench?password=s3cret&sslmode=disable"),
            "postgresql://bob@db/bench?password=***&sslmode=disable"
        );
        assert_eq!(redact_url("postgres://db/bench"), "postgres://db/bench");
        let loc = StoreLoc::parse(Some("postgres://u:pw@h/d")).unwrap();
        assert_eq!(loc.to_string(), "postgres://u:***@h/d");
        assert!(!format!("{loc}").contains("pw"));
        assert_eq!(
            scrub(
                "failed for postgres://u:pw@h/d: pw rejected",
                "postgres://u:pw@h/d"
            ),
            "failed for postgres://u:***@h/d: *** rejected"
        );
    }

    #[test]
    fn kinds_are_told_apart() {
        assert_eq!(
            StoreLoc::parse(Some("/tmp/x.db")).unwrap(),
            StoreLoc::Sqlite("/tmp/x.db".into())
        );
        assert!(matches!(
            StoreLoc::parse(Some("postgresql://h/d")).unwrap(),
            StoreLoc::Postgres(_)
        ));
        let e = StoreLoc::parse(Some("mysql://u:pw@h/d"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown kind") && !e.contains("pw"), "{e}");
        let e = StoreLoc::parse(Some("postgres://u:pw@h:notaport/d"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a valid PostgreSQL URL") && !e.contains(":pw@"),
            "{e}"
        );
    }
}
