//! The example over plain HTTP: every refusal of its login, refresh and logout routes, with status,
//! headers and body.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jwtgate-example-cookie-session"));
    command.env("BIND", "127.0.0.1:0");
    command
}

async fn start() -> (Child, String) {
    jwtgate_tests::start_listening(command()).await
}

#[tokio::test]
async fn with_its_demo_users_it_says_so_at_start() {
    // Regression (issue 17): it started with published users, an admin among them, without a word.
    let (_child, _, log) = jwtgate_tests::start_listening_with_log(command()).await;
    assert!(log.iter().any(|line| line.contains("demo users, whose passwords are published")), "{log:?}");
}

#[tokio::test]
async fn a_signal_sent_the_moment_it_listens_stops_it_with_status_0() {
    jwtgate_tests::assert_stops_cleanly_on_signals(command).await;
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

async fn post(base: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> Answer {
    let mut request = reqwest::Client::new().post(format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().await.unwrap();
    Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

/// `name=value` of each `Set-Cookie`.
fn cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect()
}

#[track_caller]
fn assert_error(answer: &Answer, status: u16, error: &str, description: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.headers["content-type"], "application/json");
    assert!(answer.headers.get("www-authenticate").is_none());
    assert_eq!(answer.body, json!({ "error": error, "error_description": description }));
}

const SAME_ORIGIN: (&str, &str) = ("sec-fetch-site", "same-origin");

#[tokio::test]
async fn login_refusals() {
    let (_app, base) = start().await;
    let wrong = post(&base, "/login", &[SAME_ORIGIN], Some(json!({ "username": "alice", "password": "nope" }))).await;
    assert_error(&wrong, 401, "invalid_grant", "the name or the password is wrong");
    assert!(cookies(&wrong.headers).is_empty());
    let unknown = post(&base, "/login", &[SAME_ORIGIN], Some(json!({ "username": "mallory", "password": "x" }))).await;
    assert_error(&unknown, 401, "invalid_grant", "the name or the password is wrong");
    let malformed = post(&base, "/login", &[SAME_ORIGIN], Some(json!({ "user": "alice" }))).await;
    assert_error(&malformed, 400, "invalid_request", "expected {\"username\", \"password\"}");
    let forged = post(
        &base,
        "/login",
        &[("sec-fetch-site", "cross-site"), ("origin", "https://evil.test")],
        Some(json!({ "username": "alice", "password": "alice-demo-password" })),
    )
    .await;
    assert_error(&forged, 403, "csrf_rejected", "the request's origin may not use the session cookie");
    assert!(cookies(&forged.headers).is_empty(), "login CSRF: no session for the forger");
}

#[tokio::test]
async fn refresh_and_logout_refusals() {
    let (_app, base) = start().await;
    let none = post(&base, "/refresh", &[SAME_ORIGIN], None).await;
    assert_error(&none, 401, "invalid_grant", "no refresh token");

    let login =
        post(&base, "/login", &[SAME_ORIGIN], Some(json!({ "username": "bob", "password": "bob-demo-password" })))
            .await;
    assert_eq!(login.status, 200);
    let set = cookies(&login.headers);
    let refresh_cookie = set.iter().find(|cookie| cookie.starts_with("__Secure-refresh_token=")).unwrap().clone();
    let first = post(&base, "/refresh", &[SAME_ORIGIN, ("cookie", &refresh_cookie)], None).await;
    assert_eq!(first.status, 200);

    // The same refresh token again: reuse. The family is revoked and the cookies cleared.
    let reused = post(&base, "/refresh", &[SAME_ORIGIN, ("cookie", &refresh_cookie)], None).await;
    assert_error(&reused, 401, "invalid_grant", "the session has ended; sign in again");
    assert_eq!(cookies(&reused.headers), ["__Host-access_token=", "__Secure-refresh_token=", "__Host-csrf_token="]);
    let rotated =
        cookies(&first.headers).into_iter().find(|cookie| cookie.starts_with("__Secure-refresh_token=")).unwrap();
    let after = post(&base, "/refresh", &[SAME_ORIGIN, ("cookie", &rotated)], None).await;
    assert_error(&after, 401, "invalid_grant", "the session has ended; sign in again");

    let forged = post(&base, "/refresh", &[("sec-fetch-site", "cross-site"), ("cookie", &rotated)], None).await;
    assert_error(&forged, 403, "csrf_rejected", "the request's origin may not use the session cookie");

    // A forged logout: refused before the token is read.
    let access = cookies(&first.headers).into_iter().find(|cookie| cookie.starts_with("__Host-access_token=")).unwrap();
    let forged_logout = post(
        &base,
        "/logout",
        &[("sec-fetch-site", "cross-site"), ("origin", "https://evil.test"), ("cookie", &access)],
        None,
    )
    .await;
    assert_error(&forged_logout, 403, "csrf_rejected", "the request's origin may not use the session cookie");

    // Logout needs a valid access token.
    let anonymous = post(&base, "/logout", &[SAME_ORIGIN], None).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.headers["www-authenticate"], "Bearer");
    assert_eq!(anonymous.body, json!({ "error": "unauthorized", "error_description": "no bearer token was sent" }));
}
