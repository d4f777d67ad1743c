//! Certificate-bound tokens (RFC 8705 §3): a token whose `cnf` names `x5t#S256` is accepted only with the TLS
//! client certificate that hashes to it.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderName;
use jwtgate_core::certificate_thumbprint;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::dpop::Proof;
use crate::head::only;
use crate::{RequestHead, TrustedProxies};

/// The client certificate of the request's TLS connection: the leaf, DER-encoded.
///
/// A server that terminates TLS itself puts it in each request's extensions, for
/// [`CertificateBinding`] to find: with axum served over `tokio-rustls`, add it per connection (see
/// `docs/mtls.md`); with tonic, `jwtgate-tonic`'s `peer_certificate` reads it from tonic's own connection
/// info.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate(Bytes);

impl ClientCertificate {
    /// The certificate whose DER encoding is `der`.
    pub fn new(der: impl Into<Bytes>) -> Self {
        Self(der.into())
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClientCertificate").field(&certificate_thumbprint(&self.0)).finish()
    }
}

/// When a [`CertificateBinding`] checks a token's `x5t#S256`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertificateMode {
    /// Never: a token bound to a certificate is accepted as a bearer token. Only for a service whose
    /// authorization server binds tokens that some other component checks.
    Off,
    /// When the token is bound to a certificate: then the request's client certificate must hash to its
    /// `x5t#S256`. Tokens without `x5t#S256` are accepted as usual.
    WhenPresent,
    /// Always: every token must be bound to the request's client certificate.
    Required,
}

