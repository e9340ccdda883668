//! Layout moves: concatenation and separable gathers (slices, transposes, nearest
//! resizes, tiles).

use super::{par_ranges, MAX_RANK};
use crate::pool::{SharedMut, ThreadPool};

/// Copies `src` (`[outer, len]` row-major) into columns `at .. at+len` of `dst`
/// (`[outer, total]`): one input of a concatenation.
pub fn concat_part<T: Copy>(
    src: &[T],
    outer: usize,
    len: usize,
    at: usize,
    total: usize,
    dst: &mut [T],
) {
    for o in 0..outer {
        dst[o * total + at..o * total + at + len].copy_from_slice(&src[o * len..(o + 1) * len]);
    }
}

/// A separable gather: `out[i₀, …, i₅] = x[Σₖ tables[k][iₖ]]` over the padded output dims
/// (the tables hold element offsets already multiplied by the input's strides). Slices,
/// strided slices, transposes, nearest resizes and tiles are all this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gather {
    /// Output dims, left-padded to [`MAX_RANK`].
    pub dims: [usize; MAX_RANK],
    /// Per output axis, the input offset contributed by each index.
    pub tables: Vec<Vec<usize>>,
}

impl Gather {
    /// The last axis reads consecutive input elements (a row copy).
    fn inner_contiguous(&self) -> bool {
        let t = &self.tables[MAX_RANK - 1];
        t.windows(2).all(|w| w[1] == w[0] + 1)
    }
}

/// Runs a [`Gather`] for any element type.
pub fn gather<T: Copy + Send + Sync>(pool: &ThreadPool, g: &Gather, x: &[T], out: &mut [T]) {
    let inner = g.dims[MAX_RANK - 1];
    let rows: usize = g.dims[..MAX_RANK - 1].iter().product();
    if inner == 0 || rows == 0 {
        return;
    }
    let contiguous = g.inner_contiguous();
    let last = &g.tables[MAX_RANK - 1];
    let op = SharedMut::new(out);
    par_ranges(pool, rows, inner, &|r| {
        for row in r {
            let (mut rem, mut off) = (row, 0);
            for k in (0..MAX_RANK - 1).rev() {
                off += g.tables[k][rem % g.dims[k]];
                rem /= g.dims[k];
            }
            // SAFETY: disjoint output rows.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(row * inner, inner) };
            if contiguous {
                let s = off + last[0];
                o.copy_from_slice(&x[s..s + inner]);
            } else {
                for (v, &t) in o.iter_mut().zip(last) {
                    *v = x[off + t];
                }
            }
        }
    });
}
