#[jwtgate::require(rol = "admin")]
async fn handler() {}

fn main() {}
