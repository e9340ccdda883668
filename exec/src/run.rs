//! Running a plan: the arena, the run loop, and the per-run state.

use crate::cpu::{Ctx, Ins, Outs};
use crate::plan::{Plan, Storage};
use crate::{Error, Result};
use kayak_ir::Tensor;
use kayak_kernels::ThreadPool;

/// The graph inputs of a run, by position.
pub trait Inputs {
    /// Input `k`, if set.
    fn input(&self, k: usize) -> Option<&Tensor>;
    /// How many there are.
    fn count(&self) -> usize;
}

impl Inputs for &[&Tensor] {
    fn input(&self, k: usize) -> Option<&Tensor> {
        self.get(k).copied()
    }
    fn count(&self) -> usize {
        self.len()
    }
}

impl Inputs for Vec<&Tensor> {
    fn input(&self, k: usize) -> Option<&Tensor> {
        self.get(k).copied()
    }
    fn count(&self) -> usize {
        self.len()
    }
}

impl Inputs for Vec<Tensor> {
    fn input(&self, k: usize) -> Option<&Tensor> {
        self.get(k)
    }
    fn count(&self) -> usize {
        self.len()
    }
}

impl Inputs for Vec<Option<Tensor>> {
    fn input(&self, k: usize) -> Option<&Tensor> {
        self.get(k).and_then(Option::as_ref)
    }
    fn count(&self) -> usize {
        self.len()
    }
}

/// What one run needs besides the plan: the arena, the output tensors and the threads.
/// Reused across runs; it grows to the largest plan it has run and never shrinks, so a
/// run with a cached plan allocates nothing.
pub struct RunState {
    arena: crate::arena::Arena,
    /// Values of a dynamic plan's run (empty otherwise).
    slots: Vec<Option<Tensor>>,
    outputs: Vec<Tensor>,
    pool: ThreadPool,
    /// Per plan: runs dispatched or inline ([`crate::adapt`]).
    adapt: crate::adapt::Adapt,
    adaptive: bool,
    /// Runs this state made with more than one thread, and how many of them inline.
    runs_multi: u64,
    runs_inline: u64,
    /// The regions of a run's inputs and outputs (buffers kept between runs).
    regions: crate::cpu::RegionBufs,
}

impl std::fmt::Debug for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunState")
            .field("arena_bytes", &self.arena.len())
            .field("outputs", &self.outputs.len())
            .field("threads", &self.pool.threads())
            .finish()
    }
}

impl Default for RunState {
    fn default() -> Self {
        RunState::new(1)
    }
}

impl RunState {
    /// A state whose runs use `threads` threads (the caller's included; workers start now).
    pub fn new(threads: usize) -> RunState {
        RunState {
            arena: crate::arena::Arena::new(),
            slots: Vec::new(),
            outputs: Vec::new(),
            pool: ThreadPool::new(threads),
            adapt: crate::adapt::Adapt::default(),
            adaptive: true,
            runs_multi: 0,
            runs_inline: 0,
            regions: Default::default(),
        }
    }

    /// Of the runs this state made with more than one thread, how many ran all their ops
    /// on the calling thread (the adaptive choice measured that faster), and how many runs
    /// there were: `(inline, all)`.
    pub fn inline_runs(&self) -> (u64, u64) {
        (self.runs_inline, self.runs_multi)
    }

    /// [`RunState::new`], choosing whether a plan's runs dispatch across the pool or run
    /// all on the calling thread by measuring both now and then (`adaptive`, the
    /// default; see `adapt.rs`, moot at 1 thread), or always dispatching. Either way the
    /// results are the same bits.
    pub fn with_adaptive(threads: usize, adaptive: bool) -> RunState {
        RunState {
            adaptive,
            ..RunState::new(threads)
        }
    }

    /// Threads of this state's pool.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// The kept values of the last run, in the plan's `keep` order.
    pub fn outputs(&self) -> &[Tensor] {
        &self.outputs
    }

