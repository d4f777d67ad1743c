use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use serde_json::Value;

use super::*;
use crate::Secret;

const MAX: usize = 64 * 1024;

fn keys(keys: impl IntoIterator<Item = DecryptionKey>) -> DecryptionKeys {
    DecryptionKeys::new(keys).unwrap()
}

/// RFC 7520 §5: each compact example, with its key, decrypts to the RFC's plaintext; `RSA1_5`, `A256GCMKW`
/// and `zip` are refused at the header.
#[test]
fn the_jose_cookbook_examples_decrypt_or_are_refused_as_they_should() {
    let fixture: Value = serde_json::from_str(include_str!("rfc7520.json")).unwrap();
    let plaintext = fixture["plaintext"].as_str().unwrap();
    let mut decrypted = 0;
    for case in fixture["cases"].as_array().unwrap() {
        let section = case["section"].as_str().unwrap();
        let alg = match section {
            "5.1" => KeyManagement::RsaOaep256,
            "5.2" => KeyManagement::RsaOaep,
            "5.4" => KeyManagement::EcdhEsA128Kw,
            "5.5" => KeyManagement::EcdhEs,
            "5.6" => KeyManagement::Dir,
            "5.7" => KeyManagement::A256Kw,
            _ => KeyManagement::A128Kw,
        };
        // The cookbook's keys name their example's algorithm (`RSA1_5`, `A128GCM` for `dir`...) or none: the
        // key material is loaded for the algorithm under test.
        let mut jwk = case["key"].clone();
        jwk.as_object_mut().unwrap().remove("alg");
        let key = DecryptionKey::from_jwk_for(alg, &jwk.to_string()).unwrap();
        let result = open(&keys([key]), case["compact"].as_str().unwrap(), MAX, Content::Any);
        if case.get("refused").is_some() {
            assert_eq!(result.unwrap_err(), Refusal::Header, "{section}");
        } else {
            let (_, content) = result.unwrap_or_else(|error| panic!("{section}: {error:?}"));
            assert_eq!(String::from_utf8(content).unwrap(), plaintext, "{section}");
            decrypted += 1;
        }
    }
    assert_eq!(decrypted, 5);
}

/// A private key in PEM, PKCS#8, for `alg`'s curve.
fn agreement_pem(algorithm: &'static aws_lc_rs::agreement::Algorithm) -> String {
    let key = aws_lc_rs::agreement::PrivateKey::generate(algorithm).unwrap();
    let der = if algorithm == &aws_lc_rs::agreement::X25519 {
        // aws-lc-rs writes no PKCS#8 for X25519: RFC 8410's fixed prefix, then the key.
        let seed: aws_lc_rs::encoding::Curve25519SeedBin<'_> =
            aws_lc_rs::encoding::AsBigEndian::as_be_bytes(&key).unwrap();
        [&keys::X25519_PKCS8_PREFIX[..], seed.as_ref()].concat()
    } else {
        AsDer::<Pkcs8V1Der<'_>>::as_der(&key).unwrap().as_ref().to_vec()
    };
    pem::encode(&pem::Pem::new("PRIVATE KEY", der))
}

/// One key per algorithm and, for `ECDH-ES`, per curve; for `dir`, one per content encryption's length.
fn every_key(enc: ContentEncryption) -> Vec<DecryptionKey> {
    let mut all = Vec::new();
    for alg in KeyManagement::ALL {
        let kid = format!("{alg}");
        match alg {
            KeyManagement::Dir => {
                let secret = Secret::new(vec![3u8; enc.key_len()]);
                all.push(DecryptionKey::dir(&secret, enc, kid).unwrap());
            }
            KeyManagement::EcdhEs | KeyManagement::EcdhEsA128Kw | KeyManagement::EcdhEsA256Kw => {
                for (curve, algorithm) in [
                    ("P-256", &aws_lc_rs::agreement::ECDH_P256),
                    ("P-384", &aws_lc_rs::agreement::ECDH_P384),
                    ("X25519", &aws_lc_rs::agreement::X25519),
                ] {
                    let pem = agreement_pem(algorithm);
                    all.push(DecryptionKey::from_pem(alg, pem, format!("{alg} {curve}")).unwrap());
                }
            }
            _ => all.push(DecryptionKey::generate(alg, kid).unwrap()),
        }
    }
    all
}

#[test]
fn every_algorithm_and_content_encryption_round_trips() {
    for enc in ContentEncryption::ALL {
        let all = every_key(enc);
        let set = keys(all.clone());
        for key in &all {
            let token = key.encryption_key(enc).unwrap().encrypt("a.b.c").unwrap();
            assert!(is_compact_jwe(&token));
            assert_eq!(decrypt(&set, &token, MAX).unwrap(), "a.b.c", "{key:?} {enc}");
            // Each token again: a fresh content key and IV every time.
            let again = key.encryption_key(enc).unwrap().encrypt("a.b.c").unwrap();
            assert_ne!(token, again);
        }
    }
}

