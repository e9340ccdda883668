//! The CPU backend: each op, with its concrete input and output types, is bound to a
//! native kernel (parameters computed once, at plan time) or, when no kernel covers it,
//! runs its reference op ([`StepKernel::Fallback`], which allocates its result).
//!
//! **Binding an op.** Every op family has one file under `ops/` whose `bind` function
//! maps the family's ops (with their types) to kernels: one `match` arm per op. The
//! binders are tried in turn ([`BINDERS`]); the first that answers wins. A kernel is a
//! value of a type implementing [`CpuKernel`]: its name, the inputs it can read in place,
//! its scratch, its FLOPs, and `run`, which gets its inputs and outputs as checked
//! slices ([`io`]). The compute itself lives in `kayak-kernels` (which never sees a graph)
//! wherever it is vectorized, threaded or tuned per ISA; a scalar loop an op needs may sit
//! beside its kernel type here.

pub(crate) mod io;
mod ops;

pub(crate) use io::{Ctx, Ins, Outs, Region, RegionBufs};

use crate::plan::Step;
use crate::{Error, Result};
use kayak_ir::{DType, Op, Tensor};
use std::any::Any;

/// A value's concrete type as the binders see it.
pub(crate) type Ty<'a> = (DType, &'a [usize]);

/// A step's native kernel: everything shape-dependent computed when the plan is made.
pub(crate) trait CpuKernel: Send + Sync + std::fmt::Debug + Any {
    /// A short name for profiles (`conv/general`, `matmul`, ...).
    fn name(&self) -> &'static str;

    /// Inputs this kernel can read from its output buffer (run in place), in preference
    /// order. The planner uses one when that input dies here and has the output's size.
    fn in_place_inputs(&self) -> &'static [usize] {
        &[]
    }

    /// Scratch floats the kernel needs at `threads` threads.
    fn scratch(&self, _threads: usize) -> usize {
        0
    }

    /// Floating-point operations one run performs (multiply-adds count two), for the
    /// products that dominate run time; 0 for the rest.
    fn flops(&self) -> usize {
        0
    }

    /// Runs the step.
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()>;
}

/// What runs a step.
#[derive(Debug)]
pub(crate) enum StepKernel {
    /// A view: the output aliases its input; nothing runs.
    Alias,
    /// A view whose output must be its own buffer (it is kept for the caller): a copy.
    Copy,
    /// The reference op (allocates; counted in [`crate::MemoryReport::fallback_steps`]).
    Fallback,
    /// A native kernel.
    Native(Box<dyn CpuKernel>),
}

impl StepKernel {
    /// See [`CpuKernel::name`].
    pub(crate) fn name(&self) -> &'static str {
        match self {
            StepKernel::Alias => "alias",
            StepKernel::Copy => "copy",
            StepKernel::Fallback => "fallback",
            StepKernel::Native(k) => k.name(),
        }
    }

    /// See [`CpuKernel::in_place_inputs`].
    pub(crate) fn in_place_inputs(&self) -> &'static [usize] {
        match self {
            StepKernel::Native(k) => k.in_place_inputs(),
            _ => &[],
        }
    }

    /// See [`CpuKernel::scratch`].
    pub(crate) fn scratch(&self, threads: usize) -> usize {
        match self {
            StepKernel::Native(k) => k.scratch(threads),
            _ => 0,
        }
    }

    /// See [`CpuKernel::flops`].
    pub(crate) fn flops(&self) -> usize {
        match self {
            StepKernel::Native(k) => k.flops(),
            _ => 0,
        }
    }

    /// The native kernel as its own type, if it is one.
    pub(crate) fn native<K: CpuKernel>(&self) -> Option<&K> {
        match self {
            StepKernel::Native(k) => (&**k as &dyn Any).downcast_ref::<K>(),
            _ => None,
        }
    }

    /// Runs the step.
    pub(crate) fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        match self {
            StepKernel::Alias => Ok(()),
            StepKernel::Copy => {
                let x = ins.bytes(0)?;
                let o = outs.bytes(0)?;
                if x.len() != o.len() {
                    return Err(Error::Kernel("a copy of another size".into()));
                }
                o.copy_from_slice(x);
                Ok(())
            }
            StepKernel::Fallback => fallback(ins, outs),
            StepKernel::Native(k) => k.run(ins, outs),
        }
    }
}

