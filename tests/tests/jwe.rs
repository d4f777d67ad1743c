//! Encrypted tokens through `JwtAuthLayer` over real HTTP: a nested token decrypts and is validated as any
//! token, and each attack on encryption gets the same 401, challenge and body, whichever step it fails.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwtgate::introspection::Introspector;
use jwtgate::jwe::{ContentEncryption, DecryptionKey, DecryptionKeys, EncryptionKey, KeyManagement};
use jwtgate::revocation::{Denylist, MemoryDenylist};
use jwtgate::service::Authenticated;
use jwtgate::validation::Validated;
use jwtgate::{Algorithm, JwtAuthLayer, Secret, Validator};
use jwtgate_tests::{AUDIENCE, Answer, ISSUER, TestKey, claims, now};
use serde_json::{Value, json};

const UNDECRYPTABLE: &str = "the encrypted token could not be decrypted and verified";

struct App {
    base: String,
    http: reqwest::Client,
}

/// The validated tokens the handler saw, in order: the same `Arc` twice means the second request was answered
/// from the validated-token cache.
type Seen = Arc<Mutex<Vec<Arc<Validated<Value>>>>>;

impl App {
    async fn start(validator: Validator, denylist: MemoryDenylist) -> Self {
        Self::with_layer(JwtAuthLayer::<Value>::new(validator).denylist(denylist), Seen::default()).await
    }

    async fn with_layer(layer: JwtAuthLayer<Value>, seen: Seen) -> Self {
        let handler = move |Extension(authenticated): Extension<Authenticated>| {
            let seen = seen.clone();
            async move {
                let validated = authenticated.validated::<Value>().expect("the layer's claims type");
                let subject = validated.registered().subject().unwrap_or_default().to_owned();
                seen.lock().unwrap().push(validated);
                subject
            }
        };
        let addr = jwtgate_tests::serve(Router::new().route("/", get(handler)).layer(layer)).await;
        Self { base: format!("http://{addr}/"), http: reqwest::Client::new() }
    }

    async fn call(&self, token: &str) -> Answer {
        jwtgate_tests::get(&self.http, &self.base, &[("authorization", &format!("Bearer {token}"))]).await
    }
}

struct Setup {
    signer: TestKey,
    keys: Vec<DecryptionKey>,
    denylist: MemoryDenylist,
}

impl Setup {
    fn new() -> Self {
        let keys = vec![
            DecryptionKey::generate(KeyManagement::RsaOaep256, "rsa").unwrap(),
            DecryptionKey::generate(KeyManagement::EcdhEsA256Kw, "ec").unwrap(),
            DecryptionKey::generate(KeyManagement::A256Kw, "wrap").unwrap(),
            DecryptionKey::symmetric(KeyManagement::Dir, &Secret::new(vec![7; 32]), "dir").unwrap(),
        ];
        Self { signer: TestKey::generate(Algorithm::ES256), keys, denylist: MemoryDenylist::new() }
    }

    fn validator(&self, required: bool) -> Validator {
        Validator::builder(self.signer.key_set())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .decryption_keys(DecryptionKeys::new(self.keys.clone()).unwrap())
            .require_encryption(required)
            .build()
    }

    async fn app(&self, required: bool) -> App {
        App::start(self.validator(required), self.denylist.clone()).await
    }

    fn jws(&self, extra: Value) -> String {
        let mut claims = claims();
        let Value::Object(extra) = extra else { panic!("extra claims are an object") };
        claims.as_object_mut().unwrap().extend(extra);
        self.signer.sign(&claims)
    }

    fn recipient(&self, kid: &str, enc: ContentEncryption) -> EncryptionKey {
        self.keys.iter().find(|key| key.kid() == kid).unwrap().encryption_key(enc).unwrap()
    }

    fn encrypted(&self, kid: &str) -> String {
        self.recipient(kid, ContentEncryption::A256Gcm).encrypt(&self.jws(json!({}))).unwrap()
    }
}

/// `token` with part `index` decoded, changed by `change`, and encoded again.
fn with_part(token: &str, index: usize, change: impl Fn(&mut Vec<u8>)) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = URL_SAFE_NO_PAD.decode(&parts[index]).unwrap();
    change(&mut bytes);
    parts[index] = URL_SAFE_NO_PAD.encode(bytes);
    parts.join(".")
}

/// `token` with its protected header's JSON changed by `change`.
fn with_header(token: &str, change: impl Fn(&mut serde_json::Map<String, Value>)) -> String {
    with_part(token, 0, |bytes| {
        let mut header: serde_json::Map<String, Value> = serde_json::from_slice(bytes).unwrap();
        change(&mut header);
        *bytes = serde_json::to_vec(&header).unwrap();
    })
}

