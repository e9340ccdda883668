//! Execution plans: order, kernels, and where every value lives.

use crate::cpu::{self, Kernel};
use crate::memory::{self, Lifetime};
use crate::{Error, Result};
use kayak_ir::{DType, Graph, Tensor, TypeInfo, ValueDef, ValueId};
use std::sync::Arc;

/// Where a value's data lives during a run.
#[derive(Debug, Clone)]
pub enum Storage {
    /// In graph input `k` (read only).
    Input(usize),
    /// In a weight or a value folded at plan time (read only).
    Const(Arc<Tensor>),
    /// In the run's arena, at this byte offset.
    Arena(usize),
    /// In the run's output tensor `j` (a kept value: never overwritten).
    Output(usize),
}

/// A value's storage, type and element count. Views share their base's storage.
#[derive(Debug, Clone)]
pub struct Loc {
    /// Where the data is.
    pub storage: Storage,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Elements.
    pub len: usize,
}

impl Loc {
    /// Size in bytes.
    pub fn bytes(&self) -> usize {
        self.len * self.dtype.size_of()
    }
}

/// One node to run.
#[derive(Debug, Clone)]
pub struct Step {
    /// Node index in the graph.
    pub node: usize,
    /// Its input values.
    pub inputs: Vec<ValueId>,
    /// Its output values.
    pub outputs: Vec<ValueId>,
    /// The kernel that runs it.
    pub kernel: Kernel,
    /// The input read from the output's buffer (the op runs in place), if any.
    pub in_place: Option<usize>,
    /// Scratch: byte offset in the arena and length in f32s.
    pub scratch: Option<(usize, usize)>,
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

/// An immutable plan for one input-shape signature; shared between runs and predictor
/// clones. Each run brings its own [`crate::RunState`] (arena, outputs, threads).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Input shapes this plan is for.
    pub input_shapes: Vec<Vec<usize>>,
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Concrete type of every value.
    pub types: Vec<TypeInfo>,
    /// Where each value lives (`None`: not needed).
    pub locs: Vec<Option<Loc>>,
    /// The kept values, in the order asked for.
    pub keep: Vec<ValueId>,
    /// Memory figures.
    pub memory: MemoryReport,
    /// The options it was made with.
    pub options: PlanOptions,
    /// Set when some value's shape depends on data computed during the run: then there is
    /// no arena; every step runs the reference op and values are allocated (and freed
    /// after their last read) as the run goes.
    pub dynamic: Option<DynamicPlan>,
    /// Tells plans apart in a run state's adaptive choices ([`crate::RunState`]); unique
    /// in the process (a clone keeps it: the same steps).
    pub(crate) id: u64,
}

/// A fresh plan id.
fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// What a run needs when shapes are only known as the run goes.
#[derive(Debug, Clone)]
pub struct DynamicPlan {
    /// Weights and values folded at plan time, by value id.
    pub consts: Vec<Option<Arc<Tensor>>>,
    /// The last step that reads each value.
    pub last_read: Vec<Option<usize>>,
    /// Why the plan is dynamic.
    pub reason: String,
}

impl Plan {
    /// Plans `graph` for concrete input shapes, producing `keep` (graph outputs and any
    /// fetched variables).
    pub fn new(
        graph: &Graph,
        input_shapes: &[Vec<usize>],
        keep: &[ValueId],
        options: PlanOptions,
    ) -> Result<Plan> {
        let spec = graph.specialize(input_shapes).map_err(Error::Plan)?;
        let nv = graph.values.len();
        // Which nodes run: those computing a needed, non-folded value.
        let mut needed = vec![false; nv];
        for &k in keep {
            needed[k] = true;
        }
        let mut run_node = vec![false; graph.nodes.len()];
        for (n, node) in graph.nodes.iter().enumerate().rev() {
            if node
                .outputs
                .iter()
                .any(|&o| needed[o] && spec.folded[o].is_none())
            {
                run_node[n] = true;
                for &i in &node.inputs {
                    needed[i] = true;
                }
            }
        }
        let all_known = (0..nv).all(|v| {
            !needed[v]
                || matches!(graph.values[v].def, ValueDef::Const(_))
                || spec.types[v].shape.to_known().is_some()
        });
        if !all_known {
            return Ok(Plan::dynamic(
                graph,
                input_shapes,
                keep,
                options,
                spec,
                &run_node,
            ));
        }
        // Two execution orders: the graph's, and one scheduled to keep less memory alive;
        // the one with the smaller arena is kept.
        let graph_order: Vec<usize> = (0..graph.nodes.len()).filter(|&n| run_node[n]).collect();
        let greedy = memory_order(graph, &spec, &run_node, keep);
        let a = Plan::build(graph, input_shapes, keep, options, &spec, &graph_order)?;
        if greedy == graph_order {
            return Ok(a);
        }
        let mut b = Plan::build(graph, input_shapes, keep, options, &spec, &greedy)?;
        if b.memory.arena_bytes < a.memory.arena_bytes {
            b.memory.reordered = true;
            Ok(b)
        } else {
            Ok(a)
        }
    }

