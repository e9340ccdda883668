//! The graph: values (inputs, constants, node outputs) and nodes in execution order.

use crate::ops::{InferInput, Op};
use crate::{Error, Result, Shape, Tensor, TypeInfo};
use std::collections::HashMap;
use std::sync::Arc;

/// Index of a value in [`Graph::values`].
pub type ValueId = usize;

/// Where a value comes from.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub enum ValueDef {
    /// A graph input, fed at run time.
    Input,
    /// A constant (a weight), shared between predictors.
    Const(Arc<Tensor>),
    /// Output `output` of node `node`.
    Node {
        /// Producing node.
        node: usize,
        /// Output position.
        output: usize,
    },
}

/// A value: a tensor flowing through the graph.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct Value {
    /// Name (the model's variable name).
    pub name: String,
    /// Static type, possibly symbolic.
    pub ty: TypeInfo,
    /// Producer.
    pub def: ValueDef,
}

/// An op applied to values.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct Node {
    /// The op.
    pub op: Op,
    /// Input values, positional.
    pub inputs: Vec<ValueId>,
    /// Output values.
    pub outputs: Vec<ValueId>,
    /// Where it came from (for errors), e.g. `block 0 op 12 (conv2d)`.
    pub origin: String,
}

/// A dataflow graph whose nodes are kept in a valid execution (topological) order.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Default)]
pub struct Graph {
    /// Every value.
    pub values: Vec<Value>,
    /// Every node, producers before consumers.
    pub nodes: Vec<Node>,
    /// Graph inputs, in feed order.
    pub inputs: Vec<ValueId>,
    /// Graph outputs, in fetch order.
    pub outputs: Vec<ValueId>,
    names: HashMap<String, ValueId>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    fn push_value(&mut self, name: &str, ty: TypeInfo, def: ValueDef) -> Result<ValueId> {
        if self.names.contains_key(name) {
            return Err(Error::Graph(format!("value `{name}` defined twice")));
        }
        let id = self.values.len();
        self.values.push(Value {
            name: name.to_string(),
            ty,
            def,
        });
        self.names.insert(name.to_string(), id);
        Ok(id)
    }

    /// Adds a graph input.
    pub fn add_input(&mut self, name: &str, ty: TypeInfo) -> Result<ValueId> {
        let id = self.push_value(name, ty, ValueDef::Input)?;
        self.inputs.push(id);
        Ok(id)
    }

    /// Adds a constant.
    pub fn add_const(&mut self, name: &str, t: Arc<Tensor>) -> Result<ValueId> {
        let ty = t.type_info();
        self.push_value(name, ty, ValueDef::Const(t))
    }

    /// Adds a node after every existing one; its output types are inferred now (symbolically).
    pub fn add_node(
        &mut self,
        op: Op,
        inputs: Vec<ValueId>,
        output_names: &[&str],
        origin: &str,
    ) -> Result<Vec<ValueId>> {
        let node = self.nodes.len();
        for &i in &inputs {
            if i >= self.values.len() {
                return Err(Error::Graph(format!(
                    "{origin}: input value {i} does not exist"
                )));
            }
        }
        let tys = {
            let ins: Vec<InferInput<'_>> = inputs
                .iter()
                .map(|&i| InferInput {
                    ty: &self.values[i].ty,
                    value: self.const_value(i),
                })
                .collect();
            op.infer(&ins).map_err(|e| e.at_node(node, origin))?
        };
        if tys.len() != output_names.len() {
            return Err(Error::Graph(format!(
                "{origin}: op {} makes {} outputs, {} named",
                op.name(),
                tys.len(),
                output_names.len()
            )));
        }
        let mut outs = Vec::with_capacity(tys.len());
        for (k, (ty, name)) in tys.into_iter().zip(output_names).enumerate() {
            outs.push(self.push_value(name, ty, ValueDef::Node { node, output: k })?);
        }
        self.nodes.push(Node {
            op,
            inputs,
            outputs: outs.clone(),
            origin: origin.to_string(),
        });
        Ok(outs)
    }

