//! What each fuzz target does with its input, shared with `tests/tests/fuzz_regressions.rs`, which replays
//! the committed inputs under `fuzz/regressions/` in the normal test run.
//!
//! Each function must never panic, whatever the bytes; the assertions in it are the properties the fuzzer
//! checks beyond that.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderName, HeaderValue, Request, Uri};
use jwtgate::{
    Algorithm, Authority, Key, KeySet, Policy, Secret, Validator,
    guards::AuthorityMapping,
    keys::AlgorithmMapping,
    sources::{Csrf, Extracted, RequestHead, TokenSource, TokenSources},
};
use serde_json::Value;

/// A fuzzing-only HMAC secret, 32 bytes: not a secret of anything.
const TEST_SECRET: &[u8; 32] = b"fuzz-only secret, not a real one";
const ISSUER: &str = "https://issuer.fuzz";
const AUDIENCE: &str = "api";

fn key() -> Key {
    Key::hmac(Algorithm::HS256, &Secret::new(TEST_SECRET.to_vec())).expect("a 32-byte HMAC secret")
}

fn mapping() -> AuthorityMapping {
    AuthorityMapping::new()
        .roles()
        .scope()
        .scp()
        .permissions()
        .keycloak_realm_roles()
        .keycloak_client_roles("api")
        .cognito_groups()
        .entra_roles()
        .pointer("/app_metadata/roles", Authority::Role)
}

/// The validator the token targets use: issuer, audience, every mapping preset.
fn strict() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        Validator::builder(KeySet::new([key()]).expect("one key"))
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .authorities(mapping())
            .build()
    })
}

/// A validator that asks for nothing but a good signature, so that any claims set reaches the mapping.
fn lenient() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        Validator::builder(KeySet::new([key()]).expect("one key")).require_exp(false).authorities(mapping()).build()
    })
}