    fn build(
        graph: &Graph,
        input_shapes: &[Vec<usize>],
        keep: &[ValueId],
        options: PlanOptions,
        spec: &kayak_ir::Specialized,
        order: &[usize],
    ) -> Result<Plan> {
        let nv = graph.values.len();
        let concrete = |v: ValueId| -> Result<Vec<usize>> {
            spec.types[v].shape.to_known().ok_or_else(|| {
                Error::Plan(kayak_ir::Error::Graph(format!(
                    "value `{}` has a data-dependent shape {}; it cannot be planned",
                    graph.values[v].name, spec.types[v].shape
                )))
            })
        };
        let mut locs: Vec<Option<Loc>> = vec![None; nv];
        let loc = |storage: Storage, dtype: DType, shape: Vec<usize>| Loc {
            len: shape.iter().product(),
            storage,
            dtype,
            shape,
        };
        for (k, &v) in graph.inputs.iter().enumerate() {
            locs[v] = Some(loc(Storage::Input(k), spec.types[v].dtype, concrete(v)?));
        }
        for (v, val) in graph.values.iter().enumerate() {
            let t = match (&val.def, &spec.folded[v]) {
                (ValueDef::Const(t), _) => t.clone(),
                (ValueDef::Node { .. }, Some(t)) => t.clone(),
                _ => continue,
            };
            locs[v] = Some(loc(
                Storage::Const(t.clone()),
                t.dtype(),
                t.shape().to_vec(),
            ));
        }
        // Steps in the chosen order with their kernels.
        let mut steps = Vec::new();
        for &n in order {
            let node = &graph.nodes[n];
            let mut ins = Vec::with_capacity(node.inputs.len());
            for &i in &node.inputs {
                ins.push((spec.types[i].dtype, concrete(i)?));
            }
            let mut outs = Vec::with_capacity(node.outputs.len());
            for &o in &node.outputs {
                outs.push((spec.types[o].dtype, concrete(o)?));
            }
            let kernel = if node.op.is_view() {
                Kernel::Alias
            } else if options.native {
                let ti: Vec<cpu::Ty<'_>> = ins.iter().map(|(d, s)| (*d, s.as_slice())).collect();
                let to: Vec<cpu::Ty<'_>> = outs.iter().map(|(d, s)| (*d, s.as_slice())).collect();
                let vals: Vec<Option<&Tensor>> = node
                    .inputs
                    .iter()
                    .map(|&i| match locs[i].as_ref().map(|l| &l.storage) {
                        Some(Storage::Const(t)) => Some(&**t),
                        _ => None,
                    })
                    .collect();
                cpu::compile(&node.op, &ti, &vals, &to).unwrap_or(Kernel::Fallback)
            } else {
                Kernel::Fallback
            };
            steps.push(Step {
                node: n,
                inputs: node.inputs.clone(),
                outputs: node.outputs.clone(),
                kernel,
                in_place: None,
                scratch: None,
            });
        }
        // Depthwise conv + SE block pairs run as one step, and so do pointwise convs with
        // the depthwise step that reads their output.
        {
            let mut readers = vec![0usize; nv];
            for step in &steps {
                for &i in &step.inputs {
                    readers[i] += 1;
                }
            }
            let mut kept = vec![false; nv];
            for &k in keep {
                kept[k] = true;
            }
            cpu::merge_conv_se(&mut steps, &readers, &kept);
            let weight = |v: usize| -> Option<Vec<f32>> {
                let Some(Storage::Const(t)) = locs[v].as_ref().map(|l| &l.storage) else {
                    return None;
                };
                let a = t.as_f32()?.as_standard_layout();
                a.as_slice().map(<[f32]>::to_vec)
            };
            cpu::merge_expand_dw(&mut steps, &readers, &kept, &weight, options.threads);
        }
        // Last step reading each value.
        let mut last_read: Vec<Option<usize>> = vec![None; nv];
        for (s, step) in steps.iter().enumerate() {
            for &i in &step.inputs {
                last_read[i] = Some(s);
            }
        }
        // Storage. Buffers are arena regions: `buf_of[v]` for arena-held values; a view
        // shares its base's buffer; an in-place output takes its input's buffer.
        let mut bufs: Vec<Lifetime> = Vec::new();
        let mut buf_of: Vec<Option<usize>> = vec![None; nv];
        // Tensor groups for the lower bound: views join their base, nothing else merges
        // (each step's scratch joins them below).
        let mut groups: Vec<Lifetime> = Vec::new();
        let mut group_of: Vec<Option<usize>> = vec![None; nv];
        let mut kept_at: Vec<Option<usize>> = vec![None; nv];
        for (j, &k) in keep.iter().enumerate() {
            if kept_at[k].is_none() {
                kept_at[k] = Some(j);
            }
        }
        let mut report = MemoryReport::default();
        let mut scratch_req: Vec<(usize, usize)> = Vec::new(); // (step, floats)
        for (s, step) in steps.iter_mut().enumerate() {
            let outs = step.outputs.clone();
            for (oi, &o) in outs.iter().enumerate() {
                let (dtype, shape) = (spec.types[o].dtype, concrete(o)?);
                let dies = |v: ValueId| last_read[v].is_none_or(|l| l <= s);
                let life = |first| Lifetime {
                    first,
                    last: last_read[o].unwrap_or(first).max(first),
                    bytes: 0,
                };
                if let Some(j) = kept_at[o] {
                    if matches!(step.kernel, Kernel::Alias) {
                        step.kernel = Kernel::Copy;
                    }
                    locs[o] = Some(loc(Storage::Output(j), dtype, shape));
                    continue;
                }
                let input0 = step.inputs.first().copied();
                if matches!(step.kernel, Kernel::Alias) && oi == 0 {
                    // A view: the base's storage with the new shape.
                    let base = input0.and_then(|i| locs[i].clone()).ok_or_else(|| {
                        Error::Plan(kayak_ir::Error::Graph("view of a missing value".into()))
                    })?;
                    let i = input0.expect("checked");
                    buf_of[o] = buf_of[i];
                    group_of[o] = group_of[i];
                    if let Some(b) = buf_of[o] {
                        bufs[b].last = bufs[b].last.max(life(s).last);
                    }
                    if let Some(g) = group_of[o] {
                        groups[g].last = groups[g].last.max(life(s).last);
                    }
                    locs[o] = Some(loc(base.storage, dtype, shape));
                    report.aliased_views += 1;
                    continue;
                }
                let bytes = shape.iter().product::<usize>() * dtype.size_of();
                report.intermediates += 1;
                report.naive_bytes += bytes;
                groups.push(Lifetime { bytes, ..life(s) });
                group_of[o] = Some(groups.len() - 1);
                // In place: an input that dies here, alone in its buffer at this step, of
                // the same size and shape.
                let mut reuse = None;
                if options.reuse && oi == 0 {
                    for &k in step.kernel.in_place_inputs() {
                        let Some(&i) = step.inputs.get(k) else {
                            continue;
                        };
                        let Some(b) = buf_of[i] else { continue };
                        let same = locs[i]
                            .as_ref()
                            .is_some_and(|l| l.dtype == dtype && l.shape == shape);
                        let alone = step
                            .inputs
                            .iter()
                            .enumerate()
                            .all(|(q, &v)| q == k || buf_of[v] != Some(b));
                        if same && alone && bufs[b].last <= s && dies(i) {
                            reuse = Some((k, b));
                            break;
                        }
                    }
                }
                let b = match reuse {
                    Some((k, b)) => {
                        step.in_place = Some(k);
                        report.in_place_steps += 1;
                        bufs[b].last = life(s).last;
                        b
                    }
                    None => {
                        bufs.push(Lifetime { bytes, ..life(s) });
                        bufs.len() - 1
                    }
                };
                buf_of[o] = Some(b);
                locs[o] = Some(loc(Storage::Arena(usize::MAX), dtype, shape));
            }
            let sc = step.kernel.scratch(options.threads);
            if sc > 0 {
                scratch_req.push((s, sc));
            }
            if matches!(step.kernel, Kernel::Fallback) {
                report.fallback_steps += 1;
            }
        }
        let n_value_bufs = bufs.len();
        for &(s, floats) in &scratch_req {
            let life = Lifetime {
                first: s,
                last: s,
                bytes: floats * 4,
            };
            bufs.push(life);
            // A step's scratch is as much a need of that step as its tensors (a fused
            // step's scratch holds what its unfused ops kept in a tensor).
            groups.push(life);
            report.scratch_bytes += floats * 4;
        }
        let (offsets, arena) = if options.reuse {
            memory::assign_offsets(&bufs)
        } else {
            let mut off = Vec::with_capacity(bufs.len());
            let mut total = 0;
            for b in &bufs {
                off.push(total);
                total += b.bytes.div_ceil(memory::ALIGN) * memory::ALIGN;
            }
            (off, total)
        };
        debug_assert!(memory::check(&bufs, &offsets, arena));
        log::debug!(
            "arena {arena} bytes for {} buffers ({} scratch), lower bound {}",
            n_value_bufs,
            bufs.len() - n_value_bufs,
            memory::lower_bound(&groups)
        );
        for (v, l) in locs.iter_mut().enumerate() {
            if let (Some(l), Some(b)) = (l.as_mut(), buf_of[v]) {
                l.storage = Storage::Arena(offsets[b]);
            }
        }
        for (q, &(s, floats)) in scratch_req.iter().enumerate() {
            steps[s].scratch = Some((offsets[n_value_bufs + q], floats));
        }
        report.arena_bytes = arena;
        report.lower_bound_bytes = memory::lower_bound(&groups);
        report.output_bytes = keep
            .iter()
            .filter_map(|&k| locs[k].as_ref().map(Loc::bytes))
            .sum();
        Ok(Plan {
            input_shapes: input_shapes.to_vec(),
            steps,
            types: spec.types.clone(),
            locs,
            keep: keep.to_vec(),
            memory: report,
            options,
            dynamic: None,
            id: next_id(),
        })
    }

