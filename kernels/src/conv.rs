//! 2-D convolution, NCHW, with the GEMM epilogue (bias per output channel, residual,
//! activation, affine post).
//!
//! Three paths, chosen by [`Conv2d::path`]:
//! - **pointwise** (1×1, stride 1, no padding): each (image, group) is one product of the
//!   weights with the input as it lies in memory — no copy;
//! - **depthwise** (one input and one output channel per group): a direct loop per plane,
//!   vectorized along the output row; with AVX2, planes that fit run `conv_avx2`'s kernel
//!   (the plane split into zero-padded stride phases once, every tap accumulated in
//!   registers, each output written once);
//! - **general**: implicit im2col — the columns of a panel of output pixels are gathered
//!   into a small scratch panel (`K × NB` floats per thread, see [`Conv2d::scratch_len`]),
//!   then multiplied. The full im2col matrix is never built.

use crate::act::{act_post, Act};
use crate::gemm::{self, Epilogue, Gemm, Mat};
use crate::pool::{chunk_range, SharedMut, ThreadPool};

/// Panel scratch per thread, in floats (64 KiB); a panel is at least 64 columns wide
/// (up to 256), so a deep K gets a bigger panel rather than narrow, slow products.
const PANEL: usize = 16 * 1024;

/// A convolution's geometry (NCHW; padding resolved to explicit top/left; bottom/right
/// padding is implied by the output size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2d {
    /// Batch.
    pub n: usize,
    /// Input channels.
    pub ic: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub oc: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Strides (h, w).
    pub stride: [usize; 2],
    /// Padding before (top, left).
    pub pad: [usize; 2],
    /// Dilations (h, w).
    pub dilation: [usize; 2],
    /// Groups.
    pub groups: usize,
}

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
    /// directly from their input rows split into stride phases (`conv_avx512`).
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
        } else if crate::winograd::applies(self) {
            ConvPath::Winograd
        } else if direct(self) {
            ConvPath::Direct
        } else {
            ConvPath::General
        }
    }

    fn icg(&self) -> usize {
        self.ic / self.groups
    }
    fn ocg(&self) -> usize {
        self.oc / self.groups
    }
    fn kdim(&self) -> usize {
        self.icg() * self.kh * self.kw
    }
    /// Output pixels per panel for the general path (a multiple of 16, 16..=256).
    fn panel_cols(&self) -> usize {
        let q = self.oh * self.ow;
        let nb = (PANEL / self.kdim().max(1)).clamp(64, 256) / 32 * 32;
        nb.min(q.div_ceil(16) * 16).max(16)
    }

    /// Scratch floats [`conv2d`] needs at `threads` threads (zero unless the general path).
    pub fn scratch_len(&self, threads: usize) -> usize {
        match self.path() {
            ConvPath::General => threads.max(1) * self.kdim() * self.panel_cols(),
            ConvPath::Winograd => crate::winograd::scratch_len(self, threads),
            #[cfg(target_arch = "x86_64")]
            ConvPath::Depthwise if blocked_depthwise(self) => {
                crate::dw_blocked::scratch_len(self, threads)
            }
            // Small planes run flat on a padded copy; a strided depthwise conv otherwise
            // splits each input row into its stride phases.
            ConvPath::Depthwise if small_plane(self) => threads.max(1) * flat_scratch(self),
            ConvPath::Depthwise if self.stride[1] > 1 => threads.max(1) * self.h * self.w,
            #[cfg(target_arch = "x86_64")]
            ConvPath::Direct => threads.max(1) * crate::conv_avx512::direct_scratch(self),
            _ => 0,
        }
    }

    /// Multiply-adds.
    pub fn macs(&self) -> usize {
        self.n * self.oc * self.oh * self.ow * self.kdim()
    }
}

/// The per-output-channel epilogue of a convolution.
#[derive(Debug, Clone, Copy)]
pub struct ConvEpilogue<'a> {
    /// Bias per output channel.
    pub bias: Option<&'a [f32]>,
    /// Added elementwise (laid out like the output).
    pub residual: Option<&'a [f32]>,
    /// Activation after bias and residual.
    pub act: Act,
    /// `(scale, shift)` applied last.
    pub post: Option<(f32, f32)>,
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
        ConvPath::Depthwise => depthwise(pool, p, x, w, ep, out, scratch),
        ConvPath::General => general(pool, p, x, w, ep, out, scratch),
        ConvPath::Direct => direct_conv(pool, p, x, w, ep, out, scratch),
        ConvPath::Winograd => crate::winograd::conv3x3(pool, p, x, w, ep, out, scratch),
    }
}

/// Whether [`depthwise_means`] computes `p` (a depthwise conv on the blocked kernel's
/// path: AVX-512 and the shapes it takes).
pub fn depthwise_means_apply(p: &Conv2d) -> bool {
    #[cfg(target_arch = "x86_64")]
    if p.path() == ConvPath::Depthwise && blocked_depthwise(p) {
        return true;
    }
    let _ = p;
    false
}

/// Floats of scratch [`depthwise_means`] needs at `threads` threads: the conv's, then
/// 16 per blocked item for their channel sums.
pub fn depthwise_means_scratch(p: &Conv2d, threads: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    if depthwise_means_apply(p) {
        return p.scratch_len(threads) + 16 * crate::dw_blocked::items(p, threads);
    }
    let _ = (p, threads);
    0
}

/// [`conv2d`] of a depthwise conv whose epilogue has no residual, also writing each output
/// channel's mean over its plane into `means` (`[n, oc]`) — what an SE block that follows
/// reads, summed while the conv writes its output instead of in another pass over it.
/// `scratch` holds [`depthwise_means_scratch`] floats.
///
/// # Panics
/// If [`depthwise_means_apply`] is false for `p`, the epilogue has a residual, or a slice is
/// too short.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_means(
    pool: &ThreadPool,
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    ep: &ConvEpilogue<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
    means: &mut [f32],
) {
    assert!(
        depthwise_means_apply(p) && ep.residual.is_none(),
        "depthwise_means does not take {p:?} (or a residual)"
    );
    assert!(means.len() >= p.n * p.oc, "depthwise means too short");
    assert!(
        ep.bias.is_none_or(|b| b.len() >= p.oc),
        "conv bias too short"
    );
    #[cfg(target_arch = "x86_64")]
    {
        let threads = pool.threads();
        let conv = p.scratch_len(threads);
        let items = crate::dw_blocked::items(p, threads);
        assert!(
            scratch.len() >= conv + 16 * items,
            "depthwise means scratch too short"
        );
        let (scratch, sums) = scratch.split_at_mut(conv);
        let sums = &mut sums[..16 * items];
        crate::dw_blocked::depthwise_sums(pool, p, x, w, ep, out, scratch, Some(sums));
        crate::dw_blocked::channel_means(p, threads, sums, means);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (pool, x, w, ep, out, scratch);
        unreachable!("depthwise_means_apply is false off x86-64");
    }
}

