//! f32 matrix products `C = act(alpha·A·B + bias + residual)` with a fused epilogue.
//!
//! Operands are strided views (`a[i,k] = data[i·rs + k·cs]`), so transposes cost nothing.
//! When B's rows are contiguous (`cs == 1`) a register-tiled micro-kernel runs: `MR` rows
//! of A broadcast against `NR` columns of B, accumulated over `K` in blocks of [`KC`]. It
//! exists three times, chosen once ([`isa`], through the dispatch table of `crate::isa`):
//! generic (plain loops the compiler vectorizes, `generic`), AVX2+FMA and AVX-512 — both
//! with intrinsics (`crate::x86_64::avx2::gemm`, `crate::x86_64::avx512::gemm`),
//! so the accumulators are registers by construction (an auto-vectorized 14×32 AVX-512
//! tile ran 1024³ at 31 GFLOP/s on a Zen 4 where these run 85); AVX2's edge tiles avoid
//! masked stores (slow on AMD), AVX-512's use them (single instructions there). When B's
//! row stride is a multiple of 2 KiB, both operands are packed, BLIS-style
//! (`packed::panel_block`: B's panel once per task, K in blocks of up to 1024). A
//! constant B can be packed once ([`pack_b`]) into 16-column strips that [`sgemm_packed`]
//! reads sequentially. When B is transposed (`rs == 1`, as in `Q·Kᵀ`) a
//! blocked dot-product kernel runs; anything else takes a plain loop. Work is split over
//! the pool in row × column blocks of C; small products run on the calling thread.
//!
//! Nothing here allocates but `packed::panel_block`'s per-thread packing buffer,
//! allocated once per thread (4.2 MiB), the first time the thread runs a packed product.
//!
//! The types the kernels share are in `types` (which every instruction set's kernels
//! build on), the portable kernels and packing in `generic`.

pub(crate) mod generic;
mod packed;
#[cfg(test)]
mod tests;
pub(crate) mod types;

pub use crate::isa::{isa, Isa};
pub use packed::{pack_b, packed_len, sgemm_packed};
pub use types::{Epilogue, Mat, KC, PACK_COLS};

use crate::isa::{table, Table};
use crate::pool::{SharedMut, ThreadPool};
use generic::dot_lanes;
use packed::{panel_block, NC};
use types::Block;

/// Columns of C per parallel task.
const NB: usize = 256;

/// Whether [`block`] runs the packed path ([`packed::panel_block`]) for B: B's rows contiguous
/// and their stride a multiple of 2 KiB. A tile's rows of B then fall into a few cache
/// sets (and alias 4 KiB apart), which costs more than packing; otherwise reading B in
/// place is faster (measured on Zen 1: 1024³ 24 → 32 GFLOP/s packed, 128×1152×384
/// 38 → 34).
fn packs(tab: &Table, b: &Mat<'_>) -> bool {
    tab.gemm.panel.is_some() && b.cs == 1 && b.rs.is_multiple_of(512)
}

/// The (rows, columns) of C per task: the table's rows per task (a multiple of its tile's
/// rows, `crate::isa`) × [`NB`], cut finer when that gives a
/// thread fewer than two tasks. When B is packed ([`packs`]), columns go in panels of
/// [`NC`] and rows are split only as far as the threads need (every task packs its
/// B panel once, whatever its rows).
fn blocks(tab: &Table, b: &Mat<'_>, m: usize, n: usize, threads: usize) -> (usize, usize) {
    if packs(tab, b) {
        if threads == 1 {
            return (m, NC);
        }
        // Two tasks per thread: narrower panels first (each task packs its panel of B
        // once, and A's rows once per panel), down to 256 columns, then row splits.
        let mut nb = NC;
        while n.div_ceil(nb) < 2 * threads && nb > 256 {
            nb /= 2;
        }
        let splits = (2 * threads).div_ceil(n.div_ceil(nb));
        return (m.div_ceil(splits).next_multiple_of(12), nb);
    }
    // A product too small to give every thread two blocks is cut finer — columns first,
    // in whole tiles, down to 32 columns and two row tiles (a 240 → 40 projection on a
    // 14×14 plane was one block, so one thread did all of it).
    let (rows, cols) = tab.gemm.tile;
    let (mut mb, mut nb) = (tab.gemm.task_rows, NB);
    while threads > 1 && m.div_ceil(mb) * n.div_ceil(nb) < 2 * threads {
        if nb >= 2 * cols && n.div_ceil(nb) <= m.div_ceil(mb) {
            nb = (nb / 2)
                .next_multiple_of(cols)
                .min(n.next_multiple_of(cols) / 2);
            nb = nb.max(cols);
        } else if mb >= 4 * rows {
            mb = (mb / 2).next_multiple_of(rows);
        } else if nb >= 2 * cols {
            nb = (nb / 2).next_multiple_of(cols).max(cols);
        } else {
            break;
        }
    }
    (mb, nb)
}
/// Below this many multiply-adds a product runs on the calling thread.
const PAR_MIN_FLOPS: usize = 1 << 16;

