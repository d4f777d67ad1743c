//! Publishing your own keys: `PublicJwk` from every PEM form, and `JwksPublisher` served by axum, read by
//! `RemoteKeySet`, through a rotation; its caching headers, conditional requests and refusals.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::time::Duration;

use axum::Router;
use jwtgate::jwks::{JwksPublisher, RemoteKeySet};
use jwtgate::{
    Algorithm, Validator,
    keys::{KeySource, PublicJwk},
};
use jwtgate_tests::{AUDIENCE, Answer, CertificatePem, ISSUER, PrivateForm, TestKey, claims, get, serve};
use serde_json::Value;

const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn public_jwk(key: &TestKey, kid: &str) -> PublicJwk {
    PublicJwk::from_pem(key.alg(), key.private_pem(PrivateForm::Pkcs8).unwrap(), kid).unwrap()
}

/// A publisher mounted on an axum router, on loopback.
async fn publish(publisher: &JwksPublisher) -> String {
    let router = Router::new().route_service("/.well-known/jwks.json", publisher.clone());
    format!("http://{}/.well-known/jwks.json", serve(router).await)
}

async fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, http::HeaderMap, String) {
    let client = reqwest::Client::new();
    let mut request = client.request(method.parse().unwrap(), url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[test]
fn the_public_jwk_of_every_private_pem_form_verifies_the_keys_signatures() {
    for alg in ASYMMETRIC {
        let key = TestKey::generate(alg).with_kid("k1");
        let token = key.sign(&claims());
        let mut forms = vec![PrivateForm::Pkcs8];
        match alg {
            Algorithm::ES256 | Algorithm::ES384 => forms.push(PrivateForm::Sec1),
            Algorithm::EdDSA => forms.push(PrivateForm::Pkcs8V2),
            _ => {}
        }
        let from_public = PublicJwk::from_pem(alg, key.public_pem().unwrap(), "k1").unwrap();
        let from_certificate = PublicJwk::from_pem(alg, key.certificate_pem().unwrap(), "k1").unwrap();
        assert_eq!(from_certificate, from_public, "{alg}: a certificate gives the same JWK");
        for form in forms {
            let jwk = PublicJwk::from_pem(alg, key.private_pem(form).unwrap(), "k1").unwrap();
            assert_eq!(jwk, from_public, "{alg} {form:?}: the same JWK as from the public key");
            let validator = Validator::builder(jwtgate::KeySet::new([jwk.key().clone()]).unwrap())
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .build();
            assert!(validator.validate::<Value>(&token).is_ok(), "{alg} {form:?}: the published key verifies");
            let json: Value = serde_json::from_str(&jwk.to_json()).unwrap();
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
                assert!(json.get(private).is_none(), "{alg} {form:?} publishes {private}");
            }
            assert_eq!((json["kid"].as_str(), json["use"].as_str()), (Some("k1"), Some("sig")));
            assert_eq!(json["alg"].as_str(), Some(alg.as_str()));
        }
    }
}

#[test]
fn hmac_secrets_are_never_published() {
    let secret = TestKey::generate(Algorithm::HS256);
    let err =
        PublicJwk::from_pem(Algorithm::HS256, "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n", "h")
            .unwrap_err();
    assert_eq!(err.to_string(), "HS256 uses a secret, which is never published in a JWK Set");
    assert!(secret.private_pem(PrivateForm::Pkcs8).is_none());
}

#[tokio::test]
async fn a_remote_key_set_follows_a_publishers_rotation() {
    let old = TestKey::generate(Algorithm::ES256).with_kid("2026-10");
    let new = TestKey::generate(Algorithm::EdDSA).with_kid("2026-11");
    let publisher = JwksPublisher::new(public_jwk(&old, "2026-10"));
    let url = publish(&publisher).await;
    // The publisher's max-age (5 minutes) is clamped to this verifier's refresh interval.
    let keys = RemoteKeySet::jwks(&url)
        .refresh_interval(Duration::from_millis(200))
        .cooldown(Duration::from_millis(200))
        .build_eager()
        .await
        .unwrap();
    let validator = Validator::builder(keys.clone()).issuer(ISSUER).audience(AUDIENCE).build();
    let old_token = old.sign(&claims());
    assert!(validator.validate_async::<Value>(&old_token).await.is_ok());

    // Publish the new key, then sign with it: a verifier accepts it on first sight.
    publisher.rotate(public_jwk(&new, "2026-11")).unwrap();
    assert_eq!(publisher.current().kid(), "2026-11");
    let new_token = new.sign(&claims());
    assert!(validator.validate_async::<Value>(&new_token).await.is_ok(), "the new key, after rotation");
    assert!(validator.validate_async::<Value>(&old_token).await.is_ok(), "the previous key is still published");

    // Retired, the old key stops verifying at the verifier's next refresh.
    publisher.retire("2026-10").unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while keys.current().unwrap().contains_kid("2026-10") {
            keys.wait_for_fetch().await;
        }
    })
    .await
    .expect("the verifier refreshed within 10 s");
    assert_eq!(
        validator.validate_async::<Value>(&old_token).await.unwrap_err().to_string(),
        "the token's signing key is unknown"
    );
    assert!(validator.validate_async::<Value>(&new_token).await.is_ok());
}

