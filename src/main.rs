use clap::FromArgMatches;

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let json = llmbench::cli::json_errors_asked(argv.iter().cloned());
    // `run`/`sweep`/`capacity -f FILE`: the file's keys and the flags are merged as words
    // before clap sees them (the flags win).
    let (call, cli) = match llmbench::cli::file_call(&argv) {
        Some(call) => (Some(call), None),
        None => {
            let cli = llmbench::cli::command()
                .try_get_matches_from(&argv)
                .and_then(|m| llmbench::cli::Cli::from_arg_matches(&m))
                .unwrap_or_else(|e| llmbench::exit_on_parse_error(e, json));
            (None, Some(cli))
        }
    };
    let json = cli.as_ref().map_or(json, |c| c.json);
    llmbench::install_panic_hook();
    llmbench::measure::health::no_fastbins();
    llmbench::measure::health::raise_open_file_limit();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let job = async {
        match (call, cli) {
            (Some(call), _) => llmbench::run_file(call).await,
            (None, Some(cli)) => llmbench::run(cli).await,
            (None, None) => unreachable!("a command line is parsed or has a file"),
        }
    };
    let code = match rt.block_on(job) {
        Ok(code) => code,
        Err(e) => {
            llmbench::print_error(&e, 2, json);
            2
        }
    };
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}
