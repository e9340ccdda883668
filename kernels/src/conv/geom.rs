//! The convolution types and the geometry the generic side and the ISA kernels share:
//! [`Conv2d`] and [`ConvEpilogue`]; a depthwise plane's stride phases and tap offsets
//! ([`Depthwise`], [`Walk`]) for the plane kernels of both instruction sets; the blocked
//! depthwise kernel's cut ([`Tiling`]); the direct few-tap kernel's split rows
//! ([`SplitRows`]); and the signatures of those kernels in the dispatch table
//! (`crate::isa`). Nothing here dispatches: the ISA modules build on this file only.

use crate::act::portable::Act;
use crate::consts::{LANES, MAX_TAPS};
use crate::pool::SharedMut;

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

impl Conv2d {
    pub(crate) fn icg(&self) -> usize {
        self.ic / self.groups
    }
    pub(crate) fn ocg(&self) -> usize {
        self.oc / self.groups
    }
    pub(crate) fn kdim(&self) -> usize {
        self.icg() * self.kh * self.kw
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

// ---------------------------------------------------------------------------------------
// The depthwise plane kernels' stride phases

/// A depthwise convolution's plane kernel, with everything that does not depend on the
/// plane (phase geometry, tap offsets) computed once per call.
pub(crate) struct Depthwise {
    pub(crate) p: Conv2d,
    pub(crate) hq: usize,
    pub(crate) wq: usize,
    /// Offset of each tap in the phases, relative to output (0, 0).
    pub(crate) off: [usize; MAX_TAPS],
}

/// The output vectors of a plane, in order: row by row, `lanes` columns each (a row's
/// last one reaching past its end); each as (offset in the output, offset in the
/// phases).
pub(crate) struct Walk {
    ow: usize,
    oh: usize,
    wq: usize,
    lanes: usize,
    per_row: usize,
    oy: usize,
    c: usize,
}

impl Walk {
    pub(crate) fn new(p: &Conv2d, wq: usize, lanes: usize) -> Walk {
        Walk {
            ow: p.ow,
            oh: p.oh,
            wq,
            lanes,
            per_row: p.ow.div_ceil(lanes),
            oy: 0,
            c: 0,
        }
    }

    /// Vectors in the plane.
    pub(crate) fn total(&self) -> usize {
        self.oh * self.per_row
    }

    /// The next vector's offsets.
    pub(crate) fn advance(&mut self) -> (usize, usize) {
        let at = self.lanes * self.c;
        let j = (self.oy * self.ow + at, self.oy * self.wq + at);
        self.c += 1;
        if self.c == self.per_row {
            self.c = 0;
            self.oy += 1;
        }
        j
    }
}

impl Depthwise {
    /// The kernel for `p` with phase planes `hq × wq`; `None` when its taps exceed
    /// [`MAX_TAPS`].
    pub(crate) fn new(p: &Conv2d, (hq, wq): (usize, usize)) -> Option<Depthwise> {
        if p.kh * p.kw > MAX_TAPS {
            return None;
        }
        let [sh, sw] = p.stride;
        let plane = hq * wq;
        let mut off = [0usize; MAX_TAPS];
        for ky in 0..p.kh {
            let (ry, oy) = ((ky * p.dilation[0]) % sh, (ky * p.dilation[0]) / sh);
            for kx in 0..p.kw {
                let (rx, ox) = ((kx * p.dilation[1]) % sw, (kx * p.dilation[1]) / sw);
                off[ky * p.kw + kx] = (ry * sw + rx) * plane + oy * wq + ox;
            }
        }
        Some(Depthwise { p: *p, hq, wq, off })
    }

    /// Floats of `phases` the plane kernels use ([`DwPlane`]: 16 of slack past the phases,
    /// for a row's last vector to read past its end, 16 lanes wide on AVX-512).
    pub(crate) fn phases_len(&self) -> usize {
        self.p.stride[0] * self.p.stride[1] * self.hq * self.wq + LANES
    }
}

/// Scatters a plane `x` into its zero-padded stride phases (`phases` holds at least
/// [`Depthwise::phases_len`] floats); `fresh`: the phases have not been used by this
/// kernel since they were handed out, so their padding is zeroed first; every later plane
/// scatters into exactly the same places and leaves the padding as it was. (The AVX2
/// `scatter`, also the AVX-512 plane's.)
///
/// # Safety
/// The kernel's instruction set present.
pub(crate) type DwScatter = unsafe fn(&Depthwise, &[f32], &mut [f32], bool);

/// One depthwise plane from its scattered phases ([`DwScatter`]): `o` (`oh × ow`) from the
/// plane's `kh × kw` weights, its bias and the phases (at least [`Depthwise::phases_len`]
/// floats): `(kernel, w, bias, o, phases)`.
///
/// # Safety
/// The kernel's instruction set present; the slices as long as stated.
pub(crate) type DwPlane = unsafe fn(&Depthwise, &[f32], f32, &mut [f32], &[f32]);

// ---------------------------------------------------------------------------------------
// The blocked depthwise kernel's cut

/// Most floats of a task's ring of transposed input rows (64 KiB).
const BLOCK_MAX: usize = 16 * 1024;

/// How a blocked run is cut: output rows per chunk, chunks per plane, the padded width and
/// the input rows one output row reads (the ring of transposed rows a task keeps).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tiling {
    pub(crate) rows: usize,
    pub(crate) chunks: usize,
    pub(crate) wp: usize,
    pub(crate) ring: usize,
    /// Whether an item first claims its output's cache lines for writing
    /// ([`crate::pool::claim_lines`]): at 2 threads and more, where the other cores last
    /// held them.
    pub(crate) claim: bool,
}

impl Tiling {
    pub(crate) fn new(p: &Conv2d, threads: usize) -> Option<Tiling> {
        let sw = p.stride[1];
        let [dh, dw] = p.dilation;
        let wp = ((p.ow - 1) * sw + (p.kw - 1) * dw + 1).max(p.pad[1] + p.w);
        // Rows a window of the kernel spans, or all the input's if fewer.
        let ring = ((p.kh - 1) * dh + 1).min(p.h);
        if ring * wp * LANES > BLOCK_MAX || p.stride[0] > ring {
            return None;
        }
        // Two items per thread at least, if the rows allow (each chunk transposes its
        // `ring − 1` rows above again).
        let blocks = p.n * p.oc.div_ceil(LANES);
        let mut chunks = 1;
        while chunks < p.oh && blocks * chunks < 2 * threads {
            chunks += 1;
        }
        let rows = p.oh.div_ceil(chunks);
        Some(Tiling {
            rows,
            chunks: p.oh.div_ceil(rows),
            wp,
            ring,
            claim: threads > 1,
        })
    }

