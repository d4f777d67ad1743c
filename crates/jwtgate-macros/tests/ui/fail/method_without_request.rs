struct Service;

impl Service {
    #[jwtgate::require(role = "admin")]
    async fn call(&self) -> Result<(), tonic::Status> {
        Ok(())
    }
}

fn main() {}
