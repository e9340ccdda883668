//! Execution plans: order, kernels, and where every value lives.
//!
//! A [`Plan`] is made only by [`Plan::new`], which validates what it built (every arena
//! region inside the arena, no two values alive together sharing bytes but on purpose,
//! constants in standard layout) and keeps it private: safe code reads a plan, shares it
//! and runs it, never edits it. Running checks the inputs against it and, step by step,
//! the regions it hands to kernels (`crate::cpu::io`), so even the memory safety of a run
//! does not rest on the plan being right.

mod build;
mod order;

use crate::cpu::StepKernel;
use kayak_ir::{DType, Graph, Tensor, TypeInfo, ValueId};
use std::sync::Arc;

/// Where a value's data lives during a run.
#[derive(Debug, Clone)]
pub(crate) enum Storage {
    /// In graph input `k` (read only).
    Input(usize),
    /// In a weight or a value folded at plan time (read only), its data's region taken
    /// when the plan was made (the `Arc` keeps it where it is).
    Const(Arc<Tensor>, crate::cpu::Region),
    /// In the run's arena, at this byte offset.
    Arena(usize),
    /// In the run's output tensor `j` (a kept value: never overwritten).
    Output(usize),
}

/// A value's storage, type and element count. Views share their base's storage.
#[derive(Debug, Clone)]
pub(crate) struct Loc {
    /// Where the data is.
    pub(crate) storage: Storage,
    /// Element type.
    pub(crate) dtype: DType,
    /// Shape.
    pub(crate) shape: Vec<usize>,
    /// Elements.
    pub(crate) len: usize,
}

impl Loc {
    /// Size in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.len * self.dtype.size_of()
    }
}

/// One node to run.
#[derive(Debug)]
pub(crate) struct Step {
    /// Node index in the graph.
    pub(crate) node: usize,
    /// Its input values.
    pub(crate) inputs: Vec<ValueId>,
    /// Its output values.
    pub(crate) outputs: Vec<ValueId>,
    /// What runs it.
    pub(crate) kernel: StepKernel,
    /// The input read from the output's buffer (the op runs in place), if any.
    pub(crate) in_place: Option<usize>,
    /// Scratch: byte offset in the arena and length in f32s.
    pub(crate) scratch: Option<(usize, usize)>,
}

/// One step of a plan, as [`Plan::steps`] shows it.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo<'a> {
    /// The graph node it runs (a merged step: the first of its nodes).
    pub node: usize,
    /// Its input values.
    pub inputs: &'a [ValueId],
    /// Its output values.
    pub outputs: &'a [ValueId],
    /// Its kernel's name (`conv/depthwise`, `matmul`, `fallback`, ...).
    pub kernel: &'static str,
    /// The input it reads in place from its output buffer, if any.
    pub in_place: Option<usize>,
    /// Floating-point operations one run of it performs (the products; 0 for the rest).
    pub flops: usize,
    /// Bytes of the outputs it writes.
    pub output_bytes: usize,
}

/// Memory figures of a plan (bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemoryReport {
    /// The arena: every intermediate tensor and kernel scratch.
    pub arena_bytes: usize,
    /// Memory outside the arena that runs need (none: scratch is planned in the arena).
    pub workspace_bytes: usize,
    /// Kernel scratch (inside the arena), summed over steps.
    pub scratch_bytes: usize,
    /// The most bytes alive at one step: intermediates (views count as their base) and
    /// the step's kernel scratch.
    pub lower_bound_bytes: usize,
    /// The sum of all intermediates' bytes (no reuse at all).
    pub naive_bytes: usize,
    /// Bytes of the kept outputs (held outside the arena).
    pub output_bytes: usize,
    /// Intermediate tensors.
    pub intermediates: usize,
    /// Views that alias their input.
    pub aliased_views: usize,
    /// Steps that run in place.
    pub in_place_steps: usize,
    /// Steps that fall back to the reference op (these allocate).
    pub fallback_steps: usize,
    /// The memory-aware execution order was used (it gave a smaller arena than the
    /// graph's order).
    pub reordered: bool,
}

/// How plans are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Threads a run uses (kernel scratch is sized for them).
    pub threads: usize,
    /// Use native kernels (`false`: every step runs the reference op).
    pub native: bool,
    /// Reuse memory (`false`: every intermediate gets its own arena slot).
    pub reuse: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            threads: 1,
            native: true,
            reuse: true,
        }
    }
}

