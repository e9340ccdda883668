//! Kayak's graph optimizer: the e-graph language derived from `kayak-ir`'s op set, its
//! analysis (types, constants, attributes), rule files with named conditions and appliers,
//! equality saturation, cost-based DAG extraction, and lowering back to an `ir::Graph`.
#![warn(missing_docs)]

mod analysis;
mod language;

pub use analysis::{check_node, node_op, Data, KAnalysis, KGraph, FOLD_LIMIT};
pub use language::{has_attrs, param_free, Attrs, Node, UnknownKind, KINDS};
