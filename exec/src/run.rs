//! Running a plan: the arena, the run loop, and the per-run state.

use crate::cpu::Kernel;
use crate::plan::{Loc, Plan, Step, Storage};
use crate::{Error, Result};
use kayak_ir::{DType, Graph, Tensor};
use kayak_kernels::conv::ConvEpilogue;
use kayak_kernels::gemm::{self, Epilogue, Mat};
use kayak_kernels::ops::{self as kops, Src};
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
    fn prepare(&mut self, plan: &Plan) {
        self.arena.grow(plan.memory.arena_bytes);
        self.outputs.truncate(plan.keep.len());
        for (j, &k) in plan.keep.iter().enumerate() {
            let l = plan.locs[k].as_ref().expect("kept values are planned");
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
    }
}

/// True if `strides` are the row-major strides of `shape` (checked without allocating).
fn row_major(shape: &[usize], strides: &[isize]) -> bool {
    let mut run = 1isize;
    for (&d, &s) in shape.iter().zip(strides).rev() {
        if d > 1 && s != run {
            return false;
        }
        run *= d as isize;
    }
    true
}

/// A raw region of memory: pointer and byte length.
#[derive(Clone, Copy)]
struct Region {
    ptr: *mut u8,
    bytes: usize,
}

/// Pointer and byte length of a tensor's data (row-major, standard layout).
fn tensor_region(t: &Tensor) -> Region {
    kayak_ir::with_tensor!(t, a => Region {
        ptr: a.as_ptr() as *mut u8,
        bytes: a.len() * std::mem::size_of_val(a.first().unwrap_or(&Default::default())),
    })
}

struct Ctx<'a> {
    inputs: &'a dyn Inputs,
    arena: *mut u8,
    outputs: *mut Tensor,
}

impl Ctx<'_> {
    fn region(&self, l: &Loc) -> Region {
        let bytes = l.bytes();
        match &l.storage {
            Storage::Input(k) => {
                let t = self
                    .inputs
                    .input(*k)
                    .expect("inputs checked before the run");
                Region {
                    ptr: tensor_region(t).ptr,
                    bytes,
                }
            }
            Storage::Const(t) => Region {
                ptr: tensor_region(t).ptr,
                bytes,
            },
            // SAFETY: the plan places every arena value inside `arena_bytes`, and
            // `prepare` sized the arena to at least that.
            #[allow(unsafe_code)]
            Storage::Arena(off) => Region {
                ptr: unsafe { self.arena.add(*off) },
                bytes,
            },
            Storage::Output(j) => {
                // SAFETY: `prepare` made `outputs[j]` exist with this value's type.
                #[allow(unsafe_code)]
                let t = unsafe { &*self.outputs.add(*j) };
                Region {
                    ptr: tensor_region(t).ptr,
                    bytes,
                }
            }
        }
    }
}

/// Typed views of regions. Every region is aligned for its type (arena offsets are
/// multiples of 64; tensors come from the allocator) and holds initialized data of that
/// type (the arena starts zeroed, and every dtype accepts any bit pattern except bool,
/// which kernels only ever write as 0 or 1).
macro_rules! typed {
    ($name:ident, $name_mut:ident, $t:ty) => {
        #[allow(unsafe_code, clippy::mut_from_ref)]
        fn $name<'a>(r: Region) -> &'a [$t] {
            // SAFETY: see the note above; lengths come from the plan's types.
            unsafe {
                std::slice::from_raw_parts(r.ptr as *const $t, r.bytes / std::mem::size_of::<$t>())
            }
        }
        #[allow(unsafe_code, clippy::mut_from_ref)]
        fn $name_mut<'a>(r: Region) -> &'a mut [$t] {
            // SAFETY: as above; the planner never gives a step's output a region that
            // overlaps one of its inputs (unless that input is read in place, when no
            // input slice for it is made), checked by `Plan::check_memory`.
            unsafe {
                std::slice::from_raw_parts_mut(
                    r.ptr as *mut $t,
                    r.bytes / std::mem::size_of::<$t>(),
                )
            }
        }
    };
}
typed!(f32s, f32s_mut, f32);
typed!(i64s, i64s_mut, i64);
typed!(i32s, i32s_mut, i32);
typed!(u8s, u8s_mut, u8);
typed!(f64s, f64s_mut, f64);
typed!(u16s, u16s_mut, u16);

