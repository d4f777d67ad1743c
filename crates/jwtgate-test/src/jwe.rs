//! Keys for encrypted tokens (JWE) in tests: generated at test time, with the private JWK a decryption-key
//! file holds, and the encryption of a signed token for them.

use aws_lc_rs::agreement::{self, PrivateKey};
use aws_lc_rs::encoding::{AsBigEndian, AsDer, Curve25519SeedBin, EcPrivateKeyBin, Pkcs8V1Der};
use jwtgate_core::jwe::{ContentEncryption, DecryptionKey, KeyManagement};
use serde_json::{Value, json};

use crate::b64;

/// A key that decrypts tokens, generated for one test: RSA 2048 for the RSA algorithms, an EC or X25519 key for
/// the `ECDH-ES` ones, random bytes for the others. Its [`private_jwk`](Self::private_jwk) is what a
/// decryption-key file holds (`kid`, `alg`, `use: enc`), and [`encrypt`](Self::encrypt) makes the nested
/// token an issuer would send. Never use it outside tests.
#[derive(Clone, Debug)]
pub struct JweKey {
    alg: KeyManagement,
    private: Value,
    public: Value,
}

impl JweKey {
    /// A fresh key for `alg`, with the `kid` `<alg>-test`: P-256 for the `ECDH-ES` algorithms, 32 bytes for
    /// `dir` (an `A256GCM` key; see [`generate_dir`](Self::generate_dir) for the others).
    pub fn generate(alg: KeyManagement) -> Self {
        Self::generate_on(alg, "P-256")
    }

    /// A fresh key for `alg` on `curve` (`P-256`, `P-384` or `X25519`) for the `ECDH-ES` algorithms; `curve`
    /// is ignored for the others.
    pub fn generate_on(alg: KeyManagement, curve: &str) -> Self {
        let (private, public) = match alg {
            KeyManagement::RsaOaep256 | KeyManagement::RsaOaep => rsa(),
            KeyManagement::EcdhEs | KeyManagement::EcdhEsA128Kw | KeyManagement::EcdhEsA256Kw => ecdh(curve),
            KeyManagement::A128Kw => oct(16),
            _ => oct(32),
        };
        Self { alg, private, public }.with_kid(&format!("{alg}-test"))
    }

    /// A fresh `dir` key for `enc`: `enc`'s length, and its JWK names `enc`.
    pub fn generate_dir(enc: ContentEncryption) -> Self {
        let (mut private, mut public) = oct(enc.key_len());
        private["enc"] = enc.name().into();
        public["enc"] = enc.name().into();
        Self { alg: KeyManagement::Dir, private, public }.with_kid("dir-test")
    }

    /// The same key named `kid`.
    #[must_use]
    pub fn with_kid(mut self, kid: &str) -> Self {
        for jwk in [&mut self.private, &mut self.public] {
            jwk["kid"] = kid.into();
            jwk["alg"] = self.alg.name().into();
            jwk["use"] = "enc".into();
        }
        self
    }

    /// Its algorithm.
    pub fn alg(&self) -> KeyManagement {
        self.alg
    }

    /// Its `kid`.
    pub fn kid(&self) -> &str {
        self.private["kid"].as_str().unwrap_or_default()
    }

    /// The JWK with its private members, as a decryption-key file holds it.
    pub fn private_jwk(&self) -> &Value {
        &self.private
    }

    /// The public JWK (for a shared secret, the same as the private one): what an issuer encrypts to.
    pub fn public_jwk(&self) -> &Value {
        &self.public
    }

    /// The key as jwtgate's validator takes it, loaded from [`private_jwk`](Self::private_jwk).
    ///
    /// # Panics
    /// If jwtgate refuses the key it generated.
    pub fn decryption_key(&self) -> DecryptionKey {
        DecryptionKey::from_jwk_for(self.alg, &self.private.to_string()).expect("jwtgate loads a key it generated")
    }

    /// `jws` encrypted for this key with `enc`: a nested token (`cty: JWT`), by jwtgate's encryption.
    ///
    /// # Panics
    /// If `enc` does not fit a `dir` key's length.
    pub fn encrypt(&self, jws: &str, enc: ContentEncryption) -> String {
        self.decryption_key()
            .encryption_key(enc)
            .and_then(|key| key.encrypt(jws))
            .expect("the key encrypts with this content encryption")
    }
}

fn oct(len: usize) -> (Value, Value) {
    let mut secret = vec![0; len];
    aws_lc_rs::rand::fill(&mut secret).expect("the system RNG");
    let jwk = json!({ "kty": "oct", "k": b64(&secret) });
    (jwk.clone(), jwk)
}

