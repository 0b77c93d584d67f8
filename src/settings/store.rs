//! `--store` and `--tag`: where a run is recorded, checked before any request.

use anyhow::bail;

use crate::cli::OutputArgs;
use crate::results::store::{Store, StoreLoc, Tags};

/// The store a run goes into, or `None` with `--no-store` (or no home for the default file). A PostgreSQL store is connected to
/// (and migrated) now, so one that cannot be reached fails the run before it measures anything;
/// the SQLite file is opened when the run is recorded, as before.
pub(crate) fn store(o: &OutputArgs) -> anyhow::Result<Option<StoreLoc>> {
    if o.no_store {
        return Ok(None);
    }
    // The default file needs a home; without one the run goes on and is not recorded (said at
    // the end, as before stores were chosen).
    if o.store.is_none() {
        return Ok(StoreLoc::parse(None).ok());
    }
    let loc = StoreLoc::parse(o.store.as_deref())?;
    if matches!(loc, StoreLoc::Postgres(_)) {
        Store::open(&loc)
            .map_err(|e| anyhow::anyhow!("--store: {e:#} (or give --no-store to run without)"))?;
    }
    Ok(Some(loc))
}

/// `--tag NAME=VALUE`s: a name of letters, digits, `_`, `-` or `.`, given once.
pub(crate) fn tags(given: &[String]) -> anyhow::Result<Tags> {
    let mut tags = Tags::new();
    for t in given {
        let Some((name, value)) = t.split_once('=') else {
            bail!("--tag {t:?}: give NAME=VALUE");
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            bail!("--tag {t:?}: the name must be letters, digits, '_', '-' or '.'");
        }
        if tags.insert(name.to_string(), value.to_string()).is_some() {
            bail!("--tag {name}: given twice");
        }
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_checked() {
        let t = tags(&["release=1.2".into(), "gpu=h100".into()]).unwrap();
        assert_eq!(t.get("release").map(String::as_str), Some("1.2"));
        assert!(
            tags(&["x".into()])
                .unwrap_err()
                .to_string()
                .contains("NAME=VALUE")
        );
        assert!(tags(&["a b=1".into()]).is_err());
        assert!(tags(&["a=1".into(), "a=2".into()]).is_err());
    }
}
