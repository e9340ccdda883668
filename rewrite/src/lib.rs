//! Kayak's graph optimizer.
//!
//! - [`Node`]: the e-graph language, derived from `kayak-ir`'s op set; attributes are typed
//!   leaves that patterns bind (`(conv2d ?a ?x ?w)`).
//! - [`KAnalysis`]: per-class type, constant value and attributes; conditions read only it.
//!   Constant subgraphs fold as they are built.
//! - Rule files ([`rules`]): `name: lhs => rhs if cond(...) let ?v = applier(...)`, the
//!   built-ins in `rewrite/rules/*.rules` embedded, user files loaded at run time; named
//!   conditions and appliers in the [`Registry`].
//! - [`optimize`]: lift, saturate (egg, backoff scheduler, node/iteration/time limits),
//!   extract the cheapest DAG under a backend's [`CostModel`] (CPU, or a GPU roofline
//!   with launch costs, SM occupancy and the device's kernel set), lower back to an
//!   `ir::Graph`.
//!
//! - [`verify`]: property-based verification — random instances of each rule's left side
//!   evaluated on both sides with the reference semantics, shrunk counterexamples, and
//!   random graphs through the whole pipeline (`kayak rules verify` on the command line).
//!
//! Every rewrite must produce the matched class' exact type (checked before any merge).
#![warn(missing_docs)]

mod analysis;
pub mod cost;
pub mod dot;
pub mod extract;
mod language;
pub mod lift;
pub mod lower;
mod optimize;
pub mod place;
mod registry;
pub mod rules;
pub mod verify;

pub use analysis::{check_node, node_op, Data, KAnalysis, KGraph, FOLD_LIMIT};
pub use cost::{CostModel, Occupancy, Offload};
pub use language::{has_attrs, is_kind, kinds, param_free, Attrs, Node, UnknownKind};
pub use optimize::{
    optimize, saturate, Limits, Optimized, Report, RuleSet, Saturated, BUILTIN_RULES,
};
pub use place::{place, place_with, Placement, Side};
pub use registry::{attr_leaf, const_leaf, ApplierFn, Condition, Registry};

/// Optimizer errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rule that does not parse or names something unknown.
    #[error("{at}: {msg}")]
    Rule {
        /// `file:line`.
        at: String,
        /// What is wrong.
        msg: String,
    },
    /// The graph could not be lifted.
    #[error("cannot lift the graph: {0}")]
    Lift(String),
    /// Extraction failed.
    #[error("extraction failed: {0}")]
    Extract(String),
    /// Lowering failed.
    #[error("cannot lower the optimized graph: {0}")]
    Lower(String),
}

/// Result with the optimizer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