/// The checks both expand kernels make on their operands' lengths (and no residuals);
/// returns (input pixels, output pixels, taps).
fn check_expand(
    (pw, ep_pw): (&Conv2d, &ConvEpilogue<'_>),
    (dw, w_dw, ep_dw): (&Conv2d, &[f32], &ConvEpilogue<'_>),
    x: usize,
    out: usize,
    means: Option<usize>,
) -> (usize, usize, usize) {
    assert!(
        ep_pw.residual.is_none() && ep_dw.residual.is_none(),
        "expand_depthwise residual"
    );
    let (hw, ohw, taps) = (pw.h * pw.w, dw.oh * dw.ow, dw.kh * dw.kw);
    let c = pw.oc;
    assert!(x >= pw.ic * hw, "expand input too short");
    assert!(w_dw.len() >= c * taps, "depthwise weights too short");
    assert!(out >= c * ohw, "depthwise output too short");
    assert!(
        ep_pw.bias.is_none_or(|b| b.len() >= c) && ep_dw.bias.is_none_or(|b| b.len() >= c),
        "expand bias too short"
    );
    assert!(means.is_none_or(|m| m >= c), "depthwise means too short");
    (hw, ohw, taps)
}

/// Channels per chunk of [`expand_depthwise_chunked`], and the chunk count: one chunk per
/// thread, a multiple of 4 channels. Smaller chunks, several per thread (at most 48K
/// floats, so that each stays in L2 between its product and its depthwise conv),
/// measured no faster on MobileNetV3 (1.000 at 2 threads, 8 pairs) and slower on PP-OCR:
/// rec 1.3%, det 3% at 1 thread, their products cut to fewer rows and their depthwise
/// convs to partial channel blocks.
fn expand_chunks(pw: &Conv2d, threads: usize) -> (usize, usize) {
    let c = pw.oc;
    let cc = c.div_ceil(threads.max(1)).next_multiple_of(4).min(c).max(1);
    (cc, c.div_ceil(cc))
}

/// Whether [`expand_depthwise_chunked`] takes the pointwise conv `pw` followed by the depthwise
/// conv `dw` (which reads `pw`'s output): one image, an ungrouped pointwise conv whose
/// output is the depthwise conv's input; with `means`, the depthwise conv on each chunk
/// of channels must be one [`depthwise_means`] takes.
pub fn expand_chunked_applies(pw: &Conv2d, dw: &Conv2d, means: bool, threads: usize) -> bool {
    let shapes = pw.n == 1
        && dw.n == 1
        && pw.path() == ConvPath::Pointwise
        && pw.groups == 1
        && dw.path() == ConvPath::Depthwise
        && dw.ic == pw.oc
        && (dw.h, dw.w) == (pw.oh, pw.ow);
    if !shapes {
        return false;
    }
    let (cc, q) = expand_chunks(pw, threads);
    let last = pw.oc - (q - 1) * cc;
    !means
        || [cc, last]
            .iter()
            .all(|&k| depthwise_means_apply(&dw_chunk(dw, k)))
}

/// Scratch floats [`expand_depthwise_chunked`] needs at `threads` threads: per thread, a chunk
/// of the expanded tensor and the depthwise conv's scratch for a chunk.
pub fn expand_chunked_scratch(pw: &Conv2d, dw: &Conv2d, means: bool, threads: usize) -> usize {
    threads.max(1) * chunked_slot(pw, dw, means, threads)
}

fn chunked_slot(pw: &Conv2d, dw: &Conv2d, means: bool, threads: usize) -> usize {
    let (cc, _) = expand_chunks(pw, threads);
    let sub = dw_chunk(dw, cc);
    let conv = if means {
        depthwise_means_scratch(&sub, 1)
    } else {
        sub.scratch_len(1)
    };
    cc * pw.h * pw.w + conv
}

/// A pointwise conv (`pw`, the expansion of an inverted residual block) and the
/// depthwise conv that reads its output alone (`dw`), in one dispatch: the expanded
/// channels in one chunk per thread, each task the product for its chunk's channels into
/// its own scratch, then the depthwise conv of those channels from there into `out`
/// (with `means`, also their means, as [`depthwise_means`]). Each thread's share of the
/// expanded tensor is read back by the core that wrote it, and the two convs share one
/// fork-join (MobileNetV3 at 2 threads: 22 steps of about 25 µs each had two). At one
/// thread it is the two convs one after the other. Each chunk's values are those of the
/// two convs run apart: the same products and depthwise sums per element.
///
/// # Panics
/// If [`expand_chunked_applies`] is false, an epilogue has a residual, or a slice is
/// shorter than the geometry says.
#[allow(clippy::too_many_arguments)]
pub fn expand_depthwise_chunked(
    pool: &ThreadPool,
    (pw, w_pw, ep_pw): (&Conv2d, &[f32], &ConvEpilogue<'_>),
    (dw, w_dw, ep_dw): (&Conv2d, &[f32], &ConvEpilogue<'_>),
    x: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
    means: Option<&mut [f32]>,
) {
    let threads = pool.threads();
    assert!(
        expand_chunked_applies(pw, dw, means.is_some(), threads),
        "expand_depthwise_chunked does not take {pw:?} then {dw:?}"
    );
    let c = pw.oc;
    assert!(w_pw.len() >= c * pw.ic, "expand weights too short");
    let (hw, ohw, taps) = check_expand(
        (pw, ep_pw),
        (dw, w_dw, ep_dw),
        x.len(),
        out.len(),
        means.as_ref().map(|m| m.len()),
    );
    let slot = chunked_slot(pw, dw, means.is_some(), threads);
    let (cc, q) = expand_chunks(pw, threads);
    let chunk = |t: usize, mine: &mut [f32], o: &mut [f32], m: Option<&mut [f32]>| {
        let (c0, c1) = (t * cc, ((t + 1) * cc).min(c));
        let n = c1 - c0;
        let (mid, rest) = mine.split_at_mut(cc * hw);
        let mid = &mut mid[..n * hw];
        let e = Epilogue {
            row_bias: ep_pw.bias.map(|b| &b[c0..]),
            act: ep_pw.act,
            post: ep_pw.post,
            ..Epilogue::default()
        };
        gemm::sgemm_serial(
            Gemm {
                m: n,
                n: hw,
                k: pw.ic,
            },
            Mat::rows(&w_pw[c0 * pw.ic..], pw.ic),
            Mat::rows(x, hw),
            mid,
            hw,
            &e,
        );
        let sub = dw_chunk(dw, n);
        let ep = ConvEpilogue {
            bias: ep_dw.bias.map(|b| &b[c0..]),
            ..*ep_dw
        };
        let serial = crate::pool::serial();
        let w = &w_dw[c0 * taps..c1 * taps];
        match m {
            Some(m) => depthwise_means(serial, &sub, mid, w, &ep, o, rest, m),
            None => conv2d(serial, &sub, mid, w, &ep, o, rest),
        }
    };
    expand_tasks(pool, (q, cc, c), (slot, ohw), (out, scratch, means), &chunk);
}

/// An expand kernel's chunk's work: `(chunk, its thread's scratch slot, its channels'
/// planes of the output, its channels' means)`.
type ExpandChunk<'a> = dyn Fn(usize, &mut [f32], &mut [f32], Option<&mut [f32]>) + Sync + 'a;

/// Runs `chunks` chunks of `cc` of the `c` expanded channels (the last may be short) over
/// the pool, handing each its thread's `slot` floats of `scratch` and its channels'
/// `ohw`-float planes of `out` and entries of `means`.
fn expand_tasks(
    pool: &ThreadPool,
    (chunks, cc, c): (usize, usize, usize),
    (slot, ohw): (usize, usize),
    (out, scratch, means): (&mut [f32], &mut [f32], Option<&mut [f32]>),
    chunk: &ExpandChunk<'_>,
) {
    assert!(
        scratch.len() >= pool.threads() * slot,
        "expand scratch too short"
    );
    let (op, sp) = (SharedMut::new(out), SharedMut::new(scratch));
    let mp = means.map(SharedMut::new);
    pool.run_indexed(chunks, &|t, thread| {
        let (c0, n) = (t * cc, cc.min(c - t * cc));
        // SAFETY: a thread runs one chunk at a time, so its slot is this chunk's; chunks
        // own disjoint channel ranges of `out` and `means` (their lengths checked by the
        // kernels: `check_expand`).
        #[allow(unsafe_code)]
        let (mine, o, m) = unsafe {
            (
                sp.slice(thread * slot, slot),
                op.slice(c0 * ohw, n * ohw),
                mp.as_ref().map(|m| m.slice(c0, n)),
            )
        };
        chunk(t, mine, o, m);
    });
}

/// The depthwise conv `dw` on `cc` of its channels alone.
fn dw_chunk(dw: &Conv2d, cc: usize) -> Conv2d {
    Conv2d {
        ic: cc,
        oc: cc,
        groups: cc,
        ..*dw
    }
}

/// Whether [`expand_depthwise_blocked`] takes the pointwise conv `pw` followed by the
/// depthwise conv `dw` (which reads `pw`'s output): one image, an ungrouped pointwise
/// conv whose output is the depthwise conv's input, and the blocked AVX-512 depthwise
/// kernel taking the depthwise conv a block of 16 channels at a time. (The planner uses
/// this form at one thread: with more, its 16-channel tasks share out unevenly —
/// MobileNetV3's 72 channels are 5 blocks, 3 to 2 — see `exec`'s `merge_expand_dw`.)
pub fn expand_blocked_applies(pw: &Conv2d, dw: &Conv2d) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        pw.n == 1
            && dw.n == 1
            && pw.path() == ConvPath::Pointwise
            && pw.groups == 1
            && dw.path() == ConvPath::Depthwise
            && dw.ic == pw.oc
            && (dw.h, dw.w) == (pw.oh, pw.ow)
            && crate::dw_blocked::applies(&dw_chunk(dw, 16.min(dw.oc)))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (pw, dw);
        false
    }
}

/// The pointwise weights (`[oc, ic]`) as [`expand_depthwise_blocked`] reads them: transposed
/// (`ic × oc`) and packed by [`gemm::pack_b`], 16 output channels per strip.
pub fn expand_blocked_pack(pw: &Conv2d, w: &[f32]) -> Vec<f32> {
    let (k, n) = (pw.ic, pw.oc);
    let mut out = vec![0f32; gemm::packed_len(k, n)];
    gemm::pack_b(
        Mat {
            data: &w[..k * n],
            rs: 1,
            cs: k,
        },
        k,
        n,
        &mut out,
    );
    out
}

/// Scratch floats [`expand_depthwise_blocked`] needs at `threads` threads: per thread, one block
/// of the expanded tensor (16 floats per pixel) and the depthwise kernel's scratch.
pub fn expand_blocked_scratch(pw: &Conv2d, dw: &Conv2d, threads: usize) -> usize {
    threads.max(1) * blocked_slot(pw, dw)
}

fn blocked_slot(pw: &Conv2d, dw: &Conv2d) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        16 * pw.h * pw.w + crate::dw_blocked::block_input_scratch(&dw_chunk(dw, 16.min(dw.oc)))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (pw, dw);
        0
    }
}