#[test]
fn a_public_jwk_encrypts_for_its_private_key() {
    for alg in [KeyManagement::RsaOaep256, KeyManagement::EcdhEsA256Kw] {
        let key = DecryptionKey::generate(alg, "k1").unwrap();
        let jwk = key.public_jwk().unwrap();
        assert_eq!(
            (jwk["kid"].as_str(), jwk["alg"].as_str(), jwk["use"].as_str()),
            (Some("k1"), Some(alg.name()), Some("enc"))
        );
        assert!(jwk.get("d").is_none());
        let encryption = EncryptionKey::from_jwk(&jwk.to_string(), ContentEncryption::A256Gcm).unwrap();
        let token = encryption.encrypt("x.y.z").unwrap();
        assert_eq!(decrypt(&keys([key]), &token, MAX).unwrap(), "x.y.z");
    }
    assert!(DecryptionKey::generate(KeyManagement::A256Kw, "s").unwrap().public_jwk().is_none());
}

fn tampered(token: &str, part: usize, change: impl Fn(&mut Vec<u8>)) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = crate::jws::decode_part(&parts[part]).unwrap();
    change(&mut bytes);
    parts[part] = URL_SAFE_NO_PAD.encode(bytes);
    parts.join(".")
}

/// Every byte a sender controls is authenticated: a change to the tag, the ciphertext, the IV, the header (the
/// AAD) or the encrypted key is refused at the tag, on the same path.
#[test]
fn any_change_to_any_part_is_refused() {
    for enc in ContentEncryption::ALL {
        for key in every_key(enc) {
            let set = keys([key.clone()]);
            let token = key.encryption_key(enc).unwrap().encrypt("a.b.c").unwrap();
            let flip = |bytes: &mut Vec<u8>| {
                if let Some(last) = bytes.last_mut() {
                    *last ^= 1;
                }
            };
            for part in [1, 2, 3, 4] {
                let changed = tampered(&token, part, flip);
                if changed == token {
                    continue; // `dir` and `ECDH-ES` have no encrypted key to change.
                }
                assert_eq!(decrypt(&set, &changed, MAX).unwrap_err(), Refusal::Content, "{key:?} {enc} part {part}");
            }
            // The header: a member added, which still parses.
            let header = tampered(&token, 0, |bytes| {
                bytes.pop();
                bytes.extend(br#","x":1}"#);
            });
            assert_eq!(decrypt(&set, &header, MAX).unwrap_err(), Refusal::Content, "{key:?} {enc} header");
            // A truncated tag, an empty one, one byte more.
            for change in [|b: &mut Vec<u8>| b.truncate(8), |b: &mut Vec<u8>| b.clear(), |b: &mut Vec<u8>| b.push(0)] {
                assert!(decrypt(&set, &tampered(&token, 4, change), MAX).is_err());
            }
        }
    }
}

#[test]
fn a_key_of_another_algorithm_or_kid_never_decrypts() {
    let wrap = DecryptionKey::generate(KeyManagement::A256Kw, "shared").unwrap();
    let token = wrap.encryption_key(ContentEncryption::A256Gcm).unwrap().encrypt("a.b.c").unwrap();
    // `alg: dir` against the key-wrapping key: the header is rewritten to `dir` with the same `kid`; the key is
    // bound to `A256KW` and is not selected.
    let as_dir = tampered(&token, 0, |bytes| {
        let text = String::from_utf8(bytes.clone()).unwrap().replace("A256KW", "dir");
        *bytes = text.into_bytes();
    });
    assert_eq!(decrypt(&keys([wrap]), &as_dir, MAX).unwrap_err(), Refusal::Key);
    // A token for a kid the set does not have.
    let other = DecryptionKey::generate(KeyManagement::A256Kw, "other").unwrap();
    assert_eq!(decrypt(&keys([other]), &token, MAX).unwrap_err(), Refusal::Key);
    // Without kid, only the one key of the alg is tried, and only when it is the only one.
    let a = DecryptionKey::generate(KeyManagement::A128Kw, "a").unwrap();
    let b = DecryptionKey::generate(KeyManagement::A128Kw, "b").unwrap();
    let secret = Secret::new(vec![9u8; 16]);
    let anonymous = EncryptionKey::symmetric(KeyManagement::A128Kw, &secret, "x", ContentEncryption::A128Gcm).unwrap();
    let token = anonymous.encrypt("a.b.c").unwrap();
    let without_kid = tampered(&token, 0, |bytes| {
        let text = String::from_utf8(bytes.clone()).unwrap().replace(r#","kid":"x""#, "");
        *bytes = text.into_bytes();
    });
    assert_eq!(decrypt(&keys([a.clone(), b]), &without_kid, MAX).unwrap_err(), Refusal::Key);
    assert_eq!(decrypt(&keys([a]), &without_kid, MAX).unwrap_err(), Refusal::Content, "the one key, which is wrong");
}

/// A `dir` key is the key of one content encryption: a 32-byte key made for `A256GCM` never decrypts as
/// `A128CBC-HS256` (an HMAC key and an AES-128 key), which an attacker's header could otherwise ask for.
#[test]
fn a_dir_key_decrypts_with_its_own_content_encryption_only() {
    let secret = Secret::new(vec![5u8; 32]);
    let gcm = DecryptionKey::symmetric(KeyManagement::Dir, &secret, "d").unwrap();
    let cbc = DecryptionKey::dir(&secret, ContentEncryption::A128CbcHs256, "d").unwrap();
    assert!(gcm.encryption_key(ContentEncryption::A128CbcHs256).is_err());
    let as_cbc = cbc.encryption_key(ContentEncryption::A128CbcHs256).unwrap().encrypt("a.b.c").unwrap();
    assert_eq!(decrypt(&keys([cbc]), &as_cbc, MAX).unwrap(), "a.b.c");
    assert_eq!(decrypt(&keys([gcm]), &as_cbc, MAX).unwrap_err(), Refusal::Content);
    // From a JWK: its `enc` binds it; without, its length does.
    let k = URL_SAFE_NO_PAD.encode([5u8; 32]);
    let jwk = format!(r#"{{"kty":"oct","k":"{k}","alg":"dir","kid":"d","enc":"A128CBC-HS256"}}"#);
    assert_eq!(decrypt(&keys([DecryptionKey::from_jwk(&jwk).unwrap()]), &as_cbc, MAX).unwrap(), "a.b.c");
    let bad = format!(r#"{{"kty":"oct","k":"{k}","alg":"dir","kid":"d","enc":"A128GCM"}}"#);
    assert!(DecryptionKey::from_jwk(&bad).is_err(), "a 32-byte key is no A128GCM key");
}

#[test]
fn only_a_signed_token_is_accepted_inside() {
    let key = DecryptionKey::generate(KeyManagement::A256Kw, "k").unwrap();
    let encryption = key.encryption_key(ContentEncryption::A256Gcm).unwrap();
    let set = keys([key]);
    // Not a compact JWS inside.
    for inner in ["not a token", "a.b", "a.b.c.d", "{\"sub\":\"x\"}"] {
        assert_eq!(decrypt(&set, &encryption.encrypt(inner).unwrap(), MAX).unwrap_err(), Refusal::NotNested, "{inner}");
    }
    // A JWE inside a JWE.
    let inner = encryption.encrypt("a.b.c").unwrap();
    assert_eq!(decrypt(&set, &encryption.encrypt(&inner).unwrap(), MAX).unwrap_err(), Refusal::NotNested);
    // Without `cty: JWT`.
    let plain = seal(&encryption, b"a.b.c", "JOSE").unwrap();
    assert_eq!(decrypt(&set, &plain, MAX).unwrap_err(), Refusal::NotNested);
}

#[test]
fn sizes_are_checked_before_anything_is_decoded() {
    let key = DecryptionKey::generate(KeyManagement::Dir, "k").unwrap();
    let encryption = key.encryption_key(ContentEncryption::A256Gcm).unwrap();
    let set = keys([key]);
    let long = format!("{}.{}.{}", "a".repeat(600), "b".repeat(600), "c".repeat(600));
    let token = encryption.encrypt(&long).unwrap();
    assert_eq!(decrypt(&set, &token, 2048).unwrap(), long);
    assert_eq!(decrypt(&set, &token, 1024).unwrap_err(), Refusal::Form, "the plaintext's own limit");
    for part in 0..5 {
        let mut parts: Vec<&str> = token.split('.').collect();
        let huge = "A".repeat(8_000);
        parts[part] = &huge;
        assert_eq!(decrypt(&set, &parts.join("."), 2048).unwrap_err(), Refusal::Form, "part {part}");
    }
    assert_eq!(decrypt(&set, "a.b.c.d", MAX).unwrap_err(), Refusal::Form);
    assert_eq!(decrypt(&set, "a.b.c.d.e.f", MAX).unwrap_err(), Refusal::Form);
    assert_eq!(decrypt(&set, "!!.b.c.d.e", MAX).unwrap_err(), Refusal::Form);
}

#[test]
fn keys_are_loaded_strictly() {
    let rsa = DecryptionKey::generate(KeyManagement::RsaOaep256, "r").unwrap();
    let mut jwk = rsa.public_jwk().unwrap();
    // A public JWK is not a decryption key.
    assert!(DecryptionKey::from_jwk(&jwk.to_string()).is_err());
    // RSA-OAEP from a JWK's alg is refused; named in code it is accepted.
    jwk["alg"] = "RSA-OAEP".into();
    let error = DecryptionKey::from_jwk(&jwk.to_string()).unwrap_err();
    assert!(error.to_string().contains("RSA-OAEP"), "{error}");
    assert!(EncryptionKey::from_jwk(&jwk.to_string(), ContentEncryption::A256Gcm).is_err());
    assert!(EncryptionKey::from_jwk_for(KeyManagement::RsaOaep, &jwk.to_string(), ContentEncryption::A256Gcm).is_ok());
    // RSA1_5 and unknown algorithms.
    jwk["alg"] = "RSA1_5".into();
    let error = EncryptionKey::from_jwk(&jwk.to_string(), ContentEncryption::A256Gcm).unwrap_err();
    assert!(error.to_string().contains("RFC 8725"), "{error}");
    // A key for signatures, and a key without kid.
    let secret = r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAA","alg":"A128KW","use":"sig","kid":"s"}"#;
    assert!(DecryptionKey::from_jwk(secret).is_err());
    assert!(DecryptionKey::from_jwk(r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAA","alg":"A128KW"}"#).is_err());
    // Wrong lengths for the shared secrets.
    assert!(DecryptionKey::from_jwk(r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAA","alg":"A256KW","kid":"k"}"#).is_err());
    assert!(DecryptionKey::symmetric(KeyManagement::Dir, &Secret::new(vec![1; 24]), "k").is_err());
    assert!(DecryptionKey::dir(&Secret::new(vec![1; 16]), ContentEncryption::A256Gcm, "k").is_err());
    assert!(DecryptionKey::symmetric(KeyManagement::RsaOaep256, &Secret::new(vec![1; 32]), "k").is_err());
    // Two keys with one kid.
    let a = DecryptionKey::generate(KeyManagement::A128Kw, "same").unwrap();
    assert!(DecryptionKeys::new([a.clone(), a]).is_err());
    assert!(DecryptionKeys::new([]).is_err());
    // An EC JWK whose public members are not its private key's.
    let other = DecryptionKey::generate(KeyManagement::EcdhEs, "o").unwrap();
    let mut mixed = other.public_jwk().unwrap();
    mixed["d"] = URL_SAFE_NO_PAD.encode([7u8; 32]).into();
    assert!(DecryptionKey::from_jwk(&mixed.to_string()).is_err());
    // Debug never shows material.
    let shown =
        format!("{:?}", DecryptionKey::symmetric(KeyManagement::A128Kw, &Secret::new(vec![0xAB; 16]), "k").unwrap());
    assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab, ab"), "{shown}");
}

#[test]
fn a_jwk_set_loads_every_key_or_none() {
    let set = format!(
        r#"{{"keys":[{{"kty":"oct","k":"{}","alg":"A256KW","kid":"w","use":"enc"}}]}}"#,
        URL_SAFE_NO_PAD.encode([5u8; 32])
    );
    let loaded = DecryptionKeys::from_jwks(&set).unwrap();
    assert_eq!(loaded.keys().len(), 1);
    let bad = r#"{"keys":[{"kty":"oct","k":"AAAA","alg":"A256KW","kid":"w"}]}"#;
    let error = DecryptionKeys::from_jwks(bad).unwrap_err();
    assert!(error.to_string().contains("\"w\""), "{error}");
}

/// RFC 7516 Appendix A.3: `A128KW` with `A128CBC-HS256`, a whole token.
#[test]
fn rfc_7516_appendix_a3_decrypts() {
    let key =
        DecryptionKey::from_jwk_for(KeyManagement::A128Kw, r#"{"kty":"oct","k":"GawgguFyGrWKav7AX4VKUg","kid":"a3"}"#)
            .unwrap();
    let token = "eyJhbGciOiJBMTI4S1ciLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.\
        6KB707dM9YTIgHtLvtgWQ8mKwboJW3of9locizkDTHzBC2IlrT1oOQ.\
        AxY8DCtDaGlsbGljb3RoZQ.\
        KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY.\
        U0m_YmjN04DJvceFICbCVQ";
    let (header, plaintext) = open(&keys([key]), token, MAX, Content::Any).unwrap();
    assert_eq!((header.alg, header.enc), (KeyManagement::A128Kw, ContentEncryption::A128CbcHs256));
    assert_eq!(plaintext, b"Live long and prosper.");
}
