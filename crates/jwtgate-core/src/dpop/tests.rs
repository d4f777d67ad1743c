use serde_json::json;

use super::*;
use crate::{Secret, SigningKey};

const URL: &str = "https://api.example.com/orders";
const TOKEN: &str = "an.access.token";
const NOW: i64 = 1_800_000_000;

fn requirements() -> ProofRequirements<'static> {
    ProofRequirements {
        method: "POST",
        url: URL,
        access_token: Some(TOKEN),
        now: NOW,
        iat_window: 60,
        algorithms: DEFAULT_PROOF_ALGORITHMS,
        keys: None,
    }
}

fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

/// A client's key pair and the public JWK it puts in its proofs.
struct Client {
    key: SigningKey,
    jwk: Value,
}

impl Client {
    fn new(alg: Algorithm) -> Self {
        let key = SigningKey::generate(alg, "client").unwrap();
        let mut jwk = serde_json::to_value(key.public_jwk().unwrap()).unwrap();
        // A proof's jwk carries the public key alone.
        for member in ["kid", "alg", "use"] {
            jwk.as_object_mut().unwrap().remove(member);
        }
        Self { key, jwk }
    }

    fn claims(&self) -> Value {
        json!({ "jti": "proof-1", "htm": "POST", "htu": URL, "iat": NOW, "ath": ath(TOKEN) })
    }

    fn header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": self.key.algorithm().as_str(), "jwk": self.jwk })
    }

    /// A proof of `header` and `claims`, signed with this client's key.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        sign_with(&self.key, header, claims)
    }

    fn proof(&self) -> String {
        self.sign(&self.header(), &self.claims())
    }

    fn with_claims(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut claims = self.claims();
        edit(claims.as_object_mut().unwrap());
        self.sign(&self.header(), &claims)
    }

    fn with_header(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut header = self.header();
        edit(header.as_object_mut().unwrap());
        self.sign(&header, &self.claims())
    }
}