/// A pointwise conv (`pw`, the expansion of an inverted residual block) and the
/// depthwise conv that reads its output alone (`dw`), in one dispatch, 16 expanded
/// channels per task: the product for the block's channels written straight in the
/// blocked depthwise kernel's layout (16 floats per pixel, the transposed product
/// `xᵀ·wᵀ` against the packed weights of [`expand_blocked_pack`], its epilogue in
/// registers), then the block's depthwise conv from there into `out` (with `means`, also
/// its channels' means, as [`depthwise_means`]). The expanded tensor is never written
/// whole nor transposed row by row into blocks (the depthwise kernel's largest cost on
/// stride-2 convs), each block goes from the product to the depthwise conv through one
/// core's cache, and the two convs share one fork-join.
///
/// # Panics
/// If [`expand_blocked_applies`] is false, an epilogue has a residual, or a slice is
/// shorter than the geometry says.
#[allow(clippy::too_many_arguments)]
pub fn expand_depthwise_blocked(
    pool: &ThreadPool,
    (pw, packed, ep_pw): (&Conv2d, &[f32], &ConvEpilogue<'_>),
    (dw, w_dw, ep_dw): (&Conv2d, &[f32], &ConvEpilogue<'_>),
    x: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
    means: Option<&mut [f32]>,
) {
    assert!(
        expand_blocked_applies(pw, dw),
        "expand_depthwise_blocked does not take {pw:?} then {dw:?}"
    );
    let c = pw.oc;
    assert!(
        packed.len() == gemm::packed_len(pw.ic, c),
        "expand weights: wrong length"
    );
    let (hw, ohw, taps) = check_expand(
        (pw, ep_pw),
        (dw, w_dw, ep_dw),
        x.len(),
        out.len(),
        means.as_ref().map(|m| m.len()),
    );
    let slot = blocked_slot(pw, dw);
    #[cfg(target_arch = "x86_64")]
    {
        const L: usize = 16;
        let block = |t: usize, mine: &mut [f32], o: &mut [f32], m: Option<&mut [f32]>| {
            let (c0, n) = (t * L, L.min(c - t * L));
            let (mid, rest) = mine.split_at_mut(L * hw);
            if n < L {
                // The lanes past the channels stay 0 (the depthwise kernel's weights
                // there are 0; what it reads must be finite).
                mid.fill(0.0);
            }
            let e = Epilogue {
                col_bias: ep_pw.bias.map(|b| &b[c0..c0 + n]),
                act: ep_pw.act,
                post: ep_pw.post,
                ..Epilogue::default()
            };
            let regs = crate::gemm_avx512::in_registers(&e);
            // SAFETY: A is x read transposed (pixel rows, channel columns: `x` holds
            // ic·hw floats, asserted); the strip of packed weights for channels c0.. (16
            // columns, `ic` rows); C is `mid` (hw pixels × 16, masked to n columns);
            // AVX-512F (`applies`).
            #[allow(unsafe_code)]
            unsafe {
                crate::gemm_avx512::packed(
                    pw.ic,
                    Mat {
                        data: x,
                        rs: 1,
                        cs: hw,
                    },
                    &packed[t * pw.ic * L..(t + 1) * pw.ic * L],
                    n,
                    mid.as_mut_ptr(),
                    L,
                    0..hw,
                    0..L,
                    regs.then_some(&e),
                );
                if !regs {
                    e.apply_rows(mid.as_mut_ptr(), L, 0..hw, 0, n);
                }
            }
            let sub = dw_chunk(dw, n);
            let ep = ConvEpilogue {
                bias: ep_dw.bias.map(|b| &b[c0..]),
                ..*ep_dw
            };
            crate::dw_blocked::depthwise_block_input(
                &sub,
                mid,
                &w_dw[c0 * taps..(c0 + n) * taps],
                &ep,
                o,
                rest,
                m,
            );
        };
        expand_tasks(
            pool,
            (c.div_ceil(L), L, c),
            (slot, ohw),
            (out, scratch, means),
            &block,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (pool, x, out, scratch, means, taps, slot, hw, ohw);
        unreachable!("expand_blocked_applies is false off x86-64");
    }
}

/// Whether the direct few-tap kernel runs `p` (AVX-512 only).
fn direct(p: &Conv2d) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::isa() == crate::gemm::Isa::Avx512 {
        return crate::conv_avx512::direct_applies(p);
    }
    let _ = p;
    false
}

/// Output rows the direct conv computes before it applies their epilogue.
const FINISH_ROWS: usize = 8;

/// [`ConvPath::Direct`]: output rows over the pool, each task's epilogue on its rows, 8 at
/// a time.
fn direct_conv(
    pool: &ThreadPool,
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    ep: &ConvEpilogue<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        let per = crate::conv_avx512::direct_scratch(p);
        let units = p.n * p.oh;
        // The weights transposed, tap-major: a tap's output channels side by side.
        use crate::conv_avx512::{DIRECT_MAX_OC, DIRECT_MAX_TAPS};
        let taps = p.ic * p.kh * p.kw;
        let mut wt = [0f32; DIRECT_MAX_TAPS * DIRECT_MAX_OC];
        for o in 0..p.oc {
            for t in 0..taps {
                wt[t * p.oc + o] = w[o * taps + t];
            }
        }
        let wt = &wt[..taps * p.oc];
        let threads = pool.threads().min(units).max(1);
        assert!(scratch.len() >= threads * per, "conv scratch too short");
        let op = SharedMut::new(out);
        let sp = SharedMut::new(scratch);
        let opr = &op;
        let ohw = p.oh * p.ow;
        let task = |t: usize| {
            // SAFETY: task t owns scratch slot t.
            #[allow(unsafe_code)]
            let rows = unsafe { sp.slice(t * per, per) };
            let shared: &SharedMut<f32> = opr;
            let mut held = crate::conv_avx512::SplitRows::new();
            let mine = chunk_range(units, threads, t);
            // The epilogue runs on the task's rows, every FINISH_ROWS of them, while they
            // are in cache (a pass per plane afterwards read at 2 threads rows the other
            // core had written, and cost a second fork-join).
            let mut done = mine.start;
            let finish = |to: usize, done: &mut usize| {
                while *done < to {
                    let img = *done / p.oh;
                    let end = to.min((img + 1) * p.oh);
                    let (y0, y1) = (*done % p.oh, (end - 1) % p.oh + 1);
                    for oc in 0..p.oc {
                        let plane = img * p.oc + oc;
                        // SAFETY: rows y0..y1 of this image's planes are this task's
                        // (units are disjoint between tasks) and written above.
                        #[allow(unsafe_code)]
                        let o = unsafe { shared.slice(plane * ohw + y0 * p.ow, (y1 - y0) * p.ow) };
                        finish_span(p, ep, plane, y0 * p.ow, o);
                    }
                    *done = end;
                }
            };
            for u in mine.clone() {
                // SAFETY: `direct` ran this path only where `isa()` found AVX-512F; unit u
                // writes only row u % oh of image u / oh's planes (disjoint between units);
                // the asserts in `conv2d` cover the slices.
                #[allow(unsafe_code)]
                unsafe {
                    crate::conv_avx512::direct_row(
                        p,
                        x,
                        wt,
                        shared.0,
                        (u / p.oh, u % p.oh),
                        rows,
                        &mut held,
                    )
                };
                if u + 1 - done >= FINISH_ROWS {
                    finish(u + 1, &mut done);
                }
            }
            finish(mine.end, &mut done);
        };
        pool.run(threads, &task);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (pool, p, x, w, ep, out, scratch);
        unreachable!("the direct path is chosen only on x86-64 with AVX-512");
    }
}

fn depthwise(
    pool: &ThreadPool,
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    ep: &ConvEpilogue<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if blocked_depthwise(p) {
        crate::dw_blocked::depthwise(pool, p, x, w, ep, out, scratch);
        return;
    }
    let planes = p.n * p.oc;
    let (hw, ohw) = (p.h * p.w, p.oh * p.ow);
    let op = SharedMut::new(out);
    // Groups of planes, four per thread, handed out as threads come free (one group per
    // thread left a thread waiting whenever the other was slow or descheduled).
    let threads = pool.threads();
    let tasks = crate::pool::chunks(planes, if threads > 1 { 4 * threads } else { 1 }, 1);
    let flat = small_plane(p);
    #[cfg(target_arch = "x86_64")]
    let fast = fast_depthwise(p)
        .then(|| crate::conv_avx2::Depthwise::new(p, flat_geometry(p)))
        .flatten();
    // Rows of 14 and more run 16 lanes wide where AVX-512 is there (a 7-wide row would
    // leave most of 16 lanes idle).
    #[cfg(target_arch = "x86_64")]
    let wide = crate::gemm::isa() == crate::gemm::Isa::Avx512 && p.ow >= 14;
    let per = if flat {
        flat_scratch(p)
    } else if p.stride[1] > 1 {
        p.h * p.w
    } else {
        0
    };
    // Any thread may run a group (one slot each), unless there is one group.
    let slots = if tasks > 1 { threads } else { 1 };
    assert!(scratch.len() >= slots * per, "depthwise scratch too short");
    let sp = SharedMut::new(scratch);
    let task = |t: usize, thread: usize| {
        // SAFETY: a thread runs one task at a time, so its slot (below `slots`, asserted
        // to fit) is this task's.
        #[allow(unsafe_code)]
        let mine = unsafe { sp.slice(thread * per, per) };
        let mut fresh = true;
        for plane in chunk_range(planes, tasks, t) {
            let c = plane % p.oc;
            let xs = &x[plane * hw..(plane + 1) * hw];
            let ws = &w[c * p.kh * p.kw..(c + 1) * p.kh * p.kw];
            // SAFETY: planes are disjoint ranges of `out`, and each plane belongs to one task.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(plane * ohw, ohw) };
            #[cfg(target_arch = "x86_64")]
            if let (true, Some(k)) = (flat, &fast) {
                // SAFETY: `fast` exists only when `isa()` detected AVX2+FMA; `mine` holds
                // `flat_scratch` floats, at least what the phases need. The bias is added in
                // the kernel.
                let b = ep.bias.map_or(0.0, |b| b[c]);
                #[allow(unsafe_code)]
                unsafe {
                    if wide {
                        k.plane512(xs, ws, b, o, mine, fresh)
                    } else {
                        k.plane(xs, ws, b, o, mine, fresh)
                    }
                };
                fresh = false;
                finish_plane(p, &ConvEpilogue { bias: None, ..*ep }, plane, o);
                continue;
            }
            if flat {
                depthwise_flat(p, xs, ws, o, mine);
            } else {
                depthwise_plane(p, xs, ws, o, mine);
            }
            finish_plane(p, ep, plane, o);
        }
    };
    if p.macs() < 1 << 15 || tasks == 1 {
        (0..tasks).for_each(|t| task(t, 0));
    } else {
        pool.run_indexed(tasks, &task);
    }
}

/// Whether a depthwise conv runs in channel blocks ([`crate::dw_blocked`]): where that
/// kernel applies, on planes of at most 64×64 (it measured faster on all of MobileNetV3's
/// and PP-OCR rec's: 576×7×7 k5 55 → 28 µs, 288×14×14 k5 s2 40 → 17, 240×12×80 k5 235 →
/// 165 µs; 72×56×56 k3 s2 in 5 of 6 alternating runs, medians 77 → 67 µs), and on planes
/// too big for the AVX2 plane kernel's padded copy (PP-OCR det's 32×320×320 k3 s2: 2.6 →
/// 1.3 ms). Mid-sized planes keep the plane kernel, which measured faster there (det's
/// 64×160×160 k3 s2: 0.35–0.47 against 0.55–0.65 ms).
#[cfg(target_arch = "x86_64")]
fn blocked_depthwise(p: &Conv2d) -> bool {
    crate::dw_blocked::applies(p) && (p.h * p.w <= 4096 || !small_plane(p))
}

/// Depthwise planes whose padded copy holds at most this many floats (256 KiB) run
/// [`depthwise_flat`] when at most 32 wide; others run row by row ([`depthwise_plane`]).
const FLAT_MAX: usize = 64 * 1024;

fn small_plane(p: &Conv2d) -> bool {
    // The portable flat loop takes equal strides only; the AVX2 kernel any up to 4.
    if p.stride[0] > 4 || p.stride[1] > 4 || (p.stride[0] != p.stride[1] && !fast_depthwise(p)) {
        return false;
    }
    // The portable flat loop's padded copy (and a strided plane's phase split) only pays
    // on narrow planes, whose rows are too short for the row-by-row loops; wide rows
    // vectorize as they are. The AVX2 kernel keeps every tap in registers and also wins
    // on wide planes (PP-OCR rec's 12 × 80 planes: 1.49 → 1.11 ms per conv), unless
    // padding makes the phases more than 3× the input (planes a few rows tall).
    let (hq, wq) = flat_geometry(p);
    let padded = p.stride[0] * p.stride[1] * hq * wq;
    if p.ow > 32 && !(fast_depthwise(p) && padded <= 3 * p.h * p.w) {
        return false;
    }
    padded <= FLAT_MAX
}

/// Whether the AVX2 depthwise kernel ([`crate::conv_avx2`]) runs flat planes.
fn fast_depthwise(p: &Conv2d) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::isa() != crate::gemm::Isa::Generic {
        return p.kh * p.kw <= crate::conv_avx2::MAX_TAPS;
    }
    let _ = p;
    false
}

