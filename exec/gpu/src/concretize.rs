//! A graph made concrete for one input-shape signature: what a GPU plan is made from.

use crate::lower::lower;
use crate::{Error, Result};
use kayak_ir::{Graph, ValueDef, ValueId};

/// `graph` with every value's type made concrete for `shapes` (one per graph input), the
/// values that specialization computes (shape arithmetic) turned into constants and their
/// nodes dropped; `keep` mapped to the new graph's ids.
///
/// # Errors
/// [`Error::Plan`] if the shapes do not type-check.
pub fn concretize(
    graph: &Graph,
    keep: &[ValueId],
    shapes: &[Vec<usize>],
) -> Result<(Graph, Vec<ValueId>)> {
    let spec = graph.specialize(shapes).map_err(Error::Plan)?;
    let mut g = Graph::new();
    let mut map: Vec<Option<ValueId>> = vec![None; graph.values.len()];
    for &v in &graph.inputs {
        map[v] = Some(
            g.add_input(&graph.values[v].name, spec.types[v].clone())
                .map_err(Error::Plan)?,
        );
    }
    for (v, value) in graph.values.iter().enumerate() {
        let t = match (&value.def, &spec.folded[v]) {
            (ValueDef::Const(t), _) => t.clone(),
            (_, Some(t)) => t.clone(),
            _ => continue,
        };
        map[v] = Some(g.add_const(&value.name, t).map_err(Error::Plan)?);
    }
    for node in &graph.nodes {
        if node.outputs.iter().all(|&o| map[o].is_some()) {
            continue;
        }
        let ins: Vec<ValueId> = node
            .inputs
            .iter()
            .map(|&i| {
                map[i].ok_or_else(|| {
                    Error::Plan(kayak_ir::Error::Graph(format!(
                        "{}: input {} not computed",
                        node.origin, graph.values[i].name
                    )))
                })
            })
            .collect::<Result<_>>()?;
        let names: Vec<&str> = node
            .outputs
            .iter()
            .map(|&o| graph.values[o].name.as_str())
            .collect();
        let outs = g
            .add_node(node.op.clone(), ins, &names, &node.origin)
            .map_err(Error::Plan)?;
        for (&o, n) in node.outputs.iter().zip(outs) {
            map[o] = Some(n);
        }
    }
    let keep = keep
        .iter()
        .map(|&k| {
            map[k].ok_or_else(|| {
                Error::Plan(kayak_ir::Error::Graph(format!(
                    "kept value {} not computed",
                    graph.values[k].name
                )))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    g.outputs = keep.clone();
    Ok((g, keep))
}

/// Per node of a concrete graph: whether it has a device lowering.
pub fn device_support(g: &Graph) -> Vec<bool> {
    (0..g.nodes.len()).map(|k| lower(g, k).is_some()).collect()
}
