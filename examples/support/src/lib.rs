//! What jwtgate's examples share. Copy it into your own server: it is small on purpose.

use std::future::Future;
use std::io::{IsTerminal, Write};

/// Logs to stderr (in colour when it is a terminal), at the level `RUST_LOG` asks for, `info` by default.
/// stdout stays for the lines a program's users read, such as `listening on`.
pub fn init_logs() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
}

/// Writes `line` to stdout at once, for a reader that waits for it (a test, a supervisor). A closed stdout
/// is not an error worth stopping a server for.
#[allow(clippy::print_stdout, reason = "stdout is where the examples' users read these lines")]
pub fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Listens for SIGINT and SIGTERM (Ctrl-C on Windows) **now**, and returns a future that ends at the first
/// of them. Pass it to `axum::serve(..).with_graceful_shutdown` or tonic's `serve_with_incoming_shutdown`.
///
/// Call it before the server announces that it is ready. `tokio::signal::ctrl_c()` registers its handler
/// only when its future is first polled, which `axum::serve` does after the program has printed
/// `listening on`: a supervisor that sends a signal the moment it reads that line would kill the process
/// instead of stopping it cleanly. Here the handlers are in place before this function returns.
///
/// Fails when the handlers cannot be installed (outside a Tokio runtime, or when the OS refuses).
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        let mut ctrl_c = tokio::signal::windows::ctrl_c()?;
        Ok(async move {
            ctrl_c.recv().await;
        })
    }
}
