//! 2-D convolution, NCHW, with the GEMM epilogue (bias per output channel, residual,
//! activation, affine post).
//!
//! Paths, chosen by [`Conv2d::path`]:
//! - **pointwise** (1×1, stride 1, no padding): each (image, group) is one product of the
//!   weights with the input as it lies in memory — no copy;
//! - **depthwise** (one input and one output channel per group): a direct loop per plane,
//!   vectorized along the output row; with AVX2, planes that fit run the AVX2 plane kernel
//!   (the plane split into zero-padded stride phases once, every tap accumulated in
//!   registers, each output written once), 16 lanes wide on AVX-512; on AVX-512 most run
//!   in blocks of 16 channels (`blocked`) (`depthwise`);
//! - **general**: implicit im2col — the columns of a panel of output pixels are gathered
//!   into a small scratch panel (`K × NB` floats per thread, see [`Conv2d::scratch_len`]),
//!   then multiplied. The full im2col matrix is never built (`general`);
//! - **direct** (few taps, AVX-512): output rows from their input rows' stride phases
//!   (`general`);
//! - **Winograd** F(2×2, 3×3) for 3×3 stride 1 ([`crate::winograd`]).
//!
//! Also: a pointwise conv and the depthwise conv reading its output in one dispatch, and
//! a depthwise conv that sums its output per channel for an SE block (`expand`);
//! transposed convolutions (`transpose`). The types and the geometry the ISA kernels
//! share are in `geom`; the kernels with intrinsics come from the dispatch table
//! (`crate::isa`).

mod blocked;
mod depthwise;
mod expand;
mod general;
pub(crate) mod geom;
#[cfg(test)]
mod tests;
mod transpose;
pub(crate) mod winograd;

pub use expand::{
    depthwise_means, depthwise_means_apply, depthwise_means_scratch, expand_blocked_applies,
    expand_blocked_pack, expand_blocked_scratch, expand_chunked_applies, expand_chunked_scratch,
    expand_depthwise_blocked, expand_depthwise_chunked,
};
pub use geom::{Conv2d, ConvEpilogue};
pub use transpose::{conv_transpose2d, ConvTranspose2d};

use crate::act::act_post;
use crate::gemm::{self, Epilogue, Gemm, Mat};
use crate::pool::ThreadPool;
use depthwise::{blocked_depthwise, flat_scratch, small_plane};

/// Panel scratch per thread, in floats (64 KiB); a panel is at least 64 columns wide
/// (up to 256), so a deep K gets a bigger panel rather than narrow, slow products.
const PANEL: usize = 16 * 1024;

/// The algorithm a convolution runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvPath {
    /// 1×1, stride 1, no padding: a product on the input as is.
    Pointwise,
    /// 3×3, stride 1: Winograd F(2×2, 3×3) ([`crate::winograd`]).
    Winograd,
    /// One channel in and out per group.
    Depthwise,
    /// Implicit im2col panels and a product.
    General,
    /// Few taps (a first convolution: 3 channels × 3×3), AVX-512: output rows computed
    /// directly from their input rows split into stride phases (`x86_64::avx512::direct`).
    Direct,
}

impl Conv2d {
    /// Which algorithm runs.
    pub fn path(&self) -> ConvPath {
        if self.kh == 1
            && self.kw == 1
            && self.stride == [1, 1]
            && self.pad == [0, 0]
            && self.oh == self.h
            && self.ow == self.w
        {
            ConvPath::Pointwise
        } else if self.groups == self.ic && self.oc == self.ic {
            ConvPath::Depthwise
        } else if winograd::applies(self) {
            ConvPath::Winograd
        } else if general::direct(self) {
            ConvPath::Direct
        } else {
            ConvPath::General
        }
    }

    /// Scratch floats [`conv2d`] needs at `threads` threads (zero unless the general path).
    pub fn scratch_len(&self, threads: usize) -> usize {
        match self.path() {
            ConvPath::General => threads.max(1) * self.kdim() * self.panel_cols(),
            ConvPath::Winograd => winograd::scratch_len(self, threads),
            ConvPath::Depthwise if blocked_depthwise(self) => blocked::scratch_len(self, threads),
            // Small planes run flat on a padded copy; a strided depthwise conv otherwise
            // splits each input row into its stride phases.
            ConvPath::Depthwise if small_plane(self) => threads.max(1) * flat_scratch(self),
            ConvPath::Depthwise if self.stride[1] > 1 => threads.max(1) * self.h * self.w,
            ConvPath::Direct => threads.max(1) * geom::direct_scratch(self),
            _ => 0,
        }
    }

