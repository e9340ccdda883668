//! Convolutions on the CPU: `conv2d` and `fused_conv` (every epilogue), transposed
//! convolutions, SE blocks, and the two merged steps — a depthwise conv with the SE block
//! reading it, a pointwise conv with the depthwise step reading it.

use super::super::{all_f32, merge_pairs, CpuKernel, Ins, Outs, Ty};
use super::elementwise::act_of;
use crate::plan::Step;
use crate::Result;
use kayak_ir::ops::{Layout, UnaryOp};
use kayak_ir::{Op, Tensor};
use kayak_kernels::conv::{self, Conv2d, ConvEpilogue, ConvPath, ConvTranspose2d};
use kayak_kernels::ops::{self as kops, Src};
use kayak_kernels::Act;
use std::sync::Arc;

/// The family's binder.
pub(crate) fn bind(
    op: &Op,
    ins: &[Ty<'_>],
    _: &[Option<&Tensor>],
    outs: &[Ty<'_>],
) -> Option<Box<dyn CpuKernel>> {
    let out = outs[0];
    Some(match op {
        Op::Conv2d(c) => Box::new(conv_k(c, false, None, None, ins, out)?),
        Op::FusedConv(f) => Box::new(conv_k(
            &f.conv,
            f.residual,
            f.act.as_ref(),
            f.post,
            ins,
            out,
        )?),
        Op::Conv2dTranspose(c) => {
            if c.layout != Layout::Nchw
                || !all_f32(ins)
                || ins.len() < 2
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
            Box::new(ConvTransposeK {
                geom: ConvTranspose2d(geometry(x, [w[2], w[3]], o, c.strides, p, dil, c.groups)),
                bias: c.has_bias,
            })
        }
        Op::SeBlock(s) => {
            let x = ins[0].1;
            if !all_f32(ins) || x.len() != 4 || ins.len() != 5 {
                return None;
            }
            let c1 = ins[2].1.iter().product();
            Box::new(SeK {
                dims: (x[0], x[1], x[2] * x[3]),
                c1,
                acts: (act_of(&s.act1), act_of(&s.act2)),
            })
        }
        _ => return None,
    })
}

/// A convolution with its fused epilogue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvK {
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
}

fn conv_k(
    c: &kayak_ir::ops::Conv,
    residual: bool,
    act: Option<&UnaryOp>,
    post: Option<(f32, f32)>,
    ins: &[Ty<'_>],
    out: Ty<'_>,
) -> Option<ConvK> {
    if c.layout != Layout::Nchw
        || !all_f32(ins)
        || ins.len() < 2
        || ins[0].1.len() != 4
        || ins[1].1.len() != 4
    {
        return None;
    }
    let (x, w, o) = (ins[0].1, ins[1].1, out.1);
    let (p, dil) = c
        .padding
        .resolve([x[2], x[3]], [w[2], w[3]], c.strides, c.dilations);
    if c.groups == 0 || x[1] % c.groups != 0 || w[1] * c.groups != x[1] {
        return None;
    }
    Some(ConvK {
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

impl ConvK {
    /// The epilogue from the step's inputs after `x` and `w`.
    fn epilogue<'a>(&self, ins: &Ins<'a>) -> Result<ConvEpilogue<'a>> {
        Ok(ConvEpilogue {
            bias: self.bias.then(|| ins.f32(2)).transpose()?,
            residual: self
                .residual
                .then(|| ins.f32(2 + usize::from(self.bias)))
                .transpose()?,
            act: self.act,
            post: self.post,
        })
    }
}

impl CpuKernel for ConvK {
    fn name(&self) -> &'static str {
        match self.geom.path() {
            ConvPath::Pointwise => "conv/pointwise",
            ConvPath::Depthwise => "conv/depthwise",
            ConvPath::General => "conv/general",
            ConvPath::Winograd => "conv/winograd",
            ConvPath::Direct => "conv/direct",
        }
    }
    fn scratch(&self, threads: usize) -> usize {
        self.geom.scratch_len(threads)
    }
    fn flops(&self) -> usize {
        2 * self.geom.macs()
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let ep = self.epilogue(ins)?;
        let (x, w) = (ins.f32(0)?, ins.f32(1)?);
        let (o, scratch) = (outs.f32(0)?, outs.scratch()?);
        conv::conv2d(ins.pool(), &self.geom, x, w, &ep, o, scratch);
        Ok(())
    }
}

/// A transposed convolution (with bias).
#[derive(Debug)]
struct ConvTransposeK {
    geom: ConvTranspose2d,
    /// A bias input follows the weights.
    bias: bool,
}

impl CpuKernel for ConvTransposeK {
    fn name(&self) -> &'static str {
        "conv_transpose"
    }
    fn scratch(&self, threads: usize) -> usize {
        self.geom.scratch_len(threads)
    }
    fn flops(&self) -> usize {
        2 * self.geom.macs()
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let bias = self.bias.then(|| ins.f32(2)).transpose()?;
        let (x, w) = (ins.f32(0)?, ins.f32(1)?);
        let (o, scratch) = (outs.f32(0)?, outs.scratch()?);
        conv::conv_transpose2d(ins.pool(), &self.geom, x, w, bias, o, scratch);
        Ok(())
    }
}

/// Squeeze-and-excitation over `[n, c, h·w]`.
#[derive(Debug)]
pub(crate) struct SeK {
    dims: (usize, usize, usize),
    /// Squeezed width (the first projection's outputs).
    c1: usize,
    acts: (Act, Act),
}

impl CpuKernel for SeK {
    fn name(&self) -> &'static str {
        "se_block"
    }
    fn in_place_inputs(&self) -> &'static [usize] {
        &[0]
    }
    fn scratch(&self, _: usize) -> usize {
        self.dims.1 + self.c1
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let x = ins.src(0)?;
        let w = (ins.f32(1)?, ins.f32(2)?, ins.f32(3)?, ins.f32(4)?);
        let (o, scratch) = (outs.f32(0)?, outs.scratch()?);
        kops::se_block(ins.pool(), self.dims, x, w, self.acts, o, scratch, None);
        Ok(())
    }
}

