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
//! [`Backend`] is the seam the predictor runs every executor through: [`CpuBackend`]
//! here, the GPU's in `kayak-gpu`, any other beside them. The planner ([`memory`]) and
//! the gather decomposition ([`gather`]) serve the other backends too.
//!
//! Architecture invariant: this crate knows plans and kernels; it never imports egg, a
//! file format, or another backend.
#![warn(missing_docs)]

mod adapt;
mod arena;
mod backend;
mod cpu;
pub mod gather;
pub mod memory;
mod plan;
mod prepack;
mod run;

pub use backend::{Backend, CpuBackend, ExecState, Executable};
pub use kayak_kernels::gemm::PACK_COLS;
pub use plan::{MemoryReport, Plan, PlanOptions, StepInfo};
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
    /// Another backend failed (a GPU, its emulator, a subgraph engine).
    #[error("{backend}: {source}")]
    Backend {
        /// Which.
        backend: String,
        /// What it said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A plan broke one of its own invariants (a bug in the planner; the plan is refused).
    #[error("invalid plan: {0}")]
    Invalid(String),
    /// A step's kernel asked for memory the plan does not give it (a bug; the run stops
    /// before touching it).
    #[error("kernel: {0}")]
    Kernel(String),
    /// A run state of another backend.
    #[error("{0}")]
    State(String),
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