#[tokio::test]
async fn the_set_is_served_with_caching_headers_and_only_public_members() {
    let (current, previous) = (TestKey::generate(Algorithm::RS256), TestKey::generate(Algorithm::ES384));
    let publisher = JwksPublisher::with_keys([public_jwk(&current, "b"), public_jwk(&previous, "a")])
        .unwrap()
        .with_max_age(Duration::from_secs(600));
    let url = publish(&publisher).await;

    let (status, headers, body) = request("GET", &url, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/jwk-set+json");
    assert_eq!(headers["cache-control"], "public, max-age=600");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "a strong ETag: {etag}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let kids: Vec<&str> = body["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, ["b", "a"], "the current key first");
    for key in body["keys"].as_array().unwrap() {
        let mut names: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
        names.sort_unstable();
        let expected: &[&str] = if key["kty"] == "RSA" {
            &["alg", "e", "kid", "kty", "n", "use"]
        } else {
            &["alg", "crv", "kid", "kty", "use", "x", "y"]
        };
        assert_eq!(names, expected, "only public members");
    }

    // HEAD: the same headers, no body.
    let (status, head, body) = request("HEAD", &url, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(head["etag"], etag.as_str());
    assert_eq!(head["content-type"], "application/jwk-set+json");
    assert_eq!(body, "");

    // The same keys give the same tag on another instance of a fleet.
    let twin = JwksPublisher::with_keys(publisher.keys()).unwrap();
    let (_, twin_headers, _) = request("GET", &publish(&twin).await, &[]).await;
    assert_eq!(twin_headers["etag"], etag.as_str());
}

#[tokio::test]
async fn a_matching_if_none_match_gets_304_until_the_keys_change() {
    let key = TestKey::generate(Algorithm::ES256);
    let publisher = JwksPublisher::new(public_jwk(&key, "k1"));
    let url = publish(&publisher).await;
    let (_, headers, _) = request("GET", &url, &[]).await;
    let etag = headers["etag"].to_str().unwrap().to_owned();

    for if_none_match in [etag.clone(), format!("W/{etag}"), format!("\"other\", {etag}"), "*".to_owned()] {
        let (status, headers, body) = request("GET", &url, &[("if-none-match", &if_none_match)]).await;
        assert_eq!(status, 304, "If-None-Match: {if_none_match}");
        assert_eq!(headers["etag"], etag.as_str());
        assert_eq!(headers["cache-control"], "public, max-age=300");
        assert_eq!(body, "");
    }
    let (status, _, _) = request("GET", &url, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(status, 200, "another tag gets the set");

    publisher.rotate(public_jwk(&TestKey::generate(Algorithm::ES256), "k2")).unwrap();
    let (status, headers, body) = request("GET", &url, &[("if-none-match", &etag)]).await;
    assert_eq!(status, 200, "the keys changed");
    assert_ne!(headers["etag"], etag.as_str());
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let publisher = JwksPublisher::new(public_jwk(&TestKey::generate(Algorithm::EdDSA), "k1"));
    let url = publish(&publisher).await;
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let (status, headers, body) = request(method, &url, &[]).await;
        assert_eq!(status, 405, "{method}");
        assert_eq!(headers["allow"], "GET, HEAD");
        assert!(headers.get("etag").is_none());
        assert_eq!(body, "");
    }
    let answer: Answer = get(&reqwest::Client::new(), &url, &[]).await;
    assert_eq!(answer.status, 200);
}

#[test]
fn rotation_mistakes_are_refused_and_change_nothing() {
    let jwk = |kid: &str| public_jwk(&TestKey::generate(Algorithm::ES256), kid);
    assert_eq!(JwksPublisher::with_keys([]).unwrap_err().to_string(), "a published JWK Set needs at least one key");
    assert_eq!(
        JwksPublisher::with_keys([jwk("a"), jwk("a")]).unwrap_err().to_string(),
        r#"key "a" is already published; every published key needs its own kid"#
    );
    let publisher = JwksPublisher::with_keys([jwk("b"), jwk("a")]).unwrap();
    assert_eq!(
        publisher.rotate(jwk("a")).unwrap_err().to_string(),
        r#"key "a" is already published; every published key needs its own kid"#
    );
    assert_eq!(
        publisher.retire("b").unwrap_err().to_string(),
        r#"key "b" is the current key; rotate in another before retiring it"#
    );
    assert_eq!(publisher.retire("zz").unwrap_err().to_string(), r#"key "zz" is not published"#);
    let kids: Vec<String> = publisher.keys().iter().map(|key| key.kid().to_owned()).collect();
    assert_eq!(kids, ["b", "a"]);
    publisher.retire("a").unwrap();
    assert_eq!(publisher.keys().len(), 1);
    assert_eq!(format!("{publisher:?}"), r#"JwksPublisher { kids: ["b"], max_age: 300s }"#);
}
