//! Kayak's compute kernels: functions over slices and small parameter structs, chosen by
//! CPU features at run time, that write into buffers the caller owns and allocate nothing.
//!
//! - [`pool`]: the thread pool kernels split work over (no allocation per dispatch).
//! - [`gemm`]: f32 matrix products with fused epilogues, AVX-512 / AVX2+FMA / generic.
//! - [`conv`]: 2-D convolution (implicit im2col into a caller-given panel, 1×1 as a plain
//!   product, depthwise direct) with the same epilogues.
//! - [`ops`]: pooling, normalization, softmax, attention, SE blocks, elementwise with
//!   broadcasting, layout moves.
//!
//! Every kernel is tested against a naive loop here and against `kayak-ir`'s reference ops
//! through the executor's tests.
//!
//! Architecture invariant: this crate never sees a graph or an e-graph.
#![warn(missing_docs)]

pub mod act;
pub mod conv;
pub mod gemm;
pub mod ops;
pub mod pool;

pub use act::Act;
pub use pool::ThreadPool;