    /// Marks a value as a graph output.
    pub fn add_output(&mut self, v: ValueId) {
        self.outputs.push(v);
    }

    /// Evaluates the graph with the reference semantics of every op ([`Op::eval`]): the
    /// oracle that optimized graphs and fast kernels are checked against. `inputs` are in
    /// [`Graph::inputs`] order; returns the [`Graph::outputs`].
    pub fn evaluate(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::Graph(format!(
                "evaluate: {} inputs given, the graph has {}",
                inputs.len(),
                self.inputs.len()
            )));
        }
        let mut vals: Vec<Option<Tensor>> = vec![None; self.values.len()];
        for (&v, t) in self.inputs.iter().zip(inputs) {
            vals[v] = Some(t.clone());
        }
        for (v, val) in self.values.iter().enumerate() {
            if let ValueDef::Const(t) = &val.def {
                vals[v] = Some((**t).clone());
            }
        }
        for (k, n) in self.nodes.iter().enumerate() {
            let outs = {
                let args = n
                    .inputs
                    .iter()
                    .map(|&i| {
                        vals[i].as_ref().ok_or_else(|| {
                            Error::Graph(format!(
                                "{}: input `{}` is not computed before it",
                                n.origin, self.values[i].name
                            ))
                        })
                    })
                    .collect::<Result<Vec<&Tensor>>>()?;
                n.op.eval(&args).map_err(|e| e.at_node(k, &n.origin))?
            };
            for (&o, t) in n.outputs.iter().zip(outs) {
                vals[o] = Some(t);
            }
        }
        self.outputs
            .iter()
            .map(|&o| {
                vals[o].clone().ok_or_else(|| {
                    Error::Graph(format!(
                        "output `{}` is never computed",
                        self.values[o].name
                    ))
                })
            })
            .collect()
    }

    /// The value with this name.
    pub fn value_id(&self, name: &str) -> Option<ValueId> {
        self.names.get(name).copied()
    }

    /// The constant tensor of a value, if it is one.
    pub fn const_value(&self, v: ValueId) -> Option<&Tensor> {
        match &self.values[v].def {
            ValueDef::Const(t) => Some(t),
            _ => None,
        }
    }

    /// Checks the structure: every input defined before use, outputs exist, the node order
    /// is topological (verified with petgraph), and no cycle.
    pub fn validate(&self) -> Result<()> {
        let mut dag = petgraph::graph::DiGraph::<usize, ()>::new();
        let idx: Vec<_> = (0..self.nodes.len()).map(|i| dag.add_node(i)).collect();
        for (n, node) in self.nodes.iter().enumerate() {
            for &i in &node.inputs {
                if let ValueDef::Node { node: p, .. } = self.values[i].def {
                    if p >= n {
                        return Err(Error::Graph(format!(
                            "{}: uses `{}` before it is computed",
                            node.origin, self.values[i].name
                        )));
                    }
                    dag.add_edge(idx[p], idx[n], ());
                }
            }
        }
        petgraph::algo::toposort(&dag, None).map_err(|c| {
            Error::Graph(format!(
                "cycle through node {}",
                self.nodes[dag[c.node_id()]].origin
            ))
        })?;
        for &o in &self.outputs {
            if o >= self.values.len() {
                return Err(Error::Graph(format!("output value {o} does not exist")));
            }
        }
        Ok(())
    }

    /// Total bytes of constants.
    pub fn const_bytes(&self) -> usize {
        self.values
            .iter()
            .filter_map(|v| match &v.def {
                ValueDef::Const(t) => Some(t.byte_len()),
                _ => None,
            })
            .sum()
    }

    /// Types every value for concrete input shapes and folds what the shapes decide.
    ///
    /// A value whose shape depends on run-time data (a `range` whose end is computed from an
    /// input) keeps `Dim::Unknown` dims; the executor checks what is known.
    ///
    /// Nodes whose inputs are all known values and whose output is small (shape arithmetic:
    /// `shape → slice → concat → reshape` chains, `fill_constant`, ...) are evaluated here
    /// with their reference semantics; the result is part of the specialization, so runs
    /// for this shape signature skip them.
    pub fn specialize(&self, input_shapes: &[Vec<usize>]) -> Result<Specialized> {
        if input_shapes.len() != self.inputs.len() {
            return Err(Error::Graph(format!(
                "{} input shapes for {} inputs",
                input_shapes.len(),
                self.inputs.len()
            )));
        }
        let mut types: Vec<TypeInfo> = self.values.iter().map(|v| v.ty.clone()).collect();
        let mut folded: Vec<Option<Arc<Tensor>>> = vec![None; self.values.len()];
        for (&v, s) in self.inputs.iter().zip(input_shapes) {
            types[v] = TypeInfo {
                dtype: types[v].dtype,
                shape: Shape::known(s),
            };
        }
        for (n, node) in self.nodes.iter().enumerate() {
            let value_of =
                |i: ValueId| -> Option<&Tensor> { self.const_value(i).or(folded[i].as_deref()) };
            let ins: Vec<InferInput<'_>> = node
                .inputs
                .iter()
                .map(|&i| InferInput {
                    ty: &types[i],
                    value: value_of(i),
                })
                .collect();
            let outs = node
                .op
                .infer(&ins)
                .map_err(|e| e.at_node(n, &node.origin))?;
            let small = outs
                .iter()
                .all(|t| t.shape.numel().known().is_some_and(|n| n <= FOLD_LIMIT));
            let results = if small {
                node.op
                    .fold(&ins)
                    .transpose()
                    .map_err(|e| e.at_node(n, &node.origin))?
            } else {
                None
            };
            for (k, (&o, ty)) in node.outputs.iter().zip(outs).enumerate() {
                types[o] = ty;
                if let Some(r) = &results {
                    folded[o] = Some(Arc::new(r[k].clone()));
                }
            }
        }
        Ok(Specialized { types, folded })
    }
}

