//! Compiles the wire schema in `proto/` with protox (pure Rust, no `protoc` needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/wire.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new()
        // Payloads stay zero-copy slices of the received frame.
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
