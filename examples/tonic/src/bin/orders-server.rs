//! The order service. `ORDERS_JWT_SECRET` (at least 32 bytes) signs the tokens it trusts; `ORDERS_ADDR`
//! (default `127.0.0.1:50051`) is where it listens.

use std::process::ExitCode;

use jwtgate::Secret;

#[tokio::main]
async fn main() -> ExitCode {
    let validator =
        match Secret::from_env("ORDERS_JWT_SECRET").and_then(|secret| jwtgate_example_tonic::validator(&secret)) {
            Ok(validator) => validator,
            Err(err) => {
                eprintln!("orders-server: {err}");
                return ExitCode::from(2);
            }
        };
    let addr = std::env::var("ORDERS_ADDR").unwrap_or_else(|_| "127.0.0.1:50051".into());
    let Ok(addr) = addr.parse() else {
        eprintln!("orders-server: ORDERS_ADDR is not a socket address: {addr:?}");
        return ExitCode::from(2);
    };
    // Listening for signals before `listening on` is printed, so that a signal sent right after it stops the
    // server cleanly.
    let shutdown = match jwtgate_example_support::shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(err) => {
            eprintln!("orders-server: cannot listen for signals: {err}");
            return ExitCode::FAILURE;
        }
    };
    match jwtgate_example_tonic::serve(addr, validator, shutdown) {
        Ok((bound, server)) => {
            #[allow(clippy::print_stdout, reason = "the example says where it listens")]
            {
                println!("listening on {bound}");
            }
            match server.await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("orders-server: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(err) => {
            eprintln!("orders-server: cannot listen on {addr}: {err}");
            ExitCode::FAILURE
        }
    }
}
