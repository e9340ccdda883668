//! Kayak's executor: a [`Plan`] per input-shape signature (execution order, folded shape
//! arithmetic, when each value dies) and [`Backend`]s that run a plan's nodes.
//!
//! Today's backend is [`ReferenceCpu`]: it runs every op with `kayak-ir`'s reference
//! semantics. Values are dropped right after their last use, so peak memory follows the
//! live set; arena planning and fast kernels come with later issues.
//!
//! Architecture invariant: this crate knows plans and backends; it never imports egg or a
//! file format.
#![warn(missing_docs)]

mod plan;
mod run;

pub use plan::{Plan, Source, Step};
pub use run::{Backend, ReferenceCpu, RunState};

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