/// The geometry of [`depthwise_flat`]: phase-plane rows and width (`hq`, `wq`); the padded
/// plane is `sh·hq × sw·wq`.
fn flat_geometry(p: &Conv2d) -> (usize, usize) {
    let [sh, sw] = p.stride;
    let wq = (p.ow + ((p.kw - 1) * p.dilation[1]) / sw + 1).max((p.w + p.pad[1]).div_ceil(sw));
    let hq = (p.oh + ((p.kh - 1) * p.dilation[0]) / sh + 2).max((p.h + p.pad[0]).div_ceil(sh) + 1);
    (hq, wq)
}

/// Scratch floats per thread for a flat plane: the AVX2 kernel's phases (plus 16 floats
/// of slack), or the portable loop's padded plane, phases and output grid.
fn flat_scratch(p: &Conv2d) -> usize {
    let (hq, wq) = flat_geometry(p);
    let phases = p.stride[0] * p.stride[1] * hq * wq;
    if fast_depthwise(p) {
        phases + 16
    } else {
        2 * phases + p.oh * wq + 8
    }
}

/// One small depthwise plane, computed flat. The input goes into a zero-padded plane
/// `s·hq × s·wq` (`s` the stride), split into `s²` phase planes by row and column parity
/// (`phase (r, c)` holds padded rows `r, r+s, …`, columns `c, c+s, …`). Tap `(ky, kx)`
/// then reads phase `(ky·dh mod s, kx·dw mod s)` at a fixed offset for every output, so
/// each tap is one contiguous multiply-add over the whole output, on a grid `wq` wide
/// whose extra columns are dropped at the end.
fn depthwise_flat(p: &Conv2d, x: &[f32], w: &[f32], o: &mut [f32], scratch: &mut [f32]) {
    crate::simd!(depthwise_flat_body(
        p: &Conv2d,
        x: &[f32],
        w: &[f32],
        o: &mut [f32],
        scratch: &mut [f32]
    ))
}

