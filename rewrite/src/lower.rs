//! From an extracted choice back to an `ir::Graph`, weights materialized.

use crate::analysis::{node_op, KGraph};
use crate::extract::Choice;
use crate::language::Node;
use crate::{Error, Result};
use egg::Id;
use kayak_ir::{Graph, ValueId};
use std::collections::HashMap;

/// Builds the graph for `roots` (named `root_names`), with the original graph inputs.
pub fn lower(
    egraph: &KGraph,
    choice: &Choice,
    roots: &[Id],
    input_names: &[String],
    const_names: &[String],
) -> Result<(Graph, Vec<ValueId>)> {
    let mut g = Graph::new();
    let mut inputs = Vec::new();
    for (k, ty) in egraph.analysis.inputs.iter().enumerate() {
        inputs.push(
            g.add_input(&input_names[k], ty.clone())
                .map_err(|e| Error::Lower(e.to_string()))?,
        );
    }
    let mut memo: HashMap<Id, Vec<ValueId>> = HashMap::new();
    let mut counter = 0usize;
    let mut keep = Vec::with_capacity(roots.len());
    for &r in roots {
        let v = build(
            egraph,
            choice,
            egraph.find(r),
            &mut g,
            &inputs,
            const_names,
            &mut memo,
            &mut counter,
            0,
        )?;
        keep.push(v[0]);
    }
    g.validate().map_err(|e| Error::Lower(e.to_string()))?;
    Ok((g, keep))
}

#[allow(clippy::too_many_arguments)]
fn build(
    egraph: &KGraph,
    choice: &Choice,
    id: Id,
    g: &mut Graph,
    inputs: &[ValueId],
    const_names: &[String],
    memo: &mut HashMap<Id, Vec<ValueId>>,
    counter: &mut usize,
    depth: usize,
) -> Result<Vec<ValueId>> {
    if let Some(v) = memo.get(&id) {
        return Ok(v.clone());
    }
    if depth > 100_000 {
        return Err(Error::Lower("graph too deep (cycle?)".into()));
    }
    let &i = choice
        .node
        .get(&id)
        .ok_or_else(|| Error::Lower(format!("class {id} has no chosen node")))?;
    let node = &egraph[id].nodes[i];
    let out = match node {
        Node::Input(k) => vec![inputs[*k as usize]],
        Node::Const(k) => {
            let t = egraph.analysis.consts[*k as usize].clone();
            let base = const_names
                .get(*k as usize)
                .filter(|n| !n.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("folded_{k}"));
            let name = unique(g, &base, counter);
            vec![g
                .add_const(&name, t)
                .map_err(|e| Error::Lower(e.to_string()))?]
        }
        Node::Attr(_) => return Err(Error::Lower("an attribute leaf used as a tensor".into())),
        Node::Get(k, [c]) => {
            let tuple = build(
                egraph,
                choice,
                egraph.find(*c),
                g,
                inputs,
                const_names,
                memo,
                counter,
                depth + 1,
            )?;
            vec![*tuple
                .get(*k as usize)
                .ok_or_else(|| Error::Lower(format!("get{k} out of range")))?]
        }
        Node::Op(kind, children) => {
            let (op, tensors) = node_op(egraph, kind.as_str(), children)
                .ok_or_else(|| Error::Lower(format!("{kind}: no attributes")))?;
            let op = op.into_owned();
            let mut ins = Vec::with_capacity(tensors.len());
            for &c in tensors {
                ins.push(
                    build(
                        egraph,
                        choice,
                        egraph.find(c),
                        g,
                        inputs,
                        const_names,
                        memo,
                        counter,
                        depth + 1,
                    )?[0],
                );
            }
            let n = op.num_outputs();
            let names: Vec<String> = (0..n)
                .map(|_| unique(g, &format!("{}_{}", op.name(), *counter), counter))
                .collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let origin = format!("optimized {} (class {id})", op.name());
            g.add_node(op, ins, &refs, &origin)
                .map_err(|e| Error::Lower(e.to_string()))?
        }
    };
    memo.insert(id, out.clone());
    Ok(out)
}

fn unique(g: &Graph, base: &str, counter: &mut usize) -> String {
    let mut name = base.to_string();
    while g.value_id(&name).is_some() {
        *counter += 1;
        name = format!("{base}.{counter}");
    }
    *counter += 1;
    name
}