/// An SE block over a depthwise conv's output `o` (`[n, oc, oh·ow]` of `dw`), in place,
/// its four weights the step's inputs from `first`, the means given.
fn se_on(
    ins: &Ins<'_>,
    dw: &Conv2d,
    first: usize,
    acts: (Act, Act),
    (o, se, means): (&mut [f32], &mut [f32], &[f32]),
) -> Result<()> {
    let w = (
        ins.f32(first)?,
        ins.f32(first + 1)?,
        ins.f32(first + 2)?,
        ins.f32(first + 3)?,
    );
    kops::se_block(
        ins.pool(),
        (dw.n, dw.oc, dw.oh * dw.ow),
        Src::Out,
        w,
        acts,
        o,
        se,
        Some(means),
    );
    Ok(())
}

/// A depthwise conv whose output only an SE block reads, as one step ([`merge_conv_se`]):
/// the conv sums each channel as it writes it ([`conv::depthwise_means`]) and the SE block
/// takes those means instead of passing over the output again, in place. Inputs: the
/// conv's (`x`, `w`, the bias if any), then the SE block's four weights.
#[derive(Debug, Clone, Copy)]
struct ConvSeK {
    /// The conv (depthwise, no residual).
    conv: ConvK,
    /// The SE block's squeezed width.
    c1: usize,
    /// The SE block's activations.
    acts: (Act, Act),
}

impl CpuKernel for ConvSeK {
    fn name(&self) -> &'static str {
        "conv/depthwise+se"
    }
    fn scratch(&self, threads: usize) -> usize {
        let g = &self.conv.geom;
        conv::depthwise_means_scratch(g, threads) + g.n * g.oc + g.oc + self.c1
    }
    fn flops(&self) -> usize {
        2 * self.conv.geom.macs()
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let geom = &self.conv.geom;
        let ep = self.conv.epilogue(ins)?;
        let k = 2 + usize::from(self.conv.bias);
        let (x, w) = (ins.f32(0)?, ins.f32(1)?);
        let (o, scratch) = (outs.f32(0)?, outs.scratch()?);
        let (cs, rest) =
            scratch.split_at_mut(conv::depthwise_means_scratch(geom, ins.pool().threads()));
        let (means, se) = rest.split_at_mut(geom.n * geom.oc);
        conv::depthwise_means(ins.pool(), geom, x, w, &ep, o, cs, means);
        se_on(ins, geom, k, self.acts, (o, se, means))
    }
}

