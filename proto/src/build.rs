//! Building a [`Graph`] from a format's converted ops, by variable name: the one loop every
//! importer shares. Weights enter the graph when first read; a variable written again (Paddle's
//! in-place ops) gets a fresh value while its name keeps pointing at the latest; with `fold`
//! (ONNX) an op whose inputs are all known values is evaluated at import, so shape
//! subgraphs (`Shape`, `Gather`, `Concat` of constants) become the constants that attribute
//! inputs need.

use crate::{Error, OpLoc, Result};
use kayak_ir::ops::InferInput;
use kayak_ir::{Graph, Op, Tensor, TypeInfo, ValueDef, ValueId};
use std::collections::HashMap;
use std::sync::Arc;

/// One converted op.
pub struct Converted {
    /// The IR op.
    pub op: Op,
    /// Input variable names, positional as the op expects.
    pub inputs: Vec<String>,
    /// Output variable names.
    pub outputs: Vec<String>,
}

/// Largest result (elements) an import-time fold may produce.
const FOLD_LIMIT: usize = 1 << 22;

/// A graph under construction.
pub(crate) struct Builder {
    pub g: Graph,
    /// Each name's latest value.
    pub defs: HashMap<String, ValueId>,
    /// Weights not read yet (added to the graph on first read).
    pending: HashMap<String, Arc<Tensor>>,
    versions: HashMap<String, usize>,
    fold: bool,
}

impl Builder {
    pub fn new(weights: HashMap<String, Arc<Tensor>>, fold: bool) -> Builder {
        Builder {
            g: Graph::new(),
            defs: HashMap::new(),
            pending: weights,
            versions: HashMap::new(),
            fold,
        }
    }

    /// A weight or folded value known under `name` (not yet added, or a graph constant).
    pub fn known(&self, name: &str) -> Option<Arc<Tensor>> {
        if let Some(t) = self.pending.get(name) {
            return Some(t.clone());
        }
        match &self.g.values[*self.defs.get(name)?].def {
            ValueDef::Const(t) => Some(t.clone()),
            _ => None,
        }
    }

    /// The type of `name`: its value's, or a known constant's.
    pub fn type_of(&self, name: &str) -> Option<kayak_ir::TypeInfo> {
        match self.defs.get(name) {
            Some(&id) => Some(self.g.values[id].ty.clone()),
            None => self.known(name).map(|t| t.type_info()),
        }
    }

    /// True if `name` is defined (a value, or a weight not read yet).
    pub fn defined(&self, name: &str) -> bool {
        self.defs.contains_key(name) || self.pending.contains_key(name)
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, ty: TypeInfo, at: &OpLoc) -> Result<()> {
        let id = self.g.add_input(name, ty).map_err(|source| Error::Ir {
            at: at.clone(),
            source,
        })?;
        self.defs.insert(name.to_string(), id);
        Ok(())
    }

    /// Records a known value (a Constant node's output, an initializer) under `name`.
    pub fn set_known(&mut self, name: &str, t: Arc<Tensor>) {
        self.defs.remove(name);
        self.pending.insert(name.to_string(), t);
    }

    /// The value of `name`, adding a weight to the graph on its first read.
    pub fn value(&mut self, name: &str, at: &OpLoc) -> Result<ValueId> {
        if let Some(&id) = self.defs.get(name) {
            return Ok(id);
        }
        match self.pending.remove(name) {
            Some(t) => {
                let id = self.g.add_const(name, t).map_err(|source| Error::Ir {
                    at: at.clone(),
                    source,
                })?;
                self.defs.insert(name.to_string(), id);
                Ok(id)
            }
            None => Err(Error::UndefinedVar {
                var: name.to_string(),
                at: at.clone(),
            }),
        }
    }

    /// Adds one converted op (or, folding, its outputs as known values).
    pub fn add(&mut self, c: Converted, at: &OpLoc) -> Result<()> {
        if self.fold && self.try_fold(&c, at)? {
            return Ok(());
        }
        let ins = c
            .inputs
            .iter()
            .map(|n| self.value(n, at))
            .collect::<Result<Vec<_>>>()?;
        let out_names: Vec<String> = c
            .outputs
            .iter()
            .map(|n| {
                if self.defined(n) {
                    let k = self.versions.entry(n.clone()).or_insert(0);
                    *k += 1;
                    format!("{n}@{k}")
                } else {
                    n.clone()
                }
            })
            .collect();
        let refs: Vec<&str> = out_names.iter().map(String::as_str).collect();
        let outs = self
            .g
            .add_node(c.op, ins, &refs, &at.to_string())
            .map_err(|e| Error::Ir {
                at: at.clone(),
                source: root(e),
            })?;
        for (name, id) in c.outputs.iter().zip(outs) {
            self.pending.remove(name);
            self.defs.insert(name.clone(), id);
        }
        Ok(())
    }

    /// Evaluates `c` now when its inputs are known values (or it is a shape of a known
    /// shape); true if it did.
    fn try_fold(&mut self, c: &Converted, at: &OpLoc) -> Result<bool> {
        let mut held: Vec<(TypeInfo, Option<Arc<Tensor>>)> = Vec::new();
        for n in &c.inputs {
            match self.known(n) {
                Some(t) => held.push((t.type_info(), Some(t))),
                None => match self.defs.get(n) {
                    Some(&id) => held.push((self.g.values[id].ty.clone(), None)),
                    None => return Ok(false),
                },
            }
        }
        let ins: Vec<InferInput<'_>> = held
            .iter()
            .map(|(ty, v)| InferInput {
                ty,
                value: v.as_deref(),
            })
            .collect();
        let Some(result) = c.op.fold(&ins) else {
            return Ok(false);
        };
        let outs = result.map_err(|source| Error::Ir {
            at: at.clone(),
            source,
        })?;
        if outs.len() != c.outputs.len() || outs.iter().any(|t| t.len() > FOLD_LIMIT) {
            return Ok(false);
        }
        for (name, t) in c.outputs.iter().zip(outs) {
            self.set_known(name, Arc::new(t));
        }
        Ok(true)
    }

    /// Marks `name` a graph output.
    pub fn output(&mut self, name: &str, at: &OpLoc) -> Result<()> {
        let id = self.value(name, at)?;
        self.g.add_output(id);
        Ok(())
    }
}

/// Drops the node wrapper of an IR error: the importer names the op itself.
fn root(e: kayak_ir::Error) -> kayak_ir::Error {
    match e {
        kayak_ir::Error::AtNode { source, .. } => root(*source),
        e => e,
    }
}