#[tokio::test]
async fn a_nested_token_for_each_key_is_decrypted_and_validated() {
    let setup = Setup::new();
    let app = setup.app(true).await;
    for kid in ["rsa", "ec", "wrap", "dir"] {
        for enc in ContentEncryption::ALL {
            if kid == "dir" && enc != ContentEncryption::A256Gcm {
                continue; // A 32-byte `dir` key is an A256GCM key.
            }
            let token = setup.recipient(kid, enc).encrypt(&setup.jws(json!({}))).unwrap();
            let answer = app.call(&token).await;
            assert_eq!((answer.status, answer.body.clone()), (200, json!("user-1")), "{kid} {enc}");
        }
    }
}

#[tokio::test]
async fn every_attack_on_encryption_gets_the_same_answer() {
    let setup = Setup::new();
    let app = setup.app(true).await;
    let token = setup.encrypted("wrap");
    let ec_token = setup.encrypted("ec");
    let flip_last = |bytes: &mut Vec<u8>| *bytes.last_mut().unwrap() ^= 1;
    let untrusted = TestKey::generate(Algorithm::ES256);
    let recipient = setup.recipient("wrap", ContentEncryption::A256Gcm);
    let unsigned = {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        format!("{header}.{payload}.")
    };
    let attacks: Vec<(&str, String)> = vec![
        ("RSA1_5", with_header(&token, |h| drop(h.insert("alg".into(), "RSA1_5".into())))),
        ("zip: DEF", with_header(&token, |h| drop(h.insert("zip".into(), "DEF".into())))),
        ("an unknown crit", with_header(&token, |h| drop(h.insert("crit".into(), json!(["exp"]))))),
        ("an unsupported enc", with_header(&token, |h| drop(h.insert("enc".into(), "A192GCM".into())))),
        ("a tampered tag", with_part(&token, 4, flip_last)),
        ("a tampered ciphertext", with_part(&token, 3, flip_last)),
        ("a tampered IV", with_part(&token, 2, flip_last)),
        ("a tampered encrypted key", with_part(&token, 1, flip_last)),
        ("a tampered header (the AAD)", with_header(&token, |h| drop(h.insert("x".into(), 1.into())))),
        ("a truncated tag", with_part(&token, 4, |bytes| bytes.truncate(8))),
        (
            "an off-curve ephemeral key",
            with_header(&ec_token, |h| {
                let y = h["epk"]["y"].as_str().unwrap().to_owned();
                let mut y = URL_SAFE_NO_PAD.decode(y).unwrap();
                y[31] ^= 1;
                h.get_mut("epk").unwrap()["y"] = URL_SAFE_NO_PAD.encode(y).into();
            }),
        ),
        ("alg: dir against a key-wrapping key", with_header(&token, |h| drop(h.insert("alg".into(), "dir".into())))),
        ("a kid nobody has", with_header(&token, |h| drop(h.insert("kid".into(), "nobody".into())))),
        ("an unsigned token inside", recipient.encrypt(&unsigned).unwrap()),
        ("a token signed by an untrusted key inside", recipient.encrypt(&untrusted.sign(&claims())).unwrap()),
        ("a JWE nested in a JWE", recipient.encrypt(&token).unwrap()),
        ("not a token inside", recipient.encrypt("not a token").unwrap()),
        ("five parts of garbage", "a.b.c.d.e".to_owned()),
        ("an oversized header part", format!("{}{}", "e".repeat(4_000), &token[token.find('.').unwrap()..])),
    ];
    for (attack, forged) in &attacks {
        let answer = app.call(forged).await;
        assert_eq!(answer.status, 401, "{attack}");
        answer.assert_invalid_token(UNDECRYPTABLE);
        let start = &forged[..forged.len().min(20)];
        assert!(!answer.body.to_string().contains(start), "{attack}: the body repeats the token");
    }
    // The genuine token still passes.
    assert_eq!(app.call(&token).await.status, 200);
}

#[tokio::test]
async fn a_signed_token_is_refused_where_encryption_is_required_and_accepted_where_not() {
    let setup = Setup::new();
    let jws = setup.jws(json!({}));
    setup.app(true).await.call(&jws).await.assert_invalid_token("the token must be encrypted");
    assert_eq!(setup.app(false).await.call(&jws).await.status, 200);
    // Encrypted tokens, where no key decrypts: refused the same way as any failure.
    let plain = App::start(
        Validator::builder(setup.signer.key_set()).issuer(ISSUER).audience(AUDIENCE).build(),
        MemoryDenylist::new(),
    )
    .await;
    plain.call(&setup.encrypted("rsa")).await.assert_invalid_token(UNDECRYPTABLE);
}

