//! Certificate-bound tokens (RFC 8705 §3) over real TLS on loopback, with certificates made at test time: axum
//! served over tokio-rustls, tonic with TLS, and a TLS-terminating proxy's header, trusted and spoofed.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use jwtgate::mtls::{CertificateBinding, ClientCertificate};
use jwtgate::proxy::TrustedProxies;
use jwtgate::validation::certificate_thumbprint;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Validator};
use jwtgate_tests::{AUDIENCE, ISSUER, TestKey, claims};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tonic::metadata::MetadataValue;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity, Server, ServerTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceExt;

/// A CA made for one test, and the certificates it signs.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, PEM, and the certificate's DER.
struct Leaf {
    der: CertificateDer<'static>,
    pem: String,
    key_pem: String,
    key_der: Vec<u8>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        Self { ca: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    fn leaf(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.ca).unwrap();
        Leaf {
            der: certificate.der().clone(),
            pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    fn client(&self, name: &str) -> Leaf {
        self.leaf(name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn server(&self) -> Leaf {
        self.leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth)
    }
}

fn validator(key: &TestKey) -> Validator {
    Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build()
}

/// A token bound to `certificate` (its `x5t#S256`), or unbound.
fn token(key: &TestKey, certificate: Option<&Leaf>) -> String {
    let mut claims = claims();
    if let Some(certificate) = certificate {
        claims["cnf"] = json!({ "x5t#S256": certificate_thumbprint(&certificate.der) });
    }
    key.sign(&claims)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Serves `app` over TLS, asking for a client certificate from `pki`'s CA (optional), and puts the one the
/// client presents in each request as a `ClientCertificate`: the way to run axum over rustls with
/// certificate-bound tokens.
async fn serve_tls(pki: &Pki, app: Router) -> SocketAddr {
    let server = pki.server();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server.der], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key_der)))
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let certificate = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|leaf| ClientCertificate::new(leaf.to_vec()));
                let service = app.map_request(move |mut request: http::Request<hyper::body::Incoming>| {
                    if let Some(certificate) = &certificate {
                        request.extensions_mut().insert(certificate.clone());
                    }
                    request
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    addr
}

fn https_client(pki: &Pki, identity: Option<&Leaf>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca.pem().as_bytes()).unwrap()]);
    if let Some(leaf) = identity {
        let pem = format!("{}{}", leaf.pem, leaf.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

async fn me(client: &reqwest::Client, addr: SocketAddr, token: &str) -> jwtgate_tests::Answer {
    let url = format!("https://localhost:{}/me", addr.port());
    jwtgate_tests::get(client, &url, &[("authorization", &format!("Bearer {token}"))]).await
}

fn app(key: &TestKey, binding: Option<CertificateBinding>) -> Router {
    let mut layer = JwtAuthLayer::<Value>::new(validator(key));
    if let Some(binding) = binding {
        layer = layer.certificate_binding(binding);
    }
    Router::new().route("/me", get(|| async { "me" })).layer(layer)
}

const MISMATCH: &str = "the token is not bound to the client certificate";

#[tokio::test]
async fn axum_over_rustls_accepts_a_bound_token_only_with_its_certificate() {
    let (pki, key) = (Pki::new(), TestKey::generate(Algorithm::ES256));
    let addr = serve_tls(&pki, app(&key, Some(CertificateBinding::when_present()))).await;
    let (alice, mallory) = (pki.client("alice"), pki.client("mallory"));
    let bound = token(&key, Some(&alice));

    let answer = me(&https_client(&pki, Some(&alice)), addr, &bound).await;
    assert_eq!((answer.status, answer.body), (200, json!("me")));
    me(&https_client(&pki, Some(&mallory)), addr, &bound).await.assert_invalid_token(MISMATCH);
    me(&https_client(&pki, None), addr, &bound).await.assert_invalid_token(MISMATCH);
    // An unbound token passes when binding is checked only when present, with or without a certificate.
    assert_eq!(me(&https_client(&pki, None), addr, &token(&key, None)).await.status, 200);
    assert_eq!(me(&https_client(&pki, Some(&mallory)), addr, &token(&key, None)).await.status, 200);
}

#[tokio::test]
async fn required_certificate_binding_refuses_unbound_tokens_and_off_checks_nothing() {
    let (pki, key) = (Pki::new(), TestKey::generate(Algorithm::ES256));
    let alice = pki.client("alice");
    let required = serve_tls(&pki, app(&key, Some(CertificateBinding::required()))).await;
    let client = https_client(&pki, Some(&alice));
    me(&client, required, &token(&key, None)).await.assert_invalid_token(MISMATCH);
    assert_eq!(me(&client, required, &token(&key, Some(&alice))).await.status, 200);

    let off = serve_tls(&pki, app(&key, Some(CertificateBinding::off()))).await;
    let bound = token(&key, Some(&alice));
    assert_eq!(me(&https_client(&pki, None), off, &bound).await.status, 200, "off: not checked");

    // No binding on the layer: nothing can check the token's binding, so it is no bearer token.
    let none = serve_tls(&pki, app(&key, None)).await;
    me(&client, none, &bound)
        .await
        .assert_invalid_token("the token is sender-constrained and cannot be used as a bearer token");
}

fn proxies(networks: &[&str]) -> TrustedProxies {
    TrustedProxies::new(networks, |extensions| extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip()))
        .unwrap()
}

async fn serve_behind_proxy(key: &TestKey, proxies: TrustedProxies) -> String {
    let binding =
        CertificateBinding::when_present().from_header(http::HeaderName::from_static("x-client-cert"), proxies);
    let app = app(key, Some(binding)).into_make_service_with_connect_info::<SocketAddr>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/me")
}

#[tokio::test]
async fn a_proxys_certificate_header_is_believed_from_the_proxy_only() {
    let (pki, key) = (Pki::new(), TestKey::generate(Algorithm::ES256));
    let alice = pki.client("alice");
    let bound = token(&key, Some(&alice));
    let escaped = percent_encoding::utf8_percent_encode(&alice.pem, percent_encoding::NON_ALPHANUMERIC).to_string();
    let xfcc = format!(r#"Hash=00;Cert="{escaped}";Subject="CN=alice""#);
    let http = reqwest::Client::new();
    let auth = format!("Bearer {bound}");

    // The test client connects from 127.0.0.1: a trusted proxy.
    let trusted = serve_behind_proxy(&key, proxies(&["127.0.0.1"])).await;
    for value in [&escaped, &xfcc] {
        let answer = jwtgate_tests::get(&http, &trusted, &[("authorization", &auth), ("x-client-cert", value)]).await;
        assert_eq!(answer.status, 200, "{value}: {}", answer.body);
    }
    jwtgate_tests::get(&http, &trusted, &[("authorization", &auth)]).await.assert_invalid_token(MISMATCH);

    // From a peer that is no trusted proxy, the header is ignored: spoofing it gets nothing.
    let untrusted = serve_behind_proxy(&key, proxies(&["10.0.0.0/8"])).await;
    jwtgate_tests::get(&http, &untrusted, &[("authorization", &auth), ("x-client-cert", &escaped)])
        .await
        .assert_invalid_token(MISMATCH);
}

async fn serve_grpc_tls(pki: &Pki, key: &TestKey) -> SocketAddr {
    let server = pki.server();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&server.pem, &server.key_pem))
        .client_ca_root(Certificate::from_pem(pki.ca.pem()))
        .client_auth_optional(true);
    let binding = CertificateBinding::when_present().from_fn(jwtgate::tonic::peer_certificate);
    let layer = JwtAuthLayer::<Value>::new(validator(key)).certificate_binding(binding);
    let (_reporter, health) = tonic_health::server::health_reporter();
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    let router = Server::builder().tls_config(tls).unwrap().layer(layer).add_service(health);
    tokio::spawn(router.serve_with_incoming(incoming));
    addr
}

