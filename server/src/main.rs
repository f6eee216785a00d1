//! `brooklet-server`: parses flags and config, starts the server, stops on a signal.

use std::process::ExitCode;

// Redis's own allocator: it spends less of the server's CPU than glibc's malloc under XADD
// load (docs/performance.md, Server), and its statistics give INFO an honest `used_memory`.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", brooklet_server::config::usage());
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!(
            "Brooklet server v={} (Redis protocol 8.10.0 compatible)",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    let (args, import) = match take_import_flag(args) {
        Ok(split) => split,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut config = brooklet_server::Config::default();
    if let Err(e) = config.apply_args(&args) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    if let Some(path) = import {
        return import_rdb(config, &path);
    }
    init_logging(&config.loglevel);
    brooklet_server::info::allocator_is_jemalloc();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.io_threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // Handlers are installed before the listener exists, so a signal sent as soon as the
        // server answers is never met by the default action (killing the process).
        let signals = Signals::install();
        let server = match brooklet_server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        let trigger = server.trigger();
        tokio::spawn(async move {
            signals.wait().await;
            tracing::info!("received a shutdown signal, shutting down");
            trigger.shutdown();
        });
        server.wait().await;
        ExitCode::SUCCESS
    })
}

/// Splits `--import-rdb FILE` off the other arguments.
fn take_import_flag(args: Vec<String>) -> Result<(Vec<String>, Option<String>), String> {
    let Some(at) = args.iter().position(|a| a == "--import-rdb") else {
        return Ok((args, None));
    };
    let Some(path) = args.get(at + 1).cloned() else {
        return Err("--import-rdb needs the path of an RDB file".into());
    };
    let mut rest = args;
    rest.drain(at..=at + 1);
    Ok((rest, Some(path)))
}

/// `--import-rdb FILE`: loads the file into the data directory, prints what it did, exits.
fn import_rdb(config: brooklet_server::Config, path: &str) -> ExitCode {
    match brooklet_server::import::import_rdb(config, std::path::Path::new(path)) {
        Ok(summary) => {
            print!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT and SIGTERM, listened for from start-up on.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            let (mut term, mut int) = (self.term, self.int);
            tokio::select! {
                _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending::<()>().await } } => {}
                _ = async { match int.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending::<()>().await } } => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Maps Redis's log levels onto tracing's and logs to stderr.
fn init_logging(level: &str) {
    let filter = match level {
        "debug" => "debug",
        "verbose" => "info",
        "notice" => "info",
        "warning" => "warn",
        _ => "off",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
}
