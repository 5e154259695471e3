//! Generates the gRPC code from proto/quintet.proto. The descriptor is compiled by `protox`
//! (pure Rust), so building Quintet needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/quintet.proto");
    let descriptors = protox::compile(["quintet.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // A delivery is fanned out to many streams: its bytes are shared, not copied.
        .bytes(".quintet.v1.SignedDelivery")
        .compile_fds(descriptors)?;
    Ok(())
}
