//! Random instantiation of a rule's left side: a concrete, well-typed graph whose outputs
//! are the pattern's roots.
//!
//! The pattern is built bottom-up (egg's pattern ASTs list children before parents). At each
//! op node the children already built fix some input types; the op family's sampler
//! (`kayak_ir::sample`, defined with the op) draws the attributes and the types of the
//! inputs still free (pattern variables seen for the first time) so the node type-checks —
//! a conv's weight from its input's channels, a bias from the output channels, a broadcast
//! operand from the other operand. A variable seen again must reuse its value, so
//! non-linear patterns (`(mul ?x (f ?x))`) hold by construction.

use super::Rng;
use egg::{ENodeOrVar, PatternAst, Var};
pub use kayak_ir::sample::fit;
use kayak_ir::{Graph, Op, Tensor, ValueId};
use std::collections::HashMap;
use std::sync::Arc;

use crate::language::{param_free, Node};

pub use kayak_ir::sample::{Hint, Leaf, ValKind};

/// A variable's value in an instance.
#[derive(Debug, Clone)]
pub enum Given {
    /// Attributes.
    Attr(Op),
    /// A tensor, as a constant or a graph input.
    Tensor {
        /// Its value.
        value: Tensor,
        /// Made a constant (else a graph input).
        is_const: bool,
    },
}

/// A concrete instance of one or more patterns.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The graph; its outputs are the patterns' roots.
    pub graph: Graph,
    /// Values of the graph inputs.
    pub inputs: Vec<Tensor>,
    /// Each variable's graph value (tensor variables) or attributes.
    pub vars: Vec<(Var, Given, Option<ValueId>)>,
}

