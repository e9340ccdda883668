//! The CPU kernels a plan's steps compile to: each op, with its concrete input and output
//! types, becomes a [`Kernel`] (parameters computed once, at plan time) or, when no native
//! kernel covers it, [`Kernel::Fallback`] — the reference op, which allocates its result.

use kayak_ir::ops::{Binary, Cast, Compare, Embedding};
use kayak_ir::ops::{BinaryOp, CmpOp, Layout, PoolKind, UnaryOp};
use kayak_ir::{DType, Op, Tensor};
use kayak_kernels::conv::Conv2d;
use kayak_kernels::gemm::Gemm;
use kayak_kernels::ops::{AttnGeom, BinOp, Broadcast, Pool2d, MAX_RANK};
use kayak_kernels::Act;

/// A step's kernel with everything shape-dependent already computed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Kernel {
    /// The reference op (allocates; counted in [`crate::MemoryReport::fallback_steps`]).
    Fallback,
    /// A view: the output aliases its input; nothing runs.
    Alias,
    /// A view whose output must be its own buffer (it is kept for the caller): a copy.
    Copy,
    /// Convolution (fused epilogue).
    Conv {
        /// Geometry.
        geom: Conv2d,
        /// A bias input follows the weights.
        bias: bool,
        /// A residual input follows.
        residual: bool,
        /// Activation.
        act: Act,
        /// Affine post.
        post: Option<(f32, f32)>,
    },
    /// A depthwise conv whose output only an SE block reads, as one step (the planner
    /// merges the two, [`merge_conv_se`]): the conv sums each channel as it writes it
    /// ([`kayak_kernels::conv::depthwise_means`]) and the SE block takes those means
    /// instead of passing over the output again, in place. Inputs: the conv's (`x`, `w`,
    /// the bias if any), then the SE block's four weights.
    ConvSe {
        /// The conv's geometry (depthwise, no residual).
        geom: Conv2d,
        /// A bias input follows the weights.
        bias: bool,
        /// The conv's activation.
        act: Act,
        /// The conv's affine post.
        post: Option<(f32, f32)>,
        /// The SE block's squeezed width.
        c1: usize,
        /// The SE block's activations.
        acts: (Act, Act),
    },
    /// A pointwise conv whose output only the next step, a depthwise conv (alone or
    /// merged with its SE block), reads, as one step (the planner merges them,
    /// `merge_expand_dw`): the expanded channels in blocks or chunks, each one's product
    /// and depthwise conv on one thread, in one dispatch
    /// ([`kayak_kernels::conv::expand_depthwise_blocked`] at one thread,
    /// [`kayak_kernels::conv::expand_depthwise_chunked`] with more). Inputs: the
    /// pointwise conv's (`x`, `w`, the bias if any), then the depthwise step's after its
    /// first.
    ExpandDw(Box<ExpandDwK>),
    /// Batched matrix product with broadcast batch dims (fused bias and activation).
    MatMul(Box<MatMulK>),
    /// Pooling.
    Pool(Pool2d),
    /// Squeeze-and-excitation.
    Se {
        /// (n, c, h·w).
        dims: (usize, usize, usize),
        /// Squeezed width (the first projection's outputs).
        c1: usize,
        /// Activations.
        acts: (Act, Act),
    },
    /// Softmax over the middle of `[outer, len, inner]`.
    Softmax {
        /// Product of the axes before.
        outer: usize,
        /// The axis.
        len: usize,
        /// Product of the axes after.
        inner: usize,
    },
    /// Layer norm (`skip`: of the sum of the first two inputs).
    LayerNorm {
        /// Normalized length.
        cols: usize,
        /// Residual input present.
        skip: bool,
        /// Scale input present.
        scale: bool,
        /// Bias input present.
        bias: bool,
        /// Epsilon.
        eps: f32,
    },
    /// Multi-head attention.
    Attention {
        /// Geometry.
        geom: AttnGeom,
        /// A mask input follows.
        mask: bool,
        /// Q, K, V in one input.
        packed: bool,
    },
    /// Embedding lookups summed, then layer norm.
    EmbeddingLayerNorm {
        /// Vocabulary size of each table.
        vocab: Vec<usize>,
        /// Per lookup, the strides of its ids over the output's leading dims (0: broadcast).
        id_strides: Vec<[usize; 4]>,
        /// The output's leading dims, left-padded to 4.
        lead: [usize; 4],
        /// Padding id of each lookup.
        padding: Vec<Option<i64>>,
        /// Hidden size.
        cols: usize,
        /// Scale input present.
        scale: bool,
        /// Bias input present.
        bias: bool,
        /// Epsilon.
        eps: f32,
    },
    /// Inference batch norm over `[outer, c, inner]`.
    BatchNorm {
        /// (outer, channels, inner).
        dims: (usize, usize, usize),
        /// Epsilon.
        eps: f32,
    },
    /// Embedding lookup (`ids` i64 or i32).
    Embedding {
        /// Table rows.
        vocab: usize,
        /// Row size.
        d: usize,
        /// The id whose rows read as zeros (normalized: never negative).
        padding: Option<i64>,
    },
    /// Unary f32.
    Unary(Act),
    /// Binary f32 with broadcasting, then an activation.
    Binary {
        /// The op.
        op: BinOp,
        /// Shapes and strides.
        bc: Broadcast,
        /// Activation after.
        act: Act,
    },
    /// Comparison with broadcasting (bool output).
    Compare {
        /// The comparison.
        op: kayak_kernels::ops::CmpOp,
        /// Shapes and strides.
        bc: Broadcast,
    },
    /// Dtype conversion.
    Cast {
        /// From.
        from: DType,
        /// To.
        to: DType,
    },
    /// Transposed convolution (with bias).
    ConvTranspose {
        /// Geometry.
        geom: kayak_kernels::conv::ConvTranspose2d,
        /// A bias input follows the weights.
        bias: bool,
    },
    /// Pure data movement (slice, strided slice, nearest resize, split, transpose): one
    /// separable gather per output — derived at plan time by running the op on an index
    /// tensor, or (transpose) from the permuted strides.
    Gather(Vec<kayak_kernels::ops::Gather>),
    /// Concatenation: `[outer, len_i]` blocks into `[outer, total]`.
    Concat {
        /// Product of the axes before the concat axis.
        outer: usize,
        /// Each input's `len` (its concat dim times the inner size).
        lens: Vec<usize>,
    },
}

