#[jwtgate::require(role = admin)]
async fn handler() {}

fn main() {}
