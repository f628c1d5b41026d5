//! Compiles `proto/dht.proto` with protox (pure Rust): no `protoc` is needed on the build machine.

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto/dht.proto");
    let descriptors = protox::compile(["proto/dht.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