    /// Bytes the arena holds now.
    pub fn arena_bytes(&self) -> usize {
        self.arena.len()
    }

    /// Makes room for `plan`: the arena and the output tensors (only when they change).
    fn prepare(&mut self, plan: &Plan) -> Result<()> {
        self.arena.grow(plan.memory().arena_bytes);
        self.outputs.truncate(plan.keep().len());
        for (j, &k) in plan.keep().iter().enumerate() {
            let l = plan.locs()[k]
                .as_ref()
                .ok_or_else(|| Error::Kernel(format!("kept value {k} has no place")))?;
            let fits = self
                .outputs
                .get(j)
                .is_some_and(|t| t.dtype() == l.dtype && t.shape() == l.shape.as_slice());
            if !fits {
                let t = Tensor::zeros(l.dtype, &l.shape);
                if j < self.outputs.len() {
                    self.outputs[j] = t;
                } else {
                    self.outputs.push(t);
                }
            }
        }
        Ok(())
    }
}

impl Plan {
    /// Runs the plan. The kept values land in `state.outputs()`. With a plan already made
    /// and `state` already used for it, a run allocates nothing — unless the plan has
    /// fallback steps ([`crate::MemoryReport::fallback_steps`]).
    pub fn run(&self, inputs: &dyn Inputs, state: &mut RunState) -> Result<()> {
        self.run_timed(inputs, state, None)
    }

    /// [`Plan::run`], adding each step's wall time in nanoseconds to `times[step]` when
    /// given (`times` must have one entry per step).
    pub fn run_timed(
        &self,
        inputs: &dyn Inputs,
        state: &mut RunState,
        mut times: Option<&mut [u64]>,
    ) -> Result<()> {
        if inputs.count() != self.input_shapes().len() {
            return Err(Error::Input {
                index: inputs.count(),
                reason: format!(
                    "{} inputs given, {} expected",
                    inputs.count(),
                    self.input_shapes().len()
                ),
            });
        }
        for (k, s) in self.input_shapes().iter().enumerate() {
            let Some(t) = inputs.input(k) else {
                return Err(Error::Input {
                    index: k,
                    reason: "not set".into(),
                });
            };
            if t.shape() != s.as_slice() {
                return Err(Error::Input {
                    index: k,
                    reason: format!("shape {:?}, the plan is for {:?}", t.shape(), s),
                });
            }
            let want = self.types()[self.graph().inputs[k]].dtype;
            if t.dtype() != want {
                return Err(Error::Input {
                    index: k,
                    reason: format!("dtype {}, the plan is for {want}", t.dtype()),
                });
            }
            if crate::cpu::Region::of_tensor(t).is_none() {
                return Err(Error::Input {
                    index: k,
                    reason: "not in row-major (standard) layout".into(),
                });
            }
        }
        if let Some(t) = &times {
            if t.len() != self.step_count() {
                return Err(Error::Input {
                    index: 0,
                    reason: format!("{} step times for {} steps", t.len(), self.step_count()),
                });
            }
        }
        if let Some(d) = self.dynamic_part() {
            return self.run_dynamic(d, inputs, state);
        }
        state.prepare(self)?;
        let RunState {
            arena,
            outputs,
            pool,
            adapt,
            adaptive,
            runs_multi,
            runs_inline,
            regions,
            ..
        } = state;
        let ctx = Ctx::new(inputs, arena, outputs, regions)?;
        let pool = &*pool;
        let choice = (*adaptive && pool.threads() > 1).then(|| adapt.plan(self.id()));
        let run0 = choice.as_ref().map(|_| std::time::Instant::now());
        let inline = choice.as_ref().is_some_and(|c| c.inline());
        pool.set_inline(inline);
        if pool.threads() > 1 {
            *runs_multi += 1;
            *runs_inline += u64::from(inline);
        }
        let steps = (|| -> Result<()> {
            for s in 0..self.step_count() {
                match times.as_deref_mut() {
                    Some(t) => {
                        let t0 = std::time::Instant::now();
                        self.run_step(s, &ctx, pool)?;
                        t[s] += t0.elapsed().as_nanos() as u64;
                    }
                    None => self.run_step(s, &ctx, pool)?,
                }
            }
            Ok(())
        })();
        pool.set_inline(false);
        steps?;
        if let Some(c) = choice {
            c.end_run(run0.map_or(0, |t| t.elapsed().as_nanos() as u64));
        }
        // Kept values that no step wrote into their output tensor: copy them there.
        for (j, &k) in self.keep().iter().enumerate() {
            let l = self.locs()[k]
                .as_ref()
                .ok_or_else(|| Error::Kernel(format!("kept value {k} has no place")))?;
            if matches!(l.storage, Storage::Output(jj) if jj == j) {
                continue;
            }
            ctx.copy_to_output(l, j)?;
        }
        Ok(())
    }

