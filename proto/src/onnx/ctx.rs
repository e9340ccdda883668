//! Typed access to one ONNX node: inputs (an empty name is an absent optional input),
//! attributes with defaults, constant inputs (ONNX passes many attributes as tensors), the
//! types of inputs, and the opset in force; errors name the node.

use super::pb::{attr_type as at, AttributeProto, NodeProto};
use crate::{Error, OpLoc, Result};
use kayak_ir::{Tensor, TypeInfo};
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::Arc;

/// What a node may look up while it is converted.
pub(crate) trait Scope {
    /// The value of a name when it is known at import (initializer, Constant, folded).
    fn known(&self, name: &str) -> Option<Arc<Tensor>>;
    /// The type of a defined name.
    fn type_of(&self, name: &str) -> Option<TypeInfo>;
    /// A static reshape target for `x` read from the shape tensor `shape` (see
    /// `onnx::shape`), when its parts are constants and dims.
    fn reshape_target(&self, shape: &str, x: &str) -> Option<Vec<i64>>;
}

/// One node being converted.
pub(crate) struct NodeCtx<'a> {
    pub node: &'a NodeProto,
    pub loc: OpLoc,
    /// The `ai.onnx` opset version of the model.
    pub opset: i64,
    pub scope: &'a dyn Scope,
    /// Every name some node or the graph output reads.
    pub used: &'a HashSet<String>,
    fresh: Cell<usize>,
}

impl<'a> NodeCtx<'a> {
    pub fn new(
        node: &'a NodeProto,
        loc: OpLoc,
        opset: i64,
        scope: &'a dyn Scope,
        used: &'a HashSet<String>,
    ) -> Self {
        NodeCtx {
            node,
            loc,
            opset,
            scope,
            used,
            fresh: Cell::new(0),
        }
    }

    /// Input `k`, if present (not missing, not the empty name).
    pub fn input(&self, k: usize) -> Option<String> {
        self.node.input.get(k).filter(|n| !n.is_empty()).cloned()
    }

    /// Required input `k`.
    pub fn req(&self, k: usize) -> Result<String> {
        self.input(k)
            .ok_or_else(|| self.bad(&format!("input {k}"), "required input is missing"))
    }

    /// Output `k` (the empty name if absent).
    pub fn output(&self, k: usize) -> String {
        self.node.output.get(k).cloned().unwrap_or_default()
    }

    /// Fails if output `k` or later is present and read by anything (Kayak computes only
    /// the outputs before it).
    pub fn only_outputs(&self, k: usize) -> Result<()> {
        for (i, o) in self.node.output.iter().enumerate().skip(k) {
            if !o.is_empty() && self.used.contains(o) {
                return Err(self.unsupported(format!(
                    "`{}` output #{i} (`{o}`), which the graph reads",
                    self.node.op_type
                )));
            }
        }
        Ok(())
    }

    /// A fresh intermediate name.
    pub fn tmp(&self) -> String {
        let k = self.fresh.get();
        self.fresh.set(k + 1);
        format!("{}#{k}", self.output(0))
    }

    /// An attribute error at this node.
    pub fn bad(&self, attr: &str, reason: impl Into<String>) -> Error {
        Error::BadAttribute {
            attr: attr.to_string(),
            reason: reason.into(),
            at: self.loc.clone(),
        }
    }

    /// A "not supported yet" error at this node.
    pub fn unsupported(&self, what: impl Into<String>) -> Error {
        Error::Unsupported {
            what: what.into(),
            at: self.loc.clone(),
        }
    }

    fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    fn want(&self, name: &str, a: &AttributeProto, ty: i32, what: &str) -> Result<()> {
        if a.r#type == ty || a.r#type == 0 {
            Ok(())
        } else {
            Err(self.bad(
                name,
                format!("expected {what}, found attribute type {}", a.r#type),
            ))
        }
    }

