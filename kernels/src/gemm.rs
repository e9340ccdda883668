//! f32 matrix products `C = act(alpha·A·B + bias + residual)` with a fused epilogue.
//!
//! Operands are strided views (`a[i,k] = data[i·rs + k·cs]`), so transposes cost nothing.
//! When B's rows are contiguous (`cs == 1`) a register-tiled micro-kernel runs: `MR` rows
//! of A broadcast against `NR` columns of B, accumulated over `K` in blocks of [`KC`]. It
//! exists three times, chosen once ([`isa`]): generic (plain loops the compiler
//! vectorizes), AVX2+FMA and AVX-512 — both with intrinsics (`gemm_avx2`, `gemm_avx512`),
//! so the accumulators are registers by construction (an auto-vectorized 14×32 AVX-512
//! tile ran 1024³ at 31 GFLOP/s on a Zen 4 where these run 85); AVX2's edge tiles avoid
//! masked stores (slow on AMD), AVX-512's use them (single instructions there). When B's
//! row stride is a multiple of 2 KiB, both operands are packed, BLIS-style ([`panel_block`]:
//! B's panel once per task, K in blocks of up to 1024). A constant B can be packed
//! once ([`pack_b`]) into 16-column strips that [`sgemm_packed`] reads sequentially. When B is transposed (`rs == 1`, as in `Q·Kᵀ`) a
//! blocked dot-product kernel runs; anything else takes a plain loop. Work is split over
//! the pool in row × column blocks of C; small products run on the calling thread.
//!
//! Nothing here allocates but [`panel_block`]'s per-thread packing buffer, allocated once
//! per thread (4.2 MiB), the first time the thread runs a packed product.

use crate::act::Act;
use crate::pool::{SharedMut, ThreadPool};

/// K is accumulated in blocks of this many (a `KC × NB` panel of B stays in L2).
pub const KC: usize = 256;
/// Columns of C per parallel task.
const NB: usize = 256;
/// Rows of C per parallel task: a multiple of the micro-kernel's rows (12 for AVX-512,
/// 6 for AVX2, 4 portable), so that only a product's last block can end in a partial row
/// tile. 60 for AVX2 also divides most channel counts (96, 120, 240, 480, …)
/// into whole tiles, where 56 left a 2-row tile in every block.
fn mb(isa: Isa) -> usize {
    match isa {
        Isa::Avx2 | Isa::Avx512 => 60,
        _ => 56,
    }
}

/// Whether [`block`] runs the packed path ([`panel_block`]) for B: B's rows contiguous
/// and their stride a multiple of 2 KiB. A tile's rows of B then fall into a few cache
/// sets (and alias 4 KiB apart), which costs more than packing; otherwise reading B in
/// place is faster (measured on Zen 1: 1024³ 24 → 32 GFLOP/s packed, 128×1152×384
/// 38 → 34).
fn packs(isa: Isa, b: &Mat<'_>) -> bool {
    isa != Isa::Generic && b.cs == 1 && b.rs.is_multiple_of(512)
}

/// The (rows, columns) of C per task: [`mb`] × [`NB`], cut finer when that gives a
/// thread fewer than two tasks. When B is packed ([`packs`]), columns go in panels of
/// [`NC`] and rows are split only as far as the threads need (every task packs its
/// B panel once, whatever its rows).
fn blocks(isa: Isa, b: &Mat<'_>, m: usize, n: usize, threads: usize) -> (usize, usize) {
    if packs(isa, b) {
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
    let (rows, cols) = match isa {
        Isa::Avx512 => (12, 32),
        Isa::Avx2 => (6, 16),
        Isa::Generic => (4, 8),
    };
    let (mut mb, mut nb) = (mb(isa), NB);
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

/// The instruction-set path the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable code.
    Generic,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512F.
    Avx512,
}

/// The best path this CPU supports, detected once. `KAYAK_ISA=generic|avx2|avx512` lowers
/// it (never raises it past what the CPU has), so tests can run every path.
pub fn isa() -> Isa {
    use std::sync::OnceLock;
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let best = detect();
        match std::env::var("KAYAK_ISA").as_deref() {
            Ok("generic") => Isa::Generic,
            Ok("avx2") if best != Isa::Generic => Isa::Avx2,
            _ => best,
        }
    })
}

fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Generic
}