    fn run_dynamic(
        &self,
        d: &crate::plan::DynamicPlan,
        inputs: &dyn Inputs,
        state: &mut RunState,
    ) -> Result<()> {
        let graph = self.graph();
        state.slots.clear();
        state.slots.resize_with(graph.values.len(), || None);
        let input_pos = |v: usize| graph.inputs.iter().position(|&i| i == v);
        for (s, step) in self.raw_steps().iter().enumerate() {
            let node = &graph.nodes[step.node];
            let outs = {
                let mut args: Vec<&Tensor> = Vec::with_capacity(step.inputs.len());
                for &v in &step.inputs {
                    let t = match (&d.consts[v], input_pos(v), &state.slots[v]) {
                        (Some(c), _, _) => &**c,
                        (None, Some(k), _) => inputs
                            .input(k)
                            .ok_or_else(|| Error::Kernel(format!("input {k} vanished")))?,
                        (None, None, Some(t)) => t,
                        _ => {
                            return Err(Error::Kernel(format!(
                                "{}: an input not computed yet",
                                node.origin
                            )))
                        }
                    };
                    args.push(t);
                }
                node.op.eval(&args).map_err(|source| Error::Node {
                    origin: node.origin.clone(),
                    source,
                })?
            };
            for (&v, t) in step.outputs.iter().zip(outs) {
                let want = &self.types()[v];
                let shape_ok = want.shape.rank() == t.shape().len()
                    && want
                        .shape
                        .dims()
                        .iter()
                        .zip(t.shape())
                        .all(|(d, &n)| d.known().is_none_or(|k| k == n));
                if t.dtype() != want.dtype || !shape_ok {
                    return Err(Error::OutputMismatch {
                        origin: node.origin.clone(),
                        got_dtype: t.dtype(),
                        got_shape: kayak_ir::Shape::known(t.shape()),
                        want_dtype: want.dtype,
                        want_shape: want.shape.clone(),
                    });
                }
                state.slots[v] = Some(t);
            }
            for &v in &step.inputs {
                if d.last_read[v] == Some(s) && !self.keep().contains(&v) {
                    state.slots[v] = None;
                }
            }
        }
        state.outputs.clear();
        for &k in self.keep() {
            let t = match (&d.consts[k], input_pos(k)) {
                (Some(c), _) => (**c).clone(),
                (None, Some(i)) => inputs
                    .input(i)
                    .ok_or_else(|| Error::Kernel(format!("input {i} vanished")))?
                    .clone(),
                _ => state.slots[k]
                    .clone()
                    .ok_or_else(|| Error::Kernel(format!("kept value {k} was not computed")))?,
            };
            state.outputs.push(t);
        }
        state.slots.clear();
        Ok(())
    }

