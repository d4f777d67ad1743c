use jwtgate::require;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

struct Service;

#[tonic::async_trait]
impl Health for Service {
    #[require(role = "admin")]
    async fn check(&self, request: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        let _ = request.into_inner();
        Ok(Response::new(HealthCheckResponse::default()))
    }

    type WatchStream = BoxStream<HealthCheckResponse>;

    #[require(any(scope = "health:watch", role = "admin"))]
    async fn watch(&self, _req: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch"))
    }
}

struct Plain;

impl Plain {
    // Without async_trait: a plain async method.
    #[require(role = "admin")]
    async fn call(&self, request: Request<()>) -> Result<Response<()>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

fn main() {
    let _ = (Service, Plain.call(Request::new(())));
}