    /// Multiply-adds.
    pub fn macs(&self) -> usize {
        self.n * self.oc * self.oh * self.ow * self.kdim()
    }
}

/// `out = epilogue(conv(x, w))`. `x` is `[n, ic, h, w]`, `w` is `[oc, ic/groups, kh, kw]`,
/// `out` is `[n, oc, oh, ow]`; `scratch` has at least `p.scratch_len(pool.threads())`
/// floats.
///
/// # Panics
/// If a slice is shorter than the geometry says (shapes are checked when plans are made).
pub fn conv2d(
    pool: &ThreadPool,
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    ep: &ConvEpilogue<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let (icg, ocg, kd) = (p.icg(), p.ocg(), p.kdim());
    let (hw, ohw) = (p.h * p.w, p.oh * p.ow);
    assert!(x.len() >= p.n * p.ic * hw, "conv input too short");
    assert!(w.len() >= p.oc * kd, "conv weights too short");
    assert!(out.len() >= p.n * p.oc * ohw, "conv output too short");
    assert!(
        ep.bias.is_none_or(|b| b.len() >= p.oc),
        "conv bias too short"
    );
    assert!(ep
        .residual
        .is_none_or(|r| r.len() >= out.len().min(p.n * p.oc * ohw)));
    match p.path() {
        ConvPath::Pointwise => {
            let groups = p.groups;
            for g in 0..groups {
                let e = Epilogue {
                    row_bias: ep.bias.map(|b| &b[g * ocg..]),
                    residual: ep.residual,
                    act: ep.act,
                    post: ep.post,
                    ..Epilogue::default()
                };
                gemm::sgemm_batch(
                    pool,
                    Gemm {
                        m: ocg,
                        n: ohw,
                        k: icg,
                    },
                    p.n,
                    &|b| {
                        (
                            g * ocg * kd,
                            (b * p.ic + g * icg) * hw,
                            (b * p.oc + g * ocg) * ohw,
                        )
                    },
                    Mat::rows(w, kd),
                    Mat::rows(x, hw),
                    out,
                    ohw,
                    &e,
                );
            }
        }
        ConvPath::Depthwise => depthwise::depthwise(pool, p, x, w, ep, out, scratch),
        ConvPath::General => general::general(pool, p, x, w, ep, out, scratch),
        ConvPath::Direct => general::direct_conv(pool, p, x, w, ep, out, scratch),
        ConvPath::Winograd => winograd::conv3x3(pool, p, x, w, ep, out, scratch),
    }
}

/// Bias, residual, activation and post on one output plane.
pub(crate) fn finish_plane(p: &Conv2d, ep: &ConvEpilogue<'_>, plane: usize, o: &mut [f32]) {
    finish_span(p, ep, plane, 0, o);
}

/// [`finish_plane`] on the part of plane `plane` from element `at` on that `o` holds.
pub(crate) fn finish_span(
    p: &Conv2d,
    ep: &ConvEpilogue<'_>,
    plane: usize,
    at: usize,
    o: &mut [f32],
) {
    let c = plane % p.oc;
    if ep.residual.is_none() {
        // One pass for bias and activation.
        match ep.bias {
            Some(b) => crate::act::bias_act(o, b[c], ep.act),
            None => ep.act.apply_slice(o),
        }
        if let Some((s, t)) = ep.post {
            o.iter_mut().for_each(|v| *v = s * *v + t);
        }
        return;
    }
    if let Some(b) = ep.bias {
        let b = b[c];
        o.iter_mut().for_each(|v| *v += b);
    }
    if let Some(r) = ep.residual {
        let start = plane * p.oh * p.ow + at;
        let len = o.len();
        o.iter_mut()
            .zip(&r[start..start + len])
            .for_each(|(v, r)| *v += r);
    }
    act_post(o, ep.act, ep.post);
}