type CertificateFn = dyn Fn(&RequestHead<'_>) -> Option<Vec<u8>> + Send + Sync;

/// Certificate-bound access tokens (RFC 8705 §3), for
/// [`JwtAuthLayer::certificate_binding`](crate::JwtAuthLayer::certificate_binding).
///
/// A token whose `cnf` claim holds `x5t#S256` is accepted only when the request's TLS client certificate hashes
/// to it: the SHA-256 of its DER encoding, base64url. Otherwise the answer is 401 `invalid_token`, "the token is
/// not bound to the client certificate".
///
/// Without a `CertificateBinding` on the layer, a token with `x5t#S256` is refused, as a sender-constrained
/// token presented as a bearer token: nothing could check its binding.
///
/// The certificate comes from the request's [`ClientCertificate`] extension by default, which your TLS server
/// sets; or from a header that a TLS-terminating proxy sets ([`from_header`](Self::from_header)), believed only
/// from that proxy; or from your own function ([`from_fn`](Self::from_fn)).
#[derive(Clone)]
pub struct CertificateBinding {
    mode: CertificateMode,
    source: Source,
}

#[derive(Clone)]
enum Source {
    Extension,
    Header { name: HeaderName, proxies: TrustedProxies },
    Custom(Arc<CertificateFn>),
}

impl CertificateBinding {
    /// Accepts certificate-bound tokens unchecked: see [`CertificateMode::Off`].
    pub fn off() -> Self {
        Self { mode: CertificateMode::Off, source: Source::Extension }
    }

    /// Checks the binding of tokens that have one: see [`CertificateMode::WhenPresent`].
    pub fn when_present() -> Self {
        Self { mode: CertificateMode::WhenPresent, source: Source::Extension }
    }

    /// Requires every token to be bound to the client certificate: see [`CertificateMode::Required`].
    pub fn required() -> Self {
        Self { mode: CertificateMode::Required, source: Source::Extension }
    }

    /// The mode.
    pub fn mode(&self) -> CertificateMode {
        self.mode
    }

    /// Takes the certificate from the header `name`, which a TLS-terminating proxy at one of `proxies` sets,
    /// and ignores it from any other peer. The value is a PEM certificate, URL-encoded (nginx's
    /// `$ssl_client_escaped_cert`, AWS ALB's `X-Amzn-Mtls-Clientcert`) or not; or Envoy's
    /// `X-Forwarded-Client-Cert` with one element, whose `Cert` is read. A value that is repeated, or holds more
    /// than one element, is ignored: the proxy must set the header, not append to the client's.
    #[must_use]
    pub fn from_header(mut self, name: HeaderName, proxies: TrustedProxies) -> Self {
        self.source = Source::Header { name, proxies };
        self
    }

    /// Takes the DER-encoded certificate from your own function, such as one that reads your server's
    /// connection info from the request's extensions.
    #[must_use]
    pub fn from_fn<F>(mut self, certificate: F) -> Self
    where
        F: Fn(&RequestHead<'_>) -> Option<Vec<u8>> + Send + Sync + 'static,
    {
        self.source = Source::Custom(Arc::new(certificate));
        self
    }

    /// The thumbprint of the request's client certificate, when it has one the source believes.
    pub(crate) fn thumbprint(&self, head: &RequestHead<'_>) -> Option<String> {
        if self.mode == CertificateMode::Off {
            return None;
        }
        let der: Cow<'_, [u8]> = match &self.source {
            Source::Extension => Cow::Borrowed(head.extensions().get::<ClientCertificate>()?.der()),
            Source::Custom(certificate) => Cow::Owned(certificate(head)?),
            Source::Header { name, proxies } => {
                if !proxies.trusts(head) {
                    return None;
                }
                Cow::Owned(from_header_value(only(head.headers(), name)?)?)
            }
        };
        Some(certificate_thumbprint(&der))
    }

    /// Whether a token with `x5t` (its `cnf` `x5t#S256`, if any) may be used with a request whose certificate
    /// has `certificate` as its thumbprint.
    pub(crate) fn allows(&self, x5t: Option<&str>, certificate: Option<&str>) -> bool {
        match (self.mode, x5t, certificate) {
            (CertificateMode::Off, ..) => true,
            (_, Some(x5t), Some(certificate)) => x5t == certificate,
            (_, Some(_), None) => false,
            (CertificateMode::Required, None, _) => false,
            (CertificateMode::WhenPresent, None, _) => true,
        }
    }
}

/// The DER certificate in a proxy's header: PEM, URL-encoded or not; or else an XFCC value of one element,
/// whose `Cert` is read. Whatever is neither is ignored: never a certificate found somewhere inside it.
fn from_header_value(value: &str) -> Option<Vec<u8>> {
    let value = value.trim();
    match one_pem_certificate(value) {
        Some(der) => Some(der),
        None => one_pem_certificate(xfcc_cert(value)?.trim_matches('"')),
    }
}

/// The certificate of `text` (URL-encoded or not) when, decoded, it is one PEM certificate and nothing else.
fn one_pem_certificate(text: &str) -> Option<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let pem = percent_encoding::percent_decode_str(text).decode_utf8().ok()?;
    let pem = pem.trim();
    if !pem.starts_with(BEGIN) || !pem.ends_with(END) || pem.matches("-----BEGIN").count() != 1 {
        return None;
    }
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    Some(der.as_ref().to_vec())
}

/// `Cert` of an `X-Forwarded-Client-Cert` value with one element (`Hash=...;Cert="...";Subject="..."`).
fn xfcc_cert(value: &str) -> Option<&str> {
    let mut cert = None;
    let mut rest = value;
    while !rest.is_empty() {
        let (pair, after) = split_pair(rest)?;
        let (key, field) = pair.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("cert") && cert.replace(field.trim()).is_some() {
            return None;
        }
        rest = after;
    }
    cert
}

/// The first `key=value` of an XFCC element, honouring quotes, and what follows its `;`. A `,` outside quotes
/// starts another element, which is refused.
fn split_pair(value: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (at, byte) in value.bytes().enumerate() {
        match byte {
            b'"' => quoted = !quoted,
            b';' if !quoted => return Some((&value[..at], &value[at + 1..])),
            b',' if !quoted => return None,
            _ => {}
        }
    }
    (!quoted).then_some((value, ""))
}

