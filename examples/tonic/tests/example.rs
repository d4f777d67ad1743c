//! Starts the example's server binary and calls it with tokens that pass, fail authentication and fail
//! authorization, through the generated client and through the client binary.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::process::Stdio;
use std::time::Duration;

use jwtgate::Algorithm;
use jwtgate_example_tonic::pb::orders_client::OrdersClient;
use jwtgate_example_tonic::pb::{DeleteOrderRequest, GetOrderRequest};
use jwtgate_example_tonic::{AUDIENCE, ISSUER};
use jwtgate_test::{TestKey, b64, now};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tonic::Code;

fn request<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

#[tokio::test]
async fn a_signal_sent_the_moment_it_listens_stops_the_server_with_status_0() {
    let secret = b64(TestKey::generate(Algorithm::HS256).secret().unwrap());
    jwtgate_tests::assert_stops_cleanly_on_signals(|| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_orders-server"));
        command.env("ORDERS_JWT_SECRET", &secret).env("ORDERS_ADDR", "127.0.0.1:0");
        command
    })
    .await;
}

#[tokio::test]
async fn the_service_authenticates_every_call_and_authorizes_delete() {
    let mut secret = [0u8; 32];
    secret.iter_mut().enumerate().for_each(|(i, b)| *b = (now() as u8).wrapping_mul(31).wrapping_add(i as u8));
    let secret = b64(secret); // a test-only secret made at test time
    let mut server = Command::new(env!("CARGO_BIN_EXE_orders-server"))
        .env("ORDERS_JWT_SECRET", &secret)
        .env("ORDERS_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
    let addr = line.strip_prefix("listening on ").unwrap().to_owned();

    let key = TestKey::hmac_with_secret(Algorithm::HS256, secret.as_bytes());
    let token = |roles: &[&str]| {
        key.sign(&json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "exp": now() + 300, "roles": roles }))
    };
    let (admin, user) = (token(&["admin"]), token(&["user"]));
    let mut client = OrdersClient::connect(format!("http://{addr}")).await.unwrap();

    let order = client.get_order(request(GetOrderRequest { id: "7".into() }, Some(&user))).await.unwrap();
    assert_eq!((order.get_ref().id.as_str(), order.get_ref().viewer.as_str()), ("7", "ada"));
    let deleted = client.delete_order(request(DeleteOrderRequest { id: "7".into() }, Some(&admin))).await.unwrap();
    assert!(deleted.get_ref().deleted);

    let denied = client.delete_order(request(DeleteOrderRequest { id: "7".into() }, Some(&user))).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    for token in
        [None, Some("not.a.token"), Some(&*TestKey::generate(Algorithm::HS256).sign(&json!({ "exp": now() + 60 })))]
    {
        let status = client.get_order(request(GetOrderRequest { id: "7".into() }, token)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{token:?}");
        let status = client.delete_order(request(DeleteOrderRequest { id: "7".into() }, token)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{token:?}");
    }

    let output = Command::new(env!("CARGO_BIN_EXE_orders-client"))
        .env("ORDERS_ADDR", &addr)
        .env("ORDERS_TOKEN", &user)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success());
    assert!(stdout.contains("GetOrder: ok, order 42 seen by ada"), "{stdout}");
    assert!(stdout.contains("DeleteOrder: PermissionDenied"), "{stdout}");
}

#[tokio::test]
async fn the_server_refuses_to_start_without_a_strong_secret() {
    for secret in [None, Some("too short")] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_orders-server"));
        command.env_remove("ORDERS_JWT_SECRET").env("ORDERS_ADDR", "127.0.0.1:0");
        if let Some(secret) = secret {
            command.env("ORDERS_JWT_SECRET", secret);
        }
        let output = command.output().await.unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("ORDERS_JWT_SECRET") || stderr.contains("at least 32"), "{stderr}");
        assert!(!stderr.contains("too short"), "the secret leaked: {stderr}");
    }
}
