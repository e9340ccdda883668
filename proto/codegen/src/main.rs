//! Regenerates the checked-in prost code from `proto/framework.proto`.
//! Run `proto/codegen/regen.sh`; no system `protoc` is needed (protox parses the schema).
fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = root.join("src/generated");
    std::fs::create_dir_all(&out).expect("create src/generated");
    let fds = protox::compile([root.join("framework.proto")], [&root]).expect("parse framework.proto");
    prost_build::Config::new()
        .out_dir(&out)
        .compile_fds(fds)
        .expect("generate Rust code");
    println!("wrote {}", out.display());
}
