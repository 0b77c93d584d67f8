use clap::FromArgMatches;

fn main() {
    let matches = llmbench::cli::command().get_matches();
    let cli = llmbench::cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
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
            llmbench::print_error(&e);
            2
        }
    };
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}