impl Plan {
    /// Runs the plan. The kept values land in `state.outputs()`. With a plan already made
    /// and `state` already used for it, a run allocates nothing — unless the plan has
    /// fallback steps ([`crate::MemoryReport::fallback_steps`]).
    pub fn run(&self, graph: &Graph, inputs: &dyn Inputs, state: &mut RunState) -> Result<()> {
        self.run_timed(graph, inputs, state, None)
    }

    /// [`Plan::run`], adding each step's wall time in nanoseconds to `times[step]` when
    /// given (`times` must have one entry per step).
    pub fn run_timed(
        &self,
        graph: &Graph,
        inputs: &dyn Inputs,
        state: &mut RunState,
        mut times: Option<&mut [u64]>,
    ) -> Result<()> {
        if inputs.count() != self.input_shapes.len() {
            return Err(Error::Input {
                index: inputs.count(),
                reason: format!(
                    "{} inputs given, {} expected",
                    inputs.count(),
                    self.input_shapes.len()
                ),
            });
        }
        for (k, s) in self.input_shapes.iter().enumerate() {
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
            let want = self.types[graph.inputs[k]].dtype;
            if t.dtype() != want {
                return Err(Error::Input {
                    index: k,
                    reason: format!("dtype {}, the plan is for {want}", t.dtype()),
                });
            }
            let standard = kayak_ir::with_tensor!(t, a => row_major(a.shape(), a.strides()));
            if !standard {
                return Err(Error::Input {
                    index: k,
                    reason: "not in row-major (standard) layout".into(),
                });
            }
        }
        if let Some(d) = &self.dynamic {
            return self.run_dynamic(graph, d, inputs, state);
        }
        state.prepare(self);
        let ctx = Ctx {
            inputs,
            arena: state.arena.as_mut_ptr(),
            outputs: state.outputs.as_mut_ptr(),
        };
        let pool = &state.pool;
        let choice = (state.adaptive && pool.threads() > 1).then(|| state.adapt.plan(self.id));
        let run0 = choice.as_ref().map(|_| std::time::Instant::now());
        let inline = choice.as_ref().is_some_and(|c| c.inline());
        pool.set_inline(inline);
        if pool.threads() > 1 {
            state.runs_multi += 1;
            state.runs_inline += u64::from(inline);
        }
        let steps = (|| -> Result<()> {
            for (s, step) in self.steps.iter().enumerate() {
                match times.as_deref_mut() {
                    Some(t) => {
                        let t0 = std::time::Instant::now();
                        self.run_step(graph, step, &ctx, pool)?;
                        t[s] += t0.elapsed().as_nanos() as u64;
                    }
                    None => self.run_step(graph, step, &ctx, pool)?,
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
        for (j, &k) in self.keep.iter().enumerate() {
            let l = self.locs[k].as_ref().expect("planned");
            if matches!(l.storage, Storage::Output(jj) if jj == j) {
                continue;
            }
            let src = ctx.region(l);
            let dst = ctx.region(&Loc {
                storage: Storage::Output(j),
                ..l.clone()
            });
            u8s_mut(dst).copy_from_slice(u8s(src));
        }
        Ok(())
    }

    fn run_dynamic(
        &self,
        graph: &Graph,
        d: &crate::DynamicPlan,
        inputs: &dyn Inputs,
        state: &mut RunState,
    ) -> Result<()> {
        state.slots.clear();
        state.slots.resize_with(graph.values.len(), || None);
        let input_pos = |v: usize| graph.inputs.iter().position(|&i| i == v);
        for (s, step) in self.steps.iter().enumerate() {
            let node = &graph.nodes[step.node];
            let outs = {
                let mut args: Vec<&Tensor> = Vec::with_capacity(step.inputs.len());
                for &v in &step.inputs {
                    let t = match (&d.consts[v], input_pos(v), &state.slots[v]) {
                        (Some(c), _, _) => &**c,
                        (None, Some(k), _) => inputs.input(k).expect("inputs checked"),
                        (None, None, Some(t)) => t,
                        _ => unreachable!("plan order computes every input first"),
                    };
                    args.push(t);
                }
                node.op.eval(&args).map_err(|source| Error::Node {
                    origin: node.origin.clone(),
                    source,
                })?
            };
            for (&v, t) in step.outputs.iter().zip(outs) {
                let want = &self.types[v];
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
                if d.last_read[v] == Some(s) && !self.keep.contains(&v) {
                    state.slots[v] = None;
                }
            }
        }
        state.outputs.clear();
        for &k in &self.keep {
            let t = match (&d.consts[k], input_pos(k)) {
                (Some(c), _) => (**c).clone(),
                (None, Some(i)) => inputs.input(i).expect("checked").clone(),
                _ => state.slots[k].clone().expect("kept values are computed"),
            };
            state.outputs.push(t);
        }
        state.slots.clear();
        Ok(())
    }

    fn loc(&self, v: usize) -> &Loc {
        self.locs[v]
            .as_ref()
            .expect("every value a step touches is planned")
    }

    fn run_step(&self, graph: &Graph, step: &Step, ctx: &Ctx<'_>, pool: &ThreadPool) -> Result<()> {
        let node = &graph.nodes[step.node];
        if step.outputs.iter().all(|&o| self.loc(o).len == 0) {
            return Ok(()); // nothing to compute
        }
        let inr = |k: usize| ctx.region(self.loc(step.inputs[k]));
        let out = || ctx.region(self.loc(step.outputs[0]));
        let src = |k: usize| -> Src<'_> {
            if step.in_place == Some(k) {
                Src::Out
            } else {
                Src::Slice(f32s(inr(k)))
            }
        };
        let scratch = || -> &mut [f32] {
            match step.scratch {
                Some((off, floats)) => f32s_mut(ctx.region(&Loc {
                    storage: Storage::Arena(off),
                    dtype: DType::F32,
                    shape: vec![],
                    len: floats,
                })),
                None => &mut [],
            }
        };
        // An SE block over a depthwise conv's output `o` (`[n, oc, oh·ow]` of `dw`), in
        // place, its four weights the step's inputs from `first`, the means given.
        let se_on = |dw: &kayak_kernels::conv::Conv2d,
                     first: usize,
                     acts: (kayak_kernels::Act, kayak_kernels::Act),
                     (o, se, means): (&mut [f32], &mut [f32], &[f32])| {
            kops::se_block(
                pool,
                (dw.n, dw.oc, dw.oh * dw.ow),
                Src::Out,
                (
                    f32s(inr(first)),
                    f32s(inr(first + 1)),
                    f32s(inr(first + 2)),
                    f32s(inr(first + 3)),
                ),
                acts,
                o,
                se,
                Some(means),
            )
        };
        match &step.kernel {
            Kernel::Alias => {}
            Kernel::Copy => u8s_mut(out()).copy_from_slice(u8s(inr(0))),
            Kernel::Fallback => {
                let mut args = Vec::with_capacity(step.inputs.len());
                for &v in &step.inputs {
                    let l = self.loc(v);
                    args.push(
                        Tensor::from_le_bytes(l.dtype, &l.shape, u8s(ctx.region(l))).map_err(
                            |source| Error::Node {
                                origin: node.origin.clone(),
                                source,
                            },
                        )?,
                    );
                }
                let refs: Vec<&Tensor> = args.iter().collect();
                let outs = node.op.eval(&refs).map_err(|source| Error::Node {
                    origin: node.origin.clone(),
                    source,
                })?;
                for (&v, t) in step.outputs.iter().zip(&outs) {
                    let l = self.loc(v);
                    if t.dtype() != l.dtype || t.shape() != l.shape.as_slice() {
                        return Err(Error::OutputMismatch {
                            origin: node.origin.clone(),
                            got_dtype: t.dtype(),
                            got_shape: kayak_ir::Shape::known(t.shape()),
                            want_dtype: l.dtype,
                            want_shape: kayak_ir::Shape::known(&l.shape),
                        });
                    }
                    t.write_le_bytes(u8s_mut(ctx.region(l)))
                        .map_err(|source| Error::Node {
                            origin: node.origin.clone(),
                            source,
                        })?;
                }
            }
            Kernel::Conv {
                geom,
                bias,
                residual,
                act,
                post,
            } => {
                let b = bias.then(|| f32s(inr(2)));
                let r = residual.then(|| f32s(inr(2 + *bias as usize)));
                let ep = ConvEpilogue {
                    bias: b,
                    residual: r,
                    act: *act,
                    post: *post,
                };
                kayak_kernels::conv::conv2d(
                    pool,
                    geom,
                    f32s(inr(0)),
                    f32s(inr(1)),
                    &ep,
                    f32s_mut(out()),
                    scratch(),
                );
            }
            Kernel::ConvSe {
                geom,
                bias,
                act,
                post,
                c1: _,
                acts,
            } => {
                let ep = ConvEpilogue {
                    bias: bias.then(|| f32s(inr(2))),
                    residual: None,
                    act: *act,
                    post: *post,
                };
                let k = 2 + usize::from(*bias);
                let conv = kayak_kernels::conv::depthwise_means_scratch(geom, pool.threads());
                let (cs, rest) = scratch().split_at_mut(conv);
                let (means, se) = rest.split_at_mut(geom.n * geom.oc);
                let o = f32s_mut(out());
                kayak_kernels::conv::depthwise_means(
                    pool,
                    geom,
                    f32s(inr(0)),
                    f32s(inr(1)),
                    &ep,
                    o,
                    cs,
                    means,
                );
                se_on(geom, k, *acts, (o, se, means));
            }
            Kernel::ExpandDw(k) => {
                let (dw, dw_bias, dw_act, dw_post, se) = k.dw_parts();
                let ep_pw = ConvEpilogue {
                    bias: k.pw_bias.then(|| f32s(inr(2))),
                    residual: None,
                    act: k.pw_act,
                    post: k.pw_post,
                };
                // The depthwise step's inputs after its first: weights, bias, SE weights.
                let d = 2 + usize::from(k.pw_bias);
                let ep_dw = ConvEpilogue {
                    bias: dw_bias.then(|| f32s(inr(d + 1))),
                    residual: None,
                    act: dw_act,
                    post: dw_post,
                };
                let conv = k.conv_scratch(pool.threads());
                let (cs, rest) = scratch().split_at_mut(conv);
                let (means, se_scratch) = rest.split_at_mut(if se.is_some() { dw.oc } else { 0 });
                let o = f32s_mut(out());
                let m = se.is_some().then_some(&mut *means);
                let dws = (&dw, f32s(inr(d)), &ep_dw);
                match &k.packed {
                    Some(p) => kayak_kernels::conv::expand_depthwise_blocked(
                        pool,
                        (&k.pw, p, &ep_pw),
                        dws,
                        f32s(inr(0)),
                        o,
                        cs,
                        m,
                    ),
                    None => kayak_kernels::conv::expand_depthwise_chunked(
                        pool,
                        (&k.pw, f32s(inr(1)), &ep_pw),
                        dws,
                        f32s(inr(0)),
                        o,
                        cs,
                        m,
                    ),
                }
                if let Some((_, acts)) = se {
                    let s = d + 1 + usize::from(dw_bias);
                    se_on(&dw, s, acts, (o, se_scratch, means));
                }
            }
            Kernel::MatMul(k) => {
                let x = f32s(inr(0));
                let y = f32s(inr(1));
                let g = k.g;
                let a = if k.tx {
                    Mat::rows(x, g.m).t()
                } else {
                    Mat::rows(x, g.k)
                };
                let b = if k.ty {
                    Mat::rows(y, g.k).t()
                } else {
                    Mat::rows(y, g.n)
                };
                let ep = Epilogue {
                    alpha: k.alpha,
                    col_bias: k.bias.then(|| f32s(inr(2))),
                    act: k.act,
                    ..Epilogue::default()
                };
                if k.packed {
                    let c = f32s_mut(out());
                    if !k.tx {
                        // x's products are contiguous and all read the one weight: one
                        // product of all their rows.
                        let g = gemm::Gemm {
                            m: k.batch * g.m,
                            ..g
                        };
                        gemm::sgemm_packed(pool, g, Mat::rows(x, g.k), y, c, g.n, &ep);
                    } else {
                        for t in 0..k.batch {
                            let (xo, _, co) = k.offsets(t);
                            let a = Mat::rows(&x[xo..], g.m).t();
                            gemm::sgemm_packed(pool, g, a, y, &mut c[co..], g.n, &ep);
                        }
                    }
                    return Ok(());
                }
                gemm::sgemm_batch(
                    pool,
                    g,
                    k.batch,
                    &|t| k.offsets(t),
                    a,
                    b,
                    f32s_mut(out()),
                    g.n,
                    &ep,
                );
            }
            Kernel::Pool(p) => kops::pool2d(pool, p, f32s(inr(0)), f32s_mut(out())),
            Kernel::Se { dims, acts, .. } => kops::se_block(
                pool,
                *dims,
                src(0),
                (f32s(inr(1)), f32s(inr(2)), f32s(inr(3)), f32s(inr(4))),
                *acts,
                f32s_mut(out()),
                scratch(),
                None,
            ),
            Kernel::Softmax { outer, len, inner } => {
                kops::softmax(pool, *outer, *len, *inner, src(0), f32s_mut(out()))
            }
            Kernel::LayerNorm {
                cols,
                skip,
                scale,
                bias,
                eps,
            } => {
                let p0 = 1 + *skip as usize;
                let s = scale.then(|| f32s(inr(p0)));
                let b = bias.then(|| f32s(inr(p0 + *scale as usize)));
                let second = skip.then(|| src(1));
                kops::skip_layer_norm(pool, *cols, src(0), second, s, b, *eps, f32s_mut(out()));
            }
            Kernel::Attention { geom, mask, packed } => {
                let q = f32s(inr(0));
                let (k, v, m) = if *packed {
                    (q, q, mask.then(|| f32s(inr(1))))
                } else {
                    (f32s(inr(1)), f32s(inr(2)), mask.then(|| f32s(inr(3))))
                };
                kops::attention(pool, geom, q, k, v, m, f32s_mut(out()), scratch());
            }
            Kernel::EmbeddingLayerNorm {
                vocab,
                id_strides,
                lead,
                padding,
                cols,
                scale,
                bias,
                eps,
            } => {
                let n = vocab.len();
                let mut ids: [&[i64]; 4] = [&[]; 4];
                let mut tables: [(&[f32], usize); 4] = [(&[], 0); 4];
                for l in 0..n {
                    ids[l] = i64s(inr(l));
                    tables[l] = (f32s(inr(n + l)), vocab[l]);
                }
                let s = scale.then(|| f32s(inr(2 * n)));
                let b = bias.then(|| f32s(inr(2 * n + *scale as usize)));
                kops::embedding_layer_norm(
                    &ids[..n],
                    id_strides,
                    *lead,
                    &tables[..n],
                    padding,
                    *cols,
                    s,
                    b,
                    *eps,
                    f32s_mut(out()),
                )
                .map_err(|(l, r, id)| Error::Node {
                    origin: node.origin.clone(),
                    source: kayak_ir::Error::OutOfRange {
                        op: "embedding_layer_norm",
                        reason: format!(
                            "lookup {l}: id {id} at position {r} out of range for a table of {} rows",
                            vocab[l]
                        ),
                    },
                })?;
            }
            Kernel::Unary(a) => kops::unary(pool, *a, src(0), f32s_mut(out())),
            Kernel::BatchNorm { dims, eps } => kops::batch_norm(
                pool,
                *dims,
                src(0),
                (f32s(inr(1)), f32s(inr(2)), f32s(inr(3)), f32s(inr(4))),
                *eps,
                f32s_mut(out()),
            ),
            Kernel::Embedding { vocab, d, padding } => {
                let table = f32s(inr(1));
                let o = f32s_mut(out());
                let r = match self.loc(step.inputs[0]).dtype {
                    DType::I64 => kops::embedding(i64s(inr(0)), table, (*vocab, *d), *padding, o),
                    _ => kops::embedding(i32s(inr(0)), table, (*vocab, *d), *padding, o),
                };
                r.map_err(|(i, id)| Error::Node {
                    origin: node.origin.clone(),
                    source: kayak_ir::Error::OutOfRange {
                        op: "embedding",
                        reason: format!(
                            "id {id} at position {i} out of range for a table of {vocab} rows"
                        ),
                    },
                })?;
            }
            Kernel::Binary { op, bc, act } => {
                kops::binary(pool, *op, *act, bc, src(0), src(1), f32s_mut(out()))
            }
            Kernel::Compare { op, bc } => {
                let l = self.loc(step.inputs[0]);
                let o = u8s_mut(out());
                match l.dtype {
                    DType::F32 => kops::compare(*op, bc, f32s(inr(0)), f32s(inr(1)), o),
                    DType::I64 => kops::compare(*op, bc, i64s(inr(0)), i64s(inr(1)), o),
                    _ => kops::compare(*op, bc, i32s(inr(0)), i32s(inr(1)), o),
                }
            }
            Kernel::Cast { from, to } => cast(*from, *to, inr(0), out()),
            Kernel::ConvTranspose { geom, bias } => kayak_kernels::conv::conv_transpose2d(
                pool,
                geom,
                f32s(inr(0)),
                f32s(inr(1)),
                bias.then(|| f32s(inr(2))),
                f32s_mut(out()),
                scratch(),
            ),
            Kernel::Gather(gs) => {
                let i = inr(0);
                let size = self.loc(step.inputs[0]).dtype.size_of();
                for (g, &o) in gs.iter().zip(&step.outputs) {
                    let o = ctx.region(self.loc(o));
                    match size {
                        8 => kops::gather(pool, g, i64s(i), i64s_mut(o)),
                        4 => kops::gather(pool, g, i32s(i), i32s_mut(o)),
                        2 => kops::gather(pool, g, u16s(i), u16s_mut(o)),
                        _ => kops::gather(pool, g, u8s(i), u8s_mut(o)),
                    }
                }
            }
            Kernel::Concat { outer, lens } => {
                let o = out();
                let size = self.loc(step.outputs[0]).dtype.size_of();
                let total: usize = lens.iter().sum::<usize>() * size;
                let dst = u8s_mut(o);
                let mut at = 0;
                for (k, &len) in lens.iter().enumerate() {
                    kops::concat_part(u8s(inr(k)), *outer, len * size, at, total, dst);
                    at += len * size;
                }
            }
        }
        Ok(())
    }
}

fn cast(from: DType, to: DType, i: Region, o: Region) {
    macro_rules! conv {
        ($src:expr, $dst:expr, $f:expr) => {
            for (d, s) in $dst.iter_mut().zip($src) {
                *d = $f(*s);
            }
        };
    }
    match (from, to) {
        (a, b) if a == b => u8s_mut(o).copy_from_slice(u8s(i)),
        (DType::F32, DType::I64) => conv!(f32s(i), i64s_mut(o), |v: f32| v as i64),
        (DType::F32, DType::I32) => conv!(f32s(i), i32s_mut(o), |v: f32| v as i32),
        (DType::F32, DType::Bool) => conv!(f32s(i), u8s_mut(o), |v: f32| (v != 0.0) as u8),
        (DType::F32, DType::F64) => conv!(f32s(i), f64s_mut(o), |v: f32| v as f64),
        (DType::I64, DType::F32) => conv!(i64s(i), f32s_mut(o), |v: i64| v as f32),
        (DType::I64, DType::I32) => conv!(i64s(i), i32s_mut(o), |v: i64| v as i32),
        (DType::I64, DType::Bool) => conv!(i64s(i), u8s_mut(o), |v: i64| (v != 0) as u8),
        (DType::I64, DType::F64) => conv!(i64s(i), f64s_mut(o), |v: i64| v as f64),
        (DType::I32, DType::F32) => conv!(i32s(i), f32s_mut(o), |v: i32| v as f32),
        (DType::I32, DType::I64) => conv!(i32s(i), i64s_mut(o), |v: i32| v as i64),
        (DType::I32, DType::Bool) => conv!(i32s(i), u8s_mut(o), |v: i32| (v != 0) as u8),
        (DType::I32, DType::F64) => conv!(i32s(i), f64s_mut(o), |v: i32| v as f64),
        (DType::Bool, DType::F32) => conv!(u8s(i), f32s_mut(o), |v: u8| (v != 0) as u8 as f32),
        (DType::Bool, DType::I64) => conv!(u8s(i), i64s_mut(o), |v: u8| (v != 0) as i64),
        (DType::Bool, DType::I32) => conv!(u8s(i), i32s_mut(o), |v: u8| (v != 0) as i32),
        (DType::Bool, DType::F64) => conv!(u8s(i), f64s_mut(o), |v: u8| (v != 0) as u8 as f64),
        (DType::F64, DType::F32) => conv!(f64s(i), f32s_mut(o), |v: f64| v as f32),
        (DType::F64, DType::I64) => conv!(f64s(i), i64s_mut(o), |v: f64| v as i64),
        (DType::F64, DType::I32) => conv!(f64s(i), i32s_mut(o), |v: f64| v as i32),
        (DType::F64, DType::Bool) => conv!(f64s(i), u8s_mut(o), |v: f64| (v != 0.0) as u8),
        _ => unreachable!("the compiler only emits casts between these types"),
    }
}