/// Runs the node's reference op on copies of its inputs and writes its outputs, which
/// must have exactly the planned types.
fn fallback(ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
    let node = ins.node();
    let mut args = Vec::with_capacity(ins.len());
    for k in 0..ins.len() {
        let l = ins.loc(k)?;
        args.push(
            Tensor::from_le_bytes(l.dtype, &l.shape, ins.bytes(k)?).map_err(|e| ins.error(e))?,
        );
    }
    let refs: Vec<&Tensor> = args.iter().collect();
    let results = node.op.eval(&refs).map_err(|e| ins.error(e))?;
    if results.len() != outs.len() {
        return Err(Error::Kernel(format!(
            "{}: {} outputs, the plan has {}",
            node.origin,
            results.len(),
            outs.len()
        )));
    }
    for (j, t) in results.iter().enumerate() {
        let l = outs.loc(j)?;
        if t.dtype() != l.dtype || t.shape() != l.shape.as_slice() {
            return Err(Error::OutputMismatch {
                origin: node.origin.clone(),
                got_dtype: t.dtype(),
                got_shape: kayak_ir::Shape::known(t.shape()),
                want_dtype: l.dtype,
                want_shape: kayak_ir::Shape::known(&l.shape),
            });
        }
        t.write_le_bytes(outs.bytes(j)?).map_err(|e| ins.error(e))?;
    }
    Ok(())
}

/// A family's binder: a kernel for `op` on these input and output types (`values` holds
/// the inputs known at plan time: weights, folded values), or `None`.
type Binder = fn(&Op, &[Ty<'_>], &[Option<&Tensor>], &[Ty<'_>]) -> Option<Box<dyn CpuKernel>>;

/// The op families' binders, tried in turn.
const BINDERS: &[Binder] = &[
    ops::conv::bind,
    ops::matmul::bind,
    ops::elementwise::bind,
    ops::norm::bind,
    ops::pool::bind,
    ops::reduce::bind,
    ops::attention::bind,
    ops::embedding::bind,
    ops::data::bind,
];

/// Binds an op to a native kernel for concrete types; `values` holds the inputs known at
/// plan time. `None` means no native kernel covers it (it runs its reference op).
pub(crate) fn compile(
    op: &Op,
    ins: &[Ty<'_>],
    values: &[Option<&Tensor>],
    outs: &[Ty<'_>],
) -> Option<Box<dyn CpuKernel>> {
    if outs.is_empty() || values.len() != ins.len() {
        return None;
    }
    BINDERS.iter().find_map(|bind| bind(op, ins, values, outs))
}

/// True if every type is f32.
fn all_f32(tys: &[Ty<'_>]) -> bool {
    tys.iter().all(|t| t.0 == DType::F32)
}

/// Replaces each pair of adjacent steps `a`, `b` where `b` alone reads `a`'s one output
/// (as its first input only; `readers[v]` counts the steps reading value `v`), which the
/// caller does not keep (`kept`), and `merge(a, b)` gives a kernel: one step, `a`'s node
/// with that kernel, `a`'s inputs then `b`'s after its first, and `b`'s outputs. `a`'s
/// output is no longer produced.
fn merge_pairs(
    steps: &mut Vec<Step>,
    readers: &[usize],
    kept: &[bool],
    mut merge: impl FnMut(&Step, &Step) -> Option<Box<dyn CpuKernel>>,
) {
    let mut s = 0;
    while s + 1 < steps.len() {
        let (a, b) = (&steps[s], &steps[s + 1]);
        let feeds = a.outputs.len() == 1
            && b.inputs.first() == Some(&a.outputs[0])
            && !b.inputs[1..].contains(&a.outputs[0])
            && readers[a.outputs[0]] == 1
            && !kept[a.outputs[0]];
        if let Some(kernel) = feeds.then(|| merge(a, b)).flatten() {
            let b = steps.remove(s + 1);
            let a = &mut steps[s];
            a.kernel = StepKernel::Native(kernel);
            a.inputs.extend_from_slice(&b.inputs[1..]);
            a.outputs = b.outputs;
        }
        s += 1;
    }
}

/// Merges adjacent steps that run faster as one (see `ops::conv`): depthwise convs with
/// the SE block reading them, then pointwise convs with the depthwise step reading them.
/// `weight` gives a constant value's f32s in standard layout.
pub(crate) fn merge_steps(
    steps: &mut Vec<Step>,
    readers: &[usize],
    kept: &[bool],
    weight: &dyn Fn(usize) -> Option<Vec<f32>>,
    threads: usize,
) {
    ops::conv::merge_conv_se(steps, readers, kept);
    ops::conv::merge_expand_dw(steps, readers, kept, weight, threads);
}