/// Largest output (in elements) folded while specializing.
pub const FOLD_LIMIT: usize = 4096;

/// A graph typed for one input-shape signature.
#[derive(Debug, Clone)]
pub struct Specialized {
    /// Concrete type of every value.
    pub types: Vec<TypeInfo>,
    /// Values computed while specializing (shape arithmetic), by value id.
    pub folded: Vec<Option<Arc<Tensor>>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{ListInput, Op, Reshape, ShapeOf};
    use crate::{DType, Dim};

    #[test]
    fn specialize_folds_shape_chains() {
        let mut g = Graph::new();
        let x = g
            .add_input(
                "x",
                TypeInfo {
                    dtype: DType::F32,
                    shape: Shape(vec![Dim::Sym("n".into()), Dim::Known(6)]),
                },
            )
            .unwrap();
        let s = g
            .add_node(Op::Shape(ShapeOf { i64: false }), vec![x], &["s"], "shape")
            .unwrap()[0];
        let r = g
            .add_node(
                Op::Reshape(Reshape {
                    shape: vec![],
                    shape_input: ListInput::Tensor,
                }),
                vec![x, s],
                &["r"],
                "reshape",
            )
            .unwrap()[0];
        g.add_output(r);
        g.validate().unwrap();
        assert_eq!(g.values[r].ty.shape.rank(), 2);
        let sp = g.specialize(&[vec![3, 6]]).unwrap();
        assert_eq!(sp.types[r].shape, Shape::known(&[3, 6]));
        assert_eq!(sp.folded[s].as_ref().unwrap().to_i64_vec(), vec![3, 6]);
        assert!(sp.folded[r].is_none());
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let mut g = Graph::new();
        g.add_input("x", TypeInfo::known(DType::F32, &[1])).unwrap();
        assert!(g.add_input("x", TypeInfo::known(DType::F32, &[1])).is_err());
    }
}
