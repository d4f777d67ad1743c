//! The example in a real browser: Debian's Chromium, headless, driven by playwright-core
//! (`tests/interop/browser_session.mjs`). `scripts/test.sh` installs both.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::path::Path;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The access tokens' lifetime in this test: short, so that the page has to refresh.
const ACCESS_TTL_SECS: u64 = 4;

/// Starts the example on a free port; returns it with its port.
async fn start() -> (Child, u16) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jwtgate-example-cookie-session"));
    command.envs([("BIND", "127.0.0.1:0"), ("ACCESS_TTL_SECS", &ACCESS_TTL_SECS.to_string())]);
    let (child, url) = jwtgate_tests::start_listening(command).await;
    let port = url.rsplit(':').next().and_then(|port| port.parse().ok()).expect("the URL ends with a port");
    (child, port)
}

#[tokio::test]
async fn login_refresh_csrf_and_logout_work_in_a_real_browser() {
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop");
    assert!(
        interop.join("node_modules/playwright-core").exists() && Path::new("/usr/bin/chromium").exists(),
        "playwright-core or /usr/bin/chromium is missing: run scripts/test.sh, which installs both"
    );
    let (_app, port) = start().await;
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new("node")
            .arg(interop.join("browser_session.mjs"))
            .arg(format!("http://localhost:{port}"))
            .arg(ACCESS_TTL_SECS.to_string())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser test finished within 120 s")
    .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the browser test failed:\n{report}\n{}", String::from_utf8_lossy(&output.stderr));
    for check in [
        "ok login works",
        "ok document.cookie does not show the tokens",
        "ok the page calls /me",
        "ok through exactly one refresh",
        "ok they are HttpOnly, Secure and SameSite=Strict",
        "ok a cross-site form POST is refused",
        "ok and added no note",
        "ok logout needed no refresh",
        "ok logout clears the cookies",
        "ok the old refresh token is revoked",
        "ok the old access token is revoked",
    ] {
        assert!(report.lines().any(|line| line == check), "missing {check:?} in:\n{report}");
    }
}
