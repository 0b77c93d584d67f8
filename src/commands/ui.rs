//! `llmbench ui`: open the results store and serve the dashboard until stopped.

use crate::cli::UiArgs;
use crate::results::store::{Store, StoreLoc};

/// Runs `ui`; returns the process exit code (only on an error: it serves until stopped).
pub async fn ui(a: UiArgs) -> anyhow::Result<i32> {
    let loc = StoreLoc::parse(a.store.store.as_deref())?;
    if !loc.exists() {
        anyhow::bail!("no results store at {loc}: record a run first (llmbench run …)");
    }
    // Reached (and migrated) before listening: a store that cannot be reached fails here.
    let store = tokio::task::spawn_blocking(move || Store::open(&loc)).await??;
    let shown = store.loc().to_string();
    crate::ui::serve(store, std::net::SocketAddr::new(a.bind, a.port), |addr| {
        // The one line on standard output: scripts read the address from it.
        println!("http://{addr}/");
        eprintln!("Dashboard of the results store {shown}; stop with Ctrl-C.");
    })
    .await?;
    Ok(0)
}