/// A strided matrix operand: element `[r, c]` is `data[r·rs + c·cs]`.
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows × cols` matrix (row stride `cols`).
    pub fn rows(data: &'a [f32], cols: usize) -> Mat<'a> {
        Mat {
            data,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of this view.
    pub fn t(self) -> Mat<'a> {
        Mat {
            data: self.data,
            rs: self.cs,
            cs: self.rs,
        }
    }
    fn max_index(&self, rows: usize, cols: usize) -> usize {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * self.rs + (cols - 1) * self.cs
        }
    }
}

/// What happens to each element of `alpha·A·B` before it is stored, in this order:
/// `+ row_bias[i] + col_bias[j] + residual[i, j]`, then `act`, then `scale·v + shift`.
#[derive(Debug, Clone, Copy)]
pub struct Epilogue<'a> {
    /// Multiplier of the product.
    pub alpha: f32,
    /// One value per row of C (a conv's per-channel bias).
    pub row_bias: Option<&'a [f32]>,
    /// One value per column of C (a matmul's bias).
    pub col_bias: Option<&'a [f32]>,
    /// A matrix laid out like C (same `ldc`), added elementwise.
    pub residual: Option<&'a [f32]>,
    /// Activation.
    pub act: Act,
    /// Affine `(scale, shift)` applied last.
    pub post: Option<(f32, f32)>,
}

impl Default for Epilogue<'_> {
    fn default() -> Self {
        Epilogue {
            alpha: 1.0,
            row_bias: None,
            col_bias: None,
            residual: None,
            act: Act::Identity,
            post: None,
        }
    }
}

impl Epilogue<'_> {
    /// Panics unless an `m × n` C (row stride `ldc`) fits in `c_len` floats and the
    /// residual (from `co`) and biases cover it.
    fn check_output(&self, m: usize, n: usize, c_len: usize, ldc: usize, co: usize) {
        assert!((m - 1) * ldc + n <= c_len, "gemm output too short");
        if let Some(r) = self.residual {
            assert!(co + (m - 1) * ldc + n <= r.len(), "gemm residual too short");
        }
        assert!(
            self.row_bias.is_none_or(|b| b.len() >= m),
            "row bias too short"
        );
        assert!(
            self.col_bias.is_none_or(|b| b.len() >= n),
            "column bias too short"
        );
    }

    pub(crate) fn is_identity(&self) -> bool {
        self.alpha == 1.0
            && self.row_bias.is_none()
            && self.col_bias.is_none()
            && self.residual.is_none()
            && self.act == Act::Identity
            && self.post.is_none()
    }

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

    /// Applies the epilogue element by element to rows `rows`, columns `j0..j1` of C at
    /// `c` (row stride `ldc`): for a few columns per row (a tile's tail columns), where
    /// [`Epilogue::apply_rows`]' vectorized pass per row costs more than the values. The
    /// same operations in the same order as that pass, so the values agree bit for bit
    /// (for the activations [`crate::gemm_avx512::in_registers`] takes).
    ///
    /// # Safety
    /// As [`Epilogue::apply_rows`].
    #[allow(unsafe_code)]
    pub(crate) unsafe fn apply_points(
        &self,
        c: *mut f32,
        ldc: usize,
        rows: std::ops::Range<usize>,
        j0: usize,
        j1: usize,
    ) {
        for i in rows {
            for j in j0..j1 {
                // SAFETY: (i, j) is in the caller's rectangle.
                let p = unsafe { &mut *c.add(i * ldc + j) };
                let mut x = *p;
                if self.alpha != 1.0 {
                    x *= self.alpha;
                }
                if let Some(b) = self.row_bias {
                    x += b[i];
                }
                if let Some(b) = self.col_bias {
                    x += b[j];
                }
                if let Some(r) = self.residual {
                    x += r[i * ldc + j];
                }
                x = self.act.apply(x);
                if let Some((s, t)) = self.post {
                    x = s * x + t;
                }
                *p = x;
            }
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
    let isa = isa();
    let (mb, nb) = blocks(isa, &b, m, n, pool.map_or(1, |p| p.threads()));
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
            block(isa, blk, &ep)
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

/// Columns per strip of a packed B ([`pack_b`]).
pub const PACK_COLS: usize = 16;

/// Floats a `k × n` B takes packed by [`pack_b`]: `⌈n/16⌉` strips of `k × 16`.
pub fn packed_len(k: usize, n: usize) -> usize {
    n.div_ceil(PACK_COLS) * k * PACK_COLS
}

/// Packs B (`k × n`, any strides) for [`sgemm_packed`]: strip `s` holds columns
/// `16s .. 16s+16` (zeros past `n`), row `p` of it at `s·16k + 16p`. A weight packed once
/// at load is then read strictly sequentially by the micro-kernel, whatever its row
/// stride, and never packed again per product (as ONNX Runtime's MLAS prepacks constant
/// B).
///
/// # Panics
/// If `out` is not [`packed_len`] long or B's slice is too short for `k × n`.
pub fn pack_b(b: Mat<'_>, k: usize, n: usize, out: &mut [f32]) {
    assert_eq!(out.len(), packed_len(k, n), "packed B length");
    assert!(
        k == 0 || n == 0 || b.max_index(k, n) < b.data.len(),
        "B too short"
    );
    if b.cs == 1 {
        // Rows contiguous: the packed GEMM's panel packing, over the whole matrix.
        pack_b_panel(b, 0, k, 0, n, out);
        return;
    }
    for (s, strip) in out.chunks_exact_mut(k * PACK_COLS).enumerate() {
        let j0 = s * PACK_COLS;
        let cols = PACK_COLS.min(n - j0);
        for (p, row) in strip.chunks_exact_mut(PACK_COLS).enumerate() {
            let start = p * b.rs + j0 * b.cs;
            for (c, v) in row[..cols].iter_mut().enumerate() {
                *v = b.data[start + c * b.cs];
            }
            row[cols..].fill(0.0);
        }
    }
}

/// `C = epilogue(A·B)` with B packed by [`pack_b`] (`bp`, for this `k × n`). Tasks are
/// (row block × column block) rectangles; within one, each 16-column strip of B runs
/// against 48 rows at a time, whose epilogue then runs while they are in L1 or L2.
///
/// # Panics
/// If an operand is too short for the shape (an engine bug: shapes are checked when the
/// plan is made).
pub fn sgemm_packed(
    pool: &ThreadPool,
    g: Gemm,
    a: Mat<'_>,
    bp: &[f32],
    c: &mut [f32],
    ldc: usize,
    ep: &Epilogue<'_>,
) {
    let Gemm { m, n, k } = g;
    if m == 0 || n == 0 {
        return;
    }
    assert_eq!(bp.len(), packed_len(k, n), "packed B length");
    assert!(
        k == 0 || a.max_index(m, k) < a.data.len(),
        "gemm operand too short"
    );
    ep.check_output(m, n, c.len(), ldc, 0);
    let isa = isa();
    let threads = pool.threads();
    // Tasks: column blocks of whole strips, as many as a multiple of the thread count
    // (B, the operand that comes from memory, is then read once and split evenly), and
    // row blocks only past 192 rows or when the strips run out; rows in whole 6-row tiles.
    let strips = n.div_ceil(PACK_COLS);
    let nblocks = n.div_ceil(256).next_multiple_of(threads).min(strips);
    let mut mblocks = m.div_ceil(192);
    if nblocks * mblocks < threads {
        mblocks = threads.div_ceil(nblocks).min(m.div_ceil(6));
    }
    let nb = strips.div_ceil(nblocks) * PACK_COLS;
    let nblocks = n.div_ceil(nb);
    let mb = m.div_ceil(mblocks).next_multiple_of(6);
    let mblocks = m.div_ceil(mb);
    let tasks = mblocks * nblocks;
    let cp = SharedMut::new(c);
    let run = |t: usize| {
        let (mi, ni) = (t % mblocks, t / mblocks);
        let (r0, r1) = (mi * mb, ((mi + 1) * mb).min(m));
        let (j0, j1) = (ni * nb, ((ni + 1) * nb).min(n));
        // Rows i0..i1 of the product over the task's columns, by the widest kernel that
        // fits them.
        // Whether the product applied the epilogue (the AVX-512 tiles do, for piecewise
        // activations).
        let product = |i0: usize, i1: usize| -> bool {
            #[cfg(target_arch = "x86_64")]
            if isa == Isa::Avx512 && i1 - i0 >= 6 {
                let fin = crate::gemm_avx512::in_registers(ep).then_some(ep);
                // SAFETY: rows i0..i1 of A (asserted to cover m × k), the packed B, this
                // task's rectangle of C, the epilogue checked against C above; AVX-512F
                // detected by `isa()`.
                #[allow(unsafe_code)]
                unsafe {
                    crate::gemm_avx512::packed(k, a, bp, n, cp.0, ldc, i0..i1, j0..j1, fin)
                };
                return fin.is_some();
            }
            #[cfg(target_arch = "x86_64")]
            if i1 - i0 < 6 && isa != Isa::Generic {
                // Fewer rows than a tile: a row at a time, four strips per step.
                for i in i0..i1 {
                    // SAFETY: row i of A (asserted to cover m × k); the packed B; row i,
                    // columns j0..j1 of this task's rectangle; AVX2 detected by `isa()`.
                    #[allow(unsafe_code)]
                    unsafe {
                        crate::gemm_avx2::packed_row(
                            k,
                            a.data.as_ptr().add(i * a.rs),
                            a.cs,
                            bp.as_ptr(),
                            n,
                            j0 / PACK_COLS..j1.div_ceil(PACK_COLS),
                            cp.0.add(i * ldc),
                        )
                    };
                }
                return false;
            }
            for j in (j0..j1).step_by(PACK_COLS) {
                let strip = &bp[j * k..(j + PACK_COLS) * k];
                let blk = Block {
                    k,
                    a,
                    b: Mat::rows(strip, PACK_COLS),
                    // SAFETY: columns j.. of this task's rectangle (tasks are disjoint;
                    // the asserts above put every rectangle inside `c`).
                    #[allow(unsafe_code)]
                    c: unsafe { cp.0.add(j) },
                    ldc,
                    i0,
                    i1,
                    j0: 0,
                    j1: PACK_COLS.min(n - j),
                };
                // SAFETY: as above; the strip is `k × 16` with row stride 16.
                #[allow(unsafe_code)]
                unsafe {
                    block(isa, blk, &Epilogue::default())
                };
            }
            false
        };
        // Rows in chunks of 8 tiles: the chunk's product, then (unless its tiles applied
        // it) its epilogue while it is in L1.
        for i0 in (r0..r1).step_by(48) {
            let i1 = (i0 + 48).min(r1);
            if product(i0, i1) {
                continue;
            }
            for i in i0..i1 {
                // SAFETY: row i, columns j0..j1 of this task's rectangle.
                #[allow(unsafe_code)]
                let row = unsafe { cp.slice(i * ldc + j0, j1 - j0) };
                ep.apply_row(row, i, j0, ldc);
            }
        }
    };
    if tasks > 1 && m * n * k >= PAR_MIN_FLOPS && threads > 1 {
        pool.run(tasks, &run)
    } else {
        (0..tasks).for_each(run)
    }
}

/// Rows `i0..i1`, K steps `p0..p0+kc` of A into `MR`-row panels for a packed
/// micro-kernel: panel t holds rows `i0 + MR·t ..`, K step p at `t·MR·kc + MR·p` (rows
/// past `i1` are 0).
///
/// # Panics
/// If `out` or A is too short for that.
#[allow(unsafe_code)]
pub(crate) fn pack_a<const MR: usize>(
    a: Mat<'_>,
    i0: usize,
    i1: usize,
    p0: usize,
    kc: usize,
    out: &mut [f32],
) {
    assert!(
        out.len() >= (i1 - i0).div_ceil(MR) * MR * kc,
        "A pack too short"
    );
    assert!(
        i1 == i0 || kc == 0 || (i1 - 1) * a.rs + (p0 + kc - 1) * a.cs < a.data.len(),
        "A too short"
    );
    let (src, dst) = (a.data.as_ptr(), out.as_mut_ptr());
    for t in 0..(i1 - i0).div_ceil(MR) {
        let rows = MR.min(i1 - (i0 + t * MR));
        let mut starts = [0usize; MR];
        for (r, st) in starts.iter_mut().enumerate().take(rows) {
            *st = (i0 + t * MR + r) * a.rs + p0 * a.cs;
        }
        // SAFETY: the asserts above: every read is inside A's rows i0..i1, K steps
        // p0..p0+kc; every write inside the pack.
        unsafe {
            let panel = dst.add(t * MR * kc);
            for p in 0..kc {
                let step = panel.add(p * MR);
                for (r, &st) in starts.iter().enumerate() {
                    *step.add(r) = if r < rows {
                        *src.add(st + p * a.cs)
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// Rows of A per packed block in [`panel_block`] (a multiple of every tile height).
const MC: usize = 48;
/// Most columns of B per packed panel in [`panel_block`].
const NC: usize = 1024;
/// Most steps of K per packed block in [`panel_block`]: a whole K of 1024 in one block,
/// so C is written once, not loaded and stored again per block. The tiles stream each
/// strip pair (128 KiB) and A panel (48 KiB) from L2, which the hardware prefetches well:
/// on Zen 4, 1024³ ran 96 GFLOP/s with blocks of 256, 103 with 512, 106 with 1024
/// (and rows in blocks of 48, 96 or 120 alike; panels of 512 columns, 101).
const PKC: usize = 1024;

std::thread_local! {
    /// Each thread's buffer for [`panel_block`]'s packed operands, kept between products
    /// (`(NC + MC)·PKC` floats, 4.2 MiB, allocated on the thread's first packed product:
    /// more than every host's threads have as stack).
    static PACKS: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Rows `p0..p0+kc`, columns `j0..j1` of B (rows contiguous) into 16-column strips: strip
/// `s` holds columns `j0 + 16s ..` (zeros past `j1`), its row `p` at `16·(s·kc + p)` — the
/// layout of [`pack_b`] for that sub-matrix. B's rows are read one after another.
///
/// # Panics
/// If `out` or B is too short for that, or B's columns are strided.
pub(crate) fn pack_b_panel(
    b: Mat<'_>,
    p0: usize,
    kc: usize,
    j0: usize,
    j1: usize,
    out: &mut [f32],
) {
    const S: usize = PACK_COLS;
    assert_eq!(b.cs, 1, "B panel with strided columns");
    let w = j1 - j0;
    assert!(out.len() >= w.div_ceil(S) * S * kc, "B pack too short");
    assert!(
        kc == 0 || w == 0 || (p0 + kc - 1) * b.rs + j1 <= b.data.len(),
        "B too short"
    );
    let full = w / S;
    for p in 0..kc {
        let row = &b.data[(p0 + p) * b.rs + j0..(p0 + p) * b.rs + j1];
        for s in 0..full {
            // Fixed-size copies: vector moves, where a slice copy of this length is a
            // `memcpy` call per 16 floats (ERNIE's 42 MB of weights took ~40 ms to pack).
            let src: &[f32; S] = row[s * S..s * S + S].try_into().expect("16 floats");
            let at = (s * kc + p) * S;
            let dst: &mut [f32; S] = (&mut out[at..at + S]).try_into().expect("a strip row");
            *dst = *src;
        }
        if full * S < w {
            let at = (full * kc + p) * S;
            let dst = &mut out[at..at + S];
            dst[..w - full * S].copy_from_slice(&row[full * S..]);
            dst[w - full * S..].fill(0.0);
        }
    }
}

/// The block's rectangle of `C = epilogue(A·B)` with both operands packed, BLIS-style.
/// Per block of (at most) [`PKC`] steps of K, the block's columns of B go into 16-column
/// strips once ([`pack_b_panel`]); then per [`MC`] rows, A's rows into `MR`-row panels
/// ([`pack_a`]), and the ISA's tiles run each strip (pair) against every row panel. Every
/// read is then sequential whatever the operands' strides. Rows get their epilogue when
/// their last K block is done, while in L2. On Zen 4, 1024³ at 1 thread went from 86 to
/// 106 GFLOP/s against packing B's strips again for every 120 rows, with K in blocks of
/// 256.
///
/// # Safety
/// As [`block`], with B's rows contiguous (`b.cs == 1`), `j1 − j0 <= NC`, and `isa`
/// detected on this CPU and not [`Isa::Generic`].
#[allow(unsafe_code)]
unsafe fn panel_block(isa: Isa, blk: Block<'_>, ep: &Epilogue<'_>) {
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
    let w = j1 - j0;
    // K in equal blocks of at most PKC.
    let pkc = k.div_ceil(k.div_ceil(PKC).max(1));
    let bsize = w.div_ceil(PACK_COLS) * PACK_COLS * pkc;
    let mut buf = PACKS.take();
    if buf.len() < bsize + MC * pkc {
        // At its full size at once: a thread then allocates once, whichever products it
        // happens to run first (runs after the first allocate nothing).
        buf.resize((NC.next_multiple_of(PACK_COLS) + MC) * PKC, 0.0);
    }
    let (bpack, apack) = buf.split_at_mut(bsize);
    // The ISA's A packing (its tile's rows) and tiles.
    type Pack = fn(Mat<'_>, usize, usize, usize, usize, &mut [f32]);
    type Tiles = unsafe fn(usize, &[f32], usize, &[f32], usize, *mut f32, usize, bool);
    let (pack, tiles): (Pack, Tiles) = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => (pack_a::<12>, crate::gemm_avx512::panel_tiles),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => (pack_a::<6>, crate::gemm_avx2::panel_tiles),
        _ => unreachable!("the packed path on {isa:?}"),
    };
    let mut p0 = 0;
    while p0 < k {
        let kc = pkc.min(k - p0);
        pack_b_panel(b, p0, kc, j0, j1, bpack);
        for r0 in (i0..i1).step_by(MC) {
            let r1 = (r0 + MC).min(i1);
            pack(a, r0, r1, p0, kc, apack);
            // SAFETY: the packs hold rows r0..r1 × kc and kc × the block's columns; C's
            // rectangle is the caller's; the ISA was detected.
            unsafe {
                tiles(
                    kc,
                    apack,
                    r1 - r0,
                    bpack,
                    w,
                    c.add(r0 * ldc + j0),
                    ldc,
                    p0 > 0,
                )
            };
            if p0 + kc == k && !ep.is_identity() {
                // SAFETY: rows r0..r1 of the caller's rectangle.
                unsafe { ep.apply_rows(c, ldc, r0..r1, j0, j1) };
            }
        }
        p0 += kc;
    }
    PACKS.set(buf);
}

/// One task's rectangle of `C = A·B`: rows `i0..i1`, columns `j0..j1`, with C at `c`
/// (row stride `ldc`) and `k` the shared dimension.
#[derive(Clone, Copy)]
pub(crate) struct Block<'a> {
    pub(crate) k: usize,
    pub(crate) a: Mat<'a>,
    pub(crate) b: Mat<'a>,
    pub(crate) c: *mut f32,
    pub(crate) ldc: usize,
    pub(crate) i0: usize,
    pub(crate) i1: usize,
    pub(crate) j0: usize,
    pub(crate) j1: usize,
}

/// Computes rows `i0..i1`, columns `j0..j1` of `C = A·B`; returns true if it also applied
/// the epilogue (the register-tiled path does, tile by tile while the tile is in L1).
///
/// # Safety
/// `c` must be valid for writes at `i·ldc + j` for every `(i, j)` in the rectangle, and no
/// other reference may alias those elements. `a` and `b` must cover the shape (checked by
/// the caller).
#[allow(unsafe_code)]
unsafe fn block(isa: Isa, blk: Block<'_>, ep: &Epilogue<'_>) -> bool {
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
    if packs(isa, &b) && i1 - i0 > 12 && j1 - j0 >= 32 && j1 - j0 <= NC {
        // SAFETY: the caller's contract, passed on; `packs` excludes the generic path.
        unsafe { panel_block(isa, blk, ep) };
        return true;
    }
    if b.cs == 1 {
        // SAFETY: the caller's contract, passed on; the feature-specific versions run only
        // when `isa()` found the features.
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => crate::gemm_avx512::nn(blk, ep),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => crate::gemm_avx2::nn(blk, ep),
                _ => nn_generic(blk, ep),
            }
        }
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

/// One `MR × NR` tile over `kc` steps of K; `acc_in` adds to what C holds. Full tiles
/// (`nr == NR`) run [`tile_full`], whose accumulators are indexed by constants only, so
/// they stay in registers; narrower edge tiles go through zero-padded copies.
///
/// # Safety
/// `a` must be readable at `i·rsa + p·csa` (i < MR, p < kc), `b` at `p·ldb + j` (j < nr)
/// and at any offset below `b_avail`, `c` writable at `i·ldc + j` (i < MR, j < nr);
/// `nr <= NR`.
#[inline(always)]
#[allow(unsafe_code, clippy::too_many_arguments)]
unsafe fn tile<const MR: usize, const NR: usize, const FMA: bool>(
    kc: usize,
    a: *const f32,
    rsa: usize,
    csa: usize,
    b: *const f32,
    ldb: usize,
    b_avail: usize,
    c: *mut f32,
    ldc: usize,
    nr: usize,
    acc_in: bool,
) {
    // SAFETY: the caller's bounds, passed on. An edge tile reads B directly when a
    // full-width read stays inside B's slice (`b_avail` readable elements from `b`; the
    // extra lanes are computed and dropped), else through a padded copy of at most `KC`
    // rows; it writes C through a local tile.
    unsafe {
        if nr == NR {
            tile_full::<MR, NR, FMA>(kc, a, rsa, csa, b, ldb, c, ldc, acc_in);
        } else {
            // B: read in place when a full-width read stays inside its slice, else from a
            // zero-padded copy (only then initialized).
            let bpad: [[f32; NR]; KC];
            let (bsrc, bld) = if (kc - 1) * ldb + NR <= b_avail {
                (b, ldb)
            } else {
                let mut pad = [[0f32; NR]; KC];
                for (p, row) in pad.iter_mut().enumerate().take(kc) {
                    for (j, v) in row.iter_mut().enumerate().take(nr) {
                        *v = *b.add(p * ldb + j);
                    }
                }
                bpad = pad;
                (bpad.as_ptr() as *const f32, NR)
            };
            let mut cpad = [[0f32; NR]; MR];
            if acc_in {
                for (i, row) in cpad.iter_mut().enumerate() {
                    for (j, v) in row.iter_mut().enumerate().take(nr) {
                        *v = *c.add(i * ldc + j);
                    }
                }
            }
            tile_full::<MR, NR, FMA>(
                kc,
                a,
                rsa,
                csa,
                bsrc,
                bld,
                cpad.as_mut_ptr() as *mut f32,
                NR,
                acc_in,
            );
            for (i, row) in cpad.iter().enumerate() {
                for (j, v) in row.iter().enumerate().take(nr) {
                    *c.add(i * ldc + j) = *v;
                }
            }
        }
    }
}

/// A full `MR × NR` tile (see [`tile`]).
///
/// # Safety
/// As [`tile`] with `nr == NR`.
#[inline(always)]
#[allow(unsafe_code, clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn tile_full<const MR: usize, const NR: usize, const FMA: bool>(
    kc: usize,
    a: *const f32,
    rsa: usize,
    csa: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    acc_in: bool,
) {
    let mut acc = [[0f32; NR]; MR];
    // SAFETY: all reads and writes stay within the bounds the caller guarantees.
    unsafe {
        if acc_in {
            for i in 0..MR {
                for j in 0..NR {
                    acc[i][j] = *c.add(i * ldc + j);
                }
            }
        }
        for p in 0..kc {
            let bp = b.add(p * ldb);
            let mut bv = [0f32; NR];
            for j in 0..NR {
                bv[j] = *bp.add(j);
            }
            for i in 0..MR {
                let av = *a.add(i * rsa + p * csa);
                for j in 0..NR {
                    acc[i][j] = if FMA {
                        av.mul_add(bv[j], acc[i][j])
                    } else {
                        acc[i][j] + av * bv[j]
                    };
                }
            }
        }
        for i in 0..MR {
            for j in 0..NR {
                *c.add(i * ldc + j) = acc[i][j];
            }
        }
    }
}

/// The NN block loop for one (MR, NR, FMA) choice; rows left over use smaller tiles.
#[inline(always)]
#[allow(unsafe_code)]
unsafe fn nn_loop<const MR: usize, const NR: usize, const FMA: bool>(
    blk: Block<'_>,
    ep: &Epilogue<'_>,
) {
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
    let fuse = !ep.is_identity();
    let (ap, bp) = (a.data.as_ptr(), b.data.as_ptr());
    debug_assert!(MR <= 15, "the row remainder match covers up to 15 rows");
    let mut p0 = 0;
    while p0 < k {
        let kc = KC.min(k - p0);
        let mut i = i0;
        while i < i1 {
            let mr = MR.min(i1 - i);
            let mut j = j0;
            while j < j1 {
                let nr = NR.min(j1 - j);
                // SAFETY: (i..i+mr, p0..p0+kc) lies in A and (p0..p0+kc, j..j+nr) in B
                // (the caller checked the shapes); (i, j) tiles lie in the caller's rectangle.
                unsafe {
                    let at = ap.add(i * a.rs + p0 * a.cs);
                    let bt = bp.add(p0 * b.rs + j);
                    let b_avail = b.data.len() - (p0 * b.rs + j);
                    let ct = c.add(i * ldc + j);
                    let acc = p0 > 0;
                    macro_rules! go {
                        ($r:literal) => {
                            tile::<$r, NR, FMA>(
                                kc, at, a.rs, a.cs, bt, b.rs, b_avail, ct, ldc, nr, acc,
                            )
                        };
                    }
                    match mr {
                        m if m == MR => tile::<MR, NR, FMA>(
                            kc, at, a.rs, a.cs, bt, b.rs, b_avail, ct, ldc, nr, acc,
                        ),
                        1 => go!(1),
                        2 => go!(2),
                        3 => go!(3),
                        4 => go!(4),
                        5 => go!(5),
                        6 => go!(6),
                        7 => go!(7),
                        8 => go!(8),
                        9 => go!(9),
                        10 => go!(10),
                        11 => go!(11),
                        12 => go!(12),
                        13 => go!(13),
                        14 => go!(14),
                        _ => go!(15),
                    }
                }
                j += nr;
            }
            if fuse && p0 + kc == k {
                // The row tile just finished (all its columns): its epilogue, while it is
                // still in L1, in runs as long as the task's columns.
                // SAFETY: rows i..i+mr, columns j0..j1 of the caller's rectangle.
                unsafe { ep.apply_rows(c, ldc, i..i + mr, j0, j1) };
            }
            i += mr;
        }
        p0 += kc;
    }
}

/// One instantiation of the NN block loop, compiled with the given target features.
macro_rules! nn_variant {
    ($name:ident, [$($feat:literal)?], $mr:literal, $nr:literal, $fma:literal) => {
        $(#[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feat)])?
        #[allow(unsafe_code)]
        unsafe fn $name(blk: Block<'_>, ep: &Epilogue<'_>) {
            // SAFETY: the caller's contract (and, for a feature build, the features were
            // detected by `isa()`).
            unsafe { nn_loop::<$mr, $nr, $fma>(blk, ep) }
        }
    };
}
nn_variant!(nn_generic, [], 4, 8, false);

/// A dot product in 16 independent lanes (so it vectorizes without reassociation).
#[inline(always)]
fn dot_lanes(x: &[f32], y: &[f32]) -> f32 {
    const L: usize = 16;
    let mut acc = [0f32; L];
    let n = x.len().min(y.len());
    let full = n / L * L;
    for (xc, yc) in x[..full].chunks_exact(L).zip(y[..full].chunks_exact(L)) {
        for l in 0..L {
            acc[l] += xc[l] * yc[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for p in full..n {
        s += x[p] * y[p];
    }
    s
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
    #[cfg(target_arch = "x86_64")]
    if isa() == Isa::Avx512 {
        // SAFETY: the rows and x asserted above; AVX-512F detected by `isa()`.
        #[allow(unsafe_code)]
        unsafe {
            crate::gemm_avx512::gemv_rows(a.as_ptr().add(rows.start * k), k, k, x, y)
        };
        return;
    }
    for (y, r) in y.iter_mut().zip(rows) {
        *y = dot(&a[r * k..(r + 1) * k], &x[..k]);
    }
}

/// A plain dot product, vectorized (used by attention and small reductions).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: Mat<'_>, b: Mat<'_>) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for p in 0..k {
                    s += a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    /// A logical `rows × cols` operand stored row-major, or (`transposed`) as the
    /// row-major `cols × rows` matrix seen through its transpose.
    fn operand(data: &[f32], rows: usize, cols: usize, transposed: bool) -> Mat<'_> {
        if transposed {
            Mat::rows(data, rows).t()
        } else {
            Mat::rows(data, cols)
        }
    }

    /// Every element of `got` within 1e-4 (relative to 1 + |want|) of `want`.
    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (x, y)) in got.iter().zip(want).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what} [{i}]: {x} vs {y}"
            );
        }
    }

    fn rand(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn every_shape_and_layout_matches_the_naive_product() {
        let pools = [ThreadPool::new(1), ThreadPool::new(3)];
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 5, 3),
            (6, 16, 256),
            (13, 33, 300),
            (50, 270, 17),
            (97, 300, 513),
            // B's row stride a multiple of 2 KiB: the packed path ([`panel_block`]),
            // with several row panels and a partial tile.
            (70, 512, 300),
            (13, 1024, 40),
            // 1–4 columns past the last 16 with K long enough for the dot-product tail.
            (30, 49, 96),
            (20, 68, 100),
            (250, 1536, 20),
            // The packed path in panels of 1024 and 512 columns, K in two blocks of 550,
            // 130 rows (two blocks of 48 and one of 34: a partial tile).
            (130, 2560, 1100),
            (4, 0, 3),
            (3, 4, 0),
        ] {
            let ad = rand(m * k, 1);
            let bd = rand(k * n, 2);
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (a, b) = (operand(&ad, m, k, ta), operand(&bd, k, n, tb));
                let want = naive(m, n, k, a, b);
                for pool in &pools {
                    let mut c = vec![f32::NAN; m * n];
                    sgemm(
                        pool,
                        Gemm { m, n, k },
                        a,
                        b,
                        &mut c,
                        n,
                        &Epilogue::default(),
                    );
                    assert_close(&c, &want, &format!("{m}x{n}x{k} {ta}{tb}"));
                }
            }
        }
    }

    #[test]
    fn every_row_remainder_is_computed() {
        // M from 1 to 70 hits every leftover row count of every kernel's MR (up to 14).
        let pool = ThreadPool::new(1);
        for m in 1..=70 {
            let (n, k) = (37, 5);
            let ad = rand(m * k, m as u64);
            let bd = rand(k * n, 99);
            let want = naive(m, n, k, Mat::rows(&ad, k), Mat::rows(&bd, n));
            let mut c = vec![f32::NAN; m * n];
            sgemm(
                &pool,
                Gemm { m, n, k },
                Mat::rows(&ad, k),
                Mat::rows(&bd, n),
                &mut c,
                n,
                &Epilogue::default(),
            );
            assert_close(&c, &want, &format!("m {m}"));
        }
    }

    #[test]
    fn epilogue_applies_in_order() {
        // The second shape takes the packed path (B's rows 1024 apart), K in two blocks.
        for (m, n, k) in [(9, 20, 7), (100, 1024, 1100)] {
            epilogue_case(m, n, k);
        }
    }
    fn epilogue_case(m: usize, n: usize, k: usize) {
        let ad = rand(m * k, 3);
        let bd = rand(k * n, 4);
        let rb = rand(m, 5);
        let cb = rand(n, 6);
        let res = rand(m * n, 7);
        let ep = Epilogue {
            alpha: 0.5,
            row_bias: Some(&rb),
            col_bias: Some(&cb),
            residual: Some(&res),
            act: Act::Relu6(0.4),
            post: Some((2.0, -0.1)),
        };
        let p = naive(m, n, k, Mat::rows(&ad, k), Mat::rows(&bd, n));
        for threads in [1, 2] {
            let mut c = vec![0f32; m * n];
            sgemm(
                &ThreadPool::new(threads),
                Gemm { m, n, k },
                Mat::rows(&ad, k),
                Mat::rows(&bd, n),
                &mut c,
                n,
                &ep,
            );
            for i in 0..m {
                for j in 0..n {
                    let v = (0.5 * p[i * n + j] + rb[i] + cb[j] + res[i * n + j]).clamp(0.0, 0.4)
                        * 2.0
                        - 0.1;
                    assert!(
                        (c[i * n + j] - v).abs() < 1e-4 * (1.0 + p[i * n + j].abs()),
                        "{m}x{n}x{k} on {threads}: ({i}, {j}) {} vs {v}",
                        c[i * n + j]
                    );
                }
            }
        }
    }

    /// Every activation, through every tile shape: those the AVX2 tile applies in
    /// registers (relu, relu6, leaky relu, hard swish, hard sigmoid) and one it leaves to
    /// the row pass (gelu), against the scalar definition.
    #[test]
    fn every_activation_in_the_epilogue_matches_its_definition() {
        let acts = [
            Act::Relu,
            Act::Relu6(0.4),
            Act::LeakyRelu(0.1),
            Act::HardSwish {
                threshold: 6.0,
                scale: 6.0,
                offset: 3.0,
            },
            Act::HardSigmoid {
                slope: 0.2,
                offset: 0.5,
            },
            Act::Clip(-0.3, 0.6),
            Act::Identity,
            Act::Gelu,
        ];
        // The last shape's 49th column comes from the dot-product tail (K ≥ 64), the
        // first's last 5 from the AVX2 tile: the epilogue covers them too.
        for (m, n, k) in [
            (13, 37, 9),
            (1, 70, 5),
            (2, 9, 300),
            (7, 16, 3),
            (30, 49, 96),
        ] {
            let ad = rand(m * k, 11);
            let bd = rand(k * n, 12);
            let rb = rand(m, 13);
            let cb = rand(n, 14);
            let res = rand(m * n, 15);
            let p = naive(m, n, k, Mat::rows(&ad, k), Mat::rows(&bd, n));
            for act in acts {
                let ep = Epilogue {
                    alpha: 1.5,
                    row_bias: Some(&rb),
                    col_bias: Some(&cb),
                    residual: Some(&res),
                    act,
                    post: Some((0.5, 0.25)),
                };
                let mut c = vec![0f32; m * n];
                sgemm(
                    &ThreadPool::new(1),
                    Gemm { m, n, k },
                    Mat::rows(&ad, k),
                    Mat::rows(&bd, n),
                    &mut c,
                    n,
                    &ep,
                );
                for i in 0..m {
                    for j in 0..n {
                        let x = 1.5 * p[i * n + j] + rb[i] + cb[j] + res[i * n + j];
                        let want = act.apply(x) * 0.5 + 0.25;
                        let got = c[i * n + j];
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "{act:?} {m}x{n}x{k} [{i},{j}]: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    /// A view of B narrower than its row stride (attention's V inside the packed QKV): a
    /// stride that is a multiple of 2 KiB with a width that ends in a partial strip.
    /// Products against a packed B: the packed layout (strips of 16 with zero padding),
    /// ragged columns and rows (fewer than a tile too), K across the K blocks, transposed
    /// operands, the epilogue (bias, residual, activation), and the row/column task split
    /// at 1 and 2 threads.
    #[test]
    fn packed_b_products_match_the_naive_product() {
        let shapes = [
            (1, 16, 16),
            (7, 33, 5),
            (128, 384, 300),
            (13, 130, 520),
            (200, 47, 64),
            (6, 1000, 17),
            // Fewer rows than a tile (alone, or a block's last 2): a row at a time over
            // groups of 4 strips and their remainder.
            (1, 1000, 300),
            (3, 50, 40),
            (50, 70, 33),
        ];
        for (m, n, k) in shapes {
            for (tb, ta) in [(false, false), (true, false), (false, true)] {
                let ad = rand(m * k, 41);
                let bd = rand(k * n, 42);
                let (a, b) = (operand(&ad, m, k, ta), operand(&bd, k, n, tb));
                let mut bp = vec![f32::NAN; packed_len(k, n)];
                pack_b(b, k, n, &mut bp);
                // The layout: strip s, row p, column c at s·16k + 16p + c; zeros past n.
                for (i, v) in bp.iter().enumerate() {
                    let (s, p, c) = (i / (16 * k), i / 16 % k, i % 16);
                    let j = 16 * s + c;
                    let want = if j < n {
                        bd[if tb { j * k + p } else { p * n + j }]
                    } else {
                        0.0
                    };
                    assert_eq!(*v, want, "packed [{s}, {p}, {c}] of {k}x{n}");
                }
                let bias = rand(n, 43);
                let res = rand(m * n, 44);
                let mut want = naive(m, n, k, a, b);
                for (i, w) in want.iter_mut().enumerate() {
                    let v = 0.5 * *w + bias[i % n] + res[i];
                    *w = v.max(0.0);
                }
                let ep = Epilogue {
                    alpha: 0.5,
                    col_bias: Some(&bias),
                    residual: Some(&res),
                    act: Act::Relu,
                    ..Epilogue::default()
                };
                for threads in [1, 2] {
                    let mut c = vec![f32::NAN; m * n];
                    sgemm_packed(
                        &ThreadPool::new(threads),
                        Gemm { m, n, k },
                        a,
                        &bp,
                        &mut c,
                        n,
                        &ep,
                    );
                    let what = format!("{m}x{n}x{k} (ta {ta}, tb {tb}, {threads} threads)");
                    assert_close(&c, &want, &what);
                }
            }
        }
    }

    #[test]
    fn a_narrow_view_of_a_wide_b_matches_the_naive_product() {
        // The last: the packed path with a partial strip (1000 columns of rows 1024 apart)
        // and K in two blocks.
        for (m, n, k, ldb) in [
            (20, 40, 33, 512),
            (7, 21, 300, 1024),
            (61, 9, 5, 512),
            (100, 1000, 1030, 1024),
        ] {
            let ad = rand(m * k, 21);
            let bd = rand(k * ldb, 22);
            let b = Mat {
                data: &bd,
                rs: ldb,
                cs: 1,
            };
            let want = naive(m, n, k, Mat::rows(&ad, k), b);
            for threads in [1, 2] {
                let mut c = vec![f32::NAN; m * n];
                sgemm(
                    &ThreadPool::new(threads),
                    Gemm { m, n, k },
                    Mat::rows(&ad, k),
                    b,
                    &mut c,
                    n,
                    &Epilogue::default(),
                );
                assert_close(&c, &want, &format!("{m}x{n}x{k} on {threads}"));
            }
        }
    }

    #[test]
    fn batches_use_their_offsets() {
        let (m, n, k, bt) = (5, 18, 4, 3);
        let ad = rand(bt * m * k, 8);
        let bd = rand(k * n, 9);
        let mut c = vec![0f32; bt * m * n];
        sgemm_batch(
            &ThreadPool::new(2),
            Gemm { m, n, k },
            bt,
            &|t| (t * m * k, 0, t * m * n),
            Mat::rows(&ad, k),
            Mat::rows(&bd, n),
            &mut c,
            n,
            &Epilogue::default(),
        );
        for t in 0..bt {
            let want = naive(m, n, k, Mat::rows(&ad[t * m * k..], k), Mat::rows(&bd, n));
            for (x, y) in c[t * m * n..(t + 1) * m * n].iter().zip(&want) {
                assert!((x - y).abs() < 1e-4);
            }
        }
    }
}