    fn dynamic(
        graph: &Graph,
        input_shapes: &[Vec<usize>],
        keep: &[ValueId],
        options: PlanOptions,
        spec: kayak_ir::Specialized,
        run_node: &[bool],
    ) -> Plan {
        let nv = graph.values.len();
        let mut consts: Vec<Option<Arc<Tensor>>> = vec![None; nv];
        for (v, val) in graph.values.iter().enumerate() {
            consts[v] = match (&val.def, &spec.folded[v]) {
                (ValueDef::Const(t), _) => Some(t.clone()),
                (_, Some(t)) => Some(t.clone()),
                _ => None,
            };
        }
        let steps: Vec<Step> = graph
            .nodes
            .iter()
            .enumerate()
            .filter(|(n, _)| run_node[*n])
            .map(|(n, node)| Step {
                node: n,
                inputs: node.inputs.clone(),
                outputs: node.outputs.clone(),
                kernel: Kernel::Fallback,
                in_place: None,
                scratch: None,
            })
            .collect();
        let mut last_read = vec![None; nv];
        for (s, step) in steps.iter().enumerate() {
            for &i in &step.inputs {
                last_read[i] = Some(s);
            }
        }
        let unknown = (0..nv)
            .find(|&v| spec.types[v].shape.to_known().is_none() && consts[v].is_none())
            .map(|v| format!("`{}` is {}", graph.values[v].name, spec.types[v].shape))
            .unwrap_or_default();
        let memory = MemoryReport {
            fallback_steps: steps.len(),
            ..MemoryReport::default()
        };
        Plan {
            input_shapes: input_shapes.to_vec(),
            steps,
            types: spec.types,
            locs: vec![None; nv],
            keep: keep.to_vec(),
            memory,
            options,
            dynamic: Some(DynamicPlan {
                consts,
                last_read,
                reason: format!("data-dependent shape: {unknown}"),
            }),
            id: next_id(),
        }
    }