#[tokio::test]
async fn a_verified_token_inside_is_checked_and_told_as_any_token() {
    let setup = Setup::new();
    let app = setup.app(true).await;
    let recipient = setup.recipient("rsa", ContentEncryption::A128CbcHs256);
    let expired = recipient.encrypt(&setup.jws(json!({ "iat": now() - 600, "exp": now() - 300 }))).unwrap();
    app.call(&expired).await.assert_invalid_token("the token has expired");
    let elsewhere = recipient.encrypt(&setup.jws(json!({ "aud": "another-api" }))).unwrap();
    app.call(&elsewhere).await.assert_invalid_token("the token's audience is not accepted");
    // The denylist sees the inner token's jti.
    let token = recipient.encrypt(&setup.jws(json!({ "jti": "enc-1" }))).unwrap();
    assert_eq!(app.call(&token).await.status, 200);
    setup.denylist.revoke("enc-1", now() + 600).await.unwrap();
    app.call(&token).await.assert_invalid_token("the token has been revoked");
}

#[tokio::test]
async fn size_limits_apply_before_decryption_and_to_the_plaintext() {
    let setup = Setup::new();
    let small = Validator::builder(setup.signer.key_set())
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .decryption_keys(DecryptionKeys::new(setup.keys.clone()).unwrap())
        .max_token_bytes(2_048)
        .build();
    let app = App::start(small, MemoryDenylist::new()).await;
    let recipient = setup.recipient("dir", ContentEncryption::A256Gcm);
    // A whole token over the limit: refused before anything is decoded.
    let big = recipient.encrypt(&setup.jws(json!({ "pad": "x".repeat(3_000) }))).unwrap();
    app.call(&big).await.assert_invalid_token("the token is too large");
    // Under the limit, with a plaintext that fits: accepted.
    let fits = recipient.encrypt(&setup.jws(json!({ "pad": "x".repeat(500) }))).unwrap();
    assert!(fits.len() < 2_048);
    assert_eq!(app.call(&fits).await.status, 200);
}

#[tokio::test]
async fn with_the_cache_an_encrypted_token_is_decrypted_once_and_revocation_still_applies() {
    let setup = Setup::new();
    let seen = Seen::default();
    let layer = JwtAuthLayer::<Value>::new(setup.validator(true)).cache(100).denylist(setup.denylist.clone());
    let app = App::with_layer(layer, seen.clone()).await;
    let recipient = setup.recipient("ec", ContentEncryption::A256Gcm);
    let token = recipient.encrypt(&setup.jws(json!({ "jti": "cached-1" }))).unwrap();
    for _ in 0..3 {
        assert_eq!(app.call(&token).await.status, 200);
    }
    let shared = |seen: &Seen| {
        let seen = seen.lock().unwrap();
        let [.., a, b] = seen.as_slice() else { panic!("fewer than two requests were admitted") };
        Arc::ptr_eq(a, b)
    };
    assert!(shared(&seen), "the second request was decrypted and validated again");
    // A token that differs in one byte of its tag is no hit: it is decrypted, and refused.
    app.call(&with_part(&token, 4, |bytes| bytes[0] ^= 1)).await.assert_invalid_token(UNDECRYPTABLE);
    setup.denylist.revoke("cached-1", now() + 600).await.unwrap();
    app.call(&token).await.assert_invalid_token("the token has been revoked");
}

#[tokio::test]
async fn beside_introspection_an_encrypted_token_goes_to_the_validator_that_decrypts_it() {
    let setup = Setup::new();
    let endpoint = jwtgate_test::IntrospectionServer::start().await;
    let introspector = || Introspector::<Value>::builder(endpoint.url()).build().unwrap();
    let hybrid = JwtAuthLayer::new(setup.validator(false)).introspection(introspector());
    let app = App::with_layer(hybrid, Seen::default()).await;
    let token = setup.encrypted("wrap");
    assert_eq!(app.call(&token).await.status, 200);
    app.call(&with_part(&token, 4, |bytes| bytes[0] ^= 1)).await.assert_invalid_token(UNDECRYPTABLE);
    assert_eq!(endpoint.calls(), 0, "no encrypted token reached the introspection endpoint");
    // A validator that does not decrypt leaves five-part tokens to the endpoint, which knows nothing of this one.
    let plain = Validator::builder(setup.signer.key_set()).issuer(ISSUER).audience(AUDIENCE).build();
    let app = App::with_layer(JwtAuthLayer::new(plain).introspection(introspector()), Seen::default()).await;
    app.call(&token).await.assert_invalid_token("the token is not active");
    assert_eq!(endpoint.calls(), 1);
}