/// Signs `header` and `claims`, as they are, with the fuzzing key: the token then passes the signature check
/// and reaches the header and claims parsers, which a random token never would.
fn signed(header: &[u8], claims: &[u8]) -> String {
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let hmac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, TEST_SECRET);
    let tag = aws_lc_rs::hmac::sign(&hmac, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// The `alg` of a JOSE header, every other member ignored.
#[derive(serde::Deserialize)]
struct Alg {
    alg: String,
}

/// Reads everything a handler or a guard could read from a principal.
fn touch_principal(principal: &jwtgate::Principal) {
    let _ = principal.subject();
    for scope in principal.scopes() {
        assert!(!scope.is_empty() && !scope.contains(' '), "a mapped scope is one non-empty word: {scope:?}");
    }
    for role in principal.roles() {
        assert!(!role.is_empty() && principal.has_role(role), "a mapped role is not empty: {role:?}");
    }
    assert!(principal.permissions().iter().all(|permission| !permission.is_empty()), "an empty permission");
    let _ = principal.claim::<Value>("sub");
    let policy = Policy::any([Policy::role("admin"), Policy::scope("read"), Policy::claim_eq("tenant", "a")]);
    let _ = policy.allows(principal);
}

/// The token parser and validator: the bytes as a token, then split at the first 0xFF into a header and a
/// claims set that are signed with the right key.
pub(crate) fn token(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(error) = strict().validate::<Value>(&text) {
        let _ = (error.kind(), error.to_string());
    }
    let _ = jwtgate::__private::unverified_kid(&text);

    let split = data.iter().position(|&byte| byte == 0xFF).unwrap_or(data.len());
    let (header, claims) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let token = signed(header, claims);
    for validator in [strict(), lenient()] {
        match validator.validate::<Value>(&token) {
            Ok(validated) => {
                // Accepted: the header was UTF-8 JSON naming HS256, and the claims set a JSON object. JSON
                // puts no bound on numbers (RFC 8259 §6), so the header is checked with serde's `IgnoredAny`
                // and its `alg` alone read, not as a `Value`, which refuses numbers beyond an f64.
                let header = std::str::from_utf8(header).expect("an accepted header is UTF-8");
                serde_json::from_str::<serde::de::IgnoredAny>(header).expect("an accepted header is JSON");
                let alg = serde_json::from_str::<Alg>(header).expect("an accepted header has an alg").alg;
                assert_eq!(alg, "HS256", "accepted a header that does not name HS256");
                assert!(validated.claims().is_object(), "accepted a claims set that is not an object");
                assert_eq!(validated.algorithm(), Some(Algorithm::HS256));
                if std::ptr::eq(validator, strict()) {
                    assert_eq!(validated.registered().issuer(), Some(ISSUER));
                    assert!(validated.registered().audience().any(|aud| aud == AUDIENCE));
                }
                touch_principal(validated.principal());
            }
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }
}

/// The role and scope mapping presets: the bytes are a claims set, signed, and mapped by every preset.
pub(crate) fn mapping_presets(data: &[u8]) {
    let token = signed(br#"{"alg":"HS256","typ":"JWT"}"#, data);
    if let Ok(validated) = lenient().validate::<Value>(&token) {
        touch_principal(validated.principal());
    }
}

/// The Bearer header, cookie, custom header and query parsers, and the CSRF check. The first line is the
/// request target; each further line is a header, `name: value`, kept when `http` accepts it.
pub(crate) fn sources(data: &[u8]) {
    let mut lines = data.split(|&byte| byte == b'\n');
    let target = lines.next().and_then(|line| Uri::try_from(line).ok()).unwrap_or_else(|| Uri::from_static("/"));
    let mut request = Request::builder().uri(target).body(()).expect("a request");
    for line in lines {
        let Some(colon) = line.iter().position(|&byte| byte == b':') else { continue };
        let value = line[colon + 1..].strip_prefix(b" ").unwrap_or(&line[colon + 1..]);
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(value)) {
            request.headers_mut().append(name, value);
        }
    }
    let head = RequestHead::new(&request);
    let x_csrf = HeaderName::from_static("x-csrf-token");
    let each = [
        TokenSource::bearer(),
        TokenSource::cookie("session"),
        TokenSource::cookie("__Host-session").csrf(Csrf::double_submit("csrf", x_csrf)),
        TokenSource::cookie("session").csrf(Csrf::same_origin()),
        TokenSource::cookie("session").csrf(Csrf::allow_origins(["https://app.example"])),
        TokenSource::header(HeaderName::from_static("x-token")),
        TokenSource::query("access_token"),
    ];
    for source in &each {
        if let Extracted::Token(token) = source.extract(&head) {
            assert!(!token.is_empty(), "a source found an empty token");
        }
    }
    if let Extracted::Token(token) = TokenSource::bearer().extract(&head) {
        assert!(!token.starts_with(' '), "the bearer token keeps the spaces after the scheme");
    }
    let _ = TokenSources::new(each).extract(&head);
    let _ = Csrf::same_origin().allows(&head);
}

/// The JWK and JWK Set parsers, strict (files) and lenient (a provider's set, skipping keys it cannot use).
pub(crate) fn jwks(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut mappings = vec![AlgorithmMapping::new()];
    mappings.extend(AlgorithmMapping::new().map(jwtgate::keys::KeyType::Rsa, Algorithm::PS256).ok());
    for mapping in &mappings {
        if let Ok(key) = Key::from_jwk(&text, mapping) {
            let _ = (key.kid(), key.algorithm());
        }
        if let Ok(keys) = KeySet::from_jwks(&text, mapping) {
            assert!(!keys.keys().is_empty(), "an accepted JWK Set has a key");
        }
        if let Ok((keys, skipped)) = KeySet::from_remote_jwks(&text, mapping) {
            let _ = keys.keys().len();
            for skip in &skipped {
                let _ = (skip.index(), skip.kid(), skip.reason().to_string());
            }
        }
    }
}

/// The fixed request every fuzzed DPoP proof is checked against; the `jose`-made seeds are proofs for it.
pub(crate) fn proof_requirements() -> jwtgate::dpop::ProofRequirements<'static> {
    jwtgate::dpop::ProofRequirements {
        method: "POST",
        url: "https://api.fuzz/orders",
        access_token: Some("an.access.token"),
        now: 1_800_000_000,
        iat_window: 60,
        algorithms: jwtgate::dpop::DEFAULT_PROOF_ALGORITHMS,
        keys: None,
    }
}

/// A DPoP proof's checks: the bytes as a proof, against a fixed request. Properties: a proof that passes names
/// the thumbprint of the key in its header, and `htu` normalization is idempotent.
pub(crate) fn dpop_proof(data: &[u8]) {
    use jwtgate::dpop::{check_proof, jwk_thumbprint, normalize_htu};
    let text = String::from_utf8_lossy(data);
    let requirements = proof_requirements();
    if let Ok(checked) = check_proof(&text, &requirements) {
        let header = text.split('.').next().and_then(|part| URL_SAFE_NO_PAD.decode(part).ok());
        let header: Value = serde_json::from_slice(&header.expect("a checked proof has a header")).expect("JSON");
        assert_eq!(jwk_thumbprint(&header["jwk"]).as_deref(), Some(checked.jkt.as_str()));
    }
    for line in text.lines() {
        if let Some(normalized) = normalize_htu(line) {
            assert_eq!(normalize_htu(&normalized).as_deref(), Some(normalized.as_str()), "{line:?}");
        }
    }
}

/// An introspection endpoint's answer (RFC 7662): the bytes as the body of a 200. Properties: an answer read as
/// active is a JSON object whose `active` is the boolean `true`, its claims read without a panic, and an answer
/// the rules accept has a principal and an `exp` no earlier than the clock, leeway aside.
pub(crate) fn introspection_answer(data: &[u8]) {
    use jwtgate::introspection::{ActiveAnswer, AnswerRules};
    if let Ok(answer) = ActiveAnswer::read(data) {
        // Raw members: a number too large for an `f64` is valid JSON, which `Value` refuses to hold.
        let members: std::collections::HashMap<String, Box<serde_json::value::RawValue>> =
            serde_json::from_str(answer.json()).expect("an object");
        assert_eq!(members.get("active").map(|active| active.get()), Some("true"));
        if let Ok((claims, registered)) = answer.claims::<Value>() {
            assert!(claims.is_object());
            let _ = (registered.subject(), registered.expires_at(), registered.audience().count());
        }
        let now = 1_700_000_000;
        let rules = AnswerRules::new().issuer("https://issuer.test").audience("api").token_types(["Bearer"]);
        if let Ok(validated) = rules.check::<Value>(&answer, now) {
            assert!(validated.is_introspected());
            assert!(validated.registered().expires_at().is_none_or(|exp| exp.saturating_add(30) > now));
            let _ = (validated.principal().scopes(), validated.principal().roles());
        }
    }
}

/// Fuzzing-only JWE keys: a `dir` key for `A256GCM`, and an `A128KW` key. Not secrets of anything.
const JWE_DIR_KEY: &[u8; 32] = b"fuzz-only JWE key, not a real 1!";
const JWE_WRAP_KEY: &[u8; 16] = b"fuzz-only wrap k";

/// The validator the `jwe` target uses: the token target's, with those two keys to decrypt with.
fn decrypting() -> &'static Validator {
    use jwtgate::jwe::{DecryptionKey, DecryptionKeys, KeyManagement};
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let keys = DecryptionKeys::new([
            DecryptionKey::symmetric(KeyManagement::Dir, &Secret::new(JWE_DIR_KEY.to_vec()), "dir").expect("a dir key"),
            DecryptionKey::symmetric(KeyManagement::A128Kw, &Secret::new(JWE_WRAP_KEY.to_vec()), "wrap")
                .expect("a wrap key"),
        ])
        .expect("two keys");
        Validator::builder(KeySet::new([key()]).expect("one key"))
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .decryption_keys(keys)
            .require_encryption(true)
            .build()
    })
}