/// One product `C[m×n] = A[m×k]·B[k×n]` (with `ldc` the row stride of C).
#[derive(Debug, Clone, Copy)]
pub struct Gemm {
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The shared dimension.
    pub k: usize,
}

/// `C = epilogue(A·B)`, where C is row-major with row stride `ldc`.
///
/// # Panics
/// If an operand's slice is too short for the shape it is given (an engine bug: shapes are
/// checked when the plan is made).
pub fn sgemm(
    pool: &ThreadPool,
    g: Gemm,
    a: Mat<'_>,
    b: Mat<'_>,
    c: &mut [f32],
    ldc: usize,
    ep: &Epilogue<'_>,
) {
    sgemm_batch(pool, g, 1, &|_| (0, 0, 0), a, b, c, ldc, ep);
}

/// `batch` products of one shape: product `t` reads A from `a.data[ao..]`, B from
/// `b.data[bo..]` and writes C from `c[co..]`, with `(ao, bo, co) = offsets(t)`. The
/// epilogue's residual is offset like C; its biases are shared by all products.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_batch(
    pool: &ThreadPool,
    g: Gemm,
    batch: usize,
    offsets: &(dyn Fn(usize) -> (usize, usize, usize) + Sync),
    a: Mat<'_>,
    b: Mat<'_>,
    c: &mut [f32],
    ldc: usize,
    ep: &Epilogue<'_>,
) {
    batch_on(Some(pool), g, batch, offsets, a, b, c, ldc, ep)
}

/// [`sgemm`] on the calling thread only (for use inside another kernel's parallel tasks).
pub fn sgemm_serial(g: Gemm, a: Mat<'_>, b: Mat<'_>, c: &mut [f32], ldc: usize, ep: &Epilogue<'_>) {
    batch_on(None, g, 1, &|_| (0, 0, 0), a, b, c, ldc, ep)
}

#[allow(clippy::too_many_arguments)]
fn batch_on(
    pool: Option<&ThreadPool>,
    g: Gemm,
    batch: usize,
    offsets: &(dyn Fn(usize) -> (usize, usize, usize) + Sync),
    a: Mat<'_>,
    b: Mat<'_>,
    c: &mut [f32],
    ldc: usize,
    ep: &Epilogue<'_>,
) {
    let Gemm { m, n, k } = g;
    if m == 0 || n == 0 || batch == 0 {
        return;
    }
    for t in 0..batch {
        let (ao, bo, co) = offsets(t);
        assert!(
            k == 0
                || (ao + a.max_index(m, k) < a.data.len() && bo + b.max_index(k, n) < b.data.len()),
            "gemm operand too short"
        );
        ep.check_output(m, n, c.len() - co.min(c.len()), ldc, co);
    }
    let tab = table();
    let (mb, nb) = blocks(tab, &b, m, n, pool.map_or(1, |p| p.threads()));
    let mblocks = m.div_ceil(mb);
    let nblocks = n.div_ceil(nb);
    let tasks = batch * mblocks * nblocks;
    let flops = batch * m * n * k.max(1);
    let cp = SharedMut::new(c);
    let run = |t: usize| {
        let bt = t / (mblocks * nblocks);
        let r = t % (mblocks * nblocks);
        // Row blocks vary fastest: consecutive tasks share one column panel of B, which
        // stays in L2 instead of being fetched again per row block.
        let (mi, ni) = (r % mblocks, r / mblocks);
        let (i0, i1) = (mi * mb, ((mi + 1) * mb).min(m));
        let (j0, j1) = (ni * nb, ((ni + 1) * nb).min(n));
        let (ao, bo, co) = offsets(bt);
        let a = Mat {
            data: &a.data[ao..],
            ..a
        };
        let b = Mat {
            data: &b.data[bo..],
            ..b
        };
        let ep = Epilogue {
            residual: ep.residual.map(|r| &r[co..]),
            ..*ep
        };
        // SAFETY: tasks own disjoint (batch, row block, column block) rectangles of C; the
        // asserts above put every rectangle inside `c`. Each task touches rows i0..i1,
        // columns j0..j1 of its product through the raw pointer only.
        #[allow(unsafe_code)]
        let fused = unsafe {
            let c = cp.0.add(co);
            let blk = Block {
                k,
                a,
                b,
                c,
                ldc,
                i0,
                i1,
                j0,
                j1,
            };
            block(tab, blk, &ep)
        };
        if fused {
            return;
        }
        for i in i0..i1 {
            // SAFETY: row i, columns j0..j1 of this task's rectangle (see above).
            #[allow(unsafe_code)]
            let row = unsafe { cp.slice(co + i * ldc + j0, j1 - j0) };
            ep.apply_row(row, i, j0, ldc);
        }
    };
    match pool {
        Some(pool) if tasks > 1 && flops >= PAR_MIN_FLOPS && pool.threads() > 1 => {
            pool.run(tasks, &run)
        }
        _ => (0..tasks).for_each(run),
    }
}

