//! Named conditions and appliers that rule files refer to.
//!
//! A **condition** reads analysis data of its argument classes (shapes, dtypes, constant
//! values, attributes) and says whether a rule may fire. An **applier** computes something a
//! right-hand side needs — new attributes (an attribute leaf) or a folded constant (a
//! constant leaf) — or declines (`None`), which cancels the rewrite.
//!
//! Each family of rules has a file here whose `register` adds its entries, each with the
//! number of arguments it reads (checked when a rule file is parsed): a new condition or
//! applier is one call, beside the others of its family.

mod conv;
mod elementwise;
mod layout;
mod matmul;
mod transformer;
mod values;

use crate::analysis::KGraph;
use crate::language::{Attrs, Node};
use egg::Id;
use kayak_ir::ops::{Binary, Embedding};
use kayak_ir::ops::{
    BinaryOp, Conv, FusedConv, FusedMatMul, Layout, MatMul, PoolKind, SeBlock, SkipLayerNorm,
    UnaryOp,
};
use kayak_ir::{DType, Dim, Op, Shape, Tensor};
use std::collections::HashMap;
use std::sync::Arc;

/// A named condition.
pub type Condition = fn(&KGraph, &[Id]) -> bool;
/// A named applier.
pub type ApplierFn = fn(&mut KGraph, &[Id]) -> Option<Id>;

/// The registry of conditions and appliers, each with the number of arguments it reads
/// (at least).
#[derive(Clone)]
pub struct Registry {
    conditions: HashMap<&'static str, (usize, Condition)>,
    appliers: HashMap<&'static str, (usize, ApplierFn)>,
}

impl Registry {
    /// Adds (or replaces) a condition reading at least `arity` arguments.
    pub fn condition(&mut self, name: &'static str, arity: usize, f: Condition) {
        self.conditions.insert(name, (arity, f));
    }

    /// Adds (or replaces) an applier reading at least `arity` arguments.
    pub fn applier(&mut self, name: &'static str, arity: usize, f: ApplierFn) {
        self.appliers.insert(name, (arity, f));
    }

    /// The condition of this name and its arity.
    pub fn get_condition(&self, name: &str) -> Option<(usize, Condition)> {
        self.conditions.get(name).copied()
    }

    /// The applier of this name and its arity.
    pub fn get_applier(&self, name: &str) -> Option<(usize, ApplierFn)> {
        self.appliers.get(name).copied()
    }

    /// The names of every condition, sorted.
    pub fn condition_names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.conditions.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// The names of every applier, sorted.
    pub fn applier_names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.appliers.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

impl Default for Registry {
    fn default() -> Registry {
        let mut r = Registry {
            conditions: HashMap::new(),
            appliers: HashMap::new(),
        };
        values::register(&mut r);
        elementwise::register(&mut r);
        layout::register(&mut r);
        conv::register(&mut r);
        matmul::register(&mut r);
        transformer::register(&mut r);
        r
    }
}

pub(super) fn op(eg: &KGraph, id: Id) -> Option<&Op> {
    eg[id].data.op()
}
pub(super) fn val(eg: &KGraph, id: Id) -> Option<Arc<Tensor>> {
    eg[id].data.value().cloned()
}
pub(super) fn shape(eg: &KGraph, id: Id) -> Option<&Shape> {
    eg[id].data.ty().map(|t| &t.shape)
}
pub(super) fn f32s(t: &Tensor) -> Option<Vec<f32>> {
    (t.dtype() == DType::F32)
        .then(|| {
            t.as_f32().map(|a| match a.as_slice() {
                Some(s) => s.to_vec(),
                None => a.iter().copied().collect(),
            })
        })
        .flatten()
}
/// Adds an attribute leaf.
pub fn attr_leaf(eg: &mut KGraph, op: Op) -> Id {
    eg.add(Node::Attr(Attrs::new(op)))
}
/// Adds a constant leaf.
pub fn const_leaf(eg: &mut KGraph, t: Tensor) -> Id {
    let k = eg.analysis.intern(Arc::new(t));
    eg.add(Node::Const(k))
}
pub(super) fn fused(eg: &KGraph, id: Id) -> Option<&FusedConv> {
    match op(eg, id)? {
        Op::FusedConv(f) => Some(f),
        _ => None,
    }
}
pub(super) fn scalar(eg: &KGraph, id: Id) -> Option<f32> {
    let v = val(eg, id)?;
    (v.len() == 1 && v.dtype() == DType::F32)
        .then(|| f32s(&v).map(|x| x[0]))
        .flatten()
}
pub(super) fn scale_of(eg: &KGraph, id: Id) -> Option<(f32, f32)> {
    match op(eg, id)? {
        Op::Unary(UnaryOp::Scale {
            scale,
            bias,
            bias_after_scale,
        }) => Some(if *bias_after_scale {
            (*scale, *bias)
        } else {
            (*scale, scale * bias)
        }),
        _ => None,
    }
}
/// The activation an attribute leaf (or a param-free kind) stands for.
pub(super) fn act_of(eg: &KGraph, id: Id) -> Option<UnaryOp> {
    match op(eg, id)? {
        Op::Unary(u) if is_activation(u) => Some(*u),
        _ => None,
    }
}
pub(super) fn is_activation(u: &UnaryOp) -> bool {
    matches!(
        u,
        UnaryOp::Relu
            | UnaryOp::Relu6 { .. }
            | UnaryOp::LeakyRelu { .. }
            | UnaryOp::HardSwish { .. }
            | UnaryOp::HardSigmoid { .. }
            | UnaryOp::Sigmoid
            | UnaryOp::Swish { .. }
            | UnaryOp::Gelu { .. }
            | UnaryOp::Tanh
    )
}

fn perm_of(eg: &KGraph, t: Id) -> Option<&[usize]> {
    match op(eg, t)? {
        Op::Transpose(kayak_ir::ops::Transpose { perm }) => Some(perm),
        _ => None,
    }
}
