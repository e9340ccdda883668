//! Making a plan: which nodes run, in which order, their kernels, and every value's place.

use super::{next_id, DynamicPlan, Loc, MemoryReport, Plan, PlanOptions, Step, Storage};
use crate::cpu::{self, StepKernel};
use crate::memory::{self, Lifetime};
use crate::{Error, Result};
use kayak_ir::{DType, Graph, Tensor, ValueDef, ValueId};
use std::sync::Arc;

impl Plan {
    /// Plans `graph` for concrete input shapes, producing `keep` (graph outputs and any
    /// fetched variables). The plan is checked before it is returned
    /// ([`Plan::check_memory`]).
    ///
    /// # Errors
    /// [`Error::Plan`] if the shapes do not type-check or a kept value is not in the graph;
    /// [`Error::Invalid`] if the plan made breaks one of its own invariants (a bug).
    pub fn new(
        graph: Arc<Graph>,
        input_shapes: &[Vec<usize>],
        keep: &[ValueId],
        options: PlanOptions,
    ) -> Result<Plan> {
        let nv = graph.values.len();
        if let Some(&k) = keep.iter().find(|&&k| k >= nv) {
            return Err(Error::Plan(kayak_ir::Error::Graph(format!(
                "kept value {k} is not in the graph ({nv} values)"
            ))));
        }
        let spec = graph.specialize(input_shapes).map_err(Error::Plan)?;
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
        let plan = Plan::best(graph, input_shapes, keep, options, &spec, &run_node)?;
        plan.check_memory().map_err(Error::Invalid)?;
        Ok(plan)
    }

    /// The plan in the graph's order or in the memory-aware one, whichever has the smaller
    /// arena.
    fn best(
        graph: Arc<Graph>,
        input_shapes: &[Vec<usize>],
        keep: &[ValueId],
        options: PlanOptions,
        spec: &kayak_ir::Specialized,
        run_node: &[bool],
    ) -> Result<Plan> {
        // Two execution orders: the graph's, and one scheduled to keep less memory alive;
        // the one with the smaller arena is kept.
        let graph_order: Vec<usize> = (0..graph.nodes.len()).filter(|&n| run_node[n]).collect();
        let greedy = super::order::memory_order(&graph, spec, run_node, keep);
        let a = Plan::build(
            graph.clone(),
            input_shapes,
            keep,
            options,
            spec,
            &graph_order,
        )?;
        if greedy == graph_order {
            return Ok(a);
        }
        let mut b = Plan::build(graph, input_shapes, keep, options, spec, &greedy)?;
        if b.memory.arena_bytes < a.memory.arena_bytes {
            b.memory.reordered = true;
            Ok(b)
        } else {
            Ok(a)
        }
    }

    fn build(
        graph: Arc<Graph>,
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
            // Kernels read a constant's elements in a row from its first: one in another
            // layout (any safe code can make one) is copied into standard layout.
            let t = if crate::cpu::Region::of_tensor(&t).is_some() {
                t
            } else {
                Arc::new(t.to_standard_layout())
            };
            let data = crate::cpu::Region::of_tensor(&t).ok_or_else(|| {
                Error::Invalid("a constant in standard layout has no region".into())
            })?;
            locs[v] = Some(loc(
                Storage::Const(t.clone(), data),
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
                StepKernel::Alias
            } else if options.native {
                let ti: Vec<cpu::Ty<'_>> = ins.iter().map(|(d, s)| (*d, s.as_slice())).collect();
                let to: Vec<cpu::Ty<'_>> = outs.iter().map(|(d, s)| (*d, s.as_slice())).collect();
                let vals: Vec<Option<&Tensor>> = node
                    .inputs
                    .iter()
                    .map(|&i| match locs[i].as_ref().map(|l| &l.storage) {
                        Some(Storage::Const(t, _)) => Some(&**t),
                        _ => None,
                    })
                    .collect();
                cpu::compile(&node.op, &ti, &vals, &to)
                    .map_or(StepKernel::Fallback, StepKernel::Native)
            } else {
                StepKernel::Fallback
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
            let weight = |v: usize| -> Option<Vec<f32>> {
                let Some(Storage::Const(t, _)) = locs[v].as_ref().map(|l| &l.storage) else {
                    return None;
                };
                let a = t.as_f32()?.as_standard_layout();
                a.as_slice().map(<[f32]>::to_vec)
            };
            cpu::merge_steps(&mut steps, &readers, &kept, &weight, options.threads);
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
                    if matches!(step.kernel, StepKernel::Alias) {
                        step.kernel = StepKernel::Copy;
                    }
                    locs[o] = Some(loc(Storage::Output(j), dtype, shape));
                    continue;
                }
                let input0 = step.inputs.first().copied();
                if matches!(step.kernel, StepKernel::Alias) && oi == 0 {
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
            if matches!(step.kernel, StepKernel::Fallback) {
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
            graph,
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
        graph: Arc<Graph>,
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
                kernel: StepKernel::Fallback,
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
            graph,
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
}