    /// An integer attribute.
    pub fn int(&self, name: &str) -> Result<Option<i64>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => self.want(name, a, at::INT, "an int").map(|_| Some(a.i)),
        }
    }

    /// An integer attribute with a default.
    pub fn int_or(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    /// A float attribute with a default, checked finite.
    pub fn float_or(&self, name: &str, default: f32) -> Result<f32> {
        let v = match self.attr(name) {
            None => default,
            Some(a) => {
                self.want(name, a, at::FLOAT, "a float")?;
                a.f
            }
        };
        if !v.is_finite() {
            return Err(self.bad(name, format!("{v} is not finite")));
        }
        Ok(v)
    }

    /// A string attribute with a default.
    pub fn str_or(&self, name: &str, default: &str) -> Result<String> {
        match self.attr(name) {
            None => Ok(default.to_string()),
            Some(a) => {
                self.want(name, a, at::STRING, "a string")?;
                String::from_utf8(a.s.clone()).map_err(|_| self.bad(name, "not UTF-8"))
            }
        }
    }

    /// An integer-list attribute (`None`: absent).
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => self
                .want(name, a, at::INTS, "a list of ints")
                .map(|_| Some(a.ints.clone())),
        }
    }

    /// The raw attribute (for tensor-valued ones).
    pub fn raw(&self, name: &str) -> Option<&'a AttributeProto> {
        self.attr(name)
    }

    /// Input `k`'s value when known at import.
    pub fn known(&self, k: usize) -> Option<Arc<Tensor>> {
        self.scope.known(&self.input(k)?)
    }

    /// Input `k` as constant integers: `Ok(None)` if the input is absent, an error if it
    /// is present but computed at run time.
    pub fn const_ints(&self, k: usize, what: &str) -> Result<Option<Vec<i64>>> {
        let Some(name) = self.input(k) else {
            return Ok(None);
        };
        let t = self
            .scope
            .known(&name)
            .ok_or_else(|| self.needs_value(k, what))?;
        Ok(Some(t.to_i64_vec()))
    }

    /// The error for input `k` (`what`: the operand it gives) being computed at run time:
    /// the importer traces it to the graph inputs it comes from, and the model is then
    /// imported specialized on their values.
    pub fn needs_value(&self, k: usize, what: &str) -> Error {
        Error::NeedsInputValues {
            inputs: self.input(k).into_iter().collect(),
            what: format!("the {what} of `{}` (input {k})", self.node.op_type),
            at: self.loc.clone(),
        }
    }

    /// Input `k` as one constant float (`Ok(None)`: absent).
    pub fn const_scalar(&self, k: usize, what: &str) -> Result<Option<f64>> {
        let Some(name) = self.input(k) else {
            return Ok(None);
        };
        let t = self
            .scope
            .known(&name)
            .ok_or_else(|| self.needs_value(k, what))?;
        if t.len() != 1 {
            return Err(self.bad(what, format!("{} values, expected one", t.len())));
        }
        Ok(Some(t.to_f64_vec()[0]))
    }

    /// The rank of input `k`, when its type is known.
    pub fn rank(&self, k: usize) -> Option<usize> {
        Some(self.scope.type_of(&self.input(k)?)?.shape.rank())
    }

    /// The rank of input `k`, required.
    pub fn need_rank(&self, k: usize) -> Result<usize> {
        self.rank(k).ok_or_else(|| {
            self.unsupported(format!(
                "`{}` on an input of unknown rank",
                self.node.op_type
            ))
        })
    }

    /// An axis made non-negative against `rank`.
    pub fn axis(&self, name: &str, a: i64, rank: usize) -> Result<usize> {
        let r = rank as i64;
        let v = if a < 0 { a + r } else { a };
        if v < 0 || v >= r.max(1) {
            return Err(self.bad(name, format!("axis {a} out of range for rank {rank}")));
        }
        Ok(v as usize)
    }
}