/// An immutable plan for one input-shape signature of one graph; shared between runs and
/// predictor clones. Each run brings its own [`crate::RunState`] (arena, outputs, threads).
///
/// Its fields are private: a plan is what [`Plan::new`] made and checked, and nothing else.
/// Each `compile_fail` example below differs from the one after it, which compiles, only
/// in reaching for a field instead of its read-only accessor.
///
/// ```compile_fail
/// # fn edit(p: &mut kayak_exec::Plan) {
/// p.memory.arena_bytes = 0; // the arena's size
/// # }
/// ```
/// ```
/// # fn read(p: &kayak_exec::Plan) -> usize {
/// p.memory().arena_bytes
/// # }
/// ```
/// ```compile_fail
/// # fn edit(p: &mut kayak_exec::Plan) {
/// p.input_shapes[0] = vec![1]; // the shapes the inputs are checked against
/// # }
/// ```
/// ```
/// # fn read(p: &kayak_exec::Plan) -> usize {
/// p.input_shapes()[0].len()
/// # }
/// ```
/// ```compile_fail
/// # fn edit(p: &mut kayak_exec::Plan) {
/// p.steps.clear(); // the steps and their kernels
/// # }
/// ```
/// ```
/// # fn read(p: &kayak_exec::Plan) -> usize {
/// p.steps().count()
/// # }
/// ```
/// ```compile_fail
/// # fn edit(p: &mut kayak_exec::Plan) {
/// p.locs.clear(); // where every value lives
/// # }
/// ```
/// ```compile_fail
/// # fn edit(p: &mut kayak_exec::Plan, g: std::sync::Arc<kayak_ir::Graph>) {
/// p.graph = g; // the graph it runs
/// # }
/// ```
/// ```
/// # fn read(p: &kayak_exec::Plan) -> usize {
/// p.graph().nodes.len()
/// # }
/// ```
#[derive(Debug)]
pub struct Plan {
    /// The graph it runs (fallback steps evaluate its nodes' ops).
    graph: Arc<Graph>,
    /// Input shapes this plan is for.
    input_shapes: Vec<Vec<usize>>,
    /// Steps in execution order.
    steps: Vec<Step>,
    /// Concrete type of every value.
    types: Vec<TypeInfo>,
    /// Where each value lives (`None`: not needed).
    locs: Vec<Option<Loc>>,
    /// The kept values, in the order asked for.
    keep: Vec<ValueId>,
    /// Memory figures.
    memory: MemoryReport,
    /// The options it was made with.
    options: PlanOptions,
    /// Set when some value's shape depends on data computed during the run: then there is
    /// no arena; every step runs the reference op and values are allocated (and freed
    /// after their last read) as the run goes.
    dynamic: Option<DynamicPlan>,
    /// Tells plans apart in a run state's adaptive choices ([`crate::RunState`]); unique
    /// in the process.
    id: u64,
}

/// What a run needs when shapes are only known as the run goes.
#[derive(Debug)]
pub(crate) struct DynamicPlan {
    /// Weights and values folded at plan time, by value id.
    pub(crate) consts: Vec<Option<Arc<Tensor>>>,
    /// The last step that reads each value.
    pub(crate) last_read: Vec<Option<usize>>,
    /// Why the plan is dynamic.
    pub(crate) reason: String,
}

