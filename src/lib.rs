//! # Kayak
//!
//! Native inference for PaddlePaddle models. Load a model, set inputs, run:
//!
//! ```no_run
//! use kayak::{Config, Predictor};
//! let mut p = Predictor::new(Config::new().model_dir("assets/ppocr_cls"))?;
//! let mut x = p.input("x")?;
//! x.reshape(&[1, 3, 48, 192])?;
//! x.copy_from_cpu(&vec![0.0f32; 3 * 48 * 192])?;
//! p.run()?;
//! let mut probs = [0.0f32; 2];
//! p.output("softmax_0.tmp_0")?.copy_to_cpu(&mut probs)?;
//! # Ok::<(), kayak::Error>(())
//! ```
//!
//! On an NVIDIA GPU (feature `cuda`): `Config::new().model_dir(..).enable_gpu(0)`; the same
//! path on the CPU emulator of a device, for tests: `.enable_gpu_emulator()`. Handles,
//! `run_with` and clones work the same on every backend; a GPU plan
//! ([`Predictor::plan_as`]`::<gpu_exec::GpuPlan>`) reports what runs where. A backend of your
//! own ([`exec::Backend`]) plugs in with [`Config::backend`].
//!
//! The crates behind the facade: `kayak-proto` (formats), `kayak-ir` (graph, op set,
//! reference semantics), `kayak-rewrite` (optimizer, cost models, placement), `kayak-exec`
//! (the backend seam, plans, the CPU backend), `kayak-exec-gpu` (the GPU backend),
//! `kayak-gpu` (devices: CUDA and the emulator).
#![warn(missing_docs)]

mod backend;
mod config;
mod error;
pub mod npy;
mod optim_cache;
mod predictor;
mod specialize;

pub use config::{Config, GpuPlacement};
pub use error::{Error, Result};
pub use kayak_gpu::GpuError;
pub use kayak_ir::{DType, Dim, Shape, Tensor};
pub use kayak_proto::{Model, ModelSource, DIR_CANDIDATES};
pub use kayak_rewrite::CostModel;
pub use predictor::{InputHandle, OutputHandle, Predictor};

/// The GPU backend (GPU plans, their reports and states).
pub use kayak_exec_gpu as gpu_exec;
/// The GPU device layer (devices, the CPU emulator).
pub use kayak_gpu as gpu;
/// The IR, for users who inspect graphs.
pub use kayak_ir as ir;

/// The executor seam and the CPU backend (plans, memory figures), for users who inspect
/// how a model runs or bring a backend of their own.
pub use kayak_exec as exec;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
