//! Content encryption (RFC 7518 §5): AES-GCM, and AES-CBC with HMAC-SHA-2 (§5.2), both from aws-lc-rs.
//! The tag is always checked before any plaintext exists: by AES-GCM itself, and for CBC-HMAC by an HMAC
//! compared in constant time before the ciphertext is decrypted.

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    AES_128, AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey,
};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;

use super::alg::ContentEncryption;

/// A failure to decrypt; deliberately without detail.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unsealed;

/// Encrypts `plaintext` with `cek` and `iv` (of `enc`'s lengths), authenticating `aad`: the ciphertext and
/// the tag.
pub(crate) fn seal(
    enc: ContentEncryption,
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), Unsealed> {
    if cek.len() != enc.key_len() || iv.len() != enc.iv_len() {
        return Err(Unsealed);
    }
    match enc {
        ContentEncryption::A128Gcm | ContentEncryption::A256Gcm => {
            let key = gcm_key(enc, cek)?;
            let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| Unsealed)?;
            let mut in_out = plaintext.to_vec();
            let tag = key.seal_in_place_separate_tag(nonce, Aad::from(aad), &mut in_out).map_err(|_| Unsealed)?;
            Ok((in_out, tag.as_ref().to_vec()))
        }
        ContentEncryption::A128CbcHs256 | ContentEncryption::A256CbcHs512 => {
            let (mac_key, enc_key) = cek.split_at(cek.len() / 2);
            let key = PaddedBlockEncryptingKey::cbc_pkcs7(cbc_key(enc, enc_key)?).map_err(|_| Unsealed)?;
            let iv: [u8; 16] = iv.try_into().map_err(|_| Unsealed)?;
            let mut in_out = plaintext.to_vec();
            key.less_safe_encrypt(&mut in_out, EncryptionContext::Iv128(FixedLength::from(iv)))
                .map_err(|_| Unsealed)?;
            let tag = cbc_tag(enc, mac_key, aad, &iv, &in_out);
            Ok((in_out, tag))
        }
    }
}

/// Decrypts `ciphertext` with `cek` and `iv`, once `tag` is found to authenticate it and `aad`.
pub(crate) fn open(
    enc: ContentEncryption,
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    mut ciphertext: Vec<u8>,
    tag: &[u8],
) -> Result<Vec<u8>, Unsealed> {
    if cek.len() != enc.key_len() || iv.len() != enc.iv_len() || tag.len() != enc.tag_len() {
        return Err(Unsealed);
    }
    match enc {
        ContentEncryption::A128Gcm | ContentEncryption::A256Gcm => {
            let key = gcm_key(enc, cek)?;
            let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| Unsealed)?;
            let len = key
                .open_in_place_separate_tag(nonce, Aad::from(aad), tag, &mut ciphertext)
                .map_err(|_| Unsealed)?
                .len();
            ciphertext.truncate(len);
            Ok(ciphertext)
        }
        ContentEncryption::A128CbcHs256 | ContentEncryption::A256CbcHs512 => {
            let (mac_key, enc_key) = cek.split_at(cek.len() / 2);
            // RFC 7518 §5.2.2.2: the tag first, in constant time; nothing is decrypted without it.
            let expected = cbc_tag(enc, mac_key, aad, iv, &ciphertext);
            verify_slices_are_equal(&expected, tag).map_err(|_| Unsealed)?;
            if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
                return Err(Unsealed);
            }
            let key = PaddedBlockDecryptingKey::cbc_pkcs7(cbc_key(enc, enc_key)?).map_err(|_| Unsealed)?;
            let iv: [u8; 16] = iv.try_into().map_err(|_| Unsealed)?;
            let len = key
                .decrypt(&mut ciphertext, DecryptionContext::Iv128(FixedLength::from(iv)))
                .map_err(|_| Unsealed)?
                .len();
            ciphertext.truncate(len);
            Ok(ciphertext)
        }
    }
}

