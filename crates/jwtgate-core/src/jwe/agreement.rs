//! `ECDH-ES` (RFC 7518 §4.6): ECDH between the recipient's key and the sender's ephemeral one, through the
//! Concat KDF (NIST SP 800-56A §5.8.1, single-step with SHA-256). aws-lc-rs does the ECDH, and refuses a
//! public key that is not a point of its curve, or a result that is all zeros (an X25519 key of small order).

use aws_lc_rs::agreement::{self, EphemeralPrivateKey, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::digest;
use zeroize::Zeroizing;

use super::alg::{ContentEncryption, Curve, KeyManagement};

/// What the KDF's `AlgorithmID` names, and how long the key it derives is: the content key itself for
/// `ECDH-ES`, the key-wrapping key for the `+KW` algorithms.
pub(crate) fn derived_key(alg: KeyManagement, enc: ContentEncryption) -> (&'static str, usize) {
    match alg.wrap_key_len() {
        Some(len) => (alg.name(), len),
        None => (enc.name(), enc.key_len()),
    }
}

/// The recipient's side: the key agreed with the sender's ephemeral public key `public` (an uncompressed
/// point, or an X25519 key), run through the KDF. `None` when aws-lc-rs refuses the point.
pub(crate) fn receive(
    private: &PrivateKey,
    curve: Curve,
    public: &[u8],
    algorithm_id: &str,
    len: usize,
    apu: &[u8],
    apv: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let peer = UnparsedPublicKey::new(curve.agreement(), public);
    agreement::agree(private, peer, (), |z| Ok(concat_kdf(z, algorithm_id, apu, apv, len))).ok()
}

/// The sender's side: a fresh ephemeral key on `curve`, its public key (as [`receive`] reads it), and the key
/// agreed with the recipient's public key `recipient`, run through the KDF with no `apu` or `apv`.
pub(crate) fn send(
    curve: Curve,
    recipient: &[u8],
    algorithm_id: &str,
    len: usize,
) -> Option<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let ephemeral = EphemeralPrivateKey::generate(curve.agreement(), &rng).ok()?;
    let public = ephemeral.compute_public_key().ok()?.as_ref().to_vec();
    let peer = UnparsedPublicKey::new(curve.agreement(), recipient);
    let key =
        agreement::agree_ephemeral(ephemeral, peer, (), |z| Ok(concat_kdf(z, algorithm_id, &[], &[], len))).ok()?;
    Some((public, key))
}

/// The Concat KDF as RFC 7518 §4.6.2 uses it: `len` bytes of SHA-256(counter || Z || OtherInfo) for counter
/// 1, 2, …, where OtherInfo is the algorithm's name, `apu` and `apv`, each prefixed with its 32-bit
/// big-endian length, then the key's length in bits, 32-bit big-endian.
pub(crate) fn concat_kdf(z: &[u8], algorithm_id: &str, apu: &[u8], apv: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut other_info = Vec::with_capacity(16 + algorithm_id.len() + apu.len() + apv.len());
    for field in [algorithm_id.as_bytes(), apu, apv] {
        // The header limits apu and apv to a few hundred bytes: the lengths fit.
        other_info.extend((field.len() as u32).to_be_bytes());
        other_info.extend(field);
    }
    other_info.extend(((len * 8) as u32).to_be_bytes());
    let mut key = Zeroizing::new(Vec::with_capacity(len + digest::SHA256_OUTPUT_LEN));
    let mut counter: u32 = 1;
    while key.len() < len {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(&counter.to_be_bytes());
        context.update(z);
        context.update(&other_info);
        key.extend(context.finish().as_ref());
        counter += 1;
    }
    key.truncate(len);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::decode_part;

    fn b64(text: &str) -> Vec<u8> {
        decode_part(text).unwrap()
    }

    /// RFC 7518 Appendix C: Bob's key, Alice's ephemeral one, `apu` "Alice", `apv` "Bob", `A128GCM`.
    #[test]
    fn the_derived_key_matches_rfc_7518_appendix_c() {
        let bob =
            PrivateKey::from_private_key(&agreement::ECDH_P256, &b64("VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw"))
                .unwrap();
        let mut alice = vec![0x04];
        alice.extend(b64("gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0"));
        alice.extend(b64("SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"));
        let (id, len) = derived_key(KeyManagement::EcdhEs, ContentEncryption::A128Gcm);
        let key = receive(&bob, Curve::P256, &alice, id, len, b"Alice", b"Bob").unwrap();
        assert_eq!(key.as_slice(), b64("VqqN6vgjbSBcIijNcacQGg"));
    }

    #[test]
    fn keys_longer_than_one_hash_take_several_rounds() {
        let key = concat_kdf(&[1; 32], "A256CBC-HS512", &[], &[], 64);
        assert_eq!(key.len(), 64);
        // The first round is the 32-byte key's, but for the length in OtherInfo; the second differs.
        assert_ne!(key[..32], key[32..]);
        assert_ne!(key[..32], concat_kdf(&[1; 32], "A256CBC-HS512", &[], &[], 32)[..]);
    }

    #[test]
    fn a_point_off_its_curve_or_of_small_order_is_refused() {
        let bob = PrivateKey::generate(&agreement::ECDH_P256).unwrap();
        let mut off_curve = vec![0x04];
        off_curve.extend(b64("gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0"));
        let mut y = b64("SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps");
        y[31] ^= 1;
        off_curve.extend(y);
        assert!(receive(&bob, Curve::P256, &off_curve, "A128GCM", 16, &[], &[]).is_none());
        // A P-384 point for a P-256 key, and the point at infinity.
        assert!(receive(&bob, Curve::P256, &[0x04; 97], "A128GCM", 16, &[], &[]).is_none());
        assert!(receive(&bob, Curve::P256, &[0x00], "A128GCM", 16, &[], &[]).is_none());
        // X25519: the all-zero key and another point of small order give an all-zero secret.
        let x = PrivateKey::generate(&agreement::X25519).unwrap();
        assert!(receive(&x, Curve::X25519, &[0; 32], "A128GCM", 16, &[], &[]).is_none());
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(receive(&x, Curve::X25519, &one, "A128GCM", 16, &[], &[]).is_none());
    }

    #[test]
    fn sender_and_recipient_agree_on_every_curve() {
        for (curve, algorithm) in [
            (Curve::P256, &agreement::ECDH_P256),
            (Curve::P384, &agreement::ECDH_P384),
            (Curve::X25519, &agreement::X25519),
        ] {
            let recipient = PrivateKey::generate(algorithm).unwrap();
            let public = recipient.compute_public_key().unwrap();
            let (ephemeral, sent) = send(curve, public.as_ref(), "A256GCM", 32).unwrap();
            let received = receive(&recipient, curve, &ephemeral, "A256GCM", 32, &[], &[]).unwrap();
            assert_eq!(sent, received, "{curve:?}");
        }
    }
}
