//! Calls the order service with the token in `ORDERS_TOKEN`, at `ORDERS_ADDR` (default
//! `127.0.0.1:50051`), and prints what each RPC answered.

#![allow(clippy::print_stdout, reason = "the client reports on stdout")]

use std::process::ExitCode;

use jwtgate_example_tonic::pb::orders_client::OrdersClient;
use jwtgate_example_tonic::pb::{DeleteOrderRequest, GetOrderRequest};
use tonic::Request;
use tonic::metadata::MetadataValue;

fn with_token<T>(message: T, token: Option<&MetadataValue<tonic::metadata::Ascii>>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", token.clone());
    }
    request
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr = std::env::var("ORDERS_ADDR").unwrap_or_else(|_| "127.0.0.1:50051".into());
    let token = match std::env::var("ORDERS_TOKEN").ok().map(|t| MetadataValue::try_from(format!("Bearer {t}"))) {
        Some(Ok(token)) => Some(token),
        Some(Err(_)) => {
            eprintln!("orders-client: ORDERS_TOKEN is not a valid header value");
            return ExitCode::from(2);
        }
        None => None,
    };
    let mut client = match OrdersClient::connect(format!("http://{addr}")).await {
        Ok(client) => client,
        Err(err) => {
            eprintln!("orders-client: cannot connect to {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    match client.get_order(with_token(GetOrderRequest { id: "42".into() }, token.as_ref())).await {
        Ok(order) => println!("GetOrder: ok, order {} seen by {}", order.get_ref().id, order.get_ref().viewer),
        Err(status) => println!("GetOrder: {:?}: {}", status.code(), status.message()),
    }
    match client.delete_order(with_token(DeleteOrderRequest { id: "42".into() }, token.as_ref())).await {
        Ok(reply) => println!("DeleteOrder: ok, deleted = {}", reply.get_ref().deleted),
        Err(status) => println!("DeleteOrder: {:?}: {}", status.code(), status.message()),
    }
    ExitCode::SUCCESS
}
