//! From an extracted choice back to an `ir::Graph`, weights materialized.

use crate::analysis::{node_op, KGraph};
use crate::extract::Choice;
use crate::language::Node;
use crate::{Error, Result};
use egg::{Id, Language};
use kayak_ir::{Graph, ValueId};
use std::collections::HashMap;

/// Builds the graph for `roots` with the original graph inputs. Returns the graph, the
/// values of the roots, and per new node the e-node it came from.
pub fn lower(
    egraph: &KGraph,
    choice: &Choice,
    roots: &[Id],
    input_names: &[String],
    const_names: &[String],
) -> Result<(Graph, Vec<ValueId>, Vec<Node>)> {
    let mut cx = Lowering {
        egraph,
        choice,
        g: Graph::new(),
        inputs: vec![],
        const_names,
        memo: HashMap::new(),
        counter: 0,
        origin: vec![],
    };
    for (k, ty) in egraph.analysis.inputs.iter().enumerate() {
        let v =
            cx.g.add_input(&input_names[k], ty.clone())
                .map_err(|e| Error::Lower(e.to_string()))?;
        cx.inputs.push(v);
    }
    let mut keep = Vec::with_capacity(roots.len());
    for &r in roots {
        keep.push(cx.build(egraph.find(r))?[0]);
    }
    cx.g.validate().map_err(|e| Error::Lower(e.to_string()))?;
    Ok((cx.g, keep, cx.origin))
}

struct Lowering<'a> {
    egraph: &'a KGraph,
    choice: &'a Choice,
    g: Graph,
    inputs: Vec<ValueId>,
    const_names: &'a [String],
    memo: HashMap<Id, Vec<ValueId>>,
    counter: usize,
    origin: Vec<Node>,
}

impl Lowering<'_> {
    fn unique(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        while self.g.value_id(&name).is_some() {
            self.counter += 1;
            name = format!("{base}.{}", self.counter);
        }
        self.counter += 1;
        name
    }

    fn build(&mut self, id: Id) -> Result<Vec<ValueId>> {
        if let Some(v) = self.memo.get(&id) {
            return Ok(v.clone());
        }
        let eg = self.egraph;
        let &i = self
            .choice
            .node
            .get(&id)
            .ok_or_else(|| Error::Lower(format!("class {id} has no chosen node")))?;
        let node = &eg[id].nodes[i];
        let out = match node {
            Node::Input(k) => vec![self.inputs[*k as usize]],
            Node::Const(k) => {
                let t = eg.analysis.consts[*k as usize].clone();
                let base = self
                    .const_names
                    .get(*k as usize)
                    .filter(|n| !n.is_empty())
                    .cloned()
                    .unwrap_or_else(|| format!("folded_{k}"));
                let name = self.unique(&base);
                vec![self
                    .g
                    .add_const(&name, t)
                    .map_err(|e| Error::Lower(e.to_string()))?]
            }
            Node::Attr(_) => return Err(Error::Lower("an attribute leaf used as a tensor".into())),
            Node::Get(k, [c]) => {
                let tuple = self.build(eg.find(*c))?;
                vec![*tuple
                    .get(*k as usize)
                    .ok_or_else(|| Error::Lower(format!("get{k} out of range")))?]
            }
            Node::Op(kind, children) => {
                let (op, tensors) = node_op(eg, kind.as_str(), children)
                    .ok_or_else(|| Error::Lower(format!("{kind}: no attributes")))?;
                let op = op.into_owned();
                let mut ins = Vec::with_capacity(tensors.len());
                for &c in tensors {
                    ins.push(self.build(eg.find(c))?[0]);
                }
                let mut names = Vec::with_capacity(op.num_outputs());
                for _ in 0..op.num_outputs() {
                    let base = format!("{}_{}", op.name(), self.counter);
                    names.push(self.unique(&base));
                }
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let label = format!("optimized {} (class {id})", op.name());
                self.origin.push(node.clone().map_children(|c| eg.find(c)));
                self.g
                    .add_node(op, ins, &refs, &label)
                    .map_err(|e| Error::Lower(e.to_string()))?
            }
        };
        self.memo.insert(id, out.clone());
        Ok(out)
    }
}