/// Computes rows `i0..i1`, columns `j0..j1` of `C = A·B`; returns true if it also applied
/// the epilogue (the register-tiled path does, tile by tile while the tile is in L1).
///
/// # Safety
/// `c` must be valid for writes at `i·ldc + j` for every `(i, j)` in the rectangle, and no
/// other reference may alias those elements. `a` and `b` must cover the shape (checked by
/// the caller).
#[allow(unsafe_code)]
unsafe fn block(tab: &Table, blk: Block<'_>, ep: &Epilogue<'_>) -> bool {
    let Block {
        k,
        a,
        b,
        c,
        ldc,
        i0,
        i1,
        j0,
        j1,
    } = blk;
    if k == 0 {
        for i in i0..i1 {
            for j in j0..j1 {
                // SAFETY: inside the rectangle the caller owns.
                unsafe { *c.add(i * ldc + j) = 0.0 };
            }
        }
        return false;
    }
    if j1 - j0 == 1 && a.cs == 1 && b.rs == 1 {
        // One column (a matrix-vector product, e.g. a 1×1 conv on a 1×1 image): dot
        // products of A's rows with B's column, both contiguous.
        let bc = &b.data[j0 * b.cs..j0 * b.cs + k];
        for i in i0..i1 {
            let v = dot(&a.data[i * a.rs..i * a.rs + k], bc);
            // SAFETY: inside the rectangle the caller owns.
            unsafe { *c.add(i * ldc + j0) = v };
        }
        return false;
    }
    if let (Some(panel), true) = (
        tab.gemm.panel,
        packs(tab, &b) && i1 - i0 > 12 && j1 - j0 >= 32 && j1 - j0 <= NC,
    ) {
        // SAFETY: the caller's contract, passed on; the panel is the dispatch table's (its
        // features detected on this CPU).
        unsafe { panel_block(panel, blk, ep) };
        return true;
    }
    if b.cs == 1 {
        // SAFETY: the caller's contract, passed on; the kernel is the dispatch table's,
        // which is private to this crate and built once from detection, so it holds only
        // kernels whose features this CPU has.
        unsafe { (tab.gemm.nn)(blk, ep, row_pass) };
        true
    } else if b.rs == 1 && a.cs == 1 {
        // SAFETY: the caller's contract (`dot` picks the instruction set itself).
        unsafe { nt_loop(blk) };
        false
    } else {
        for i in i0..i1 {
            for j in j0..j1 {
                let mut s = 0.0f32;
                for p in 0..k {
                    s += a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs];
                }
                // SAFETY: inside the rectangle the caller owns.
                unsafe { *c.add(i * ldc + j) = s };
            }
        }
        false
    }
}

#[allow(unsafe_code)]
unsafe fn nt_loop(blk: Block<'_>) {
    let Block {
        k,
        a,
        b,
        c,
        ldc,
        i0,
        i1,
        j0,
        j1,
    } = blk;
    for i in i0..i1 {
        let ar = &a.data[i * a.rs..i * a.rs + k];
        for j in j0..j1 {
            let br = &b.data[j * b.cs..j * b.cs + k];
            // SAFETY: inside the rectangle the caller owns.
            unsafe { *c.add(i * ldc + j) = dot(ar, br) };
        }
    }
}

