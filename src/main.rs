use clap::FromArgMatches;

fn main() {
    let json = llmbench::cli::json_errors_asked(std::env::args_os());
    let cli = llmbench::cli::command()
        .try_get_matches()
        .and_then(|m| llmbench::cli::Cli::from_arg_matches(&m))
        .unwrap_or_else(|e| llmbench::exit_on_parse_error(e, json));
    let json = cli.json;
    llmbench::install_panic_hook();
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
    let code = match rt.block_on(llmbench::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            llmbench::print_error(&e, 2, json);
            2
        }
    };
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}
