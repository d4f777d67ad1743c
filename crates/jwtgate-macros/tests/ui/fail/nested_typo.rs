#[jwtgate::require(any(role = "admin", all(scopes = "orders:write")))]
async fn handler() {}

fn main() {}