/// The depthwise part of an [`ExpandDwK`].
#[derive(Debug, Clone, Copy)]
enum Depthwise {
    Conv(ConvK),
    ConvSe(ConvSeK),
}

impl Depthwise {
    fn conv(&self) -> &ConvK {
        match self {
            Depthwise::Conv(c) => c,
            Depthwise::ConvSe(c) => &c.conv,
        }
    }
    /// The SE block's squeezed width and activations, if it has one.
    fn se(&self) -> Option<(usize, (Act, Act))> {
        match self {
            Depthwise::Conv(_) => None,
            Depthwise::ConvSe(c) => Some((c.c1, c.acts)),
        }
    }
}

/// A pointwise conv whose output only the next step, a depthwise conv (alone or merged
/// with its SE block), reads, as one step ([`merge_expand_dw`]): the expanded channels in
/// blocks or chunks, each one's product and depthwise conv on one thread, in one dispatch
/// ([`conv::expand_depthwise_blocked`] at one thread, [`conv::expand_depthwise_chunked`]
/// with more). Inputs: the pointwise conv's (`x`, `w`, the bias if any), then the
/// depthwise step's after its first.
#[derive(Debug)]
struct ExpandDwK {
    /// The pointwise conv (no residual).
    pw: ConvK,
    /// The depthwise step.
    dw: Depthwise,
    /// At one thread: the pointwise weights packed for the blocked product
    /// ([`conv::expand_blocked_pack`], made when the plan is), and the step runs
    /// [`conv::expand_depthwise_blocked`]; else `None`, and it runs
    /// [`conv::expand_depthwise_chunked`].
    packed: Option<Arc<[f32]>>,
}

impl ExpandDwK {
    /// The convs' part of the scratch.
    fn conv_scratch(&self, threads: usize) -> usize {
        let dw = &self.dw.conv().geom;
        match self.packed {
            Some(_) => conv::expand_blocked_scratch(&self.pw.geom, dw, threads),
            None => {
                conv::expand_chunked_scratch(&self.pw.geom, dw, self.dw.se().is_some(), threads)
            }
        }
    }
}

impl CpuKernel for ExpandDwK {
    fn name(&self) -> &'static str {
        match self.dw {
            Depthwise::ConvSe(_) => "conv/expand+depthwise+se",
            Depthwise::Conv(_) => "conv/expand+depthwise",
        }
    }
    /// The blocks' (expanded channels and the depthwise kernel's own), then with an SE
    /// block its means and its scratch.
    fn scratch(&self, threads: usize) -> usize {
        let dw = &self.dw.conv().geom;
        self.conv_scratch(threads) + self.dw.se().map_or(0, |(c1, _)| dw.n * dw.oc + dw.oc + c1)
    }
    fn flops(&self) -> usize {
        2 * self.pw.geom.macs() + 2 * self.dw.conv().geom.macs()
    }
    fn run(&self, ins: &Ins<'_>, outs: &mut Outs<'_>) -> Result<()> {
        let pool = ins.pool();
        let dwc = self.dw.conv();
        let dw = &dwc.geom;
        let se = self.dw.se();
        let ep_pw = self.pw.epilogue(ins)?;
        // The depthwise step's inputs after its first: weights, bias, SE weights.
        let d = 2 + usize::from(self.pw.bias);
        let ep_dw = ConvEpilogue {
            bias: dwc.bias.then(|| ins.f32(d + 1)).transpose()?,
            residual: None,
            act: dwc.act,
            post: dwc.post,
        };
        let x = ins.f32(0)?;
        let w_dw = ins.f32(d)?;
        let (o, scratch) = (outs.f32(0)?, outs.scratch()?);
        let (cs, rest) = scratch.split_at_mut(self.conv_scratch(pool.threads()));
        let (means, se_scratch) = rest.split_at_mut(if se.is_some() { dw.oc } else { 0 });
        let m = se.is_some().then_some(&mut *means);
        let dws = (dw, w_dw, &ep_dw);
        match &self.packed {
            Some(p) => {
                conv::expand_depthwise_blocked(pool, (&self.pw.geom, p, &ep_pw), dws, x, o, cs, m)
            }
            None => conv::expand_depthwise_chunked(
                pool,
                (&self.pw.geom, ins.f32(1)?, &ep_pw),
                dws,
                x,
                o,
                cs,
                m,
            ),
        }
        if let Some((_, acts)) = se {
            let s = d + 1 + usize::from(dwc.bias);
            se_on(ins, dw, s, acts, (o, se_scratch, means))?;
        }
        Ok(())
    }
}

