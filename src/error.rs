//! The facade's error type.

use kayak_ir::{DType, Shape};

/// Everything the public API can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or importing the model failed.
    #[error(transparent)]
    Load(#[from] kayak_proto::Error),
    /// The optimizer failed (a bad rule file, or a graph it could not rewrite).
    #[error(transparent)]
    Optimize(#[from] kayak_rewrite::Error),
    /// Planning or running failed.
    #[error(transparent)]
    Exec(#[from] kayak_exec::Error),
    /// The configuration is incomplete or contradictory.
    #[error("bad configuration: {0}")]
    Config(String),
    /// The GPU asked for (`Config::enable_gpu`) cannot be used.
    #[error("GPU: {0}")]
    Gpu(#[from] kayak_gpu::GpuError),
    /// No input of that name.
    #[error("no input named `{name}`; the model's inputs are {known:?}")]
    UnknownInput {
        /// Name asked for.
        name: String,
        /// Names that exist.
        known: Vec<String>,
    },
    /// No output, fetched variable or model variable of that name.
    #[error("no output or variable named `{name}`")]
    UnknownVariable {
        /// Name asked for.
        name: String,
    },
    /// An input given with the wrong dtype.
    #[error("input `{name}` expects {expected}, got {got}")]
    InputDType {
        /// Input name.
        name: String,
        /// Declared dtype.
        expected: DType,
        /// Given dtype.
        got: DType,
    },
    /// An input given with a shape the model does not accept.
    #[error("input `{name}` expects shape {expected}, got {got:?}")]
    InputShape {
        /// Input name.
        name: String,
        /// Declared shape (symbolic dims accept any size).
        expected: Shape,
        /// Given shape.
        got: Vec<usize>,
    },
    /// An input was not set before `run`.
    #[error("input `{name}` was not set before run")]
    MissingInput {
        /// Input name.
        name: String,
    },
    /// A caller's buffer does not match the tensor's element count.
    #[error("`{name}`: buffer holds {got} elements, the tensor has {expected}")]
    BufferSize {
        /// Tensor name.
        name: String,
        /// Elements in the tensor.
        expected: usize,
        /// Elements in the buffer.
        got: usize,
    },
    /// An output read before any run produced it.
    #[error("output `{name}` has no value yet: call run() first")]
    NotRun {
        /// Output name.
        name: String,
    },
    /// A `.npy` file that cannot be read or written.
    #[error("{path}: {reason}")]
    Npy {
        /// File.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Result with the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