    /// Scratch floats per thread: the ring of transposed input rows, 16 output pixels and
    /// the block's transposed weights.
    pub(crate) fn per_thread(&self, p: &Conv2d) -> usize {
        self.ring * self.wp * LANES + LANES * LANES + p.kh * p.kw * LANES
    }

    /// A thread's [`Tiling::per_thread`] floats as the ring, the pixel buffer and the
    /// weights (tap-major) that a [`BlockedItem`] takes.
    pub(crate) fn split_slot<'a>(
        &self,
        mine: &'a mut [f32],
    ) -> (&'a mut [f32], &'a mut [f32], &'a mut [[f32; LANES]]) {
        let (block, rest) = mine.split_at_mut(self.ring * self.wp * LANES);
        let (row, wt) = rest.split_at_mut(LANES * LANES);
        (block, row, wt.as_chunks_mut::<LANES>().0)
    }
}

/// One (image, channel block, row chunk) item of the blocked depthwise kernel (the AVX-512
/// `run_item`): `(p, tiling, item, (x, w, x blocked), ep, out, ring, pixel buffer,
/// weights, sums, act_post)`; `act_post` is [`crate::act::act_post`], handed in (it
/// dispatches through the table).
///
/// # Safety
/// As the AVX-512 `run_item` says; its instruction set present.
pub(crate) type BlockedItem = unsafe fn(
    &Conv2d,
    &Tiling,
    usize,
    (&[f32], &[f32], bool),
    &ConvEpilogue<'_>,
    SharedMut<f32>,
    &mut [f32],
    &mut [f32],
    &mut [[f32; LANES]],
    Option<&mut [f32]>,
    ActPost,
);