#[inline(always)]
fn depthwise_flat_body(p: &Conv2d, x: &[f32], w: &[f32], o: &mut [f32], scratch: &mut [f32]) {
    let s = p.stride[0];
    let (hq, wq) = flat_geometry(p);
    let (hp, wp) = (s * hq, s * wq);
    let (padded, rest) = scratch.split_at_mut(hp * wp);
    let (phases, wide) = rest.split_at_mut(hp * wp);
    padded.fill(0.0);
    for (iy, row) in x.chunks_exact(p.w).enumerate() {
        let at = (iy + p.pad[0]) * wp + p.pad[1];
        padded[at..at + p.w].copy_from_slice(row);
    }
    let plane = hq * wq;
    if s == 1 {
        phases[..plane].copy_from_slice(padded);
    } else {
        for r in 0..s {
            for c in 0..s {
                let ph = &mut phases[(r * s + c) * plane..(r * s + c + 1) * plane];
                for (i, prow) in ph.chunks_exact_mut(wq).enumerate() {
                    let src = &padded[(i * s + r) * wp..(i * s + r + 1) * wp];
                    for (j, v) in prow.iter_mut().enumerate() {
                        *v = src[j * s + c];
                    }
                }
            }
        }
    }
    let n = p.oh * wq;
    let wide = &mut wide[..n];
    wide.fill(0.0);
    for ky in 0..p.kh {
        let (ry, oy) = ((ky * p.dilation[0]) % s, (ky * p.dilation[0]) / s);
        for kx in 0..p.kw {
            let (rx, ox) = ((kx * p.dilation[1]) % s, (kx * p.dilation[1]) / s);
            let wv = w[ky * p.kw + kx];
            let base = (ry * s + rx) * plane + oy * wq + ox;
            debug_assert!(
                base + n <= (ry * s + rx + 1) * plane,
                "tap read leaves its phase"
            );
            for (d, v) in wide.iter_mut().zip(&phases[base..base + n]) {
                *d += wv * v;
            }
        }
    }
    for (oy, orow) in o.chunks_exact_mut(p.ow).enumerate() {
        orow.copy_from_slice(&wide[oy * wq..oy * wq + p.ow]);
    }
}

/// One depthwise plane. With a column stride `s > 1`, every input row is first split into
/// its `s` phases (`phase q` holds `x[q], x[q+s], …`, laid end to end; row `iy` at `iy·w` in
/// `phases`), so that every tap reads contiguous memory.
fn depthwise_plane(p: &Conv2d, x: &[f32], w: &[f32], o: &mut [f32], phases: &mut [f32]) {
    crate::simd!(depthwise_plane_body(
        p: &Conv2d,
        x: &[f32],
        w: &[f32],
        o: &mut [f32],
        phases: &mut [f32]
    ))
}