/// Builds an instance of `patterns` (one for an ordinary rule, several for a multi-pattern
/// one). Variables in `given` take those values; the others are drawn. `None` when the
/// draw does not type-check (the caller draws again).
pub fn instantiate(
    patterns: &[&PatternAst<Node>],
    r: &mut Rng,
    size: usize,
    hints: &HashMap<Var, Hint>,
    given: &HashMap<Var, Given>,
) -> Option<Instance> {
    let mut g = Graph::new();
    let mut inputs = Vec::new();
    let mut vars: HashMap<Var, (Given, Option<ValueId>)> = HashMap::new();
    let mut order: Vec<Var> = Vec::new();
    let mut counter = 0usize;
    let mut roots = Vec::new();
    for ast in patterns {
        let nodes = ast.as_ref();
        let mut built: Vec<Vec<ValueId>> = vec![vec![]; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            let ENodeOrVar::ENode(node) = n else { continue };
            match node {
                Node::Get(k, [c]) => {
                    built[i] = vec![*built[usize::from(*c)].get(*k as usize)?];
                }
                Node::Op(kind, children) => {
                    let kind = kind.as_str();
                    let attr_free = param_free(kind).is_some();
                    let (attr_child, tensor_children) = if attr_free {
                        (None, &children[..])
                    } else {
                        (Some(*children.first()?), &children[1..])
                    };
                    let attr_var = match attr_child.map(|c| &nodes[usize::from(c)]) {
                        Some(ENodeOrVar::Var(v)) => Some(*v),
                        Some(_) => return None,
                        None => None,
                    };
                    let given_attr = attr_var.and_then(|v| {
                        match vars
                            .get(&v)
                            .or(given.get(&v).map(|g| (g.clone(), None)).as_ref())
                        {
                            Some((Given::Attr(op), _)) => Some(op.clone()),
                            _ => None,
                        }
                    });
                    let mut known = Vec::with_capacity(tensor_children.len());
                    let mut child_vals: Vec<Option<ValueId>> = Vec::new();
                    let mut child_hints = Vec::new();
                    let mut free_vars: Vec<Option<Var>> = Vec::new();
                    for &c in tensor_children {
                        match &nodes[usize::from(c)] {
                            ENodeOrVar::ENode(_) => {
                                let v = *built[usize::from(c)].first()?;
                                known.push(g.values[v].ty.shape.to_known());
                                child_vals.push(Some(v));
                                child_hints.push(Hint::Any);
                                free_vars.push(None);
                            }
                            ENodeOrVar::Var(var) => {
                                if let Some((_, Some(v))) = vars.get(var) {
                                    known.push(g.values[*v].ty.shape.to_known());
                                    child_vals.push(Some(*v));
                                    free_vars.push(None);
                                } else if let Some(Given::Tensor { value, is_const }) =
                                    given.get(var)
                                {
                                    counter += 1;
                                    let name = format!("{}{counter}", &var.to_string()[1..]);
                                    let v = if *is_const {
                                        g.add_const(&name, Arc::new(value.clone())).ok()?
                                    } else {
                                        inputs.push(value.clone());
                                        g.add_input(&name, value.type_info()).ok()?
                                    };
                                    vars.insert(
                                        *var,
                                        (
                                            Given::Tensor {
                                                value: value.clone(),
                                                is_const: *is_const,
                                            },
                                            Some(v),
                                        ),
                                    );
                                    order.push(*var);
                                    known.push(Some(value.shape().to_vec()));
                                    child_vals.push(Some(v));
                                    free_vars.push(None);
                                } else {
                                    known.push(None);
                                    child_vals.push(None);
                                    free_vars.push(Some(*var));
                                }
                                child_hints.push(hints.get(var).copied().unwrap_or(Hint::Any));
                            }
                        }
                    }
                    let (op, leaves) = if given_attr.is_some() && known.iter().all(Option::is_some)
                    {
                        (given_attr.clone()?, vec![None; known.len()])
                    } else if attr_free && known.iter().all(Option::is_some) {
                        (param_free(kind)?, vec![None; known.len()])
                    } else {
                        fit(kind, r, size, given_attr.as_ref(), &known, &child_hints)?
                    };
                    if op.name() != kind {
                        return None;
                    }
                    for (k, l) in leaves.into_iter().enumerate() {
                        if child_vals[k].is_some() {
                            continue;
                        }
                        let var = free_vars[k]?;
                        let l = l?;
                        let value = leaf_value(r, &l)?;
                        let is_const = match child_hints[k] {
                            Hint::Const | Hint::Scalar => true,
                            Hint::Input => false,
                            Hint::Any => !matches!(l.kind, ValKind::Ids(_)) && r.coin(),
                        };
                        counter += 1;
                        let name = format!("{}{counter}", &var.to_string()[1..]);
                        let v = if is_const {
                            g.add_const(&name, Arc::new(value.clone())).ok()?
                        } else {
                            inputs.push(value.clone());
                            g.add_input(&name, value.type_info()).ok()?
                        };
                        vars.insert(var, (Given::Tensor { value, is_const }, Some(v)));
                        order.push(var);
                        child_vals[k] = Some(v);
                    }
                    if let Some(av) = attr_var {
                        if let std::collections::hash_map::Entry::Vacant(e) = vars.entry(av) {
                            e.insert((Given::Attr(op.clone()), None));
                            order.push(av);
                        }
                    }
                    let ins: Vec<ValueId> = child_vals.into_iter().collect::<Option<_>>()?;
                    counter += 1;
                    let outs = op.num_outputs();
                    let names: Vec<String> =
                        (0..outs).map(|k| format!("{kind}_{counter}_{k}")).collect();
                    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    built[i] = g.add_node(op, ins, &name_refs, &names[0]).ok()?;
                }
                _ => return None,
            }
        }
        roots.push(*built.last()?.first()?);
    }
    for &root in &roots {
        g.add_output(root);
    }
    let vars = order
        .into_iter()
        .map(|v| {
            let (gv, id) = vars[&v].clone();
            (v, gv, id)
        })
        .collect();
    Some(Instance {
        graph: g,
        inputs,
        vars,
    })
}

/// Draws the values of a leaf.
pub fn leaf_value(r: &mut Rng, l: &Leaf) -> Option<Tensor> {
    l.value(r)
}
