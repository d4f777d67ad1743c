#[jwtgate::require(acr = 3)]
async fn acr_not_a_string() {}

#[jwtgate::require(acr = [])]
async fn acr_empty() {}

#[jwtgate::require(max_auth_age = "300")]
async fn age_not_a_number() {}

#[jwtgate::require(max_auth_age = -1)]
async fn age_negative() {}

fn main() {}