#[inline(always)]
fn depthwise_plane_body(p: &Conv2d, x: &[f32], w: &[f32], o: &mut [f32], phases: &mut [f32]) {
    o.fill(0.0);
    let [sh, sw] = p.stride;
    let [dh, dw] = p.dilation;
    let [ph, pw] = p.pad;
    // Per kernel column: the valid output columns [lo, hi) (0 <= ox·sw + off < w) and where
    // they read, the same for every row — computed once.
    const MAX_KW: usize = 32;
    let split = sw > 1 && sw <= 8;
    let mut taps = [(0usize, 0usize, 0isize); MAX_KW];
    let kw = p.kw.min(MAX_KW);
    for (kx, t) in taps.iter_mut().enumerate().take(kw) {
        let off = (kx * dw) as isize - pw as isize;
        let lo = if off >= 0 {
            0
        } else {
            ((-off) as usize).div_ceil(sw)
        };
        let hi = if (p.w as isize) <= off {
            0
        } else {
            ((p.w as isize - off - 1) as usize / sw + 1).min(p.ow)
        };
        *t = (lo.min(hi), hi, off);
    }
    // Phase q of a row starts at `start[q]` in `phases` (only with a stride).
    let mut start = [0usize; 8];
    if split {
        let mut at = 0;
        for (q, st) in start.iter_mut().enumerate().take(sw) {
            *st = at;
            at += (p.w - q.min(p.w)).div_ceil(sw);
        }
        // Every input row split once (row iy's phases at iy·w in `phases`).
        for (xrow, prow) in x.chunks_exact(p.w).zip(phases.chunks_exact_mut(p.w)) {
            for (q, &st) in start.iter().enumerate().take(sw) {
                for (k, v) in xrow.iter().skip(q).step_by(sw).enumerate() {
                    prow[st + k] = *v;
                }
            }
        }
    }
    for oy in 0..p.oh {
        let orow = &mut o[oy * p.ow..(oy + 1) * p.ow];
        for ky in 0..p.kh {
            let iy = (oy * sh + ky * dh) as isize - ph as isize;
            if iy < 0 || iy >= p.h as isize {
                continue;
            }
            let xrow = &x[iy as usize * p.w..(iy as usize + 1) * p.w];
            let prow: &[f32] = if split {
                &phases[iy as usize * p.w..(iy as usize + 1) * p.w]
            } else {
                &[]
            };
            for kx in 0..p.kw {
                let wv = w[ky * p.kw + kx];
                let (lo, hi, off) = if kx < MAX_KW {
                    taps[kx]
                } else {
                    let off = (kx * dw) as isize - pw as isize;
                    let lo = if off >= 0 {
                        0
                    } else {
                        ((-off) as usize).div_ceil(sw)
                    };
                    let hi = if (p.w as isize) <= off {
                        0
                    } else {
                        ((p.w as isize - off - 1) as usize / sw + 1).min(p.ow)
                    };
                    (lo.min(hi), hi, off)
                };
                if lo >= hi {
                    continue;
                }
                let n = hi - lo;
                let src: &[f32] = if sw == 1 {
                    let st = (lo as isize + off) as usize;
                    &xrow[st..st + n]
                } else if split {
                    // x[ox·s + off] = phase (off mod s), element ox + ⌊off / s⌋.
                    let q = off.rem_euclid(sw as isize) as usize;
                    let j = (lo as isize + off.div_euclid(sw as isize)) as usize;
                    &prow[start[q] + j..start[q] + j + n]
                } else {
                    for (ox, d) in orow.iter_mut().enumerate().take(hi).skip(lo) {
                        *d += wv * xrow[(ox as isize * sw as isize + off) as usize];
                    }
                    continue;
                };
                for (d, s) in orow[lo..hi].iter_mut().zip(src) {
                    *d += wv * s;
                }
            }
        }
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

fn general(
    pool: &ThreadPool,
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    ep: &ConvEpilogue<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let (icg, ocg, kd) = (p.icg(), p.ocg(), p.kdim());
    let ohw = p.oh * p.ow;
    let nb = p.panel_cols();
    let panels = ohw.div_ceil(nb);
    let units = p.n * p.groups * panels;
    let threads = pool.threads().min(units).max(1);
    assert!(scratch.len() >= threads * kd * nb, "conv scratch too short");
    let op = SharedMut::new(out);
    let sp = SharedMut::new(scratch);
    let task = |t: usize| {
        // SAFETY: each task uses its own scratch slot t < threads.
        #[allow(unsafe_code)]
        let panel = unsafe { sp.slice(t * kd * nb, kd * nb) };
        let mut u = t;
        while u < units {
            let (img_g, pi) = (u / panels, u % panels);
            let (b, g) = (img_g / p.groups, img_g % p.groups);
            let q0 = pi * nb;
            let cols = nb.min(ohw - q0);
            im2col_panel(
                p,
                &x[(b * p.ic + g * icg) * p.h * p.w..],
                q0,
                cols,
                nb,
                panel,
            );
            let co = (b * p.oc + g * ocg) * ohw + q0;
            let e = Epilogue {
                row_bias: ep.bias.map(|bb| &bb[g * ocg..]),
                residual: ep.residual.map(|r| &r[co..]),
                act: ep.act,
                post: ep.post,
                ..Epilogue::default()
            };
            // SAFETY: units own disjoint (image, group, column panel) blocks of the output;
            // the slice starts at the block's first element and spans its rows.
            #[allow(unsafe_code)]
            let c = unsafe { op.slice(co, (ocg - 1) * ohw + cols) };
            gemm::sgemm_serial(
                Gemm {
                    m: ocg,
                    n: cols,
                    k: kd,
                },
                Mat::rows(&w[g * ocg * kd..], kd),
                Mat::rows(panel, nb),
                c,
                ohw,
                &e,
            );
            u += threads;
        }
    };
    pool.run(threads, &task);
}

/// `dst[k] = src[2k]` (`src` holds `2·dst.len() − 1` floats): a stride-2 conv's im2col
/// row, 8 at a time with a vector deinterleave on AVX2.
pub(crate) fn evens(src: &[f32], dst: &mut [f32]) {
    let n = dst.len();
    assert!(src.len() + 1 >= 2 * n, "evens: source too short");
    let mut k = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::isa() == crate::gemm::Isa::Avx512 {
        // 16 at a time by a two-register permute; the rest (the source ends one float
        // short of a whole last block) by masked loads and a masked store.
        #[target_feature(enable = "avx512f")]
        #[allow(unsafe_code)]
        fn go512(src: &[f32], dst: &mut [f32]) {
            use std::arch::x86_64::*;
            let n = dst.len();
            let idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            let mask = |m: usize| -> __mmask16 {
                if m >= 16 {
                    0xffff
                } else {
                    (1u16 << m) - 1
                }
            };
            let mut k = 0;
            // SAFETY: full loads only while 32 floats from 2k are in `src`; the tail's
            // loads are masked to `src`'s end and its store to `dst`'s.
            unsafe {
                while k + 16 <= n && 2 * k + 32 <= src.len() {
                    let a = _mm512_loadu_ps(src.as_ptr().add(2 * k));
                    let b = _mm512_loadu_ps(src.as_ptr().add(2 * k + 16));
                    _mm512_storeu_ps(dst.as_mut_ptr().add(k), _mm512_permutex2var_ps(a, idx, b));
                    k += 16;
                }
                while k < n {
                    let left = src.len() - 2 * k;
                    let a = _mm512_maskz_loadu_ps(mask(left), src.as_ptr().add(2 * k));
                    let b = _mm512_maskz_loadu_ps(
                        mask(left.saturating_sub(16)),
                        src.as_ptr().add(2 * k + 16.min(left)),
                    );
                    let ev = _mm512_permutex2var_ps(a, idx, b);
                    _mm512_mask_storeu_ps(dst.as_mut_ptr().add(k), mask(n - k), ev);
                    k += 16;
                }
            }
        }
        // SAFETY: `isa()` detected AVX-512F.
        #[allow(unsafe_code)]
        unsafe {
            go512(src, dst)
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::isa() != crate::gemm::Isa::Generic {
        #[target_feature(enable = "avx2,fma")]
        #[allow(unsafe_code)]
        fn go(src: &[f32], dst: &mut [f32]) -> usize {
            use std::arch::x86_64::*;
            let mut k = 0;
            // SAFETY: 16 floats from 2k are in `src`, 8 from k in `dst` (the loop's test).
            unsafe {
                while 2 * k + 16 <= src.len() && k + 8 <= dst.len() {
                    let a = _mm256_loadu_ps(src.as_ptr().add(2 * k));
                    let b = _mm256_loadu_ps(src.as_ptr().add(2 * k + 8));
                    let ev = _mm256_castpd_ps(_mm256_permute4x64_pd(
                        _mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)),
                        0xD8,
                    ));
                    _mm256_storeu_ps(dst.as_mut_ptr().add(k), ev);
                    k += 8;
                }
            }
            k
        }
        // SAFETY: `isa()` detected AVX2 and FMA.
        #[allow(unsafe_code)]
        {
            k = unsafe { go(src, dst) };
        }
    }
    for (j, v) in dst.iter_mut().enumerate().skip(k) {
        *v = src[2 * j];
    }
}

/// Gathers the im2col columns `q0 .. q0+cols` of one (image, group) into `panel`
/// (`K` rows of stride `nb`). Each panel row is filled one output row segment at a time:
/// zeros where the window falls in the padding, and a straight copy (stride 1) or a
/// strided read in between.
fn im2col_panel(p: &Conv2d, x: &[f32], q0: usize, cols: usize, nb: usize, panel: &mut [f32]) {
    let [sh, sw] = p.stride;
    let [dh, dw] = p.dilation;
    let [ph, pw] = p.pad;
    let mut r = 0;
    for c in 0..p.icg() {
        let xc = &x[c * p.h * p.w..(c + 1) * p.h * p.w];
        for ky in 0..p.kh {
            for kx in 0..p.kw {
                let row = &mut panel[r * nb..r * nb + cols];
                let off = (kx * dw) as isize - pw as isize;
                // Output columns ox with 0 <= ox·sw + off < w.
                let lo = if off >= 0 {
                    0
                } else {
                    ((-off) as usize).div_ceil(sw)
                }
                .min(p.ow);
                let hi = if (p.w as isize) <= off {
                    0
                } else {
                    ((p.w as isize - off - 1) as usize / sw + 1).min(p.ow)
                }
                .max(lo);
                let mut q = q0;
                let mut done = 0;
                while done < cols {
                    let (oy, ox0) = (q / p.ow, q % p.ow);
                    let n = (p.ow - ox0).min(cols - done);
                    let seg = &mut row[done..done + n];
                    let iy = (oy * sh + ky * dh) as isize - ph as isize;
                    if iy < 0 || iy >= p.h as isize {
                        seg.fill(0.0);
                    } else {
                        let xr = &xc[iy as usize * p.w..(iy as usize + 1) * p.w];
                        // Segment columns ox0 .. ox0+n: zeros before lo, data in lo..hi, zeros after.
                        let a = lo.clamp(ox0, ox0 + n);
                        let b = hi.clamp(ox0, ox0 + n);
                        seg[..a - ox0].fill(0.0);
                        seg[b - ox0..].fill(0.0);
                        if b > a {
                            let dst = &mut seg[a - ox0..b - ox0];
                            let start = (a as isize * sw as isize + off) as usize;
                            if sw == 1 {
                                dst.copy_from_slice(&xr[start..start + (b - a)]);
                            } else if sw == 2 {
                                evens(&xr[start..start + 2 * (b - a) - 1], dst);
                            } else {
                                for (k, v) in dst.iter_mut().enumerate() {
                                    *v = xr[start + k * sw];
                                }
                            }
                        }
                    }
                    q += n;
                    done += n;
                }
                r += 1;
            }
        }
    }
}

/// A transposed convolution's geometry: the fields of [`Conv2d`] (input `[n, ic, h, w]`,
/// output `[n, oc, oh, ow]`, padding resolved to top/left; the output size is given, so
/// output padding is implied), with weights laid out `[ic, oc/groups, kh, kw]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose2d(pub Conv2d);

impl ConvTranspose2d {
    /// Input pixels per panel.
    fn panel_cols(&self) -> usize {
        let p = &self.0;
        (PANEL / p.ocg().max(1))
            .clamp(16, 1024)
            .min(p.h * p.w)
            .max(1)
    }

    /// Scratch floats [`conv_transpose2d`] needs at `threads` threads.
    pub fn scratch_len(&self, threads: usize) -> usize {
        threads.max(1) * self.0.ocg() * self.panel_cols()
    }

    /// Multiply-adds.
    pub fn macs(&self) -> usize {
        let p = &self.0;
        p.n * p.ic * p.h * p.w * p.ocg() * p.kh * p.kw
    }
}

/// `out = conv_transpose(x, w) + bias`. Each kernel tap `(ky, kx)` is a product of its
/// weight slice with a panel of input pixels (into `scratch`), scattered into the output
/// at `(iy·s − pad + ky·d, ix·s − pad + kx·d)`. Work is split over output channels'
/// (image, group) blocks and output rows so that no two tasks write the same element.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d(
    pool: &ThreadPool,
    t: &ConvTranspose2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let p = &t.0;
    let (icg, ocg) = (p.icg(), p.ocg());
    let (hw, ohw, taps) = (p.h * p.w, p.oh * p.ow, p.kh * p.kw);
    assert!(x.len() >= p.n * p.ic * hw, "conv_transpose input too short");
    assert!(
        w.len() >= p.ic * ocg * taps,
        "conv_transpose weights too short"
    );
    assert!(
        out.len() >= p.n * p.oc * ohw,
        "conv_transpose output too short"
    );
    let nb = t.panel_cols();
    // Work units: (image, group, chunk of output channels); each writes only its own
    // channels' planes, so units never touch the same element.
    let chunks_per = pool.threads().min(ocg).max(1);
    let units = p.n * p.groups * chunks_per;
    let threads = pool.threads().min(units).max(1);
    assert!(
        scratch.len() >= threads * ocg * nb,
        "conv_transpose scratch too short"
    );
    let op = SharedMut::new(out);
    let sp = SharedMut::new(scratch);
    let task = |t: usize| {
        // SAFETY: scratch slot t belongs to task t.
        #[allow(unsafe_code)]
        let tmp = unsafe { sp.slice(t * ocg * nb, ocg * nb) };
        let mut u = t;
        while u < units {
            let (bg, ch) = (u / chunks_per, u % chunks_per);
            let (b, g) = (bg / p.groups, bg % p.groups);
            let cr = chunk_range(ocg, chunks_per, ch);
            let (c0, nc) = (cr.start, cr.len());
            let o0 = (b * p.oc + g * ocg + c0) * ohw;
            // SAFETY: unit (b, g, chunk) owns output channels g·ocg + c0 .. + nc of image b.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(o0, nc * ohw) };
            for (c, plane) in o.chunks_exact_mut(ohw).enumerate() {
                plane.fill(bias.map_or(0.0, |bb| bb[g * ocg + c0 + c]));
            }
            let xg = &x[(b * p.ic + g * icg) * hw..];
            // Panels of input columns outside, taps inside: the output rows one panel
            // touches stay in cache across its taps (tap-outer swept the whole output,
            // tens of MB on PP-OCR det, once per tap).
            let mut q0 = 0;
            while q0 < hw {
                let cols = nb.min(hw - q0);
                for ky in 0..p.kh {
                    for kx in 0..p.kw {
                        // A[oc, ic] = w[g·icg + ic, oc, ky, kx], rows c0 .. c0 + nc.
                        let a = Mat {
                            data: &w[g * icg * ocg * taps + c0 * taps + ky * p.kw + kx..],
                            rs: taps,
                            cs: ocg * taps,
                        };
                        gemm::sgemm_serial(
                            Gemm {
                                m: nc,
                                n: cols,
                                k: icg,
                            },
                            a,
                            Mat {
                                data: &xg[q0..],
                                rs: hw,
                                cs: 1,
                            },
                            tmp,
                            nb,
                            &Epilogue::default(),
                        );
                        // Where each column lands (or u32::MAX outside the output), then
                        // one contiguous pass per channel.
                        let mut ats = [u32::MAX; 1024];
                        debug_assert!(ohw < u32::MAX as usize);
                        // (iy, ix) of column q0, then stepped (no division per column).
                        let (mut iy, mut ix) = (q0 / p.w, q0 % p.w);
                        for at in ats.iter_mut().take(cols) {
                            let oy = (iy * p.stride[0] + ky * p.dilation[0]) as isize
                                - p.pad[0] as isize;
                            let ox = (ix * p.stride[1] + kx * p.dilation[1]) as isize
                                - p.pad[1] as isize;
                            *at = if oy >= 0 && ox >= 0 && oy < p.oh as isize && ox < p.ow as isize
                            {
                                (oy as usize * p.ow + ox as usize) as u32
                            } else {
                                u32::MAX
                            };
                            ix += 1;
                            if ix == p.w {
                                ix = 0;
                                iy += 1;
                            }
                        }
                        for c in 0..nc {
                            let plane = &mut o[c * ohw..(c + 1) * ohw];
                            let t = &tmp[c * nb..c * nb + cols];
                            for (&at, &v) in ats[..cols].iter().zip(t) {
                                if at != u32::MAX {
                                    plane[at as usize] += v;
                                }
                            }
                        }
                    }
                }
                q0 += cols;
            }
            u += threads;
        }
    };
    pool.run(threads, &task);
}

#[cfg(test)]
mod transpose_tests {
    use super::*;

    #[test]
    fn conv_transpose_matches_the_scatter_definition() {
        for &(ic, oc, g, k, s, pad, d, h, w) in &[
            (4, 6, 1, 2, 2, 0, 1, 5, 7),
            (4, 4, 2, 3, 2, 1, 1, 4, 4),
            (3, 2, 1, 3, 1, 1, 2, 6, 5),
        ] {
            let oh = (h - 1) * s + d * (k - 1) + 1 - 2 * pad;
            let ow = (w - 1) * s + d * (k - 1) + 1 - 2 * pad;
            let p = ConvTranspose2d(Conv2d {
                n: 2,
                ic,
                h,
                w,
                oc,
                oh,
                ow,
                kh: k,
                kw: k,
                stride: [s, s],
                pad: [pad, pad],
                dilation: [d, d],
                groups: g,
            });
            let (icg, ocg) = (ic / g, oc / g);
            let x: Vec<f32> = (0..2 * ic * h * w)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
                .collect();
            let wt: Vec<f32> = (0..ic * ocg * k * k)
                .map(|i| ((i * 3 % 7) as f32 - 3.0) / 5.0)
                .collect();
            let bias: Vec<f32> = (0..oc).map(|i| i as f32).collect();
            let mut want = vec![0f32; 2 * oc * oh * ow];
            for b in 0..2 {
                for o in 0..oc {
                    want[(b * oc + o) * oh * ow..(b * oc + o + 1) * oh * ow].fill(bias[o]);
                }
                for ci in 0..ic {
                    let gg = ci / icg;
                    for o in 0..ocg {
                        for ky in 0..k {
                            for kx in 0..k {
                                for iy in 0..h {
                                    for ix in 0..w {
                                        let oy = (iy * s + ky * d) as isize - pad as isize;
                                        let ox = (ix * s + kx * d) as isize - pad as isize;
                                        if oy < 0
                                            || ox < 0
                                            || oy >= oh as isize
                                            || ox >= ow as isize
                                        {
                                            continue;
                                        }
                                        want[((b * oc + gg * ocg + o) * oh + oy as usize) * ow
                                            + ox as usize] += x[((b * ic + ci) * h + iy) * w + ix]
                                            * wt[((ci * ocg + o) * k + ky) * k + kx];
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for threads in [1, 2] {
                let pool = ThreadPool::new(threads);
                // Scratch as the arena hands it out: holding whatever was there (NaN here).
                let mut scratch = vec![f32::NAN; p.scratch_len(threads)];
                let mut out = vec![f32::NAN; want.len()];
                conv_transpose2d(&pool, &p, &x, &wt, Some(&bias), &mut out, &mut scratch);
                for (a, b) in out.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{p:?}: {a} vs {b}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(p: &Conv2d, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        let (icg, ocg) = (p.icg(), p.ocg());
        let mut o = vec![0f32; p.n * p.oc * p.oh * p.ow];
        for b in 0..p.n {
            for oc in 0..p.oc {
                let g = oc / ocg;
                for oy in 0..p.oh {
                    for ox in 0..p.ow {
                        let mut s = bias[oc] as f64;
                        for ci in 0..icg {
                            for ky in 0..p.kh {
                                for kx in 0..p.kw {
                                    let iy = (oy * p.stride[0] + ky * p.dilation[0]) as isize
                                        - p.pad[0] as isize;
                                    let ix = (ox * p.stride[1] + kx * p.dilation[1]) as isize
                                        - p.pad[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((b * p.ic + g * icg + ci) * p.h + iy as usize)
                                        * p.w
                                        + ix as usize];
                                    let wv = w[((oc * icg + ci) * p.kh + ky) * p.kw + kx];
                                    s += xv as f64 * wv as f64;
                                }
                            }
                        }
                        o[((b * p.oc + oc) * p.oh + oy) * p.ow + ox] = s as f32;
                    }
                }
            }
        }
        o
    }

    #[allow(clippy::too_many_arguments)]
    fn geom(
        n: usize,
        ic: usize,
        h: usize,
        w: usize,
        oc: usize,
        k: usize,
        s: usize,
        pad: usize,
        d: usize,
        g: usize,
    ) -> Conv2d {
        let oh = (h + 2 * pad - d * (k - 1) - 1) / s + 1;
        let ow = (w + 2 * pad - d * (k - 1) - 1) / s + 1;
        Conv2d {
            n,
            ic,
            h,
            w,
            oc,
            oh,
            ow,
            kh: k,
            kw: k,
            stride: [s, s],
            pad: [pad, pad],
            dilation: [d, d],
            groups: g,
        }
    }

    /// `p` with strides `(sh, sw)`, its output size recomputed.
    fn strided(mut p: Conv2d, sh: usize, sw: usize) -> Conv2d {
        p.stride = [sh, sw];
        p.oh = (p.h + 2 * p.pad[0] - p.dilation[0] * (p.kh - 1) - 1) / sh + 1;
        p.ow = (p.w + 2 * p.pad[1] - p.dilation[1] * (p.kw - 1) - 1) / sw + 1;
        p
    }

    /// Input, weights, bias and residual for `p`: small patterned values.
    #[allow(clippy::type_complexity)]
    fn operands(p: &Conv2d) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let x = (0..p.n * p.ic * p.h * p.w)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
            .collect();
        let w = (0..p.oc * p.icg() * p.kh * p.kw)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 7.0)
            .collect();
        let bias = (0..p.oc).map(|i| i as f32 / 10.0 - 1.0).collect();
        let res = (0..p.n * p.oc * p.oh * p.ow)
            .map(|i| (i % 3) as f32 - 1.0)
            .collect();
        (x, w, bias, res)
    }

    #[test]
    fn blocked_depthwise_matches_the_naive_loop() {
        // Channel counts with full and partial blocks of 16; 7×7 and 14×14 planes; a
        // plane too big for the plane kernel, cut into row chunks; a 7×7 kernel, a dilated
        // one (one load per tap); no padding with rows of several 8-pixel groups and a
        // tail; two images; strides 2, 2 × 1 and 1 × 2, on odd sizes and a big plane.
        let cases = [
            geom(2, 40, 7, 7, 40, 5, 1, 2, 1, 40),
            geom(1, 16, 14, 14, 16, 3, 1, 1, 1, 16),
            geom(1, 20, 260, 258, 20, 3, 1, 1, 1, 20),
            geom(1, 33, 9, 23, 33, 7, 1, 3, 1, 33),
            geom(1, 20, 12, 12, 20, 3, 1, 2, 2, 20),
            geom(1, 17, 5, 40, 17, 5, 1, 0, 1, 17),
            geom(1, 40, 14, 14, 40, 5, 2, 2, 1, 40),
            geom(1, 24, 31, 29, 24, 3, 2, 1, 1, 24),
            strided(geom(1, 24, 6, 40, 24, 3, 1, 1, 1, 24), 2, 1),
            strided(geom(1, 24, 7, 33, 24, 5, 1, 2, 1, 24), 1, 2),
            geom(1, 16, 300, 300, 16, 3, 2, 1, 1, 16),
        ];
        #[cfg(target_arch = "x86_64")]
        let blocked = crate::gemm::isa() == crate::gemm::Isa::Avx512;
        #[cfg(not(target_arch = "x86_64"))]
        let blocked = false;
        for p in cases {
            #[cfg(target_arch = "x86_64")]
            assert_eq!(blocked_depthwise(&p), blocked, "{p:?}");
            let (x, w, bias, res) = operands(&p);
            let want = naive(&p, &x, &w, &bias);
            for threads in [1, 2, 3] {
                let pool = ThreadPool::new(threads);
                for residual in [None, Some(&res[..])] {
                    let mut scratch = vec![f32::NAN; p.scratch_len(threads)];
                    let mut out = vec![f32::NAN; want.len()];
                    let ep = ConvEpilogue {
                        bias: Some(&bias),
                        residual,
                        act: Act::HardSwish {
                            threshold: 6.0,
                            scale: 6.0,
                            offset: 3.0,
                        },
                        post: Some((2.0, 1.0)),
                    };
                    conv2d(&pool, &p, &x, &w, &ep, &mut out, &mut scratch);
                    for (i, (a, b)) in out.iter().zip(&want).enumerate() {
                        let v = b + residual.map_or(0.0, |r| r[i]);
                        let b = v * (v + 3.0).clamp(0.0, 6.0) / 6.0 * 2.0 + 1.0;
                        assert!(
                            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                            "{p:?} t{threads} residual {} [{i}]: {a} vs {b}",
                            residual.is_some()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn all_paths_match_the_naive_loop() {
        // Few-tap convolutions run the direct kernel where AVX-512 is there, else im2col.
        let few = if crate::gemm::isa() == crate::gemm::Isa::Avx512 {
            ConvPath::Direct
        } else {
            ConvPath::General
        };
        let cases = [
            (geom(2, 8, 5, 7, 6, 1, 1, 0, 1, 1), ConvPath::Pointwise),
            (geom(1, 8, 5, 7, 8, 1, 1, 0, 1, 2), ConvPath::Pointwise),
            (geom(2, 6, 9, 11, 6, 3, 1, 1, 1, 6), ConvPath::Depthwise),
            (geom(1, 4, 9, 10, 4, 5, 2, 2, 1, 4), ConvPath::Depthwise),
            (geom(1, 4, 12, 12, 4, 3, 1, 2, 2, 4), ConvPath::Depthwise),
            // Wide strided planes take the row path over pre-split phases.
            (geom(1, 3, 20, 70, 3, 3, 2, 1, 1, 3), ConvPath::Depthwise),
            (geom(2, 2, 9, 81, 2, 5, 3, 2, 1, 2), ConvPath::Depthwise),
            // Stride 2 with even and odd padding over widths the vector deinterleave
            // covers; strides 3 and 4; 7×7 (49 taps) and 9×9 (beyond the AVX2 kernel).
            (geom(1, 3, 21, 40, 3, 3, 2, 0, 1, 3), ConvPath::Depthwise),
            (geom(1, 3, 22, 41, 3, 5, 2, 2, 1, 3), ConvPath::Depthwise),
            (geom(1, 2, 13, 50, 2, 3, 3, 1, 1, 2), ConvPath::Depthwise),
            (geom(1, 2, 17, 37, 2, 3, 4, 1, 1, 2), ConvPath::Depthwise),
            (geom(1, 2, 15, 19, 2, 7, 1, 3, 1, 2), ConvPath::Depthwise),
            (geom(1, 2, 15, 19, 2, 9, 1, 4, 1, 2), ConvPath::Depthwise),
            (geom(1, 2, 16, 18, 2, 3, 2, 2, 2, 2), ConvPath::Depthwise),
            // Planes past 64×64 and planes thinner than the kernel: the plane kernel, also
            // on AVX-512 (where smaller planes run in channel blocks).
            (geom(1, 3, 70, 72, 3, 3, 1, 1, 1, 3), ConvPath::Depthwise),
            (geom(1, 3, 80, 70, 3, 3, 2, 1, 1, 3), ConvPath::Depthwise),
            (geom(1, 20, 2, 40, 20, 5, 1, 2, 1, 20), ConvPath::Depthwise),
            // Unequal strides (PP-OCR cls/rec: 2 × 1), both ways, and 3 × 2.
            (
                strided(geom(1, 3, 6, 40, 3, 3, 1, 1, 1, 3), 2, 1),
                ConvPath::Depthwise,
            ),
            (
                strided(geom(1, 3, 7, 33, 3, 5, 1, 2, 1, 3), 1, 2),
                ConvPath::Depthwise,
            ),
            (
                strided(geom(1, 2, 11, 20, 2, 3, 1, 1, 1, 2), 3, 2),
                ConvPath::Depthwise,
            ),
            (geom(2, 3, 17, 19, 16, 3, 2, 1, 1, 1), ConvPath::General),
            // Stride 2 over rows long enough for several deinterleaved vectors (the
            // direct few-tap kernel on AVX-512).
            (geom(1, 3, 9, 70, 16, 3, 2, 1, 1, 1), few),
            // More few-tap shapes: two images and an odd width; 5×5 with 13 output
            // channels (blocks of 8, 4, 1); no padding, one input channel; strides 2 × 1.
            (geom(2, 3, 20, 37, 16, 3, 2, 1, 1, 1), few),
            (geom(1, 2, 20, 40, 13, 5, 1, 2, 1, 1), few),
            (geom(1, 1, 9, 33, 7, 3, 2, 0, 1, 1), few),
            (strided(geom(1, 3, 10, 40, 16, 3, 1, 1, 1, 1), 2, 1), few),
            (geom(1, 8, 7, 9, 12, 3, 1, 1, 1, 4), ConvPath::General),
            (geom(1, 40, 6, 6, 24, 3, 1, 1, 1, 1), ConvPath::Winograd),
            (geom(2, 16, 9, 7, 8, 3, 1, 1, 1, 1), ConvPath::Winograd),
            (geom(1, 24, 37, 41, 12, 3, 1, 0, 1, 1), ConvPath::Winograd),
            (geom(1, 8, 6, 6, 8, 3, 1, 1, 1, 1), ConvPath::General),
            (geom(1, 4, 6, 6, 8, 1, 2, 0, 1, 1), ConvPath::General),
            (geom(1, 2, 3, 3, 4, 2, 1, 1, 1, 2), ConvPath::General),
        ];
        for (p, path) in cases {
            assert_eq!(p.path(), path, "{p:?}");
            let (x, w, bias, res) = operands(&p);
            let want = naive(&p, &x, &w, &bias);
            for threads in [1, 2, 3] {
                let pool = ThreadPool::new(threads);
                // Scratch as the arena hands it out: holding whatever was there (NaN here).
                let mut scratch = vec![f32::NAN; p.scratch_len(threads)];
                let mut out = vec![f32::NAN; want.len()];
                let ep = ConvEpilogue {
                    bias: Some(&bias),
                    residual: Some(&res),
                    act: Act::Relu,
                    post: Some((2.0, 1.0)),
                };
                conv2d(&pool, &p, &x, &w, &ep, &mut out, &mut scratch);
                for (i, (a, b)) in out.iter().zip(&want).enumerate() {
                    let b = (b + res[i]).max(0.0) * 2.0 + 1.0;
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "{p:?} t{threads} [{i}]: {a} vs {b}"
                    );
                }
            }
        }
    }
}
