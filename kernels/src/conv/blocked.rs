//! Depthwise convolution in blocks of 16 channels (the layout ONNX Runtime keeps whole
//! networks in, NCHW16c, made here inside the op), driven here and computed by the
//! dispatch table's blocked kernel (AVX-512: `crate::x86_64::avx512::blocked`, which says
//! how a block is computed).
//!
//! A task is one (image, channel block, row chunk) item, handed to threads as they come
//! free; a task keeps the input rows one output row reads in a ring (at most `BLOCK_MAX`
//! floats, [`Tiling`]), and rows are cut into chunks when the blocks alone would leave
//! a thread idle (MobileNet's first depthwise conv has 16 channels: one block).

#![allow(unsafe_code)]

use super::geom::{Conv2d, ConvEpilogue, Tiling};
use crate::act::act_post;
use crate::consts::{LANES, MAX_TAPS};
use crate::isa::table;
use crate::pool::{SharedMut, ThreadPool};

/// Lanes per vector: channels per block.
const L: usize = LANES;

/// Whether the blocked kernel can run `p` (a depthwise conv): where the dispatch table has
/// it (AVX-512), strides of 1 or 2, at most [`MAX_TAPS`] taps, a ring of rows within
/// `BLOCK_MAX` ([`Tiling`]), and planes at
/// least as tall as the kernel (on thinner ones — PP-OCR cls's 2 and 3 rows under 5×5
/// kernels — most taps fall in the padding, and the ring's scratch took cls's arena past
/// 1.05× its lower bound at 2 threads). `conv` decides where it runs.
pub(crate) fn applies(p: &Conv2d) -> bool {
    table().conv.dw_blocked.is_some()
        && p.stride[0] <= 2
        && p.stride[1] <= 2
        && p.h >= p.kh
        && p.kh * p.kw <= MAX_TAPS
        && p.oh > 0
        && p.ow > 0
        && Tiling::new(p, 1).is_some()
}

/// Scratch floats for [`depthwise`] at `threads` threads.
pub(crate) fn scratch_len(p: &Conv2d, threads: usize) -> usize {
    Tiling::new(p, threads).map_or(0, |t| threads.max(1) * t.per_thread(p))
}

/// `out = epilogue(depthwise conv(x, w))`, as [`crate::conv::conv2d`] (whose checks on
/// the slices' lengths have run).
///
/// # Panics
/// If `p` does not [`applies`] or `scratch` is shorter than [`scratch_len`].
pub(crate) fn depthwise(
    pool: &ThreadPool,
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    ep: &ConvEpilogue<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    depthwise_sums(pool, p, x, w, ep, out, scratch, None);
}

/// Items of a blocked run at `threads` threads (the length, in blocks of 16 floats, of
/// [`depthwise_sums`]'s `sums`).
pub(crate) fn items(p: &Conv2d, threads: usize) -> usize {
    Tiling::new(p, threads).map_or(0, |t| p.n * p.oc.div_ceil(L) * t.chunks)
}

/// The mean of each output channel (`means`, `[n, oc]`) from the per-item sums
/// [`depthwise_sums`] wrote at `threads` threads: a block's row chunks are consecutive
/// items, summed in order.
pub(crate) fn channel_means(p: &Conv2d, threads: usize, sums: &[f32], means: &mut [f32]) {
    let chunks = Tiling::new(p, threads).map_or(1, |t| t.chunks);
    let blocks = p.oc.div_ceil(L);
    let inv = 1.0 / (p.oh * p.ow) as f32;
    for img in 0..p.n {
        for b in 0..blocks {
            let first = (img * blocks + b) * chunks;
            for j in 0..L.min(p.oc - L * b) {
                let s: f32 = (0..chunks).map(|c| sums[(first + c) * L + j]).sum();
                means[img * p.oc + L * b + j] = s * inv;
            }
        }
    }
}

