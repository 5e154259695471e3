//! The `quintet` binary: parse the command line, set up logging, run the command.

use std::io::{IsTerminal, Write};

use clap::Parser;

fn main() {
    let cli = quintet::cli::Cli::parse();
    let default = if matches!(cli.command, quintet::cli::Command::Replica { .. }) { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only on a terminal: a log file gets plain lines.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour).init();
    let runtime = tokio::runtime::Runtime::new().expect("the async runtime starts");
    let code = match runtime.block_on(quintet::cli::run(cli)) {
        Ok(quintet::cli::Exit::Ok) => 0,
        Ok(quintet::cli::Exit::Failed(code)) => code,
        Err(e) => {
            eprintln!("quintet: {e:#}");
            1
        }
    };
    // Exit now: a pending read of stdin (the chat client) would otherwise hold the runtime's
    // shutdown until the next line arrives.
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
