//! What a shape tensor holds, symbolically: exporters compute a reshape's target as
//! `Concat(Cast(Slice(Shape(x))), Constant, ...)`, which folds only once input shapes are
//! known. Read through those ops, a part is a constant or a dim of some value's shape, and
//! the reshape can take the target as an attribute (a dim copied from the input is Paddle's
//! and ONNX's `0`).

use crate::build::Builder;
use kayak_ir::ops::{Concat, Gather, ListInput, Reshape, Slice, Squeeze, Unsqueeze};
use kayak_ir::{Dim, Op, ValueDef, ValueId};

/// One element of a shape tensor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    /// A constant.
    Known(i64),
    /// A (symbolic) dim of some value.
    Dim(Dim),
}

/// The elements of the 1-D (or 0-D) integer value `v`, when every one is a constant or a
/// dim; `None` otherwise.
pub(crate) fn parts(b: &Builder, v: ValueId) -> Option<Vec<Part>> {
    parts_at(b, v, 0)
}

fn parts_at(b: &Builder, v: ValueId, depth: usize) -> Option<Vec<Part>> {
    if depth > 32 {
        return None;
    }
    let g = &b.g;
    match &g.values[v].def {
        ValueDef::Const(t) => {
            (t.shape().len() <= 1 && t.dtype().is_int()).then_some(())?;
            Some(t.to_i64_vec().into_iter().map(Part::Known).collect())
        }
        ValueDef::Input => None,
        ValueDef::Node { node, .. } => {
            let n = &g.nodes[*node];
            let input = |k: usize| parts_at(b, *n.inputs.get(k)?, depth + 1);
            match &n.op {
                Op::Shape(_) => Some(
                    g.values[n.inputs[0]]
                        .ty
                        .shape
                        .0
                        .iter()
                        .map(|d| match d {
                            Dim::Known(k) => Part::Known(*k as i64),
                            d => Part::Dim(d.clone()),
                        })
                        .collect(),
                ),
                Op::Cast(c) if c.to.is_int() => input(0),
                Op::Identity(_) => input(0),
                Op::Squeeze(Squeeze { .. })
                | Op::Unsqueeze(Unsqueeze { .. })
                | Op::Reshape(Reshape {
                    shape_input: ListInput::Attr,
                    ..
                }) => input(0).filter(|p| p.len() == 1),
                Op::Slice(Slice {
                    axes,
                    starts,
                    ends,
                    starts_input: ListInput::Attr,
                    ends_input: ListInput::Attr,
                    ..
                }) if axes.len() == 1 && (axes[0] == 0 || axes[0] == -1) => {
                    let p = input(0)?;
                    let len = p.len() as i64;
                    let clamp = |x: i64| if x < 0 { (x + len).max(0) } else { x.min(len) };
                    let (s, e) = (clamp(starts[0]), clamp(ends[0]));
                    Some(p[s as usize..e.max(s) as usize].to_vec())
                }
                Op::Gather(Gather { axis: 0 }) => {
                    let p = input(0)?;
                    let idx = input(1)?;
                    idx.iter()
                        .map(|i| match i {
                            Part::Known(k) => {
                                let k = if *k < 0 { k + p.len() as i64 } else { *k };
                                p.get(usize::try_from(k).ok()?).cloned()
                            }
                            Part::Dim(_) => None,
                        })
                        .collect()
                }
                Op::Concat(Concat { axis: 0 | -1 }) => {
                    let mut all = Vec::new();
                    for k in 0..n.inputs.len() {
                        all.extend(input(k)?);
                    }
                    Some(all)
                }
                _ => None,
            }
        }
    }
}

/// A reshape target from its parts, for an input of dims `x`: constants stay, a dim equal
/// to the input's dim at the same position is `0` (copy), one other unresolved dim is `-1`.
pub(crate) fn reshape_target(parts: &[Part], x: &[Dim]) -> Option<Vec<i64>> {
    let mut out = Vec::with_capacity(parts.len());
    let mut inferred = parts.contains(&Part::Known(-1));
    for (i, p) in parts.iter().enumerate() {
        match p {
            Part::Known(k) => out.push(*k),
            Part::Dim(d) if !matches!(d, Dim::Unknown) && x.get(i) == Some(d) => out.push(0),
            Part::Dim(_) if !inferred => {
                inferred = true;
                out.push(-1);
            }
            Part::Dim(_) => return None,
        }
    }
    Some(out)
}