/// [`Kernel::ExpandDw`]'s two convs.
#[derive(Debug, Clone)]
pub struct ExpandDwK {
    /// The pointwise conv's geometry.
    pub pw: Conv2d,
    /// A bias input follows the pointwise weights.
    pub pw_bias: bool,
    /// The pointwise conv's activation.
    pub pw_act: Act,
    /// The pointwise conv's affine post.
    pub pw_post: Option<(f32, f32)>,
    /// The depthwise step: [`Kernel::Conv`] (no residual) or [`Kernel::ConvSe`].
    pub dw: Kernel,
    /// At one thread: the pointwise weights packed for the blocked product
    /// ([`kayak_kernels::conv::expand_blocked_pack`], made when the plan is), and the step
    /// runs [`kayak_kernels::conv::expand_depthwise_blocked`]; else `None`, and it runs
    /// [`kayak_kernels::conv::expand_depthwise_chunked`].
    pub packed: Option<std::sync::Arc<[f32]>>,
}

impl ExpandDwK {
    /// The depthwise conv's geometry, bias flag, activation and post, and the SE block's
    /// squeezed width and activations if it has one.
    #[allow(clippy::type_complexity)]
    pub fn dw_parts(
        &self,
    ) -> (
        Conv2d,
        bool,
        Act,
        Option<(f32, f32)>,
        Option<(usize, (Act, Act))>,
    ) {
        match self.dw {
            Kernel::Conv {
                geom,
                bias,
                act,
                post,
                ..
            } => (geom, bias, act, post, None),
            Kernel::ConvSe {
                geom,
                bias,
                act,
                post,
                c1,
                acts,
            } => (geom, bias, act, post, Some((c1, acts))),
            _ => unreachable!("an ExpandDw step's depthwise part is a conv"),
        }
    }

    /// Scratch floats at `threads` threads: the blocks' (expanded channels and the
    /// depthwise kernel's own), then with an SE block its means and its scratch.
    pub(crate) fn scratch(&self, threads: usize) -> usize {
        let (dw, .., se) = self.dw_parts();
        self.conv_scratch(threads) + se.map_or(0, |(c1, _)| dw.n * dw.oc + dw.oc + c1)
    }

    /// The convs' part of [`ExpandDwK::scratch`].
    pub(crate) fn conv_scratch(&self, threads: usize) -> usize {
        let (dw, .., se) = self.dw_parts();
        match self.packed {
            Some(_) => kayak_kernels::conv::expand_blocked_scratch(&self.pw, &dw, threads),
            None => {
                kayak_kernels::conv::expand_chunked_scratch(&self.pw, &dw, se.is_some(), threads)
            }
        }
    }
}

/// A batched product `out[b] = act(alpha · op(x[b]) · op(y[b]) + bias)`.
#[derive(Debug, Clone)]
pub struct MatMulK {
    /// One product's shape.
    pub g: Gemm,
    /// Number of products.
    pub batch: usize,
    /// Output batch dims (padded to 4).
    pub bdims: [usize; 4],
    /// Batch strides of x and y (0 where broadcast), elements.
    pub xs: [usize; 4],
    /// As `xs`, for y.
    pub ys: [usize; 4],
    /// Transposes.
    pub tx: bool,
    /// Transposes.
    pub ty: bool,
    /// Multiplier.
    pub alpha: f32,
    /// A bias input follows.
    pub bias: bool,
    /// Activation.
    pub act: Act,
    /// y is a constant packed by the load-time lowering (`crate::prepack`): every product
    /// reads the same packed `k × n` weight.
    pub packed: bool,
}

impl MatMulK {
    /// Offsets of product `t` into x, y and out.
    pub fn offsets(&self, t: usize) -> (usize, usize, usize) {
        let (mut rem, mut xo, mut yo) = (t, 0, 0);
        for k in (0..4).rev() {
            let i = rem % self.bdims[k];
            rem /= self.bdims[k];
            xo += i * self.xs[k];
            yo += i * self.ys[k];
        }
        (xo, yo, t * self.g.m * self.g.n)
    }
}