fn ecdh(curve: &str) -> (Value, Value) {
    let (algorithm, kty, len) = match curve {
        "P-384" => (&agreement::ECDH_P384, "EC", 48),
        "X25519" => (&agreement::X25519, "OKP", 32),
        _ => (&agreement::ECDH_P256, "EC", 32),
    };
    let curve = match curve {
        "P-384" | "X25519" => curve,
        _ => "P-256",
    };
    let key = PrivateKey::generate(algorithm).expect("a fresh key");
    let public = key.compute_public_key().expect("its public key");
    let public = public.as_ref();
    let (d, mut jwk) = if kty == "OKP" {
        let seed: Curve25519SeedBin<'_> = key.as_be_bytes().expect("the private key");
        (b64(seed.as_ref()), json!({ "kty": "OKP", "crv": curve, "x": b64(public) }))
    } else {
        let d: EcPrivateKeyBin<'_> = key.as_be_bytes().expect("the private key");
        (
            b64(d.as_ref()),
            json!({ "kty": "EC", "crv": curve, "x": b64(&public[1..=len]), "y": b64(&public[1 + len..]) }),
        )
    };
    let public = jwk.clone();
    jwk["d"] = d.into();
    (jwk, public)
}

/// An RSA 2048 key, its private JWK read from its PKCS#8 DER (RFC 8017 A.1.2's nine integers).
fn rsa() -> (Value, Value) {
    let key = aws_lc_rs::rsa::PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("a fresh key");
    let der: Pkcs8V1Der<'_> = key.as_der().expect("its PKCS#8");
    let integers = rsa_private_key_integers(der.as_ref()).expect("aws-lc-rs writes RSA keys as PKCS#8");
    let [_, n, e, d, p, q, dp, dq, qi] = integers;
    let public = json!({ "kty": "RSA", "n": b64(n), "e": b64(e) });
    let mut private = public.clone();
    for (name, value) in [("d", d), ("p", p), ("q", q), ("dp", dp), ("dq", dq), ("qi", qi)] {
        private[name] = b64(value).into();
    }
    (private, public)
}

/// The nine integers of the RSAPrivateKey inside a PKCS#8 PrivateKeyInfo, without leading zero bytes.
fn rsa_private_key_integers(der: &[u8]) -> Option<[&[u8]; 9]> {
    let (info, _) = tlv(der, 0x30)?;
    let (_, rest) = tlv(info, 0x02)?; // version
    let (_, rest) = tlv(rest, 0x30)?; // algorithm
    let (octets, _) = tlv(rest, 0x04)?;
    let (mut sequence, _) = tlv(octets, 0x30)?;
    let mut integers = [&[][..]; 9];
    for integer in &mut integers {
        let (value, rest) = tlv(sequence, 0x02)?;
        let start = value.iter().position(|&byte| byte != 0).unwrap_or(value.len().saturating_sub(1));
        *integer = &value[start..];
        sequence = rest;
    }
    Some(integers)
}

/// One DER element of type `tag`: its contents, and what follows it.
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, mut rest) = rest.split_first()?;
    let len = if len < 0x80 {
        usize::from(len)
    } else {
        let count = usize::from(len & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, tail) = rest.split_at(count);
        rest = tail;
        bytes.iter().fold(0usize, |len, &byte| (len << 8) | usize::from(byte))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_key_loads_into_jwtgate_and_decrypts_what_it_encrypts() {
        let signer = crate::TestKey::generate(jwtgate_core::Algorithm::ES256);
        let jws = signer.token().build();
        for alg in KeyManagement::ALL {
            let curves: &[&str] = match alg {
                KeyManagement::EcdhEs | KeyManagement::EcdhEsA128Kw | KeyManagement::EcdhEsA256Kw => {
                    &["P-256", "P-384", "X25519"]
                }
                _ => &["-"],
            };
            for curve in curves {
                let key = JweKey::generate_on(alg, curve);
                assert_eq!(
                    (key.private_jwk()["alg"].as_str(), key.private_jwk()["use"].as_str()),
                    (Some(alg.name()), Some("enc"))
                );
                if alg != KeyManagement::A128Kw && alg != KeyManagement::A256Kw && alg != KeyManagement::Dir {
                    assert!(key.public_jwk().get("d").is_none());
                }
                let keys = jwtgate_core::jwe::DecryptionKeys::new([key.decryption_key()]).unwrap();
                let validator = jwtgate_core::Validator::builder(signer.key_set())
                    .decryption_keys(keys)
                    .require_encryption(true)
                    .build();
                let enc = if alg == KeyManagement::Dir {
                    ContentEncryption::A256Gcm
                } else {
                    ContentEncryption::A128CbcHs256
                };
                let token = key.encrypt(&jws, enc);
                assert!(validator.validate::<Value>(&token).is_ok(), "{alg} {curve}");
            }
        }
    }
}
