//! Compiles `proto/orders.proto` with the protoc that `protoc-bin-vendored` ships, so no system protoc is
//! needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(config, &["proto/orders.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/orders.proto");
    Ok(())
}
