//! The jwtgate demo (written next).

fn main() {}
