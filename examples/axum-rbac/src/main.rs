//! Serves the example on `RBAC_ADDR` (default `127.0.0.1:3001`), trusting HS256 tokens signed with
//! `RBAC_JWT_SECRET` (at least 32 bytes).

use std::process::ExitCode;

use jwtgate::Secret;

#[tokio::main]
async fn main() -> ExitCode {
    let validator =
        match Secret::from_env("RBAC_JWT_SECRET").and_then(|secret| jwtgate_example_axum_rbac::validator(&secret)) {
            Ok(validator) => validator,
            Err(err) => {
                eprintln!("axum-rbac: {err}");
                return ExitCode::from(2);
            }
        };
    let addr = std::env::var("RBAC_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("axum-rbac: cannot listen on {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Listening for signals before `listening on` is printed, so that a signal sent right after it stops
    // the server cleanly.
    let shutdown = match jwtgate_example_support::shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(err) => {
            eprintln!("axum-rbac: cannot listen for signals: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Ok(bound) = listener.local_addr() {
        #[allow(clippy::print_stdout, reason = "the example says where it listens")]
        {
            println!("listening on {bound}");
        }
    }
    match axum::serve(listener, jwtgate_example_axum_rbac::app(validator)).with_graceful_shutdown(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("axum-rbac: {err}");
            ExitCode::FAILURE
        }
    }
}
