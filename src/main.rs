//! consent-relay's entry point: command line, logging, exit code.

use clap::Parser;
use consent_relay::cli::{self, Cli, Command, Exit};
use tracing_subscriber::EnvFilter;

fn main() {
    limit_malloc_arenas();
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Serve));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("consent-relay: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(cli::run(cli)) {
        let code = e.downcast_ref::<Exit>().map_or(1, |x| x.code);
        eprintln!("consent-relay: {e:#}");
        std::process::exit(code);
    }
}

/// `serve` logs to stdout (info by default), JSON when stdout is not a
/// terminal; other commands log warnings to stderr. `RUST_LOG` overrides.
fn init_tracing(serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match (serving, cli::json_logs()) {
        (true, true) => builder.json().with_current_span(false).init(),
        (true, false) => builder.init(),
        (false, _) => builder.with_writer(std::io::stderr).init(),
    }
}

/// glibc gives each thread that allocates its own arena (up to 8 per core);
/// with the store's worker threads that fragments memory into tens of idle
/// megabytes. Two arenas keep the resident size near what is in use, at no
/// measurable cost in throughput (bench/README.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