impl fmt::Debug for CertificateBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Extension => "ClientCertificate",
            Source::Header { name, .. } => name.as_str(),
            Source::Custom(_) => "custom",
        };
        f.debug_struct("CertificateBinding").field("mode", &self.mode).field("source", &source).finish()
    }
}

/// What a request proves it holds, beside its token: a DPoP proof, a client certificate (its thumbprint), or
/// both. Carried, boxed, only when the layer checks either.
#[derive(Debug, Default)]
pub(crate) struct Possession {
    pub(crate) proof: Option<Proof>,
    pub(crate) certificate: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use http::Request;

    use super::*;

    const DER: &[u8] = b"\x30\x03\x02\x01\x01";

    fn pem() -> String {
        format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", STANDARD.encode(DER))
    }

    fn escaped(text: &str) -> String {
        percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    #[derive(Clone)]
    struct Peer(IpAddr);

    fn binding() -> CertificateBinding {
        let proxies = TrustedProxies::new(["10.0.0.1"], |extensions| extensions.get::<Peer>().map(|peer| peer.0))
            .expect("an address");
        CertificateBinding::when_present().from_header(HeaderName::from_static("x-client-cert"), proxies)
    }

    fn thumbprint(peer: &str, values: &[&str]) -> Option<String> {
        let mut builder = Request::builder();
        for value in values {
            builder = builder.header("x-client-cert", *value);
        }
        let mut request = builder.body(()).expect("a request");
        request.extensions_mut().insert(Peer(peer.parse::<SocketAddr>().expect("an address").ip()));
        binding().thumbprint(&RequestHead::new(&request))
    }

    #[test]
    fn a_trusted_proxy_header_gives_the_certificate_in_every_form() {
        let expected = Some(certificate_thumbprint(DER));
        let xfcc = format!(r#"By=spiffe://x;Hash=ab;Cert="{}";Subject="CN=a,O=b""#, escaped(&pem()));
        for value in [escaped(&pem()), pem(), xfcc] {
            let value = value.replace('\n', "%0A");
            assert_eq!(thumbprint("10.0.0.1:4000", &[&value]), expected, "{value}");
        }
    }

    #[test]
    fn an_untrusted_peer_a_repeated_header_or_a_bad_value_gives_none() {
        let good = escaped(&pem());
        assert_eq!(thumbprint("10.0.0.2:4000", &[&good]), None, "untrusted peer");
        assert_eq!(thumbprint("10.0.0.1:4000", &[&good, &good]), None, "appended");
        let two = format!(r#"Cert="{good}",Cert="{good}""#);
        // A client's element before the proxy's (Envoy's APPEND_FORWARD), or a certificate hidden in a field.
        let appended = format!(r#"Hash=00;Cert="x",By=proxy;Cert="{good}""#);
        let hidden = format!(r#"Subject="%0A{good}""#);
        let smuggled = format!(r#"Cert="%0A{good}",Hash=00"#);
        let pem = pem().replace('\n', "%0A");
        let two_blocks = format!("{pem}{pem}");
        let trailing = format!("{pem}junk");
        for value in ["", "garbage", "Cert=\"unterminated", &two, &appended, &hidden, &smuggled, &two_blocks, &trailing]
        {
            assert_eq!(thumbprint("10.0.0.1:4000", &[value]), None, "{value}");
        }
    }

    #[test]
    fn the_modes_decide_on_the_token_and_the_certificate() {
        let (a, b) = (Some("a"), Some("b"));
        let when_present = CertificateBinding::when_present();
        assert!(when_present.allows(a, a) && when_present.allows(None, None) && when_present.allows(None, a));
        assert!(!when_present.allows(a, b) && !when_present.allows(a, None));
        let required = CertificateBinding::required();
        assert!(required.allows(a, a) && !required.allows(None, a) && !required.allows(a, None));
        assert!(CertificateBinding::off().allows(a, b));
    }
}