/// `y[i] = A[rows.start + i] · x` for a row-major A with `k` columns (`a` from its
/// first row): the rows of a small matrix-vector product, eight at a time on AVX-512,
/// else a dot product per row.
///
/// # Panics
/// If `a` does not hold the rows or `x` is shorter than `k`.
pub fn gemv_rows(a: &[f32], k: usize, x: &[f32], rows: std::ops::Range<usize>, y: &mut [f32]) {
    assert!(
        rows.len() == y.len() && a.len() >= rows.end * k && x.len() >= k,
        "gemv operands"
    );
    if let Some(gemv) = table().gemm.gemv {
        // SAFETY: the rows and x asserted above; the kernel is the dispatch table's (its
        // features detected on this CPU).
        #[allow(unsafe_code)]
        unsafe {
            gemv(a.as_ptr().add(rows.start * k), k, k, x, y)
        };
        return;
    }
    for (y, r) in y.iter_mut().zip(rows) {
        *y = dot(&a[r * k..(r + 1) * k], &x[..k]);
    }
}

/// A plain dot product, vectorized (used by attention and small reductions). The portable
/// loop compiled for AVX2+FMA wherever the CPU has it (also on AVX-512: it is called per
/// element of `Q·Kᵀ`-shaped products, so a direct call, not the table's pointer).
pub fn dot(x: &[f32], y: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if isa() != Isa::Generic {
        #[target_feature(enable = "avx2,fma")]
        fn d(x: &[f32], y: &[f32]) -> f32 {
            dot_lanes(x, y)
        }
        // SAFETY: AVX2 and FMA were detected by `isa()`.
        #[allow(unsafe_code)]
        return unsafe { d(x, y) };
    }
    dot_lanes(x, y)
}

impl Epilogue<'_> {
    /// Applies the epilogue to rows `rows`, columns `j0..j1` of C at `c` (row stride `ldc`).
    ///
    /// # Safety
    /// `c` valid for reads and writes at `i·ldc + j` for those rows and columns, and no
    /// other reference to them alive.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn apply_rows(
        &self,
        c: *mut f32,
        ldc: usize,
        rows: std::ops::Range<usize>,
        j0: usize,
        j1: usize,
    ) {
        for i in rows {
            // SAFETY: row i, columns j0..j1, as the caller guarantees.
            let row = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc + j0), j1 - j0) };
            self.apply_row(row, i, j0, ldc);
        }
    }

    /// Applies the epilogue to row `i`, columns `j0..j0+row.len()` of C.
    pub(crate) fn apply_row(&self, row: &mut [f32], i: usize, j0: usize, ldc: usize) {
        if self.is_identity() {
            return;
        }
        let n = row.len();
        if self.alpha == 1.0 && self.col_bias.is_none() && self.residual.is_none() {
            // A conv's usual epilogue: one pass for bias and activation.
            match self.row_bias {
                Some(b) => crate::act::bias_act(row, b[i], self.act),
                None => self.act.apply_slice(row),
            }
            if let Some((s, t)) = self.post {
                row.iter_mut().for_each(|v| *v = s * *v + t);
            }
            return;
        }
        if self.alpha != 1.0 {
            row.iter_mut().for_each(|v| *v *= self.alpha);
        }
        if let Some(b) = self.row_bias {
            let b = b[i];
            row.iter_mut().for_each(|v| *v += b);
        }
        if let Some(b) = self.col_bias {
            row.iter_mut()
                .zip(&b[j0..j0 + n])
                .for_each(|(v, b)| *v += b);
        }
        if let Some(r) = self.residual {
            let r = &r[i * ldc + j0..i * ldc + j0 + n];
            row.iter_mut().zip(r).for_each(|(v, r)| *v += r);
        }
        crate::act::act_post(row, self.act, self.post);
    }
}

/// [`Epilogue::apply_rows`] as the micro-kernels' [`types::RowPass`] (a method's fn item is
/// not general enough over the epilogue's lifetime to be that pointer).
///
/// # Safety
/// As [`Epilogue::apply_rows`].
#[allow(unsafe_code)]
unsafe fn row_pass(
    ep: &Epilogue<'_>,
    c: *mut f32,
    ldc: usize,
    rows: std::ops::Range<usize>,
    j0: usize,
    j1: usize,
) {
    // SAFETY: the caller's contract, passed on.
    unsafe { ep.apply_rows(c, ldc, rows, j0, j1) }
}
