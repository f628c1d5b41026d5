//! Compiles `proto/sync.proto` with protox (pure Rust, no `protoc` needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/sync.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