/// A fresh plan id.
fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Plan {
    /// The graph the plan runs.
    pub fn graph(&self) -> &Arc<Graph> {
        &self.graph
    }

    /// The input shapes the plan is for.
    pub fn input_shapes(&self) -> &[Vec<usize>] {
        &self.input_shapes
    }

    /// The values a run returns, in order.
    pub fn keep(&self) -> &[ValueId] {
        &self.keep
    }

    /// Memory figures.
    pub fn memory(&self) -> &MemoryReport {
        &self.memory
    }

    /// The options the plan was made with.
    pub fn options(&self) -> PlanOptions {
        self.options
    }

    /// Why the plan is dynamic (reference ops, values allocated as the run goes), if it is.
    pub fn dynamic_reason(&self) -> Option<&str> {
        self.dynamic.as_ref().map(|d| d.reason.as_str())
    }

    /// The concrete type of value `v` for this plan's shapes.
    pub fn value_type(&self, v: ValueId) -> Option<&TypeInfo> {
        self.types.get(v)
    }

    /// How many steps a run takes.
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// The steps, in execution order.
    pub fn steps(&self) -> impl Iterator<Item = StepInfo<'_>> + '_ {
        self.steps.iter().map(|s| StepInfo {
            node: s.node,
            inputs: &s.inputs,
            outputs: &s.outputs,
            kernel: s.kernel.name(),
            in_place: s.in_place,
            flops: s.kernel.flops(),
            output_bytes: s
                .outputs
                .iter()
                .filter_map(|&o| self.locs.get(o)?.as_ref().map(Loc::bytes))
                .sum(),
        })
    }

    pub(crate) fn raw_steps(&self) -> &[Step] {
        &self.steps
    }

    pub(crate) fn locs(&self) -> &[Option<Loc>] {
        &self.locs
    }

    pub(crate) fn types(&self) -> &[TypeInfo] {
        &self.types
    }

    pub(crate) fn dynamic_part(&self) -> Option<&DynamicPlan> {
        self.dynamic.as_ref()
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Checks the plan's memory invariants: arena regions of values alive at the same step
    /// never overlap (unless one is the in-place input of the step writing the other), a
    /// step's output never overlaps its inputs (but the one it reads in place) or its
    /// scratch, every region lies inside the arena, and every constant is in standard
    /// layout with the bytes its place says. [`Plan::new`] runs it on every plan it makes.
    pub fn check_memory(&self) -> std::result::Result<(), String> {
        let arena = self.memory.arena_bytes;
        // Lifetime of each arena value: [producing step, last read].
        let mut life: Vec<Option<(usize, usize)>> = vec![None; self.locs.len()];
        for (s, step) in self.steps.iter().enumerate() {
            for &o in &step.outputs {
                life[o] = Some((s, s));
            }
            for &i in &step.inputs {
                if let Some(l) = life[i].as_mut() {
                    l.1 = s;
                }
            }
        }
        let region = |v: usize| -> Option<(usize, usize)> {
            let l = self.locs.get(v)?.as_ref()?;
            match l.storage {
                Storage::Arena(o) => Some((o, o.checked_add(l.bytes())?)),
                _ => None,
            }
        };
        for (v, l) in self.locs.iter().enumerate() {
            let Some(l) = l else { continue };
            if l.shape.iter().product::<usize>() != l.len {
                return Err(format!(
                    "value {v}: {} elements for shape {:?}",
                    l.len, l.shape
                ));
            }
            match &l.storage {
                Storage::Arena(o) if o.checked_add(l.bytes()).is_none_or(|e| e > arena) => {
                    return Err(format!("value {v} at {o} outside the arena ({arena})"));
                }
                Storage::Const(t, r) => {
                    let same = crate::cpu::Region::of_tensor(t).is_some_and(|d| d.same(r));
                    if !same || t.dtype() != l.dtype || t.shape() != l.shape.as_slice() {
                        return Err(format!(
                            "value {v}: its constant is not a standard-layout {} {:?}",
                            l.dtype, l.shape
                        ));
                    }
                }
                // Input k itself, or a view of it (its elements under another shape).
                Storage::Input(k)
                    if self
                        .input_shapes
                        .get(*k)
                        .map(|s| s.iter().product::<usize>())
                        != Some(l.len) =>
                {
                    return Err(format!("value {v}: not input {k}'s size"));
                }
                Storage::Output(j) if self.keep.get(*j).is_none() => {
                    return Err(format!("value {v}: no output {j}"));
                }
                _ => {}
            }
        }
        // Values sharing a buffer on purpose: views with their base, in-place outputs with
        // the input they overwrite.
        let mut root: Vec<usize> = (0..self.locs.len()).collect();
        for step in &self.steps {
            let Some(&o) = step.outputs.first() else {
                continue;
            };
            if matches!(step.kernel, StepKernel::Alias) {
                root[o] = root[step.inputs[0]];
            } else if let Some(k) = step.in_place {
                root[o] = root[step.inputs[k]];
            }
        }
        let vals: Vec<usize> = (0..self.locs.len())
            .filter(|&v| region(v).is_some() && life[v].is_some())
            .collect();
        for (x, &a) in vals.iter().enumerate() {
            for &b in &vals[x + 1..] {
                let (la, lb) = (life[a].expect("f"), life[b].expect("f"));
                if la.0 > lb.1 || lb.0 > la.1 {
                    continue;
                }
                let (ra, rb) = (region(a).expect("f"), region(b).expect("f"));
                if ra.0 >= rb.1 || rb.0 >= ra.1 {
                    continue;
                }
                if root[a] == root[b] {
                    continue;
                }
                return Err(format!(
                    "values {a} {ra:?} (steps {la:?}) and {b} {rb:?} (steps {lb:?}) overlap"
                ));
            }
        }
        for (s, step) in self.steps.iter().enumerate() {
            let Some(out) = step.outputs.first().and_then(|&o| region(o)) else {
                continue;
            };
            for (k, &i) in step.inputs.iter().enumerate() {
                if let Some(r) = region(i) {
                    let overlap = r.0 < out.1 && out.0 < r.1;
                    if overlap
                        && step.in_place != Some(k)
                        && !matches!(step.kernel, StepKernel::Alias)
                    {
                        return Err(format!("step {s}: input {k} overlaps the output"));
                    }
                }
            }
            if let Some((off, floats)) = step.scratch {
                if off + floats * 4 > arena {
                    return Err(format!("step {s}: scratch outside the arena"));
                }
                for &v in step.inputs.iter().chain(&step.outputs) {
                    if let Some(r) = region(v) {
                        if r.0 < off + floats * 4 && off < r.1 {
                            return Err(format!("step {s}: scratch overlaps value {v}"));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