/// Encrypts `plaintext` under the protected header `header`, as it is, with the `dir` key and AES-256-GCM: the
/// token passes the tag check and reaches the header checks and the token inside, which a random token never
/// would.
fn encrypted(header: &[u8], plaintext: &[u8]) -> String {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let header = URL_SAFE_NO_PAD.encode(header);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, JWE_DIR_KEY).expect("a 32-byte key"));
    let iv = [7u8; 12];
    let mut ciphertext = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(header.as_bytes()), &mut ciphertext)
        .expect("AES-GCM seals");
    format!(
        "{header}..{}.{}.{}",
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(ciphertext),
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    )
}

/// Whether the split form of `data` (see [`jwe`]) is accepted.
pub(crate) fn jwe_accepts(data: &[u8]) -> bool {
    let split = data.iter().position(|&byte| byte == 0xFF).unwrap_or(data.len());
    let (header, plaintext) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    decrypting().validate::<Value>(&encrypted(header, plaintext)).is_ok()
}

/// Encrypted tokens (JWE): the bytes as a token; then split at the first 0xFF into a protected header and a
/// plaintext, encrypted with the `dir` key so that they pass the tag. Properties: an accepted token's header
/// names `dir` and `A256GCM` (the only pair the encryption above can pass), says `cty: JWT`, and has neither
/// `zip` nor `crit`; its plaintext is a token the plain validator accepts too; and every refusal up to the
/// inner signature is `Undecryptable` or a size refusal.
pub(crate) fn jwe(data: &[u8]) {
    use jwtgate::responses::ErrorKind;
    let text = String::from_utf8_lossy(data);
    if let Err(error) = decrypting().validate::<Value>(&text) {
        let _ = error.to_string();
    }

    let split = data.iter().position(|&byte| byte == 0xFF).unwrap_or(data.len());
    let (header, plaintext) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let token = encrypted(header, plaintext);
    match decrypting().validate::<Value>(&token) {
        Ok(validated) => {
            // Raw members: a number too large for an `f64` is valid JSON (RFC 8259 §6), which `Value` refuses to
            // hold; jwtgate ignores such a member, and so does this check.
            let header: std::collections::HashMap<String, Box<serde_json::value::RawValue>> =
                serde_json::from_slice(header).expect("an accepted header is a JSON object");
            let text = |name: &str| header.get(name).and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
            assert_eq!(text("alg").as_deref(), Some("dir"));
            assert_eq!(text("enc").as_deref(), Some("A256GCM"));
            let cty = text("cty").expect("an accepted header has a cty");
            assert!(cty.eq_ignore_ascii_case("jwt") || cty.eq_ignore_ascii_case("application/jwt"), "{cty}");
            assert!(!header.contains_key("zip") && !header.contains_key("crit"));
            let inner = std::str::from_utf8(plaintext).expect("an accepted plaintext is UTF-8");
            assert!(strict().validate::<Value>(inner).is_ok(), "the token inside passes on its own");
            assert_eq!(validated.registered().issuer(), Some(ISSUER));
        }
        Err(error) => {
            let kind = error.kind();
            let inner = std::str::from_utf8(plaintext).ok().map(|inner| strict().validate::<Value>(inner));
            match inner {
                // The token inside was good on its own: the JWE's header must be what failed.
                Some(Ok(_)) => assert!(matches!(kind, ErrorKind::Undecryptable | ErrorKind::TooLarge), "{kind:?}"),
                // A signed token inside whose claims fail says so; anything else before its signature is hidden.
                _ => assert!(
                    !matches!(
                        kind,
                        ErrorKind::Malformed
                            | ErrorKind::UnsupportedAlgorithm
                            | ErrorKind::AlgorithmMismatch
                            | ErrorKind::UnknownKey
                            | ErrorKind::InvalidSignature
                            | ErrorKind::UnsupportedCritical
                    ),
                    "{kind:?} tells which step failed"
                ),
            }
        }
    }
}