/// [`depthwise`], and with `sums` (16 floats per item, [`items`]) each item's sum of its
/// output per channel (lane j: channel 16·block + j of its image, over its rows; lanes
/// past the channels hold anything) — an SE block's means without another pass over the
/// output. Sums need an epilogue without a residual.
///
/// # Panics
/// As [`depthwise`]; if `sums` is given with a residual or is too short.
#[allow(clippy::too_many_arguments)]
pub(crate) fn depthwise_sums(
    pool: &ThreadPool,
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    ep: &ConvEpilogue<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
    sums: Option<&mut [f32]>,
) {
    assert!(
        applies(p),
        "the blocked depthwise kernel does not take {p:?}"
    );
    let run_item = table().conv.dw_blocked.expect("applies");
    let threads = pool.threads();
    let t = Tiling::new(p, threads).expect("applies");
    let per = t.per_thread(p);
    let items = p.n * p.oc.div_ceil(L) * t.chunks;
    // Any thread may run an item (one slot each), unless there is one item.
    let slots = if items > 1 { threads } else { 1 };
    assert!(scratch.len() >= slots * per, "depthwise scratch too short");
    assert!(
        x.len() >= p.n * p.ic * p.h * p.w
            && w.len() >= p.oc * p.kh * p.kw
            && out.len() >= p.n * p.oc * p.oh * p.ow,
        "depthwise operand too short"
    );
    if let Some(s) = &sums {
        assert!(
            ep.residual.is_none() && s.len() >= items * L,
            "depthwise channel sums: a residual, or too short"
        );
    }
    let (op, sp) = (SharedMut::new(out), SharedMut::new(scratch));
    let sums = sums.map(SharedMut::new);
    // Items are handed out as threads come free (a static split left a thread waiting
    // whenever the other was slow or descheduled); each uses its thread's scratch slot.
    let task = |item: usize, thread: usize| {
        // SAFETY: a thread runs one item at a time, so slot `thread` (below `slots`,
        // asserted to fit) is this item's.
        let mine = unsafe { sp.slice(thread * per, per) };
        let (block, row, wt) = t.split_slot(mine);
        // SAFETY: item `item`'s 16 sums (asserted to fit), written by this item only.
        let sum = sums.map(|s| unsafe { s.slice(item * L, L) });
        // SAFETY: items write disjoint (image, channel block, output rows) parts of `out`;
        // the lengths were asserted above; the kernel is the dispatch table's, which is
        // private to this crate and built once from detection, so its features are there.
        unsafe {
            run_item(
                p,
                &t,
                item,
                (x, w, false),
                ep,
                op,
                block,
                row,
                wt,
                sum,
                act_post,
            )
        };
    };
    pool.run_indexed(items, &task);
}

/// Scratch floats [`depthwise_block_input`] needs for `p`.
pub(crate) fn block_input_scratch(p: &Conv2d) -> usize {
    Tiling::new(p, 1).map_or(0, |t| t.per_thread(p) + L * t.chunks)
}

/// [`depthwise_sums`] of one block of at most 16 channels of one image whose input is
/// already in the block's layout (`x`: `h·w` pixels of 16 floats, lane j channel j;
/// lanes past the channels finite), on the calling thread: [`super::expand_depthwise_blocked`]'s
/// product writes it so, and no input row is transposed. With `means`, each channel's
/// mean over the output.
///
/// # Panics
/// If `p` is not one image of at most 16 channels that [`applies`], a slice is too short,
/// or `means` comes with a residual.
#[allow(clippy::too_many_arguments)]
pub(crate) fn depthwise_block_input(
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    ep: &ConvEpilogue<'_>,
    out: &mut [f32],
    scratch: &mut [f32],
    means: Option<&mut [f32]>,
) {
    assert!(
        applies(p) && p.n == 1 && p.oc <= L,
        "the blocked-input depthwise kernel does not take {p:?}"
    );
    let run_item = table().conv.dw_blocked.expect("applies");
    let t = Tiling::new(p, 1).expect("applies");
    let per = t.per_thread(p);
    assert!(
        scratch.len() >= per + L * t.chunks,
        "depthwise scratch too short"
    );
    assert!(
        x.len() >= p.h * p.w * L
            && w.len() >= p.oc * p.kh * p.kw
            && out.len() >= p.oc * p.oh * p.ow,
        "depthwise operand too short"
    );
    assert!(
        means.as_ref().is_none_or(|m| m.len() >= p.oc)
            && (means.is_none() || ep.residual.is_none()),
        "depthwise means: too short, or a residual"
    );
    let (mine, sums) = scratch.split_at_mut(per);
    let sums = &mut sums[..L * t.chunks];
    let (block, row, wt) = t.split_slot(mine);
    let op = SharedMut::new(out);
    for (item, sum) in sums.chunks_exact_mut(L).enumerate() {
        // SAFETY: the items run one after the other, each on its own rows of `out`; the
        // lengths were asserted above; the kernel is the dispatch table's (its features
        // detected).
        unsafe {
            run_item(
                p,
                &t,
                item,
                (x, w, true),
                ep,
                op,
                &mut *block,
                &mut *row,
                &mut *wt,
                means.is_some().then_some(sum),
                act_post,
            )
        };
    }
    if let Some(m) = means {
        channel_means(p, 1, sums, m);
    }
}
