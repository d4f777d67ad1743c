//! A real tonic 0.14 server behind `JwtAuthLayer`, called by a real tonic client.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::net::SocketAddr;

use bytes::Bytes;
use jwtgate::{
    Algorithm, JwtAuthLayer, KeySet, Validator,
    responses::{Rejection, ResponderExt, Rfc6750Responder},
};
use jwtgate_tests::{AUDIENCE, ISSUER, TestKey, claims};
use serde_json::Value;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn serve(key: &TestKey) -> SocketAddr {
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    let router = Server::builder().layer(JwtAuthLayer::<Value>::new(validator)).add_service(health);
    tokio::spawn(router.serve_with_incoming(incoming));
    addr
}

async fn check(addr: SocketAddr, authorization: Option<&str>) -> Result<ServingStatus, tonic::Status> {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = HealthClient::new(channel);
    let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
    if let Some(value) = authorization {
        request.metadata_mut().insert("authorization", MetadataValue::try_from(value).unwrap());
    }
    client.check(request).await.map(|response| response.into_inner().status())
}

#[tokio::test]
async fn a_valid_token_reaches_the_service() {
    let key = TestKey::generate(Algorithm::ES256);
    let addr = serve(&key).await;
    let bearer = format!("Bearer {}", key.sign(&claims()));
    assert_eq!(check(addr, Some(&bearer)).await.unwrap(), ServingStatus::Serving);
}

#[tokio::test]
async fn a_missing_token_is_unauthenticated() {
    let key = TestKey::generate(Algorithm::HS256);
    let addr = serve(&key).await;
    let status = check(addr, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "no bearer token was sent");
}

#[tokio::test]
async fn a_bad_or_expired_token_is_unauthenticated() {
    let key = TestKey::generate(Algorithm::HS256);
    let addr = serve(&key).await;
    let status = check(addr, Some("Bearer not.a.token")).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unauthenticated, "the token is malformed"));

    let mut expired = claims();
    expired["exp"] = serde_json::json!(jwtgate_tests::now() - 3600);
    let status = check(addr, Some(&format!("Bearer {}", key.sign(&expired)))).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unauthenticated, "the token has expired"));

    let other = TestKey::generate(Algorithm::HS256);
    let status = check(addr, Some(&format!("Bearer {}", other.sign(&claims())))).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unauthenticated, "the token's signature is invalid"));
}

/// A health service whose `check` needs the role `admin`, through the attribute.
struct AdminHealth;

#[tonic::async_trait]
impl tonic_health::pb::health_server::Health for AdminHealth {
    #[jwtgate::require(role = "admin")]
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<tonic_health::pb::HealthCheckResponse>, tonic::Status> {
        use jwtgate::tonic::RequestExt;
        assert!(request.principal().is_some_and(|p| p.has_role("admin")));
        let status = ServingStatus::Serving as i32;
        Ok(tonic::Response::new(tonic_health::pb::HealthCheckResponse { status }))
    }

    type WatchStream = tonic::codegen::BoxStream<tonic_health::pb::HealthCheckResponse>;

    async fn watch(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("watch"))
    }
}

async fn serve_guarded(key: &TestKey, by_layer: bool) -> SocketAddr {
    serve_guarded_with(key, by_layer, |layer| layer).await
}

/// As [`serve_guarded`], with the `JwtAuthLayer` as `configure` leaves it.
async fn serve_guarded_with(
    key: &TestKey,
    by_layer: bool,
    configure: impl FnOnce(JwtAuthLayer<Value>) -> JwtAuthLayer<Value>,
) -> SocketAddr {
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    let auth = configure(JwtAuthLayer::<Value>::new(validator));
    if by_layer {
        let (_reporter, health) = tonic_health::server::health_reporter();
        let layers =
            tower::ServiceBuilder::new().layer(auth).layer(jwtgate::RequireLayer::new(jwtgate::Policy::role("admin")));
        tokio::spawn(Server::builder().layer(layers).add_service(health).serve_with_incoming(incoming));
    } else {
        let service = tonic_health::pb::health_server::HealthServer::new(AdminHealth);
        tokio::spawn(Server::builder().layer(auth).add_service(service).serve_with_incoming(incoming));
    }
    addr
}

#[tokio::test]
async fn guards_answer_permission_denied_through_a_real_client() {
    let key = TestKey::generate(Algorithm::HS256);
    let mut admin = claims();
    admin["roles"] = serde_json::json!(["admin"]);
    let mut user = claims();
    user["roles"] = serde_json::json!(["user"]);
    for by_layer in [true, false] {
        let addr = serve_guarded(&key, by_layer).await;
        let status = check(addr, Some(&format!("Bearer {}", key.sign(&admin)))).await.unwrap();
        assert_eq!(status, ServingStatus::Serving, "by_layer={by_layer}");
        let denied = check(addr, Some(&format!("Bearer {}", key.sign(&user)))).await.unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "by_layer={by_layer}");
        assert_eq!(denied.message(), "the token does not grant access to this resource");
        let missing = check(addr, None).await.unwrap_err();
        assert_eq!(missing.code(), Code::Unauthenticated, "by_layer={by_layer}");
    }
}