    /// Checks the plan's memory invariants: arena regions of values alive at the same step
    /// never overlap (unless one is the in-place input of the step writing the other), and
    /// every region lies inside the arena. Tests call it on every model.
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
            match self.locs[v].as_ref()?.storage {
                Storage::Arena(o) => Some((o, o + self.locs[v].as_ref()?.bytes())),
                _ => None,
            }
        };
        // Values sharing a buffer on purpose: views with their base, in-place outputs with
        // the input they overwrite.
        let mut root: Vec<usize> = (0..self.locs.len()).collect();
        for step in &self.steps {
            let o = step.outputs[0];
            if matches!(step.kernel, Kernel::Alias) {
                root[o] = root[step.inputs[0]];
            } else if let Some(k) = step.in_place {
                root[o] = root[step.inputs[k]];
            }
        }
        let vals: Vec<usize> = (0..self.locs.len())
            .filter(|&v| region(v).is_some() && life[v].is_some())
            .collect();
        for &v in &vals {
            let (s, e) = region(v).expect("filtered");
            if e > arena {
                return Err(format!("value {v} [{s}, {e}) outside the arena ({arena})"));
            }
        }
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
                    if overlap && step.in_place != Some(k) && !matches!(step.kernel, Kernel::Alias)
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

/// A topological order of the nodes that run, scheduled greedily to keep less memory
/// alive: among the ready nodes, the one that frees the most bytes (inputs it reads for
/// the last time) net of what it allocates (its outputs; views allocate nothing) goes
/// first; ties keep the graph's order.
fn memory_order(
    graph: &Graph,
    spec: &kayak_ir::Specialized,
    run_node: &[bool],
    keep: &[ValueId],
) -> Vec<usize> {
    let nv = graph.values.len();
    let mut producer: Vec<Option<usize>> = vec![None; nv];
    for (n, node) in graph.nodes.iter().enumerate() {
        if run_node[n] {
            for &o in &node.outputs {
                producer[o] = Some(n);
            }
        }
    }
    let bytes = |v: ValueId| -> i64 {
        if producer[v].is_none() || keep.contains(&v) {
            return 0;
        }
        spec.types[v].shape.to_known().map_or(0, |s| {
            (s.iter().product::<usize>() * spec.types[v].dtype.size_of()) as i64
        })
    };
    let mut readers = vec![0usize; nv];
    let mut waiting = vec![0usize; graph.nodes.len()];
    for (n, node) in graph.nodes.iter().enumerate() {
        if !run_node[n] {
            continue;
        }
        let mut deps = std::collections::BTreeSet::new();
        for &i in &node.inputs {
            readers[i] += 1;
            if let Some(p) = producer[i] {
                deps.insert(p);
            }
        }
        waiting[n] = deps.len();
    }
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); graph.nodes.len()];
    for (n, node) in graph.nodes.iter().enumerate() {
        if !run_node[n] {
            continue;
        }
        let mut seen = std::collections::BTreeSet::new();
        for &i in &node.inputs {
            if let Some(p) = producer[i] {
                if seen.insert(p) {
                    consumers[p].push(n);
                }
            }
        }
    }
    let mut ready: Vec<usize> = (0..graph.nodes.len())
        .filter(|&n| run_node[n] && waiting[n] == 0)
        .collect();
    let mut order = Vec::new();
    while !ready.is_empty() {
        let score = |n: usize| -> i64 {
            let node = &graph.nodes[n];
            let mut freed = 0;
            let mut counted = std::collections::BTreeSet::new();
            for &i in &node.inputs {
                let uses = node.inputs.iter().filter(|&&j| j == i).count();
                if readers[i] == uses && counted.insert(i) {
                    freed += bytes(i);
                }
            }
            let alloc: i64 = if node.op.is_view() {
                0
            } else {
                node.outputs.iter().map(|&o| bytes(o)).sum()
            };
            freed - alloc
        };
        let (pos, &n) = ready
            .iter()
            .enumerate()
            .max_by_key(|&(_, &n)| (score(n), std::cmp::Reverse(n)))
            .expect("non-empty");
        ready.swap_remove(pos);
        order.push(n);
        for &i in &graph.nodes[n].inputs {
            readers[i] -= 1;
        }
        for &c in &consumers[n] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.push(c);
            }
        }
    }
    order
}