/// The kernels' activation for an IR unary op.
pub fn act_of(u: &UnaryOp) -> Act {
    match *u {
        UnaryOp::Relu => Act::Relu,
        UnaryOp::Relu6 { threshold } => Act::Relu6(threshold),
        UnaryOp::LeakyRelu { alpha } => Act::LeakyRelu(alpha),
        UnaryOp::HardSwish {
            threshold,
            scale,
            offset,
        } => Act::HardSwish {
            threshold,
            scale,
            offset,
        },
        UnaryOp::HardSigmoid { slope, offset } => Act::HardSigmoid { slope, offset },
        UnaryOp::Sigmoid => Act::Sigmoid,
        UnaryOp::Swish { beta } => Act::Swish(beta),
        UnaryOp::Gelu { approximate: false } => Act::Gelu,
        UnaryOp::Gelu { approximate: true } => Act::GeluTanh,
        UnaryOp::Tanh => Act::Tanh,
        UnaryOp::Exp => Act::Exp,
        UnaryOp::Log => Act::Log,
        UnaryOp::Sqrt => Act::Sqrt,
        UnaryOp::Rsqrt => Act::Rsqrt,
        UnaryOp::Abs => Act::Abs,
        UnaryOp::Square => Act::Square,
        UnaryOp::Reciprocal => Act::Reciprocal,
        UnaryOp::Floor => Act::Floor,
        UnaryOp::Ceil => Act::Ceil,
        UnaryOp::Erf => Act::Erf,
        UnaryOp::PowScalar { factor } => Act::Pow(factor),
        UnaryOp::Clip { min, max } => Act::Clip(min, max),
        UnaryOp::Scale {
            scale,
            bias,
            bias_after_scale,
        } => Act::Scale {
            scale,
            bias,
            after: bias_after_scale,
        },
    }
}

/// A value's concrete type as the compiler sees it.
pub type Ty<'a> = (DType, &'a [usize]);

impl Kernel {
    /// Inputs this kernel can read from its output buffer (run in place), in preference
    /// order. The planner uses one when that input dies here and has the output's size.
    pub fn in_place_inputs(&self) -> &'static [usize] {
        match self {
            Kernel::Unary(_)
            | Kernel::Softmax { .. }
            | Kernel::Se { .. }
            | Kernel::BatchNorm { .. } => &[0],
            Kernel::LayerNorm { skip: false, .. } => &[0],
            Kernel::LayerNorm { skip: true, .. } | Kernel::Binary { .. } => &[0, 1],
            _ => &[],
        }
    }

    /// Scratch floats the kernel needs at `threads` threads.
    pub fn scratch(&self, threads: usize) -> usize {
        match self {
            Kernel::Conv { geom, .. } => geom.scratch_len(threads),
            Kernel::Attention { geom, .. } => kayak_kernels::ops::attention_scratch(geom, threads),
            Kernel::ConvTranspose { geom, .. } => geom.scratch_len(threads),
            Kernel::Se { dims, c1, .. } => dims.1 + c1,
            Kernel::ConvSe { geom, c1, .. } => {
                kayak_kernels::conv::depthwise_means_scratch(geom, threads)
                    + geom.n * geom.oc
                    + geom.oc
                    + c1
            }
            Kernel::ExpandDw(k) => k.scratch(threads),
            _ => 0,
        }
    }

    /// Floating-point operations one run of the kernel performs (multiply-adds count two),
    /// for the products that dominate run time; 0 for the rest.
    pub fn flops(&self) -> usize {
        match self {
            Kernel::Conv { geom, .. } | Kernel::ConvSe { geom, .. } => 2 * geom.macs(),
            Kernel::ExpandDw(k) => 2 * k.pw.macs() + k.dw.flops(),
            Kernel::ConvTranspose { geom, .. } => 2 * geom.macs(),
            Kernel::MatMul(k) => 2 * k.batch * k.g.m * k.g.n * k.g.k,
            Kernel::Attention { geom, .. } => 4 * geom.b * geom.heads * geom.s * geom.t * geom.d,
            _ => 0,
        }
    }

    /// A short name for profiles (`conv/general`, `matmul`, `fallback`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Kernel::Fallback => "fallback",
            Kernel::Alias => "alias",
            Kernel::Copy => "copy",
            Kernel::Conv { geom, .. } => match geom.path() {
                kayak_kernels::conv::ConvPath::Pointwise => "conv/pointwise",
                kayak_kernels::conv::ConvPath::Depthwise => "conv/depthwise",
                kayak_kernels::conv::ConvPath::General => "conv/general",
                kayak_kernels::conv::ConvPath::Winograd => "conv/winograd",
                kayak_kernels::conv::ConvPath::Direct => "conv/direct",
            },
            Kernel::ConvSe { .. } => "conv/depthwise+se",
            Kernel::ExpandDw(k) => match k.dw {
                Kernel::ConvSe { .. } => "conv/expand+depthwise+se",
                _ => "conv/expand+depthwise",
            },
            Kernel::MatMul(_) => "matmul",
            Kernel::Pool(_) => "pool",
            Kernel::Se { .. } => "se_block",
            Kernel::Softmax { .. } => "softmax",
            Kernel::LayerNorm { .. } => "layer_norm",
            Kernel::Attention { .. } => "attention",
            Kernel::EmbeddingLayerNorm { .. } => "embedding_layer_norm",
            Kernel::Unary(_) => "unary",
            Kernel::BatchNorm { .. } => "batch_norm",
            Kernel::Embedding { .. } => "embedding",
            Kernel::Binary { .. } => "binary",
            Kernel::Compare { .. } => "compare",
            Kernel::Cast { .. } => "cast",
            Kernel::Concat { .. } => "concat",
            Kernel::ConvTranspose { .. } => "conv_transpose",
            Kernel::Gather(_) => "gather",
        }
    }
}