fn sign_with(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = key.signature(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[test]
fn a_good_proof_of_every_algorithm_is_accepted_and_names_its_keys_thumbprint() {
    for alg in DEFAULT_PROOF_ALGORITHMS {
        let client = Client::new(*alg);
        let checked = check_proof(&client.proof(), &requirements()).unwrap_or_else(|err| panic!("{alg}: {err}"));
        assert_eq!(checked.jti, "proof-1");
        assert_eq!(checked.iat, NOW);
        assert_eq!(checked.alg, *alg);
        assert_eq!(checked.nonce, None);
        assert_eq!(Some(checked.jkt), jwk_thumbprint(&client.jwk), "{alg}");
    }
    let client = Client::new(Algorithm::ES256);
    let nonced = client.with_claims(|claims| {
        claims.insert("nonce".into(), json!("n-1"));
    });
    assert_eq!(check_proof(&nonced, &requirements()).unwrap().nonce.as_deref(), Some("n-1"));
}

#[test]
fn the_url_and_the_method_are_compared_as_rfc_9449_says() {
    let client = Client::new(Algorithm::ES256);
    for htu in
        ["https://API.example.com:443/orders", "HTTPS://api.example.com/orders?x=1", "https://api.example.com/orders#f"]
    {
        let proof = client.with_claims(|claims| {
            claims.insert("htu".into(), json!(htu));
        });
        assert!(check_proof(&proof, &requirements()).is_ok(), "{htu}");
    }
    for htu in [
        "https://api.example.com/orders/",
        "https://api.example.com/Orders",
        "http://api.example.com/orders",
        "https://api.example.com:8443/orders",
        "https://other.example.com/orders",
        "/orders",
    ] {
        let proof = client.with_claims(|claims| {
            claims.insert("htu".into(), json!(htu));
        });
        assert_eq!(check_proof(&proof, &requirements()), Err(ProofError::Url), "{htu}");
    }
    let get = client.with_claims(|claims| {
        claims.insert("htm".into(), json!("GET"));
    });
    assert_eq!(check_proof(&get, &requirements()), Err(ProofError::Method));
    let lower = client.with_claims(|claims| {
        claims.insert("htm".into(), json!("post"));
    });
    assert_eq!(check_proof(&lower, &requirements()), Err(ProofError::Method), "the method is case-sensitive");
}

#[test]
fn iat_must_be_within_the_window_either_way() {
    let client = Client::new(Algorithm::ES256);
    let at = |iat: Value| {
        client.with_claims(|claims| {
            claims.insert("iat".into(), iat);
        })
    };
    for ok in [json!(NOW - 60), json!(NOW + 60), json!(NOW as f64 + 0.5)] {
        assert!(check_proof(&at(ok.clone()), &requirements()).is_ok(), "{ok}");
    }
    for late in [json!(NOW - 61), json!(NOW + 61)] {
        assert_eq!(check_proof(&at(late.clone()), &requirements()), Err(ProofError::IssuedAt), "{late}");
    }
    assert_eq!(check_proof(&at(json!("1800000000")), &requirements()), Err(ProofError::MissingClaim));
    // Far out of range: refused, never an overflow.
    for far in [json!(i64::MIN), json!(i64::MAX), json!(1e300), json!(-1e300)] {
        assert_eq!(check_proof(&at(far.clone()), &requirements()), Err(ProofError::IssuedAt), "{far}");
    }
}

#[test]
fn the_access_token_hash_must_match() {
    let client = Client::new(Algorithm::ES256);
    let other = RequirementsFor { access_token: "another.access.token" };
    assert_eq!(check_proof(&client.proof(), &other.requirements()), Err(ProofError::AccessTokenHash));
    let without = client.with_claims(|claims| {
        claims.remove("ath");
    });
    assert_eq!(check_proof(&without, &requirements()), Err(ProofError::AccessTokenHash));
    // At a token endpoint there is no access token: `ath` is not read.
    let token_endpoint = ProofRequirements { access_token: None, ..requirements() };
    assert!(check_proof(&without, &token_endpoint).is_ok());
}

struct RequirementsFor {
    access_token: &'static str,
}

impl RequirementsFor {
    fn requirements(&self) -> ProofRequirements<'static> {
        ProofRequirements { access_token: Some(self.access_token), ..requirements() }
    }
}

#[test]
fn every_required_claim_is_required() {
    let client = Client::new(Algorithm::ES256);
    for claim in ["jti", "htm", "htu", "iat"] {
        let proof = client.with_claims(|claims| {
            claims.remove(claim);
        });
        assert_eq!(check_proof(&proof, &requirements()), Err(ProofError::MissingClaim), "{claim}");
        let proof = client.with_claims(|claims| {
            claims.insert(claim.into(), json!(null));
        });
        assert_eq!(check_proof(&proof, &requirements()), Err(ProofError::MissingClaim), "{claim}: null");
    }
    for jti in [json!(""), json!("x".repeat(257)), json!(7)] {
        let proof = client.with_claims(|claims| {
            claims.insert("jti".into(), jti.clone());
        });
        assert_eq!(check_proof(&proof, &requirements()), Err(ProofError::MissingClaim), "{jti}");
    }
    let nonce = client.with_claims(|claims| {
        claims.insert("nonce".into(), json!(5));
    });
    assert_eq!(check_proof(&nonce, &requirements()), Err(ProofError::MissingClaim));
}

#[test]
fn the_header_is_checked_before_the_signature_and_the_claims() {
    let client = Client::new(Algorithm::ES256);
    for typ in [json!("JWT"), json!("at+jwt"), json!(null)] {
        let proof = client.with_header(|header| {
            header.insert("typ".into(), typ.clone());
        });
        assert_eq!(check_proof(&proof, &requirements()), Err(ProofError::Type), "{typ}");
    }
    let upper = client.with_header(|header| {
        header.insert("typ".into(), json!("DPoP+JWT"));
    });
    assert!(check_proof(&upper, &requirements()).is_ok(), "a media type compares without case");
    for alg in [json!("none"), json!("HS256"), json!("ES512"), json!(null)] {
        let proof = client.with_header(|header| {
            header.insert("alg".into(), alg.clone());
        });
        assert_eq!(check_proof(&proof, &requirements()), Err(ProofError::Algorithm), "{alg}");
    }
    let only_rsa = ProofRequirements { algorithms: &[Algorithm::RS256], ..requirements() };
    assert_eq!(check_proof(&client.proof(), &only_rsa), Err(ProofError::Algorithm));
    // Even an HMAC key with a caller who lists HS256 is refused: a proof's key must be public.
    let hmac = SigningKey::hmac(Algorithm::HS256, &Secret::new(vec![7; 32]), "h").unwrap();
    let hs256 = sign_with(
        &hmac,
        &json!({ "typ": "dpop+jwt", "alg": "HS256", "jwk": { "kty": "oct", "k": "Bw" } }),
        &client.claims(),
    );
    let lists_hmac = ProofRequirements { algorithms: &[Algorithm::HS256, Algorithm::ES256], ..requirements() };
    assert_eq!(check_proof(&hs256, &lists_hmac), Err(ProofError::Algorithm));
    let crit = client.with_header(|header| {
        header.insert("crit".into(), json!(["exp"]));
    });
    assert_eq!(check_proof(&crit, &requirements()), Err(ProofError::Malformed));
}

#[test]
fn the_key_must_be_a_public_key_of_the_algorithm_and_verify_the_signature() {
    let client = Client::new(Algorithm::ES256);
    let without = client.with_header(|header| {
        header.remove("jwk");
    });
    assert_eq!(check_proof(&without, &requirements()), Err(ProofError::Key));
    let private = client.with_header(|header| {
        header["jwk"].as_object_mut().unwrap().insert("d".into(), json!("c2VjcmV0"));
    });
    assert_eq!(check_proof(&private, &requirements()), Err(ProofError::Key));
    let other_alg = client.with_header(|header| {
        header["jwk"].as_object_mut().unwrap().insert("alg".into(), json!("ES384"));
    });
    assert_eq!(check_proof(&other_alg, &requirements()), Err(ProofError::Key));
    let rsa = Client::new(Algorithm::RS256);
    let wrong_type = client.with_header(|header| {
        header.insert("jwk".into(), rsa.jwk.clone());
    });
    assert_eq!(check_proof(&wrong_type, &requirements()), Err(ProofError::Key));
    // Another key's jwk: the signature does not verify.
    let stranger = Client::new(Algorithm::ES256);
    let swapped = client.with_header(|header| {
        header.insert("jwk".into(), stranger.jwk.clone());
    });
    assert_eq!(check_proof(&swapped, &requirements()), Err(ProofError::Signature));
    // A claim changed after signing.
    let proof = client.proof();
    let (input, signature) = proof.rsplit_once('.').unwrap();
    let (header, _) = input.split_once('.').unwrap();
    let mut claims = client.claims();
    claims["htu"] = json!("https://api.example.com/admin");
    let tampered = format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    assert_eq!(check_proof(&tampered, &requirements()), Err(ProofError::Signature));
    let unsigned = format!("{input}.");
    assert_eq!(check_proof(&unsigned, &requirements()), Err(ProofError::Signature));
}

#[test]
fn a_cached_header_is_as_strict_as_a_fresh_one() {
    let keys = ProofKeys::with_capacity(8);
    let cached = ProofRequirements { keys: Some(&keys), ..requirements() };
    let client = Client::new(Algorithm::ES256);
    let stranger = Client::new(Algorithm::ES256);
    // A header whose proof does not verify is not remembered.
    let swapped = client.with_header(|header| {
        header.insert("jwk".into(), stranger.jwk.clone());
    });
    assert_eq!(check_proof(&swapped, &cached), Err(ProofError::Signature));
    assert!(keys.is_empty());
    let first = check_proof(&client.proof(), &cached).unwrap();
    assert_eq!(keys.len(), 1);
    // A hit gives the same answer, and the signature is still checked on every proof.
    assert_eq!(check_proof(&client.proof(), &cached).unwrap(), first);
    let proof = client.proof();
    let (input, _) = proof.rsplit_once('.').unwrap();
    let (_, signature) = stranger.proof().rsplit_once('.').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap();
    assert_eq!(check_proof(&format!("{input}.{signature}"), &cached), Err(ProofError::Signature));
    assert_eq!(check_proof(&format!("{input}."), &cached), Err(ProofError::Signature));
    // The algorithms accepted are asked again on a hit.
    let es384_only = ProofRequirements { algorithms: &[Algorithm::ES384], ..cached };
    assert_eq!(check_proof(&client.proof(), &es384_only), Err(ProofError::Algorithm));
    // And the claims are all checked: a hit changes nothing but the header's parsing.
    let late = client.with_claims(|claims| {
        claims.insert("iat".into(), json!(NOW - 120));
    });
    assert_eq!(check_proof(&late, &cached), Err(ProofError::IssuedAt));
}

#[test]
fn what_is_no_proof_is_malformed_without_a_panic() {
    let client = Client::new(Algorithm::ES256);
    let big = client.with_claims(|claims| {
        claims.insert("pad".into(), json!("x".repeat(MAX_PROOF_BYTES)));
    });
    for proof in ["", "a", "a.b", "a.b.c.d", "!!!.@@@.###", "e30.e30", big.as_str()] {
        assert!(check_proof(proof, &requirements()).is_err(), "{proof:.20}");
    }
    assert_eq!(check_proof(&big, &requirements()), Err(ProofError::Malformed));
    assert_eq!(check_proof("e30.e30.e30", &requirements()), Err(ProofError::Type));
}

#[test]
fn thumbprints_read_only_the_required_members_in_order() {
    let ec = json!({ "kty": "EC", "crv": "P-256", "x": "AQ", "y": "Ag", "kid": "ignored", "use": "sig" });
    let expected =
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, br#"{"crv":"P-256","kty":"EC","x":"AQ","y":"Ag"}"#));
    assert_eq!(jwk_thumbprint(&ec), Some(expected));
    let okp = json!({ "x": "AQ", "crv": "Ed25519", "kty": "OKP" });
    let expected =
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, br#"{"crv":"Ed25519","kty":"OKP","x":"AQ"}"#));
    assert_eq!(jwk_thumbprint(&okp), Some(expected));
    for incomplete in [
        json!({ "kty": "EC", "crv": "P-256", "x": "AQ" }),
        json!({ "kty": "RSA", "n": "AQ", "e": 3 }),
        json!({ "kty": "oct", "k": "AQ" }),
        json!({ "crv": "Ed25519", "x": "AQ" }),
        json!("not an object"),
    ] {
        assert_eq!(jwk_thumbprint(&incomplete), None, "{incomplete}");
    }
}

#[test]
fn urls_normalize_as_rfc_3986_section_6_says() {
    for (url, normalized) in [
        ("https://api.example.com/orders", Some("https://api.example.com/orders")),
        ("HTTPS://API.EXAMPLE.COM/Orders", Some("https://api.example.com/Orders")),
        ("https://api.example.com:443/a?b#c", Some("https://api.example.com/a")),
        ("http://api.example.com:80", Some("http://api.example.com/")),
        ("http://api.example.com:443/", Some("http://api.example.com:443/")),
        ("https://api.example.com:/x", Some("https://api.example.com/x")),
        ("http://[::1]:8080/mcp", Some("http://[::1]:8080/mcp")),
        ("http://[::1]/mcp", Some("http://[::1]/mcp")),
        ("https://user@api.example.com/", None),
        ("ftp://api.example.com/", None),
        ("https:///x", None),
        ("https://api.example.com:8x/", None),
        ("api.example.com/x", None),
        ("https://bücher.example/", None),
        // Found by the fuzzer: an unclosed bracket once gave a form that did not normalize again.
        ("HTTP://[::1ps://x:443", None),
        ("https://[::1/x", None),
        ("https://[zz]/", None),
        ("https://[]/", None),
        ("https://a b/", None),
        ("https://a\u{1}b/", None),
    ] {
        assert_eq!(normalize_htu(url).as_deref(), normalized, "{url}");
    }
}