/// With a remote key set: a key rotated in at the issuer is fetched for an encrypted token as for a signed one;
/// an inner `kid` that stays unknown is concealed as any failure after decryption (never a 503 that would say
/// the tag passed); and a cold start (no keys yet) is a 503 decided before decryption.
#[tokio::test]
async fn with_remote_keys_rotation_works_and_an_unknown_inner_kid_is_concealed() {
    use jwtgate::jwks::RemoteKeySet;
    use jwtgate_test::{Fault, JwksServer};

    let (old, new) =
        (TestKey::generate(Algorithm::ES256).with_kid("old"), TestKey::generate(Algorithm::ES256).with_kid("new"));
    let jwks = |keys: &[&TestKey]| json!({ "keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>() });
    let server = JwksServer::start(jwks(&[&old])).await;
    let remote = RemoteKeySet::jwks(&server.jwks_url()).timeout(std::time::Duration::from_secs(2)).build().unwrap();
    let setup = Setup::new();
    let validator = |keys: RemoteKeySet| {
        Validator::builder(keys)
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .decryption_keys(DecryptionKeys::new(setup.keys.clone()).unwrap())
            .build()
    };
    let app = App::start(validator(remote.clone()), MemoryDenylist::new()).await;
    let recipient = setup.recipient("rsa", ContentEncryption::A256Gcm);
    assert_eq!(app.call(&recipient.encrypt(&old.sign(&claims())).unwrap()).await.status, 200);

    // A key rotated in at the issuer: the inner `kid` is unknown, the set is fetched again, and the token is
    // accepted on first sight.
    server.set_keys(jwks(&[&new, &old]));
    let rotated = recipient.encrypt(&new.sign(&claims())).unwrap();
    assert_eq!(app.call(&rotated).await.status, 200);
    assert_eq!(server.fetches(), 2, "one fetch at start, one for the new kid");
    // Signed by a key the issuer never published: still unknown after the set's answer, and concealed.
    let stranger = TestKey::generate(Algorithm::ES256).with_kid("stranger");
    let unknown = recipient.encrypt(&stranger.sign(&claims())).unwrap();
    app.call(&unknown).await.assert_invalid_token(UNDECRYPTABLE);

    // A source that has no keys yet: 503, whatever the token, before anything is decrypted.
    server.set_fault(Fault::Status(500));
    let cold = RemoteKeySet::jwks(&server.jwks_url()).timeout(std::time::Duration::from_secs(1)).build().unwrap();
    let app = App::start(validator(cold), MemoryDenylist::new()).await;
    app.call(&unknown).await.assert_unavailable("the signing keys are unavailable; try again later");
    app.call(&with_part(&unknown, 4, |bytes| bytes[0] ^= 1))
        .await
        .assert_unavailable("the signing keys are unavailable; try again later");
}

#[test]
fn a_validator_by_issuer_refuses_decryption_keys() {
    let setup = Setup::new();
    let error = Validator::by_issuer([setup.validator(false)]).unwrap_err();
    assert!(error.to_string().contains("cannot decrypt"), "{error}");
}

/// `TokenIssuer::encrypt_for`: signed, then encrypted for the recipient's public key; the claims cannot be read
/// on the way, and the recipient's validator decrypts and verifies them.
#[test]
fn a_token_issuer_signs_then_encrypts_for_its_recipient() {
    use jwtgate::keys::SigningKey;
    use jwtgate::session::TokenIssuer;

    let recipient = DecryptionKey::generate(KeyManagement::EcdhEsA256Kw, "api-enc").unwrap();
    let issuer = TokenIssuer::builder(ISSUER, SigningKey::generate(Algorithm::ES256, "sig-1").unwrap())
        .audience(AUDIENCE)
        .encrypt_for(recipient.encryption_key(ContentEncryption::A256Gcm).unwrap())
        .build()
        .unwrap();
    let issued = issuer.issue("user-9", &json!({ "patient": "record-77" })).unwrap();
    let token = issued.token();
    assert_eq!(token.split('.').count(), 5);
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(
        (&header["alg"], &header["enc"], &header["kid"], &header["cty"]),
        (&json!("ECDH-ES+A256KW"), &json!("A256GCM"), &json!("api-enc"), &json!("JWT"))
    );
    assert_eq!(header["epk"]["crv"], "P-256");
    for part in token.split('.') {
        let bytes = URL_SAFE_NO_PAD.decode(part).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("record-77"), "the claims are readable on the way");
    }
    let validator = |keys: Option<DecryptionKeys>| {
        let builder = Validator::builder(issuer.clone()).issuer(ISSUER).audience(AUDIENCE);
        match keys {
            Some(keys) => builder.decryption_keys(keys).require_encryption(true).build(),
            None => builder.build(),
        }
    };
    let validated = validator(Some(DecryptionKeys::new([recipient]).unwrap())).validate::<Value>(token).unwrap();
    assert_eq!(
        (validated.claims()["sub"].as_str(), validated.claims()["patient"].as_str()),
        (Some("user-9"), Some("record-77"))
    );
    let refused = validator(None).validate::<Value>(token).unwrap_err();
    assert_eq!(refused.kind(), jwtgate::ErrorKind::Undecryptable);
}