/// Merges each depthwise conv whose output only the next step, an SE block, reads into
/// one step (where [`conv::depthwise_means_apply`]: on AVX-512). `readers[v]` counts the
/// steps that read value `v`; `kept[v]` marks values the caller keeps. The merged step is
/// the conv's node, with the SE block's output; the conv's output is no longer produced
/// (nothing else reads it).
pub(crate) fn merge_conv_se(steps: &mut Vec<Step>, readers: &[usize], kept: &[bool]) {
    merge_pairs(steps, readers, kept, |a, b| {
        let (c, se) = (a.kernel.native::<ConvK>()?, b.kernel.native::<SeK>()?);
        let g = &c.geom;
        (!c.residual
            && b.inputs.len() == 5
            && se.dims == (g.n, g.oc, g.oh * g.ow)
            && conv::depthwise_means_apply(g))
        .then(|| {
            Box::new(ConvSeK {
                conv: *c,
                c1: se.c1,
                acts: se.acts,
            }) as Box<dyn CpuKernel>
        })
    });
}

/// Merges each pointwise conv whose output only the next step, a depthwise conv (or a
/// depthwise conv merged with its SE block) reads into one step. `readers` and `kept` as
/// [`merge_conv_se`] has them, counted before that merge (which keeps the conv's input).
/// The merged step is the pointwise conv's node, with the depthwise step's outputs; the
/// expanded tensor is no longer produced whole.
///
/// - At one thread, where [`conv::expand_blocked_applies`] (AVX-512, one image, no
///   residuals) and the pointwise weights are constants (`weight` gives a constant value's
///   f32s in standard layout): the blocked form, whose product writes the depthwise
///   kernel's layout, sparing its transposes of the input (MobileNetV3 0.96, PP-OCR rec
///   0.98 at one thread; its arena smaller).
/// - With more threads, where [`conv::expand_chunked_applies`]: one chunk of channels per
///   thread, which saves a fork-join and keeps each thread's share of the expanded tensor
///   on its core (MobileNetV3 0.97, PP-OCR cls 0.94 at 2 threads). The blocked form's
///   tasks of 16 channels shared out unevenly there (72 channels: 3 blocks to 2) and
///   measured 1–3% slower than this on PP-OCR rec and cls.
pub(crate) fn merge_expand_dw(
    steps: &mut Vec<Step>,
    readers: &[usize],
    kept: &[bool],
    weight: &dyn Fn(usize) -> Option<Vec<f32>>,
    threads: usize,
) {
    merge_pairs(steps, readers, kept, |a, b| {
        let pw = *a.kernel.native::<ConvK>()?;
        if pw.residual {
            return None;
        }
        let dw = match (b.kernel.native::<ConvK>(), b.kernel.native::<ConvSeK>()) {
            (Some(c), _) if !c.residual => Depthwise::Conv(*c),
            (_, Some(cs)) => Depthwise::ConvSe(*cs),
            _ => return None,
        };
        let geom = &dw.conv().geom;
        let packed = if threads == 1 {
            conv::expand_blocked_applies(&pw.geom, geom)
                .then(|| weight(a.inputs[1]))
                .flatten()
                .filter(|w| w.len() == pw.geom.oc * pw.geom.ic)
                .map(|w| Some(conv::expand_blocked_pack(&pw.geom, &w).into()))
        } else {
            conv::expand_chunked_applies(&pw.geom, geom, dw.se().is_some(), threads).then_some(None)
        };
        packed.map(|packed| Box::new(ExpandDwK { pw, dw, packed }) as Box<dyn CpuKernel>)
    });
}