/// Replaces each pair of adjacent steps `a`, `b` where `b` alone reads `a`'s one output
/// (as its first input only; `readers[v]` counts the steps reading value `v`), which the
/// caller does not keep (`kept`), and `merge(a, b)` gives a kernel: one step, `a`'s node
/// with that kernel, `a`'s inputs then `b`'s after its first, and `b`'s outputs. `a`'s
/// output is no longer produced.
fn merge_pairs(
    steps: &mut Vec<crate::Step>,
    readers: &[usize],
    kept: &[bool],
    mut merge: impl FnMut(&crate::Step, &crate::Step) -> Option<Kernel>,
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
            a.kernel = kernel;
            a.inputs.extend_from_slice(&b.inputs[1..]);
            a.outputs = b.outputs;
        }
        s += 1;
    }
}

/// Merges each depthwise conv whose output only the next step, an SE block, reads into
/// one [`Kernel::ConvSe`] step (where [`kayak_kernels::conv::depthwise_means_apply`]: on
/// AVX-512). `readers[v]` counts the steps that read value `v`; `kept[v]` marks values the
/// caller keeps. The merged step is the conv's node, with the SE block's output; the conv's
/// output is no longer produced (nothing else reads it).
pub(crate) fn merge_conv_se(steps: &mut Vec<crate::Step>, readers: &[usize], kept: &[bool]) {
    merge_pairs(steps, readers, kept, |a, b| match (&a.kernel, &b.kernel) {
        (
            &Kernel::Conv {
                geom,
                bias,
                residual: false,
                act,
                post,
            },
            &Kernel::Se { dims, c1, acts },
        ) if b.inputs.len() == 5
            && dims == (geom.n, geom.oc, geom.oh * geom.ow)
            && kayak_kernels::conv::depthwise_means_apply(&geom) =>
        {
            Some(Kernel::ConvSe {
                geom,
                bias,
                act,
                post,
                c1,
                acts,
            })
        }
        _ => None,
    });
}

/// Merges each pointwise conv whose output only the next step, a depthwise conv (or a
/// [`Kernel::ConvSe`]) reads into one [`Kernel::ExpandDw`] step. `readers` and `kept` as
/// [`merge_conv_se`] has them, counted before that merge (which keeps the conv's input).
/// The merged step is the pointwise conv's node, with the depthwise step's outputs; the
/// expanded tensor is no longer produced whole.
///
/// - At one thread, where [`kayak_kernels::conv::expand_blocked_applies`] (AVX-512, one
///   image, no residuals) and the pointwise weights are constants (`weight` gives a
///   constant value's f32s in standard layout): the blocked form, whose product writes
///   the depthwise kernel's layout, sparing its transposes of the input (MobileNetV3
///   0.96, PP-OCR rec 0.98 at one thread; its arena smaller).
/// - With more threads, where [`kayak_kernels::conv::expand_chunked_applies`]: one chunk
///   of channels per thread, which saves a fork-join and keeps each thread's share of
///   the expanded tensor on its core (MobileNetV3 0.97, PP-OCR cls 0.94 at 2 threads).
///   The blocked form's tasks of 16 channels shared out unevenly there (72 channels: 3
///   blocks to 2) and measured 1–3% slower than this on PP-OCR rec and cls.
pub(crate) fn merge_expand_dw(
    steps: &mut Vec<crate::Step>,
    readers: &[usize],
    kept: &[bool],
    weight: &dyn Fn(usize) -> Option<Vec<f32>>,
    threads: usize,
) {
    merge_pairs(steps, readers, kept, |a, b| match (&a.kernel, &b.kernel) {
        (
            &Kernel::Conv {
                geom: pw,
                bias,
                residual: false,
                act,
                post,
            },
            dw @ (Kernel::Conv {
                residual: false, ..
            }
            | Kernel::ConvSe { .. }),
        ) => {
            let (Kernel::Conv { geom, .. } | Kernel::ConvSe { geom, .. }) = dw else {
                unreachable!("matched above")
            };
            let se = matches!(dw, Kernel::ConvSe { .. });
            let packed = if threads == 1 {
                kayak_kernels::conv::expand_blocked_applies(&pw, geom)
                    .then(|| weight(a.inputs[1]))
                    .flatten()
                    .filter(|w| w.len() == pw.oc * pw.ic)
                    .map(|w| Some(kayak_kernels::conv::expand_blocked_pack(&pw, &w).into()))
            } else {
                kayak_kernels::conv::expand_chunked_applies(&pw, geom, se, threads).then_some(None)
            };
            packed.map(|packed| {
                Kernel::ExpandDw(Box::new(ExpandDwK {
                    pw,
                    pw_bias: bias,
                    pw_act: act,
                    pw_post: post,
                    dw: dw.clone(),
                    packed,
                }))
            })
        }
        _ => None,
    });
}

