//! Benchmarks of JwtAuthLayer (written next).

fn main() {}
