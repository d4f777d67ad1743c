#[jwtgate::require()]
async fn handler() {}

fn main() {}
