//! Kayak's executor: a [`Plan`] per input-shape signature and the CPU run loop.
//!
//! A plan fixes, for one set of input shapes: the execution order, the kernel of every step
//! (parameters computed once), and where every value lives — graph inputs and weights in
//! place, kept outputs in the caller's output tensors, and every intermediate tensor and
//! kernel scratch at an offset in **one arena** planned from liveness ([`memory`]; some
//! adjacent steps merge into one, see `cpu::merge_expand_dw`): views
//! alias their input, elementwise and normalization ops run in place where their input
//! dies, and buffers not alive together share bytes. A run ([`Plan::run`]) with a
//! [`RunState`] that has run the plan before allocates nothing. The arena's memory is its
//! own mapping on Linux, advised for huge pages (`arena`); with more than one thread a run
//! state dispatches each run's ops across its pool or runs them on the calling thread,
//! whichever it measured faster (`adapt`).
//!
//! [`gpu`] plans the same graphs for a GPU (`kayak_gpu::Device`: CUDA, or the CPU
//! emulator): kernels generated as CUDA C per op and shape, GEMMs, a device arena from the
//! same liveness planner, host ops between copies.
//!
//! Architecture invariant: this crate knows plans and kernels; it never imports egg or a
//! file format.
#![warn(missing_docs)]

mod adapt;
mod arena;
pub mod cpu;
mod gather;
pub mod gpu;
pub mod memory;
mod plan;
mod prepack;
mod run;

pub use plan::{DynamicPlan, Loc, MemoryReport, Plan, PlanOptions, Step, Storage};
pub use prepack::prepack_weights;
pub use run::{Inputs, RunState};

use kayak_ir::{DType, Shape};
/// What can go wrong planning or running a graph.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Shape inference for the given input shapes failed.
    #[error("cannot plan for these input shapes: {0}")]
    Plan(#[source] kayak_ir::Error),
    /// An op failed at run time.
    #[error("{origin}: {source}")]
    Node {
        /// The node's origin in the model.
        origin: String,
        /// The op's error.
        #[source]
        source: kayak_ir::Error,
    },
    /// An op produced a tensor of another type than the plan says (an engine bug).
    #[error(
        "{origin}: produced {got_dtype}{got_shape}, the plan expects {want_dtype}{want_shape}"
    )]
    OutputMismatch {
        /// The node's origin.
        origin: String,
        /// Produced dtype.
        got_dtype: DType,
        /// Produced shape.
        got_shape: Shape,
        /// Planned dtype.
        want_dtype: DType,
        /// Planned shape.
        want_shape: Shape,
    },
    /// The GPU (or its emulator) failed or refused.
    #[error(transparent)]
    Gpu(#[from] kayak_gpu::GpuError),
    /// The inputs given do not match the plan.
    #[error("input {index}: {reason}")]
    Input {
        /// Input position.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Result with the executor's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