    /// Runs step `s` with its kernel, its inputs and outputs handed out as checked
    /// slices.
    fn run_step(&self, s: usize, ctx: &Ctx<'_>, pool: &ThreadPool) -> Result<()> {
        let step = &self.raw_steps()[s];
        let node = &self.graph().nodes[step.node];
        let locs = self.locs();
        let empty = step.outputs.iter().all(|&o| {
            locs.get(o)
                .and_then(Option::as_ref)
                .is_some_and(|l| l.len == 0)
        });
        if empty {
            return Ok(()); // nothing to compute
        }
        let ins = Ins::new(ctx, step, locs, node, pool);
        let mut outs = Outs::new(ins);
        step.kernel.run(&ins, &mut outs)
    }
}

#[cfg(test)]
mod tests {
    //! A whole plan run end to end through the checked step I/O: arena values, an in-place
    //! step, a view, a kept value written straight into its output tensor and one copied
    //! there, native kernels and a reference fallback. Also under Miri in CI.
    use crate::{Plan, PlanOptions, RunState};
    use kayak_ir::ops::{Binary, BinaryOp, Concat, ListInput, Reshape, Softmax, UnaryOp};
    use kayak_ir::{DType, Graph, Op, Tensor, TypeInfo};
    use std::sync::Arc;

    #[test]
    fn a_small_graph_runs_as_its_reference_says() {
        let mut g = Graph::new();
        let x = g
            .add_input("x", TypeInfo::known(DType::F32, &[2, 3]))
            .unwrap();
        let b = g
            .add_const(
                "b",
                Arc::new(Tensor::from_f32s(&[3], vec![0.5, -1.0, 2.0]).unwrap()),
            )
            .unwrap();
        let add = |g: &mut Graph, a, c, name: &str| {
            g.add_node(
                Op::Binary(Binary::new(BinaryOp::Add, -1)),
                vec![a, c],
                &[name],
                name,
            )
            .unwrap()[0]
        };
        let s = add(&mut g, x, b, "s");
        let r = g
            .add_node(Op::Unary(UnaryOp::Relu), vec![s], &["r"], "r")
            .unwrap()[0];
        let sm = g
            .add_node(Op::Softmax(Softmax { axis: -1 }), vec![r], &["sm"], "sm")
            .unwrap()[0];
        let v = g
            .add_node(
                Op::Reshape(Reshape {
                    shape: vec![3, 2],
                    shape_input: ListInput::Attr,
                }),
                vec![sm],
                &["v"],
                "v",
            )
            .unwrap()[0];
        let c = g
            .add_node(Op::Concat(Concat { axis: 0 }), vec![v, v], &["c"], "c")
            .unwrap()[0];
        // An op the CPU has no kernel for: the reference fallback.
        let e = g
            .add_node(Op::Unary(UnaryOp::Erf), vec![c], &["e"], "e")
            .unwrap()[0];
        g.add_output(e);
        g.add_output(x);
        let g = Arc::new(g);
        let plan = Plan::new(
            g.clone(),
            &[vec![2, 3]],
            &[e, x, sm],
            PlanOptions::default(),
        )
        .unwrap();
        plan.check_memory().unwrap();
        assert!(plan.memory().in_place_steps > 0, "{:?}", plan.memory());
        let xs = Tensor::from_f32s(&[2, 3], vec![-1.0, 0.0, 1.0, 2.0, -3.0, 0.25]).unwrap();
        let want = g.evaluate(std::slice::from_ref(&xs)).unwrap();
        let mut state = RunState::new(1);
        for _ in 0..2 {
            plan.run(&vec![xs.clone()], &mut state).unwrap();
            let got = state.outputs();
            assert_eq!(got.len(), 3);
            assert_eq!(got[1], xs, "a kept input is copied out");
            for (a, b) in got[0].to_f64_vec().iter().zip(want[0].to_f64_vec()) {
                assert!((a - b).abs() < 1e-6, "{a} vs {b}");
            }
            let sums: Vec<f64> = got[2]
                .to_f64_vec()
                .chunks(3)
                .map(|r| r.iter().sum())
                .collect();
            assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-6), "{sums:?}");
        }
    }
}