fn gcm_key(enc: ContentEncryption, cek: &[u8]) -> Result<LessSafeKey, Unsealed> {
    let algorithm = if enc == ContentEncryption::A128Gcm { &AES_128_GCM } else { &AES_256_GCM };
    Ok(LessSafeKey::new(UnboundKey::new(algorithm, cek).map_err(|_| Unsealed)?))
}

fn cbc_key(enc: ContentEncryption, key: &[u8]) -> Result<UnboundCipherKey, Unsealed> {
    let algorithm = if enc == ContentEncryption::A128CbcHs256 { &AES_128 } else { &AES_256 };
    UnboundCipherKey::new(algorithm, key).map_err(|_| Unsealed)
}

/// RFC 7518 §5.2.2.1: the first half of HMAC(MAC_KEY, A || IV || E || AL), AL being A's length in bits as a
/// 64-bit big-endian integer.
fn cbc_tag(enc: ContentEncryption, mac_key: &[u8], aad: &[u8], iv: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    let algorithm = if enc == ContentEncryption::A128CbcHs256 { hmac::HMAC_SHA256 } else { hmac::HMAC_SHA512 };
    let mut context = hmac::Context::with_key(&hmac::Key::new(algorithm, mac_key));
    context.update(aad);
    context.update(iv);
    context.update(ciphertext);
    context.update(&(aad.len() as u64 * 8).to_be_bytes());
    let tag = context.sign();
    tag.as_ref()[..enc.tag_len()].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let text: String = text.split_whitespace().collect();
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 7518 Appendix B: P, IV and A are the same for every test case.
    const P: &str = "41 20 63 69 70 68 65 72 20 73 79 73 74 65 6d 20 6d 75 73 74 20 6e 6f 74 20 62 65 20 72 65 71 75
        69 72 65 64 20 74 6f 20 62 65 20 73 65 63 72 65 74 2c 20 61 6e 64 20 69 74 20 6d 75 73 74 20 62 65 20
        61 62 6c 65 20 74 6f 20 66 61 6c 6c 20 69 6e 74 6f 20 74 68 65 20 68 61 6e 64 73 20 6f 66 20 74 68 65
        20 65 6e 65 6d 79 20 77 69 74 68 6f 75 74 20 69 6e 63 6f 6e 76 65 6e 69 65 6e 63 65";
    const IV: &str = "1a f3 8c 2d c2 b9 6f fd d8 66 94 09 23 41 bc 04";
    const A: &str = "54 68 65 20 73 65 63 6f 6e 64 20 70 72 69 6e 63 69 70 6c 65 20 6f 66 20 41 75 67 75 73 74 65 20
        4b 65 72 63 6b 68 6f 66 66 73";

    /// RFC 7518 B.1 (`A128CBC-HS256`) and B.3 (`A256CBC-HS512`): the ciphertext and the tag, both ways.
    #[test]
    fn cbc_hmac_matches_rfc_7518_appendix_b() {
        let cases = [
            (
                ContentEncryption::A128CbcHs256,
                "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f",
                "c8 0e df a3 2d df 39 d5 ef 00 c0 b4 68 83 42 79 a2 e4 6a 1b 80 49 f7 92 f7 6b fe 54 b9 03 a9 c9
                 a9 4a c9 b4 7a d2 65 5c 5f 10 f9 ae f7 14 27 e2 fc 6f 9b 3f 39 9a 22 14 89 f1 63 62 c7 03 23 36
                 09 d4 5a c6 98 64 e3 32 1c f8 29 35 ac 40 96 c8 6e 13 33 14 c5 40 19 e8 ca 79 80 df a4 b9 cf 1b
                 38 4c 48 6f 3a 54 c5 10 78 15 8e e5 d7 9d e5 9f bd 34 d8 48 b3 d6 95 50 a6 76 46 34 44 27 ad e5
                 4b 88 51 ff b5 98 f7 f8 00 74 b9 47 3c 82 e2 db",
                "65 2c 3f a3 6b 0a 7c 5b 32 19 fa b3 a3 0b c1 c4",
            ),
            (
                ContentEncryption::A256CbcHs512,
                "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
                 20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35 36 37 38 39 3a 3b 3c 3d 3e 3f",
                "4a ff aa ad b7 8c 31 c5 da 4b 1b 59 0d 10 ff bd 3d d8 d5 d3 02 42 35 26 91 2d a0 37 ec bc c7 bd
                 82 2c 30 1d d6 7c 37 3b cc b5 84 ad 3e 92 79 c2 e6 d1 2a 13 74 b7 7f 07 75 53 df 82 94 10 44 6b
                 36 eb d9 70 66 29 6a e6 42 7e a7 5c 2e 08 46 a1 1a 09 cc f5 37 0d c8 0b fe cb ad 28 c7 3f 09 b3
                 a3 b7 5e 66 2a 25 94 41 0a e4 96 b2 e2 e6 60 9e 31 e6 e0 2c c8 37 f0 53 d2 1f 37 ff 4f 51 95 0b
                 be 26 38 d0 9d d7 a4 93 09 30 80 6d 07 03 b1 f6",
                "4d d3 b4 c0 88 a7 f4 5c 21 68 39 64 5b 20 12 bf 2e 62 69 a8 c5 6a 81 6d bc 1b 26 77 61 95 5b c5",
            ),
        ];
        for (enc, key, ciphertext, tag) in cases {
            let (key, ciphertext, tag) = (hex(key), hex(ciphertext), hex(tag));
            let sealed = seal(enc, &key, &hex(IV), &hex(A), &hex(P)).unwrap();
            assert_eq!(sealed, (ciphertext.clone(), tag.clone()), "{enc}");
            assert_eq!(open(enc, &key, &hex(IV), &hex(A), ciphertext.clone(), &tag).unwrap(), hex(P), "{enc}");
            // Any bit of the tag, the ciphertext, the IV or the AAD changed: refused.
            let mut bad_tag = tag.clone();
            bad_tag[0] ^= 1;
            assert_eq!(open(enc, &key, &hex(IV), &hex(A), ciphertext.clone(), &bad_tag), Err(Unsealed));
            let mut bad_ciphertext = ciphertext.clone();
            bad_ciphertext[20] ^= 1;
            assert_eq!(open(enc, &key, &hex(IV), &hex(A), bad_ciphertext, &tag), Err(Unsealed));
            let mut bad_iv = hex(IV);
            bad_iv[3] ^= 1;
            assert_eq!(open(enc, &key, &bad_iv, &hex(A), ciphertext.clone(), &tag), Err(Unsealed));
            let mut bad_aad = hex(A);
            bad_aad[0] ^= 1;
            assert_eq!(open(enc, &key, &hex(IV), &bad_aad, ciphertext.clone(), &tag), Err(Unsealed));
            // A truncated tag is refused, not compared on its length.
            assert_eq!(open(enc, &key, &hex(IV), &hex(A), ciphertext, &tag[..8]), Err(Unsealed));
        }
    }

    #[test]
    fn gcm_round_trips_and_refuses_any_change() {
        for enc in [ContentEncryption::A128Gcm, ContentEncryption::A256Gcm] {
            let key = vec![7u8; enc.key_len()];
            let iv = [9u8; 12];
            let (ciphertext, tag) = seal(enc, &key, &iv, b"aad", b"a token").unwrap();
            assert_eq!(open(enc, &key, &iv, b"aad", ciphertext.clone(), &tag).unwrap(), b"a token");
            assert_eq!(open(enc, &key, &iv, b"aae", ciphertext.clone(), &tag), Err(Unsealed));
            let mut bad = tag.clone();
            bad[15] ^= 0x80;
            assert_eq!(open(enc, &key, &iv, b"aad", ciphertext.clone(), &bad), Err(Unsealed));
            assert_eq!(open(enc, &key, &[9u8; 16], b"aad", ciphertext, &tag), Err(Unsealed), "an IV of CBC's length");
        }
    }
}