/// `xs = post(act(xs))`: [`crate::act::act_post`], as the ISA kernels are handed it.
pub(crate) type ActPost = fn(&mut [f32], Act, Option<(f32, f32)>);

// ---------------------------------------------------------------------------------------
// The direct few-tap kernel's geometry

/// Most taps (`ic·kh·kw`) the direct kernel takes: a network's first convolution (3
/// channels, 3×3: 27) and the like.
pub(crate) const DIRECT_MAX_TAPS: usize = 64;

/// Most output channels the direct kernel takes (its transposed weights live on the
/// stack: 16 KiB at most).
pub(crate) const DIRECT_MAX_OC: usize = 64;

/// Whether the direct kernel ([`DirectRow`]) covers `p`: ungrouped, few taps and output channels, unit
/// dilation, column stride 1 or 2, rows at least a vector wide.
pub(crate) fn direct_applies(p: &Conv2d) -> bool {
    p.groups == 1
        && p.ic * p.kh * p.kw <= DIRECT_MAX_TAPS
        && p.oc <= DIRECT_MAX_OC
        && p.dilation == [1, 1]
        && (p.stride[1] == 1 || p.stride[1] == 2)
        && p.ow >= LANES
}

/// Floats of scratch the direct kernel ([`DirectRow`]) needs: each of the `ic·kh` input rows it reads, split
/// into its column-stride phases, zero-padded, with a vector of slack.
pub(crate) fn direct_scratch(p: &Conv2d) -> usize {
    p.ic * p.kh * p.stride[1] * direct_width(p)
}

/// The width of one of the direct kernel's split rows.
pub(crate) fn direct_width(p: &Conv2d) -> usize {
    (p.w + 2 * p.pad[1])
        .div_ceil(p.stride[1])
        .max(p.ow + (p.kw - 1) / p.stride[1])
        + LANES
}

/// Which input row each of the direct kernel's split rows holds, so that a task's next
/// output row splits only the input rows it does not share with the last one (a stride-2
/// 3×3 conv shares one of its three, a stride-1 one two).
#[derive(Debug, Clone)]
pub(crate) struct SplitRows {
    /// Per split row (`c·kh + slot`): the (image, input row) it holds, if any.
    pub(crate) held: [Option<(usize, isize)>; DIRECT_MAX_TAPS],
}

impl SplitRows {
    /// None held yet (a task's first row).
    pub(crate) fn new() -> SplitRows {
        SplitRows {
            held: [None; DIRECT_MAX_TAPS],
        }
    }
}

/// Output row `oy` of image `n` of a convolution with few taps (the AVX-512 `direct_row`):
/// `(p, x, transposed weights, out, (n, oy), split rows, held)`.
///
/// # Safety
/// As the AVX-512 `direct_row` says; its instruction set present.
pub(crate) type DirectRow =
    unsafe fn(&Conv2d, &[f32], &[f32], *mut f32, (usize, usize), &mut [f32], &mut SplitRows);

/// `dst[k] = src[2k]` for the leading `k` this kernel does (returned; the caller does the
/// rest): a stride-2 conv's im2col row.
///
/// # Safety
/// `src` holds at least `2·dst.len() − 1` floats; the kernel's instruction set present.
pub(crate) type Evens = unsafe fn(&[f32], &mut [f32]) -> usize;
