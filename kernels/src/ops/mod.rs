//! Everything but products and convolutions: pooling, normalization, softmax, attention,
//! squeeze-excitation, elementwise with broadcasting, and layout moves. All write into
//! caller-given buffers; ops that can run in place take a [`Src`] that may be the output.
//!
//! In a file per concept: `elementwise` (unary, binary with broadcasting, comparisons),
//! `norm` (softmax, layer and batch norm), `embedding`, `se` (squeeze-and-excitation),
//! `attention`, `pool2d`, `data` (concatenation, gathers); the lane-reduced sums and
//! maxima they share are here.

mod attention;
mod data;
mod elementwise;
mod embedding;
mod norm;
mod pool2d;
mod se;
#[cfg(test)]
mod tests;

pub use attention::{attention, attention_scratch, AttnGeom};
pub use data::{concat_part, gather, Gather};
pub use elementwise::{binary, compare, unary, BinOp, Broadcast, CmpOp};
pub use embedding::{embedding, embedding_layer_norm};
pub use norm::{batch_norm, layer_norm_row, skip_layer_norm, softmax, softmax_row};
pub use pool2d::{pool2d, Pool2d};
pub use se::se_block;

use crate::consts::LANES;
use crate::pool::{chunk_range, chunks, ThreadPool};

/// Largest rank the strided kernels handle (shapes are left-padded with 1s).
pub const MAX_RANK: usize = 6;

/// An input that is either its own slice or the output buffer itself (in place).
#[derive(Debug, Clone, Copy)]
pub enum Src<'a> {
    /// Its own data.
    Slice(&'a [f32]),
    /// The data is already in the output buffer.
    Out,
}

impl Src<'_> {
    /// Puts the data in `out` (a copy, unless it is already there).
    pub fn load_into(self, out: &mut [f32]) {
        if let Src::Slice(s) = self {
            out.copy_from_slice(&s[..out.len()]);
        }
    }
}

/// Runs `f` over `n` independent items, in contiguous chunks over the pool when the work
/// (`n · cost` element operations) is worth it. `f` gets the item range.
pub fn par_ranges(
    pool: &ThreadPool,
    n: usize,
    cost: usize,
    f: &(dyn Fn(std::ops::Range<usize>) + Sync),
) {
    let t = if n.saturating_mul(cost) < 1 << 15 {
        1
    } else {
        chunks(n, pool.threads(), 1)
    };
    if t <= 1 {
        f(0..n);
    } else {
        pool.run(t, &|i| f(chunk_range(n, t, i)));
    }
}

/// [`reduce_lanes`] of each `hw`-float plane of `x` into `out` (one float per plane), in
/// one call compiled for the best instruction set.
pub(crate) fn reduce_planes(x: &[f32], hw: usize, max: bool, out: &mut [f32]) {
    #[inline(always)]
    fn body(x: &[f32], hw: usize, max: bool, out: &mut [f32]) {
        for (o, plane) in out.iter_mut().zip(x.chunks_exact(hw)) {
            *o = lanes(plane, max);
        }
    }
    crate::simd!(body(x: &[f32], hw: usize, max: bool, out: &mut [f32]))
}

/// The sum (or, with `max`, the maximum, ignoring NaN as `f32::max` does) of `x`, in 16
/// independent lanes so that it vectorizes, compiled for the best instruction set.
pub(crate) fn reduce_lanes(x: &[f32], max: bool) -> f32 {
    #[inline(always)]
    fn body(x: &[f32], max: bool) -> f32 {
        lanes(x, max)
    }
    crate::simd!(body(x: &[f32], max: bool) -> f32)
}

/// [`reduce_lanes`]' arithmetic, inlined into the caller's instruction set.
#[inline(always)]
fn lanes(x: &[f32], max: bool) -> f32 {
    {
        const L: usize = LANES;
        let full = x.len() / L * L;
        if max {
            let mut acc = [f32::NEG_INFINITY; L];
            for c in x[..full].chunks_exact(L) {
                for l in 0..L {
                    // `>` is false for NaN, which is skipped (as `f32::max` skips it).
                    acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
                }
            }
            acc.iter()
                .chain(&x[full..])
                .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
        } else {
            let mut acc = [0f32; L];
            for c in x[..full].chunks_exact(L) {
                for l in 0..L {
                    acc[l] += c[l];
                }
            }
            acc.iter().sum::<f32>() + x[full..].iter().sum::<f32>()
        }
    }
}