#[tokio::test]
async fn guards_answer_with_the_layers_responder_in_both_styles() {
    let key = TestKey::generate(Algorithm::HS256);
    let mut user = claims();
    user["roles"] = serde_json::json!(["user"]);
    let user = format!("Bearer {}", key.sign(&user));
    let ask_an_admin = |layer: JwtAuthLayer<Value>| {
        layer.responder(Rfc6750Responder::new().map_response(|_, mut response: http::Response<Bytes>| {
            response.headers_mut().insert("grpc-message", http::HeaderValue::from_static("ask an admin"));
            response
        }))
    };
    for by_layer in [true, false] {
        let addr = serve_guarded_with(&key, by_layer, ask_an_admin).await;
        let denied = check(addr, Some(&user)).await.unwrap_err();
        assert_eq!((denied.code(), denied.message()), (Code::PermissionDenied, "ask an admin"), "by_layer={by_layer}");
        let missing = check(addr, None).await.unwrap_err();
        assert_eq!((missing.code(), missing.message()), (Code::Unauthenticated, "ask an admin"), "by_layer={by_layer}");
    }
    // A responder that ignores gRPC and answers plain HTTP: in a method, `authorize` still refuses with the
    // error's code and description.
    let plain_http = |layer: JwtAuthLayer<Value>| {
        layer.responder(|rejection: &Rejection<'_>| Rfc6750Responder::new().respond_http(rejection))
    };
    let addr = serve_guarded_with(&key, false, plain_http).await;
    let denied = check(addr, Some(&user)).await.unwrap_err();
    assert_eq!(
        (denied.code(), denied.message()),
        (Code::PermissionDenied, "the token does not grant access to this resource")
    );
}

/// A health service whose `check` needs a recent sign-in with a second factor, through the attribute.
struct SteppedUpHealth;

#[tonic::async_trait]
impl tonic_health::pb::health_server::Health for SteppedUpHealth {
    #[jwtgate::require(acr = "urn:mfa", max_auth_age = 300)]
    async fn check(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<tonic_health::pb::HealthCheckResponse>, tonic::Status> {
        let status = ServingStatus::Serving as i32;
        Ok(tonic::Response::new(tonic_health::pb::HealthCheckResponse { status }))
    }

    type WatchStream = tonic::codegen::BoxStream<tonic_health::pb::HealthCheckResponse>;

    async fn watch(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("watch"))
    }
}

#[tokio::test]
async fn step_up_is_unauthenticated_with_the_challenge_in_the_metadata_in_both_styles() {
    let key = TestKey::generate(Algorithm::HS256);
    let signed_in = |acr: &str, seconds_ago: i64| {
        let mut claims = claims();
        claims["acr"] = serde_json::json!(acr);
        claims["auth_time"] = serde_json::json!(jwtgate::__private::unix_now() - seconds_ago);
        format!("Bearer {}", key.sign(&claims))
    };
    let description = "the resource needs a stronger or more recent authentication of the user";
    for by_layer in [true, false] {
        for optional in [false, true] {
            let validator = Validator::builder(KeySet::new([key.verification_key()]).unwrap())
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .build();
            let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = incoming.local_addr().unwrap();
            let mut auth = JwtAuthLayer::<Value>::new(validator);
            if optional {
                auth = auth.optional();
            }
            if by_layer {
                let (_reporter, health) = tonic_health::server::health_reporter();
                let policy = jwtgate::Policy::all([
                    jwtgate::Policy::acr(["urn:mfa"]),
                    jwtgate::Policy::max_auth_age(std::time::Duration::from_secs(300)),
                ]);
                let layers = tower::ServiceBuilder::new().layer(auth).layer(jwtgate::RequireLayer::new(policy));
                tokio::spawn(Server::builder().layer(layers).add_service(health).serve_with_incoming(incoming));
            } else {
                let service = tonic_health::pb::health_server::HealthServer::new(SteppedUpHealth);
                tokio::spawn(Server::builder().layer(auth).add_service(service).serve_with_incoming(incoming));
            }
            let case = format!("by_layer={by_layer} optional={optional}");
            assert_eq!(check(addr, Some(&signed_in("urn:mfa", 5))).await.unwrap(), ServingStatus::Serving, "{case}");
            for (token, wants) in [
                (signed_in("urn:pwd", 5), r#"acr_values="urn:mfa""#),
                (signed_in("urn:mfa", 900), "max_age=300"),
                (signed_in("urn:pwd", 900), r#"acr_values="urn:mfa", max_age=300"#),
            ] {
                let refused = check(addr, Some(&token)).await.unwrap_err();
                assert_eq!((refused.code(), refused.message()), (Code::Unauthenticated, description), "{case}");
                let challenge = refused.metadata().get("www-authenticate").unwrap().to_str().unwrap();
                assert_eq!(
                    challenge,
                    format!(
                        r#"Bearer error="insufficient_user_authentication", error_description="{description}", {wants}"#
                    ),
                    "{case}"
                );
            }
            let missing = check(addr, None).await.unwrap_err();
            assert_eq!(missing.code(), Code::Unauthenticated, "{case}");
        }
    }
}
