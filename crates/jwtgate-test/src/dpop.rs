//! DPoP (RFC 9449) on the client's side: a key pair, and proofs made with it, good or bad on purpose.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::digest;
use http::Request;
use jwtgate_core::{Algorithm, jwk_thumbprint};
use serde_json::{Map, Value, json};

use crate::{TestKey, TokenBuilder, b64, now};

/// A DPoP client's key pair, generated for one test run, which makes proofs and binds tokens to itself.
///
/// ```
/// use jwtgate_core::Algorithm;
/// use jwtgate_test::{DpopKey, TestKey};
///
/// let issuer = TestKey::generate(Algorithm::ES256);
/// let client = DpopKey::generate(Algorithm::ES256);
/// let token = client.bind(issuer.token().subject("alice")).build();
/// let proof = client.proof("GET", "https://api.example.com/orders").access_token(&token).build();
/// let request = http::Request::get("/orders").body(()).unwrap();
/// let request = client.attach(request, &token, &proof);
/// assert!(request.headers()["authorization"].to_str().unwrap().starts_with("DPoP "));
/// ```
#[derive(Debug)]
pub struct DpopKey {
    key: TestKey,
    jwk: Value,
    thumbprint: String,
    next_jti: AtomicU64,
}

impl DpopKey {
    /// A fresh key pair for `alg`, which must be asymmetric.
    pub fn generate(alg: Algorithm) -> Self {
        let key = TestKey::generate(alg);
        let mut jwk = key.jwk();
        // A proof's jwk is the public key alone.
        jwk.as_object_mut().expect("a JWK is an object").remove("alg");
        let thumbprint = jwk_thumbprint(&jwk).expect("a public JWK has a thumbprint");
        Self { key, jwk, thumbprint, next_jti: AtomicU64::new(0) }
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key: what a bound token's `cnf.jkt` holds.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The public key, as a proof's `jwk` header carries it.
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// Binds the token `builder` builds to this key: `cnf: {"jkt": <thumbprint>}`.
    pub fn bind<'a>(&self, builder: TokenBuilder<'a>) -> TokenBuilder<'a> {
        builder.claim("cnf", json!({ "jkt": self.thumbprint }))
    }

    /// A proof for a request with `method` to `url`, with a fresh `jti` and `iat` now. Add the access token's
    /// hash with [`access_token`](ProofBuilder::access_token).
    pub fn proof(&self, method: &str, url: &str) -> ProofBuilder<'_> {
        let jti = format!("proof-{}-{}", now(), self.next_jti.fetch_add(1, Ordering::Relaxed));
        let header = json!({ "typ": "dpop+jwt", "alg": self.key.alg().as_str(), "jwk": self.jwk });
        let claims = json!({ "jti": jti, "htm": method, "htu": url, "iat": now() });
        ProofBuilder { key: &self.key, header: into_map(header), claims: into_map(claims) }
    }

    /// `request` with `Authorization: DPoP <token>` and `DPoP: <proof>`.
    pub fn attach<B>(&self, mut request: Request<B>, token: &str, proof: &str) -> Request<B> {
        let headers = request.headers_mut();
        headers.insert(http::header::AUTHORIZATION, format!("DPoP {token}").parse().expect("a token is a header"));
        headers.insert("dpop", proof.parse().expect("a proof is a header"));
        request
    }
}

/// A DPoP proof under construction. Every setter may also make it wrong on purpose, for tests of refusals.
#[derive(Debug)]
pub struct ProofBuilder<'a> {
    key: &'a TestKey,
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl ProofBuilder<'_> {
    /// `ath`: the hash of the access token the proof comes with.
    #[must_use]
    pub fn access_token(self, token: &str) -> Self {
        self.claim("ath", b64(digest::digest(&digest::SHA256, token.as_bytes())))
    }

    /// `nonce`: a nonce the server issued.
    #[must_use]
    pub fn nonce(self, nonce: &str) -> Self {
        self.claim("nonce", nonce)
    }

    /// `iat`, in seconds since the Unix epoch.
    #[must_use]
    pub fn issued_at(self, iat: i64) -> Self {
        self.claim("iat", iat)
    }

    /// `jti`.
    #[must_use]
    pub fn jti(self, jti: &str) -> Self {
        self.claim("jti", jti)
    }

    /// Sets any claim.
    #[must_use]
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim.
    #[must_use]
    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets any header member, such as `typ`, `alg` or `jwk`.
    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a header member.
    #[must_use]
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// The proof, signed with the client's key.
    pub fn build(self) -> String {
        self.key.sign_raw(&Value::Object(self.header).to_string(), &Value::Object(self.claims).to_string())
    }
}

fn into_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("built as an object"),
    }
}

#[cfg(test)]
mod tests {
    use jwtgate_core::{DEFAULT_PROOF_ALGORITHMS, ProofRequirements, check_proof};

    use super::*;

    #[test]
    fn proofs_pass_the_checks_and_name_the_key() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::PS256] {
            let client = DpopKey::generate(alg);
            let proof = client.proof("POST", "https://api.example.com/a").access_token("t.o.k").build();
            let requirements = ProofRequirements {
                method: "POST",
                url: "https://api.example.com/a",
                access_token: Some("t.o.k"),
                now: now(),
                iat_window: 60,
                algorithms: DEFAULT_PROOF_ALGORITHMS,
                keys: None,
            };
            let checked = check_proof(&proof, &requirements).unwrap();
            assert_eq!(checked.jkt, client.thumbprint());
            let again = client.proof("POST", "https://api.example.com/a").access_token("t.o.k").build();
            assert_ne!(check_proof(&again, &requirements).unwrap().jti, checked.jti, "a fresh jti each time");
        }
    }
}
