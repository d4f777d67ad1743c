//! A small gRPC service behind jwtgate: `JwtAuthLayer` authenticates every call, and `#[require]` asks for
//! the role `admin` on `DeleteOrder`.
//!
//! Run the server with a secret of at least 32 bytes, then call it with the client and a token signed
//! with that secret (HS256, `iss` "jwtgate-example", `aud` "orders", a `roles` array):
//!
//! ```text
//! ORDERS_JWT_SECRET=... cargo run -p jwtgate-example-tonic --bin orders-server
//! ORDERS_TOKEN=... cargo run -p jwtgate-example-tonic --bin orders-client
//! ```

use std::net::SocketAddr;

use jwtgate::tonic::RequestExt;
use jwtgate::{Algorithm, ConfigError, JwtAuthLayer, Key, KeySet, Secret, Validator, require};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// The generated protobuf types, client and server.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unused_qualifications,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    reason = "generated code"
)]
pub mod pb {
    tonic::include_proto!("orders.v1");
}

use pb::orders_server::{Orders, OrdersServer};
use pb::{DeleteOrderReply, DeleteOrderRequest, GetOrderRequest, Order};

/// The issuer the service trusts.
pub const ISSUER: &str = "jwtgate-example";
/// The audience the service requires.
pub const AUDIENCE: &str = "orders";

/// The order service.
#[derive(Debug, Default)]
pub struct OrdersService;

#[tonic::async_trait]
impl Orders for OrdersService {
    async fn get_order(&self, request: Request<GetOrderRequest>) -> Result<Response<Order>, Status> {
        let viewer = request.principal().and_then(|p| p.subject().map(str::to_owned)).unwrap_or_default();
        Ok(Response::new(Order { id: request.into_inner().id, viewer }))
    }

    #[require(role = "admin")]
    async fn delete_order(&self, request: Request<DeleteOrderRequest>) -> Result<Response<DeleteOrderReply>, Status> {
        let _id = request.into_inner().id;
        Ok(Response::new(DeleteOrderReply { deleted: true }))
    }
}

/// The validator for tokens signed with `secret` (HS256) for this service.
pub fn validator(secret: &Secret) -> Result<Validator, ConfigError> {
    let keys = KeySet::new([Key::hmac(Algorithm::HS256, secret)?])?;
    Ok(Validator::builder(keys).issuer(ISSUER).audience(AUDIENCE).build())
}

/// Binds `addr` and returns the bound address and the server's future, which runs until `shutdown` ends.
pub fn serve(
    addr: SocketAddr,
    validator: Validator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, impl Future<Output = Result<(), tonic::transport::Error>>)> {
    let incoming = TcpIncoming::bind(addr)?;
    let bound = incoming.local_addr()?;
    let server = Server::builder()
        .layer(JwtAuthLayer::<serde_json::Value>::new(validator))
        .add_service(OrdersServer::new(OrdersService))
        .serve_with_incoming_shutdown(incoming, shutdown);
    Ok((bound, server))
}