fn all_f32(tys: &[Ty<'_>]) -> bool {
    tys.iter().all(|t| t.0 == DType::F32)
}

/// Compiles an op for concrete types; `values` holds the inputs known at plan time
/// (weights, folded values). `None` means no native kernel covers it.
pub fn compile(
    op: &Op,
    ins: &[Ty<'_>],
    values: &[Option<&Tensor>],
    outs: &[Ty<'_>],
) -> Option<Kernel> {
    let out = *outs.first()?;
    match op {
        Op::Slice(_) | Op::StridedSlice(_) | Op::Split(_) => probe_gather(op, ins, values, outs),
        Op::Interp(i) if i.mode == kayak_ir::ops::InterpMode::Nearest => {
            // Resizing never mixes images or channels: probe one NCHW plane and extend.
            let (x, o) = (ins[0].1, out.1);
            if i.layout == Layout::Nchw && x.len() == 4 && o.len() == 4 {
                let plane_in = [1, 1, x[2], x[3]];
                let plane_out = [1, 1, o[2], o[3]];
                let Some(Kernel::Gather(mut g)) =
                    probe_gather(op, &[(ins[0].0, &plane_in)], values, &[(out.0, &plane_out)])
                else {
                    return None;
                };
                let g = g.pop()?;
                let mut dims = g.dims;
                let mut tables = g.tables;
                let (a0, a1) = (MAX_RANK - 4, MAX_RANK - 3);
                dims[a0] = o[0];
                dims[a1] = o[1];
                tables[a0] = (0..o[0]).map(|n| n * x[1] * x[2] * x[3]).collect();
                tables[a1] = (0..o[1]).map(|c| c * x[2] * x[3]).collect();
                Some(Kernel::Gather(vec![kayak_kernels::ops::Gather {
                    dims,
                    tables,
                }]))
            } else {
                probe_gather(op, ins, values, outs)
            }
        }
        Op::Conv2dTranspose(c) => {
            if c.layout != Layout::Nchw
                || !all_f32(ins)
                || ins[0].1.len() != 4
                || ins[1].1.len() != 4
            {
                return None;
            }
            let (x, w, o) = (ins[0].1, ins[1].1, out.1);
            if c.groups == 0 || x[1] % c.groups != 0 || w[0] != x[1] || o[1] != w[1] * c.groups {
                return None;
            }
            let (p, dil) = c
                .padding
                .resolve([x[2], x[3]], [w[2], w[3]], c.strides, c.dilations);
            Some(Kernel::ConvTranspose {
                geom: kayak_kernels::conv::ConvTranspose2d(geometry(
                    x,
                    [w[2], w[3]],
                    o,
                    c.strides,
                    p,
                    dil,
                    c.groups,
                )),
                bias: c.has_bias,
            })
        }
        Op::Conv2d(c) => conv(c, false, None, None, ins, out),
        Op::FusedConv(f) => conv(&f.conv, f.residual, f.act.as_ref(), f.post, ins, out),
        Op::MatMul(m) => matmul(m, false, None, None, ins, out),
        Op::FusedMatMul(f) => matmul(&f.mm, f.has_bias, f.act.as_ref(), f.packed_n, ins, out),
        Op::Pool2d(p) => {
            if p.layout != Layout::Nchw || !all_f32(ins) || ins.len() != 1 || ins[0].1.len() != 4 {
                return None;
            }
            let x = ins[0].1;
            let (h, w) = (x[2], x[3]);
            let (k, s) = if p.global {
                ([h, w], [1, 1])
            } else {
                (p.ksize, p.strides)
            };
            let (pad, _) = p.padding.resolve([h, w], k, s, [1, 1]);
            Some(Kernel::Pool(Pool2d {
                max: p.kind == PoolKind::Max,
                planes: x[0] * x[1],
                h,
                w,
                oh: out.1[2],
                ow: out.1[3],
                k,
                s,
                pad: [pad[0], pad[2]],
                adaptive: p.adaptive && !p.global,
                exclusive: p.exclusive || p.global,
            }))
        }
        Op::SeBlock(s) => {
            if !all_f32(ins) || ins[0].1.len() != 4 {
                return None;
            }
            let x = ins[0].1;
            Some(Kernel::Se {
                dims: (x[0], x[1], x[2] * x[3]),
                c1: ins.get(2)?.1.iter().product(),
                acts: (act_of(&s.act1), act_of(&s.act2)),
            })
        }
        Op::Softmax(s) => {
            if !all_f32(ins) {
                return None;
            }
            let x = ins[0].1;
            let r = x.len() as i64;
            let a = if s.axis < 0 { s.axis + r } else { s.axis };
            if a < 0 || a >= r.max(1) {
                return None;
            }
            let a = a as usize;
            Some(Kernel::Softmax {
                outer: x[..a].iter().product(),
                len: x.get(a).copied().unwrap_or(1),
                inner: x[(a + 1).min(x.len())..].iter().product(),
            })
        }
        Op::LayerNorm(l) => layer_norm(l, false, ins),
        Op::SkipLayerNorm(s) => layer_norm(&s.ln, true, ins),
        Op::Attention(a) => {
            if !all_f32(ins) {
                return None;
            }
            let q = ins[0].1;
            if q.len() != 3 {
                return None;
            }
            let hd = a.heads * a.head_dim;
            let (b, s) = (q[0], q[1]);
            let (t, row, off, mask_at) = if a.packed {
                (s, 3 * hd, [0, hd, 2 * hd], 1)
            } else {
                (ins[1].1[1], hd, [0, 0, 0], 3)
            };
            let mut mask_strides = [0usize; 4];
            if a.has_mask {
                let m = ins.get(mask_at)?.1;
                if m.len() > 4 {
                    return None;
                }
                let mut dims = [1usize; 4];
                dims[4 - m.len()..].copy_from_slice(m);
                let full = [b, a.heads, s, t];
                let mut run = 1;
                for k in (0..4).rev() {
                    mask_strides[k] = if dims[k] == full[k] && dims[k] != 1 {
                        run
                    } else if dims[k] == 1 {
                        0
                    } else {
                        return None;
                    };
                    run *= dims[k];
                }
            }
            Some(Kernel::Attention {
                geom: AttnGeom {
                    b,
                    s,
                    t,
                    heads: a.heads,
                    d: a.head_dim,
                    scale: a.scale,
                    row,
                    off,
                    mask_strides,
                },
                mask: a.has_mask,
                packed: a.packed,
            })
        }
        Op::EmbeddingLayerNorm(e) => {
            let n = e.padding_idx.len();
            if n == 0 || n > 4 || out.0 != DType::F32 {
                return None;
            }
            let cols = *out.1.last()?;
            let lead_dims = &out.1[..out.1.len() - 1];
            if lead_dims.len() > 4 {
                return None;
            }
            let mut lead = [1usize; 4];
            lead[4 - lead_dims.len()..].copy_from_slice(lead_dims);
            let mut id_strides = Vec::with_capacity(n);
            for t in &ins[..n] {
                if t.0 != DType::I64 || t.1.len() > lead_dims.len() {
                    return None;
                }
                // Numpy broadcast, right-aligned, to the leading dims.
                let mut st = [0usize; 4];
                let mut run = 1;
                for (i, &d) in t.1.iter().enumerate().rev() {
                    let k = 4 - t.1.len() + i;
                    if d == lead[k] && d != 1 {
                        st[k] = run;
                    } else if d != 1 {
                        return None;
                    }
                    run *= d;
                }
                id_strides.push(st);
            }
            let mut vocab = Vec::with_capacity(n);
            for t in &ins[n..2 * n] {
                if t.0 != DType::F32 || t.1.len() != 2 || t.1[1] != cols {
                    return None;
                }
                vocab.push(t.1[0]);
            }
            if e.ln.begin_norm_axis + 1 != out.1.len() {
                return None;
            }
            // A negative padding id counts from the end of its table (as the reference does).
            let padding = e
                .padding_idx
                .iter()
                .zip(&vocab)
                .map(|(p, &v)| p.map(|p| if p < 0 { p + v as i64 } else { p }))
                .collect();
            Some(Kernel::EmbeddingLayerNorm {
                vocab,
                id_strides,
                lead,
                padding,
                cols,
                scale: e.ln.has_scale,
                bias: e.ln.has_bias,
                eps: e.ln.epsilon,
            })
        }
        Op::Unary(u) if all_f32(ins) && out.0 == DType::F32 => Some(Kernel::Unary(act_of(u))),
        Op::BatchNorm(b) => {
            let x = ins[0].1;
            if b.layout != Layout::Nchw || !all_f32(ins) || x.len() < 2 {
                return None;
            }
            let c = x[1];
            if ins[1..].iter().any(|t| t.1.iter().product::<usize>() != c) {
                return None;
            }
            Some(Kernel::BatchNorm {
                dims: (x[0], c, x[2..].iter().product()),
                eps: b.epsilon,
            })
        }
        Op::Embedding(Embedding { padding_idx }) => {
            let t = ins.get(1)?;
            if !matches!(ins[0].0, DType::I64 | DType::I32) || t.0 != DType::F32 || t.1.len() != 2 {
                return None;
            }
            let vocab = t.1[0];
            Some(Kernel::Embedding {
                vocab,
                d: t.1[1],
                padding: padding_idx.map(|p| if p < 0 { p + vocab as i64 } else { p }),
            })
        }
        Op::Binary(Binary { op: b, axis }) => binary(*b, *axis, None, ins, out),
        Op::FusedBinary(f) => binary(f.op, f.axis, Some(&f.act), ins, out),
        Op::Compare(Compare { op: c, axis }) => {
            if ins.len() != 2 || ins[0].0 != ins[1].0 {
                return None;
            }
            if !matches!(ins[0].0, DType::F32 | DType::I64 | DType::I32) {
                return None;
            }
            let bc = broadcast(*axis, ins, out)?;
            let op = match c {
                CmpOp::Eq => kayak_kernels::ops::CmpOp::Eq,
                CmpOp::Ne => kayak_kernels::ops::CmpOp::Ne,
                CmpOp::Lt => kayak_kernels::ops::CmpOp::Lt,
                CmpOp::Le => kayak_kernels::ops::CmpOp::Le,
                CmpOp::Gt => kayak_kernels::ops::CmpOp::Gt,
                CmpOp::Ge => kayak_kernels::ops::CmpOp::Ge,
            };
            Some(Kernel::Compare { op, bc })
        }
        Op::Cast(Cast { to }) => {
            let ok = |d: DType| {
                matches!(
                    d,
                    DType::F32 | DType::I64 | DType::I32 | DType::Bool | DType::F64
                )
            };
            (ok(ins[0].0) && ok(*to)).then_some(Kernel::Cast {
                from: ins[0].0,
                to: *to,
            })
        }
        Op::Transpose(t) => {
            let x = ins[0].1;
            let r = x.len();
            if r > MAX_RANK || t.perm.len() != r {
                return None;
            }
            let mut xstr = vec![1usize; r];
            for k in (0..r.saturating_sub(1)).rev() {
                xstr[k] = xstr[k + 1] * x[k + 1];
            }
            // A gather whose tables are the permuted input strides.
            let mut dims = [1usize; MAX_RANK];
            let mut tables = vec![vec![0usize]; MAX_RANK];
            for (i, &p) in t.perm.iter().enumerate() {
                dims[MAX_RANK - r + i] = x[p];
                tables[MAX_RANK - r + i] = (0..x[p]).map(|j| j * xstr[p]).collect();
            }
            Some(Kernel::Gather(vec![kayak_kernels::ops::Gather {
                dims,
                tables,
            }]))
        }
        Op::Concat(c) => {
            let r = out.1.len() as i64;
            let a = if c.axis < 0 { c.axis + r } else { c.axis };
            if a < 0 || a >= r || ins.iter().any(|t| t.0 != out.0 || t.1.len() != out.1.len()) {
                return None;
            }
            let a = a as usize;
            let outer: usize = out.1[..a].iter().product();
            let inner: usize = out.1[a + 1..].iter().product();
            Some(Kernel::Concat {
                outer,
                lens: ins.iter().map(|t| t.1[a] * inner).collect(),
            })
        }
        _ => None,
    }
}

fn conv(
    c: &kayak_ir::ops::Conv,
    residual: bool,
    act: Option<&UnaryOp>,
    post: Option<(f32, f32)>,
    ins: &[Ty<'_>],
    out: Ty<'_>,
) -> Option<Kernel> {
    if c.layout != Layout::Nchw || !all_f32(ins) || ins[0].1.len() != 4 || ins[1].1.len() != 4 {
        return None;
    }
    let (x, w, o) = (ins[0].1, ins[1].1, out.1);
    let (p, dil) = c
        .padding
        .resolve([x[2], x[3]], [w[2], w[3]], c.strides, c.dilations);
    if c.groups == 0 || x[1] % c.groups != 0 || w[1] * c.groups != x[1] {
        return None;
    }
    Some(Kernel::Conv {
        geom: geometry(x, [w[2], w[3]], o, c.strides, p, dil, c.groups),
        bias: c.has_bias,
        residual,
        act: act.map_or(Act::Identity, act_of),
        post,
    })
}

/// A convolution's geometry from NCHW input and output shapes, the kernel size, and the
/// resolved padding (`[top, bottom, left, right]`).
fn geometry(
    x: &[usize],
    k: [usize; 2],
    o: &[usize],
    stride: [usize; 2],
    pad: [usize; 4],
    dilation: [usize; 2],
    groups: usize,
) -> Conv2d {
    Conv2d {
        n: x[0],
        ic: x[1],
        h: x[2],
        w: x[3],
        oc: o[1],
        oh: o[2],
        ow: o[3],
        kh: k[0],
        kw: k[1],
        stride,
        pad: [pad[0], pad[2]],
        dilation,
        groups,
    }
}

fn matmul(
    m: &kayak_ir::ops::MatMul,
    has_bias: bool,
    act: Option<&UnaryOp>,
    packed_n: Option<usize>,
    ins: &[Ty<'_>],
    out: Ty<'_>,
) -> Option<Kernel> {
    if !all_f32(ins) {
        return None;
    }
    let (x, o) = (ins[0].1, out.1);
    // A packed weight (`[⌈n/16⌉, k, 16]`) stands for a `k × n` matrix.
    let logical;
    let y = match packed_n {
        Some(n) => {
            logical = [ins[1].1.get(1).copied()?, n];
            &logical[..]
        }
        None => ins[1].1,
    };
    if x.len() < 2 || y.len() < 2 || o.len() < 2 || o.len() > 6 {
        return None;
    }
    let (mm, k) = if m.trans_x {
        (x[x.len() - 1], x[x.len() - 2])
    } else {
        (x[x.len() - 2], x[x.len() - 1])
    };
    let n = if m.trans_y {
        y[y.len() - 2]
    } else {
        y[y.len() - 1]
    };
    let ob = &o[..o.len() - 2];
    if ob.len() > 4 {
        return None;
    }
    let mut bdims = [1usize; 4];
    bdims[4 - ob.len()..].copy_from_slice(ob);
    let strides = |t: &[usize]| -> Option<[usize; 4]> {
        let tb = &t[..t.len() - 2];
        if tb.len() > ob.len() {
            return None;
        }
        let mut s = [0usize; 4];
        let mut run = t[t.len() - 1] * t[t.len() - 2];
        for (i, &d) in tb.iter().enumerate().rev() {
            let k = 4 - tb.len() + i;
            s[k] = if d == 1 { 0 } else { run };
            if d != 1 && d != bdims[k] {
                return None;
            }
            run *= d;
        }
        Some(s)
    };
    let (xs, ys) = (strides(x)?, strides(y)?);
    Some(Kernel::MatMul(Box::new(MatMulK {
        g: Gemm { m: mm, n, k },
        batch: ob.iter().product(),
        bdims,
        xs,
        ys,
        tx: m.trans_x,
        ty: m.trans_y,
        alpha: m.alpha,
        bias: has_bias,
        act: act.map_or(Act::Identity, act_of),
        packed: packed_n.is_some(),
    })))
}

fn layer_norm(l: &kayak_ir::ops::LayerNorm, skip: bool, ins: &[Ty<'_>]) -> Option<Kernel> {
    if !all_f32(ins) {
        return None;
    }
    let x = ins[0].1;
    if l.begin_norm_axis > x.len() {
        return None;
    }
    let cols: usize = x[l.begin_norm_axis..].iter().product();
    let first_param = 1 + skip as usize;
    if skip && ins[1].1 != x {
        return None;
    }
    if ins[first_param..]
        .iter()
        .any(|t| t.1.iter().product::<usize>() != cols)
    {
        return None;
    }
    Some(Kernel::LayerNorm {
        cols,
        skip,
        scale: l.has_scale,
        bias: l.has_bias,
        eps: l.epsilon,
    })
}

fn broadcast(axis: i64, ins: &[Ty<'_>], out: Ty<'_>) -> Option<Broadcast> {
    let (a, b) = (ins[0].1, ins[1].1);
    let (sa, sb, _) = kayak_ir::ops::paddle_broadcast(
        "binary",
        &kayak_ir::Shape::known(a),
        &kayak_ir::Shape::known(b),
        axis,
    )
    .ok()?;
    let sa = sa.to_known()?;
    let sb = sb.to_known()?;
    Broadcast::new(out.1, &sa, &sb)
}

fn binary(
    b: BinaryOp,
    axis: i64,
    act: Option<&UnaryOp>,
    ins: &[Ty<'_>],
    out: Ty<'_>,
) -> Option<Kernel> {
    if ins.len() != 2 || !all_f32(ins) || out.0 != DType::F32 {
        return None;
    }
    let op = match b {
        BinaryOp::Add => BinOp::Add,
        BinaryOp::Sub => BinOp::Sub,
        BinaryOp::Mul => BinOp::Mul,
        BinaryOp::Div => BinOp::Div,
        BinaryOp::Max => BinOp::Max,
        BinaryOp::Min => BinOp::Min,
        BinaryOp::Pow => BinOp::Pow,
        _ => return None,
    };
    Some(Kernel::Binary {
        op,
        bc: broadcast(axis, ins, out)?,
        act: act.map_or(Act::Identity, act_of),
    })
}

/// Derives one separable gather per output of a data-movement op by running the reference
/// op on an index tensor (`x[i] = i`): each output element then names the input element
/// it copies. The tables are read off the axes and checked against every element, so a
/// mapping that is not separable is rejected (`None`). Only for ops whose every output
/// element is exactly one input element (slices, resizes by nearest neighbour, splits).
fn probe_gather(
    op: &Op,
    ins: &[Ty<'_>],
    values: &[Option<&Tensor>],
    outs: &[Ty<'_>],
) -> Option<Kernel> {
    let x = ins.first()?.1;
    let n: usize = x.iter().product();
    if n == 0 || n >= 1 << 24 || x.len() > MAX_RANK || values.first()?.is_some() {
        return None;
    }
    if outs.iter().any(|o| o.1.len() > MAX_RANK || o.0 != ins[0].0) {
        return None;
    }
    let mut probe_ins = vec![crate::gather::ProbeInput::Data(x)];
    for v in &values[1..] {
        probe_ins.push(crate::gather::ProbeInput::Param(v.as_ref()?));
    }
    let results = crate::gather::probe(op, &probe_ins)?;
    if results.len() != outs.len() {
        return None;
    }
    let mut gathers = Vec::with_capacity(outs.len());
    for ((shape, idx), o) in results.iter().zip(outs) {
        if shape.as_slice() != o.1 {
            return None;
        }
        let r = o.1.len();
        let mut dims = [1usize; MAX_RANK];
        dims[MAX_RANK - r..].copy_from_slice(o.1);
        if idx.is_empty() {
            gathers.push(kayak_kernels::ops::Gather {
                dims,
                tables: dims.iter().map(|&d| vec![0; d]).collect(),
            });
            continue;
        }
        // Offsets per axis, relative to the first element's along every axis but the last
        // (which keeps it); the kernel's tables are unsigned.
        let tables: Vec<Vec<usize>> = crate::gather::separable(idx, &dims)?
            .into_iter()
            .map(|t| t.into_iter().map(|v| usize::try_from(v).ok()).collect())
            .collect::<Option<_>>()?;
        gathers.push(kayak_kernels::ops::Gather { dims, tables });
    }
    Some(Kernel::Gather(gathers))
}
