//! From an `ir::Graph` into the e-graph.

use crate::analysis::{Data, KAnalysis, KGraph};
use crate::language::{has_attrs, Attrs, Node};
use crate::{Error, Result};
use egg::{Id, Symbol};
use kayak_ir::{Graph, ValueDef, ValueId};
use std::collections::HashMap;

/// An e-graph made from a graph, with the classes of the values to keep.
pub struct Lifted {
    /// The e-graph.
    pub egraph: KGraph,
    /// Classes of the kept values, in order.
    pub roots: Vec<Id>,
    /// Class of every graph value.
    pub classes: Vec<Id>,
    /// Names of the constants in the analysis' table (weights keep their model names).
    pub const_names: Vec<String>,
    /// The e-node added for each node of the graph (to cost the graph as it was).
    pub original: Vec<Node>,
}

/// Adds an op node for `op` with tensor children (the attribute leaf is added first when
/// the op has attributes).
pub fn add_op(egraph: &mut KGraph, op: &kayak_ir::Op, inputs: &[Id]) -> Id {
    let mut children = Vec::with_capacity(inputs.len() + 1);
    if has_attrs(op) {
        children.push(egraph.add(Node::Attr(Attrs::new(op.clone()))));
    }
    children.extend_from_slice(inputs);
    egraph.add(Node::Op(Symbol::from(op.name()), children))
}

/// Lifts `g` into a fresh e-graph; `keep` are the values the caller needs (outputs and
/// fetched variables).
pub fn lift(g: &Graph, keep: &[ValueId], fold: bool) -> Result<Lifted> {
    let inputs = g.inputs.iter().map(|&v| g.values[v].ty.clone()).collect();
    let mut egraph = KGraph::new(KAnalysis {
        inputs,
        fold,
        ..Default::default()
    });
    let mut const_names = Vec::new();
    let mut classes: Vec<Option<Id>> = vec![None; g.values.len()];
    let mut original = Vec::with_capacity(g.nodes.len());
    let mut const_index: HashMap<*const kayak_ir::Tensor, u32> = HashMap::new();
    for (k, &v) in g.inputs.iter().enumerate() {
        classes[v] = Some(egraph.add(Node::Input(k as u32)));
    }
    for (v, val) in g.values.iter().enumerate() {
        if let ValueDef::Const(t) = &val.def {
            let k = *const_index
                .entry(std::sync::Arc::as_ptr(t))
                .or_insert_with(|| {
                    // The model's weights are distinct tensors: no need to hash their contents.
                    egraph.analysis.consts.push(t.clone());
                    let k = (egraph.analysis.consts.len() - 1) as u32;
                    if k as usize >= const_names.len() {
                        const_names.resize(k as usize + 1, String::new());
                        const_names[k as usize] = val.name.clone();
                    }
                    k
                });
            classes[v] = Some(egraph.add(Node::Const(k)));
        }
    }
    for node in &g.nodes {
        let ins: Vec<Id> = node
            .inputs
            .iter()
            .map(|&i| {
                classes[i].ok_or_else(|| {
                    Error::Lift(format!(
                        "{}: input `{}` has no class",
                        node.origin, g.values[i].name
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let id = add_op(&mut egraph, &node.op, &ins);
        original.push(
            egraph[id]
                .nodes
                .iter()
                .find(|n| matches!(n, Node::Op(k, _) if k.as_str() == node.op.name()))
                .cloned()
                .unwrap_or(Node::Input(0)),
        );
        if let Data::Invalid(why) = &egraph[id].data {
            return Err(Error::Lift(format!("{}: {why}", node.origin)));
        }
        if node.outputs.len() == 1 {
            classes[node.outputs[0]] = Some(id);
        } else {
            for (k, &o) in node.outputs.iter().enumerate() {
                classes[o] = Some(egraph.add(Node::Get(k as u32, [id])));
            }
        }
    }
    egraph.rebuild();
    let classes: Vec<Id> = classes
        .into_iter()
        .map(|c| c.unwrap_or(Id::from(0usize)))
        .collect();
    let roots = keep.iter().map(|&k| egraph.find(classes[k])).collect();
    // Constants folded while lifting get names too.
    while const_names.len() < egraph.analysis.consts.len() {
        const_names.push(format!("folded_{}", const_names.len()));
    }
    Ok(Lifted {
        egraph,
        roots,
        classes,
        const_names,
        original,
    })
}
