//! Convolutions fused across ops: a depthwise conv that also sums each output channel for
//! the SE block after it ([`depthwise_means`]), and a pointwise conv with the depthwise
//! conv reading its output in one dispatch — a chunk of channels per thread
//! ([`expand_depthwise_chunked`]) or 16 channels per task in the blocked kernel's layout
//! ([`expand_depthwise_blocked`]).

use super::depthwise::blocked_depthwise;
use super::geom::{Conv2d, ConvEpilogue};
use super::{blocked, conv2d, ConvPath};
use crate::consts::LANES;
use crate::gemm::types::in_registers;
use crate::gemm::{self, Epilogue, Gemm, Mat};
use crate::isa::table;
use crate::pool::{SharedMut, ThreadPool};

/// Lanes per vector: channels per block of the blocked depthwise kernel.
const L: usize = LANES;

/// Whether [`depthwise_means`] computes `p` (a depthwise conv on the blocked kernel's
/// path: AVX-512 and the shapes it takes).
pub fn depthwise_means_apply(p: &Conv2d) -> bool {
    p.path() == ConvPath::Depthwise && blocked_depthwise(p)
}

/// Floats of scratch [`depthwise_means`] needs at `threads` threads: the conv's, then
/// 16 per blocked item for their channel sums.
pub fn depthwise_means_scratch(p: &Conv2d, threads: usize) -> usize {
    if depthwise_means_apply(p) {
        return p.scratch_len(threads) + L * blocked::items(p, threads);
    }
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
    let threads = pool.threads();
    let conv = p.scratch_len(threads);
    let items = blocked::items(p, threads);
    assert!(
        scratch.len() >= conv + L * items,
        "depthwise means scratch too short"
    );
    let (scratch, sums) = scratch.split_at_mut(conv);
    let sums = &mut sums[..L * items];
    blocked::depthwise_sums(pool, p, x, w, ep, out, scratch, Some(sums));
    blocked::channel_means(p, threads, sums, means);
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
    pw.n == 1
        && dw.n == 1
        && pw.path() == ConvPath::Pointwise
        && pw.groups == 1
        && dw.path() == ConvPath::Depthwise
        && dw.ic == pw.oc
        && (dw.h, dw.w) == (pw.oh, pw.ow)
        && blocked::applies(&dw_chunk(dw, L.min(dw.oc)))
        && table().gemm.packed.is_some()
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
    L * pw.h * pw.w + blocked::block_input_scratch(&dw_chunk(dw, L.min(dw.oc)))
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
    let tiles = table()
        .gemm
        .packed
        .expect("expand_blocked_applies: the table has the packed tiles");
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
        let regs = in_registers(&e);
        // SAFETY: A is x read transposed (pixel rows, channel columns: `x` holds
        // ic·hw floats, asserted); the strip of packed weights for channels c0.. (16
        // columns, `ic` rows); C is `mid` (hw pixels × 16, masked to n columns); the
        // tiles are the dispatch table's, which is private to this crate and built once
        // from detection, so their features are present.
        #[allow(unsafe_code)]
        unsafe {
            tiles(
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
        blocked::depthwise_block_input(
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
