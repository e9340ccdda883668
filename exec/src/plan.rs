//! Execution plans.

use crate::{Error, Result};
use kayak_ir::{Graph, Tensor, TypeInfo, ValueDef, ValueId};
use std::sync::Arc;

/// Where a step reads a value from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Graph input `k`.
    Input(usize),
    /// A constant of the graph (a weight).
    Const(Arc<Tensor>),
    /// A value folded while planning (shape arithmetic).
    Folded(Arc<Tensor>),
    /// A value computed during the run, held in [`crate::RunState`] slot `id`.
    Computed(ValueId),
}

/// One node to run.
#[derive(Debug, Clone)]
pub struct Step {
    /// Node index in the graph.
    pub node: usize,
    /// Where each input comes from.
    pub inputs: Vec<Source>,
    /// Values computed after this step that are never read again (freed right away).
    pub frees: Vec<ValueId>,
}

/// An immutable plan for one input-shape signature; shared between runs and predictors.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Input shapes this plan is for.
    pub input_shapes: Vec<Vec<usize>>,
    /// Steps in execution order (nodes that only compute folded values are dropped).
    pub steps: Vec<Step>,
    /// Concrete type of every value.
    pub types: Vec<TypeInfo>,
    /// Where each requested output comes from.
    pub outputs: Vec<Source>,
}

impl Plan {
    /// Plans `graph` for concrete input shapes, producing `keep` (graph outputs and any
    /// fetched variables) at the end.
    pub fn new(graph: &Graph, input_shapes: &[Vec<usize>], keep: &[ValueId]) -> Result<Plan> {
        let spec = graph.specialize(input_shapes).map_err(Error::Plan)?;
        let source = |v: ValueId| -> Source {
            match &graph.values[v].def {
                ValueDef::Input => Source::Input(
                    graph
                        .inputs
                        .iter()
                        .position(|&i| i == v)
                        .expect("graph input"),
                ),
                ValueDef::Const(t) => Source::Const(t.clone()),
                ValueDef::Node { .. } => match &spec.folded[v] {
                    Some(t) => Source::Folded(t.clone()),
                    None => Source::Computed(v),
                },
            }
        };
        // Liveness: which nodes are needed for `keep`, walking backwards.
        let mut needed = vec![false; graph.values.len()];
        for &k in keep {
            needed[k] = true;
        }
        let mut run_node = vec![false; graph.nodes.len()];
        for (n, node) in graph.nodes.iter().enumerate().rev() {
            let computed = node
                .outputs
                .iter()
                .any(|&o| needed[o] && spec.folded[o].is_none());
            if computed {
                run_node[n] = true;
                for &i in &node.inputs {
                    needed[i] = true;
                }
            }
        }
        // Last reader of each computed value.
        let mut last_use: Vec<Option<usize>> = vec![None; graph.values.len()];
        for (n, node) in graph.nodes.iter().enumerate() {
            if run_node[n] {
                for &i in &node.inputs {
                    last_use[i] = Some(n);
                }
            }
        }
        let kept: std::collections::HashSet<ValueId> = keep.iter().copied().collect();
        let mut steps = Vec::new();
        for (n, node) in graph.nodes.iter().enumerate() {
            if !run_node[n] {
                continue;
            }
            let inputs = node.inputs.iter().map(|&i| source(i)).collect();
            let mut frees: Vec<ValueId> = Vec::new();
            // Inputs read for the last time here, and outputs nobody reads.
            for &v in node.inputs.iter().chain(&node.outputs) {
                let is_computed = matches!(graph.values[v].def, ValueDef::Node { .. })
                    && spec.folded[v].is_none();
                let dead = match last_use[v] {
                    Some(l) => l == n && node.inputs.contains(&v),
                    None => node.outputs.contains(&v),
                };
                if is_computed && dead && !kept.contains(&v) && !frees.contains(&v) {
                    frees.push(v);
                }
            }
            steps.push(Step {
                node: n,
                inputs,
                frees,
            });
        }
        let outputs = keep.iter().map(|&k| source(k)).collect();
        Ok(Plan {
            input_shapes: input_shapes.to_vec(),
            steps,
            types: spec.types,
            outputs,
        })
    }
}
