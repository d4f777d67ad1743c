#[jwtgate::require(any(role = "admin", claim(tenant = [1])))]
async fn handler() {}

fn main() {}
