//! Kayak's intermediate representation.
//!
//! - [`Graph`]: values and nodes in execution order, built by the importers in
//!   `kayak-proto` and consumed by the optimizer and the executor.
//! - [`Op`]: the op set, defined once, with typed attributes ([`ops`]).
//! - [`DType`], [`Shape`] with symbolic [`Dim`]s, and [`TypeInfo`].
//! - Shape and dtype inference ([`Op::infer`], [`Graph::specialize`]).
//! - The **reference semantics** of every op ([`Op::eval`]): naive, clear code that is the
//!   oracle for kernels, rewrite rules and whole models.
//! - [`sample`]: random well-typed instances of ops, each family drawing its own, for the
//!   property tests of rewrite rules and of the optimizer.
//!
//! Architecture invariant: this crate knows no file format and no backend.
#![warn(missing_docs)]

mod dtype;
mod error;
mod graph;
pub mod ops;
pub mod sample;
mod shape;
mod tensor;

pub use dtype::DType;
pub use error::{Error, Result};
pub use graph::{Graph, Node, Specialized, Value, ValueDef, ValueId, FOLD_LIMIT};
pub use ops::{InferInput, Op};
pub use shape::{norm_axis, Dim, Shape, TypeInfo};
pub use tensor::{cast_array, ndarray_from, Elem, Tensor};
