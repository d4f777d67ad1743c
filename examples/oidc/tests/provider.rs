//! The example against a real OpenID provider (the npm `oidc-provider`, see tests/interop): configured with
//! the issuer URL and an audience alone, it accepts the provider's access tokens.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::time::Duration;

use jwtgate_tests::interop::OidcProvider;
use serde_json::json;
use tokio::process::{Child, Command};

fn example() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jwtgate-example-oidc"));
    command.env_remove("RUST_LOG").kill_on_drop(true);
    command
}

/// Starts the example and returns it with its base URL.
async fn start(issuer: &str, audience: &str) -> (Child, String) {
    let mut command = example();
    command.envs([("OIDC_ISSUER", issuer), ("OIDC_AUDIENCE", audience), ("BIND", "127.0.0.1:0"), ("OIDC_EAGER", "1")]);
    jwtgate_tests::start_listening(command).await
}

#[tokio::test]
async fn a_signal_sent_the_moment_it_listens_stops_it_with_status_0() {
    // Lazy keys: it listens at once, whether or not the (unreachable) provider ever answers.
    jwtgate_tests::assert_stops_cleanly_on_signals(|| {
        let mut command = example();
        command.envs([("OIDC_ISSUER", "http://127.0.0.1:9/realm"), ("OIDC_AUDIENCE", "api"), ("BIND", "127.0.0.1:0")]);
        command
    })
    .await;
}

async fn json_body(response: reqwest::Response) -> serde_json::Value {
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

#[tokio::test]
async fn the_example_accepts_a_real_providers_tokens_from_its_issuer_url_alone() {
    let state = std::env::temp_dir().join(format!("jwtgate-example-oidc-{}", std::process::id()));
    std::fs::create_dir_all(&state).unwrap();
    let mut provider = OidcProvider::start(&state).await;
    let (_child, base) = start(provider.issuer(), "https://api.example").await;
    let http = reqwest::Client::new();

    let health = json_body(http.get(format!("{base}/health")).send().await.unwrap()).await;
    assert_eq!(health, json!({ "status": "ok", "keys_ready": true }));

    let token = provider.access_token("https://api.example").await;
    let response = http.get(format!("{base}/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let me = json_body(response).await;
    assert_eq!(me["sub"], "test-client");
    assert_eq!(me["scopes"], json!(["read"]));

    let response = http.get(format!("{base}/admin")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope", error_description="the token does not grant access to this resource", scope="admin""#
    );

    let other = provider.access_token("https://other.example").await;
    let response = http.get(format!("{base}/me")).bearer_auth(&other).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="invalid_token", error_description="the token's audience is not accepted""#
    );
    drop(provider);
    std::fs::remove_dir_all(state).unwrap();
}

#[tokio::test]
async fn a_bad_configuration_exits_with_status_2_and_names_the_variable() {
    for (vars, expected) in [
        (vec![("OIDC_AUDIENCE", "api")], "OIDC_ISSUER is required"),
        (vec![("OIDC_ISSUER", "https://idp.test")], "OIDC_AUDIENCE is required"),
        (
            vec![("OIDC_ISSUER", "http://idp.test"), ("OIDC_AUDIENCE", "api")],
            "OIDC_ISSUER: http://idp.test/.well-known/openid-configuration uses http",
        ),
        // Regression (issue 17): the error repeated the whole URL, credentials included.
        (vec![("OIDC_ISSUER", "http://user:s3cret@idp.test/?k=s3cret"), ("OIDC_AUDIENCE", "api")], "OIDC_ISSUER: "),
        (vec![("OIDC_ISSUER", "https://idp.test"), ("OIDC_AUDIENCE", "api"), ("BIND", "nowhere")], "BIND="),
        (
            vec![("OIDC_ISSUER", "https://idp.test"), ("OIDC_AUDIENCE", "api"), ("OIDC_RSA_ALG", "ES256")],
            "OIDC_RSA_ALG=",
        ),
    ] {
        let output = tokio::time::timeout(Duration::from_secs(20), example().envs(vars.clone()).output())
            .await
            .unwrap_or_else(|_| panic!("{vars:?} started the example"))
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{vars:?}: {stderr}");
        assert!(stderr.contains(expected), "{vars:?}: {stderr}");
        assert!(!stderr.contains("s3cret"), "a secret in the URL was repeated: {stderr}");
    }
}
