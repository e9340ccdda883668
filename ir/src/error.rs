//! The IR's error type.

use crate::{DType, Shape};

/// Everything that can go wrong while building, typing or evaluating a graph.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An attribute value the op cannot accept.
    #[error("{op}: bad attribute `{attr}`: {reason}")]
    BadAttribute {
        /// Op type.
        op: &'static str,
        /// Attribute name.
        attr: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Input shapes the op cannot accept.
    #[error("{op}: incompatible shapes: {reason}")]
    Shape {
        /// Op type.
        op: &'static str,
        /// What does not fit.
        reason: String,
    },
    /// An input dtype the op cannot accept.
    #[error("{op}: unsupported dtype {dtype} for input {input}")]
    DType {
        /// Op type.
        op: &'static str,
        /// Input position.
        input: usize,
        /// Offending dtype.
        dtype: DType,
    },
    /// Two inputs that must share a dtype do not.
    #[error("{op}: dtype mismatch: {lhs} vs {rhs}")]
    DTypeMismatch {
        /// Op type.
        op: &'static str,
        /// First dtype.
        lhs: DType,
        /// Second dtype.
        rhs: DType,
    },
    /// The wrong number of inputs.
    #[error("{op}: expected {expected} inputs, got {got}")]
    Arity {
        /// Op type.
        op: &'static str,
        /// Expected count (a description such as `2` or `at least 1`).
        expected: String,
        /// Actual count.
        got: usize,
    },
    /// An input whose value must be known (a shape tensor, an axis) is not.
    #[error("{op}: input {input} must be a known constant to infer the output shape")]
    NeedsValue {
        /// Op type.
        op: &'static str,
        /// Input position.
        input: usize,
    },
    /// A value out of range at run time (an index, a gather id).
    #[error("{op}: {reason}")]
    OutOfRange {
        /// Op type.
        op: &'static str,
        /// What is out of range.
        reason: String,
    },
    /// Raw bytes that do not fit a shape and dtype.
    #[error("tensor data has {got} bytes, expected {expected} for {dtype}{shape}")]
    DataSize {
        /// Bytes given.
        got: usize,
        /// Bytes expected.
        expected: usize,
        /// Element type.
        dtype: DType,
        /// Shape.
        shape: Shape,
    },
    /// A graph whose structure is broken (a cycle, a value used before it is made).
    #[error("invalid graph: {0}")]
    Graph(String),
    /// An error located at a node of a graph.
    #[error("node {node} ({name}): {source}")]
    AtNode {
        /// Node index.
        node: usize,
        /// Node's name (its origin in the model file).
        name: String,
        /// The underlying error.
        #[source]
        source: Box<Error>,
    },
}

/// Result with the IR's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps `self` with the node it happened at.
    pub fn at_node(self, node: usize, name: &str) -> Error {
        match self {
            e @ Error::AtNode { .. } => e,
            e => Error::AtNode {
                node,
                name: name.to_string(),
                source: Box::new(e),
            },
        }
    }

    /// The innermost error (past any [`Error::AtNode`] wrapper).
    pub fn root(&self) -> &Error {
        match self {
            Error::AtNode { source, .. } => source.root(),
            e => e,
        }
    }
}

pub(crate) fn shape_err(op: &'static str, reason: impl Into<String>) -> Error {
    Error::Shape {
        op,
        reason: reason.into(),
    }
}

pub(crate) fn attr_err(op: &'static str, attr: &'static str, reason: impl Into<String>) -> Error {
    Error::BadAttribute {
        op,
        attr,
        reason: reason.into(),
    }
}