async fn grpc_check(pki: &Pki, addr: SocketAddr, identity: Option<&Leaf>, token: &str) -> Result<(), tonic::Status> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pki.ca.pem())).domain_name("localhost");
    if let Some(leaf) = identity {
        tls = tls.identity(Identity::from_pem(&leaf.pem, &leaf.key_pem));
    }
    let channel = Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
    request.metadata_mut().insert("authorization", MetadataValue::try_from(format!("Bearer {token}")).unwrap());
    HealthClient::new(channel).check(request).await.map(|_| ())
}

#[tokio::test]
async fn tonic_with_tls_accepts_a_bound_token_only_with_its_certificate() {
    let (pki, key) = (Pki::new(), TestKey::generate(Algorithm::ES256));
    let addr = serve_grpc_tls(&pki, &key).await;
    let (alice, mallory) = (pki.client("alice"), pki.client("mallory"));
    let bound = token(&key, Some(&alice));
    grpc_check(&pki, addr, Some(&alice), &bound).await.unwrap();
    for identity in [Some(&mallory), None] {
        let status = grpc_check(&pki, addr, identity, &bound).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (tonic::Code::Unauthenticated, MISMATCH));
    }
    grpc_check(&pki, addr, None, &token(&key, None)).await.unwrap();
}

#[tokio::test]
async fn the_metadata_says_tokens_are_certificate_bound() {
    let key = TestKey::generate(Algorithm::ES256);
    let resource = jwtgate::resource::ResourceUri::parse("https://api.example.com").unwrap();
    let validator = Validator::builder(KeySet::new([key.verification_key()]).unwrap())
        .issuer(ISSUER)
        .audience(resource.clone())
        .build();
    let layer = JwtAuthLayer::<Value>::new(validator).resource(resource);
    let document = layer.clone().certificate_binding(CertificateBinding::when_present()).metadata().unwrap();
    assert_eq!(document.document().unwrap()["tls_client_certificate_bound_access_tokens"], json!(true));
    let document = layer.certificate_binding(CertificateBinding::off()).metadata().unwrap();
    assert!(document.document().unwrap().get("tls_client_certificate_bound_access_tokens").is_none());
}
