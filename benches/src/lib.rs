//! Kayak's benchmarks. `cargo bench -p kayak-benches` runs the criterion benches; the
//! side-by-side comparison with ONNX Runtime and Paddle Inference comes with `kayak bench`.
#![warn(missing_docs)]
