//! The AVX-512 micro-kernels of [`crate::gemm`], with intrinsics. A tile is `R` rows ×
//! `S` vectors of 16 columns (up to 12 × 2: 24 accumulators of the 32 registers), so a
//! K step is 2 loads of B, 12 broadcasts of A and 24 FMAs — half the instructions of the
//! AVX2 tile per FLOP, which is what a Zen 4 (512-bit operations on 256-bit units) is
//! short of: 106 against 94 GFLOP/s on ERNIE's products with packed weights. Partial
//! vectors are read and written with a lane mask (AVX-512's masked loads and stores are
//! single instructions and suppress faults, unlike AVX's).
//!
//! B is addressed as vectors: row `p` of vector `s` at `b + s·sd + p·ldb`, which covers
//! B read in place (`sd = 16`, `ldb` its row stride), a packed weight's strips
//! ([`crate::gemm::pack_b`]: `sd = 16k`, `ldb = 16`) and the strips of
//! `gemm::generic::pack_b_panel`.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::act::portable::Act;
use crate::consts::LANES;
use crate::gemm::types::{in_registers, Block, Epilogue, Mat, NnKernel, RowPass, KC, PACK_COLS};

/// Rows per full tile.
pub(crate) const MR: usize = 12;
/// Columns per vector.
const L: usize = LANES;
/// Rows and columns of a full tile (12 × 2 vectors), the unit the GEMM cuts its tasks in.
pub(crate) const TILE: (usize, usize) = (MR, 2 * L);

/// The epilogue a tile applies in registers before its store, and the tile's place in C:
/// `(epilogue, row, column)`, the row and column counted from C's origin (where the
/// epilogue's row bias, column bias and residual start). Only for epilogues that
/// [`in_registers`] accepts.
pub(crate) type Fin<'a> = Option<(&'a Epilogue<'a>, usize, usize)>;

/// `acc = epilogue(acc)` for a finished `R × 16·S` tile at row `i0`, column `j0` of C:
/// the same operations, in the same order, as `Epilogue::apply_row` (alpha, row bias,
/// column bias, residual, activation, post affine), so a tile's values are those of the
/// separate pass bit for bit. The last vector's column-bias and residual reads are
/// masked (`mask`).
///
/// # Safety
/// The epilogue's row bias covers rows `i0..i0+R`, its column bias columns
/// `j0..j0+cols`, its residual `(i0+i)·ldc + j0 + j` for the tile's real columns (as
/// `Epilogue::check_output` asserts for the whole of C); AVX-512F present.
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)]
unsafe fn finish<const R: usize, const S: usize>(
    acc: &mut [[__m512; S]; R],
    ep: &Epilogue<'_>,
    (i0, j0, ldc): (usize, usize, usize),
    mask: __mmask16,
) {
    let last = |s: usize| s + 1 == S && mask != 0xffff;
    // SAFETY: the reads stay inside the caller's bounds (the last vector masked).
    unsafe {
        if ep.alpha != 1.0 {
            let al = _mm512_set1_ps(ep.alpha);
            acc.iter_mut()
                .flatten()
                .for_each(|v| *v = _mm512_mul_ps(*v, al));
        }
        if let Some(b) = ep.row_bias {
            for i in 0..R {
                let bv = _mm512_set1_ps(*b.as_ptr().add(i0 + i));
                acc[i].iter_mut().for_each(|v| *v = _mm512_add_ps(*v, bv));
            }
        }
        if let Some(b) = ep.col_bias {
            for s in 0..S {
                let q = b.as_ptr().add(j0 + L * s);
                let bv = if last(s) {
                    _mm512_maskz_loadu_ps(mask, q)
                } else {
                    _mm512_loadu_ps(q)
                };
                (0..R).for_each(|i| acc[i][s] = _mm512_add_ps(acc[i][s], bv));
            }
        }
        if let Some(r) = ep.residual {
            for i in 0..R {
                for s in 0..S {
                    let q = r.as_ptr().add((i0 + i) * ldc + j0 + L * s);
                    let rv = if last(s) {
                        _mm512_maskz_loadu_ps(mask, q)
                    } else {
                        _mm512_loadu_ps(q)
                    };
                    acc[i][s] = _mm512_add_ps(acc[i][s], rv);
                }
            }
        }
        let zero = _mm512_setzero_ps();
        match ep.act {
            Act::Relu => each(acc, |v| _mm512_max_ps(v, zero)),
            Act::Relu6(t) => {
                let t = _mm512_set1_ps(t);
                each(acc, |v| _mm512_min_ps(_mm512_max_ps(v, zero), t))
            }
            Act::LeakyRelu(a) => {
                let a = _mm512_set1_ps(a);
                each(acc, |v| {
                    let pos = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, zero);
                    _mm512_mask_blend_ps(pos, _mm512_mul_ps(a, v), v)
                })
            }
            Act::HardSwish {
                threshold,
                scale,
                offset,
            } => {
                let (t, o) = (_mm512_set1_ps(threshold), _mm512_set1_ps(offset));
                let inv = _mm512_set1_ps(1.0 / scale);
                each(acc, |v| {
                    let g = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(v, o), zero), t);
                    _mm512_mul_ps(_mm512_mul_ps(v, g), inv)
                })
            }
            Act::HardSigmoid { slope, offset } => {
                let (a, o) = (_mm512_set1_ps(slope), _mm512_set1_ps(offset));
                let one = _mm512_set1_ps(1.0);
                // max(0, ·) then min(1, ·) with the value second: NaN stays NaN, as in
                // `f32::clamp`.
                each(acc, |v| {
                    let y = _mm512_add_ps(_mm512_mul_ps(a, v), o);
                    _mm512_min_ps(one, _mm512_max_ps(zero, y))
                })
            }
            _ => debug_assert!(ep.act == Act::Identity, "{:?} in registers", ep.act),
        }
        if let Some((sc, sh)) = ep.post {
            let (a, o) = (_mm512_set1_ps(sc), _mm512_set1_ps(sh));
            each(acc, |v| _mm512_add_ps(_mm512_mul_ps(a, v), o));
        }
    }
}

/// `v = f(v)` for each of a tile's accumulators.
#[inline(always)]
fn each<const R: usize, const S: usize>(acc: &mut [[__m512; S]; R], f: impl Fn(__m512) -> __m512) {
    acc.iter_mut().flatten().for_each(|v| *v = f(*v));
}

/// One `R × 16·S` tile over `kc` steps of K: rows of A at `a` (`rsa`, `csa`), B's
/// vectors as the module says, C at `c` (`ldc`) with `cols` real columns (in
/// `16·(S−1)+1 ..= 16·S`); `acc_in` adds to what C holds; `fin`, on a tile's last K
/// block, its epilogue, applied before the store.
///
/// # Safety
/// `a` readable at `i·rsa + p·csa` (i < R, p < kc); `b` at `s·sd + p·ldb + l` for every
/// real column `16s + l < cols` (p < kc); `c` writable at `i·ldc + j` (i < R,
/// j < cols); `fin` as [`finish`] says; AVX-512F present.
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn tile<const R: usize, const S: usize>(
    kc: usize,
    a: *const f32,
    rsa: usize,
    csa: usize,
    b: *const f32,
    sd: usize,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    acc_in: bool,
    fin: Fin<'_>,
) {
    let last = cols - L * (S - 1);
    let full = last >= L;
    let mask: __mmask16 = if full { 0xffff } else { (1u16 << last) - 1 };
    let mut acc = [[_mm512_setzero_ps(); S]; R];
    // SAFETY: the accesses stay inside what the caller guarantees; the last vector's
    // B and C accesses are masked to its real columns.
    unsafe {
        if acc_in {
            for i in 0..R {
                for s in 0..S {
                    let p = c.add(i * ldc + L * s);
                    acc[i][s] = if s + 1 < S {
                        _mm512_loadu_ps(p)
                    } else {
                        _mm512_maskz_loadu_ps(mask, p)
                    };
                }
            }
        }
        for p in 0..kc {
            let mut bv = [_mm512_setzero_ps(); S];
            for s in 0..S {
                let q = b.add(s * sd + p * ldb);
                bv[s] = if s + 1 < S || full {
                    _mm512_loadu_ps(q)
                } else {
                    _mm512_maskz_loadu_ps(mask, q)
                };
            }
            for i in 0..R {
                let av = _mm512_set1_ps(*a.add(i * rsa + p * csa));
                for s in 0..S {
                    acc[i][s] = _mm512_fmadd_ps(av, bv[s], acc[i][s]);
                }
            }
        }
        if let Some((ep, i0, j0)) = fin {
            finish(&mut acc, ep, (i0, j0, ldc), mask);
        }
        for i in 0..R {
            for s in 0..S {
                let p = c.add(i * ldc + L * s);
                if s + 1 < S {
                    _mm512_storeu_ps(p, acc[i][s]);
                } else {
                    _mm512_mask_storeu_ps(p, mask, acc[i][s]);
                }
            }
        }
    }
}

/// Calls [`tile`] for `r` rows (1..=12) and `s` vectors (1 or 2).
///
/// # Safety
/// As [`tile`].
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn any_tile(
    r: usize,
    s: usize,
    kc: usize,
    (a, rsa, csa): (*const f32, usize, usize),
    (b, sd, ldb): (*const f32, usize, usize),
    (c, ldc, cols): (*mut f32, usize, usize),
    acc_in: bool,
    fin: Fin<'_>,
) {
    macro_rules! go {
        ($($r:literal)*) => {
            match (r, s) {
                $(($r, 2) => tile::<$r, 2>(kc, a, rsa, csa, b, sd, ldb, c, ldc, cols, acc_in, fin),
                ($r, _) => tile::<$r, 1>(kc, a, rsa, csa, b, sd, ldb, c, ldc, cols, acc_in, fin),)*
                _ => unreachable!("a tile of {} rows", r),
            }
        };
    }
    // SAFETY: the caller's contract, passed on.
    unsafe { go!(1 2 3 4 5 6 7 8 9 10 11 12) }
}

/// Rows `i0..i1`, columns `j0..j1` of `C = A·B` with B's rows contiguous (`b.cs == 1`),
/// the epilogue applied per finished row tile (`row_pass`, or in registers). `narrow`
/// computes up to 8 tail columns past the last whole vector (the dispatch table hands in
/// the 8-lane AVX2 kernel).
///
/// # Safety
/// As `gemm::block`: `c` valid for writes over the rectangle with no other alias; `a` and
/// `b` cover the shape; AVX-512F present, and `narrow`'s instruction set.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn nn(blk: Block<'_>, ep: &Epilogue<'_>, row_pass: RowPass, narrow: NnKernel) {
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
    // Columns past the last whole vector are done first (the row tiles' epilogues below
    // then see them done), not by a 16-lane tile that would mostly compute dropped lanes
    // (a 7×7 plane's 49 columns are 3 vectors and 1 column): up to 4 as dot products of
    // A's rows with the gathered columns ([`tail_dots`]), up to 8 by `narrow` (the AVX2
    // tile).
    let tail = (j1 - j0) % L;
    let j1 = if tail <= DOT_COLS && tail > 0 && a.cs == 1 && (DOT_MIN_K..=DOT_MAX_K).contains(&k) {
        // SAFETY: the caller's contract for a part of its rectangle.
        unsafe { tail_dots(blk, j1 - tail) };
        j1 - tail
    } else if (1..=8).contains(&tail) {
        let rest = Block {
            j0: j1 - tail,
            ..blk
        };
        // SAFETY: the caller's contract for a part of its rectangle, with `narrow`'s
        // features present (the caller's contract).
        unsafe { narrow(rest, &Epilogue::default(), row_pass) };
        j1 - tail
    } else {
        j1
    };
    let fuse = !ep.is_identity();
    // A piecewise epilogue goes on in registers, tile by tile; the tail columns above,
    // and the other activations, take the pass over each finished row tile.
    let regs = fuse && in_registers(ep);
    let (ap, bp) = (a.data.as_ptr(), b.data.as_ptr());
    let mut p0 = 0;
    while p0 < k {
        let kc = KC.min(k - p0);
        let mut i = i0;
        while i < i1 {
            let r = MR.min(i1 - i);
            let mut j = j0;
            while j < j1 {
                let w = (2 * L).min(j1 - j);
                // SAFETY: (i..i+r, p0..p0+kc) lies in A, (p0..p0+kc, j..j+w) in B (the
                // caller checked the shapes; B's last vector is masked to its columns);
                // the tile lies in the caller's rectangle.
                unsafe {
                    any_tile(
                        r,
                        w.div_ceil(L),
                        kc,
                        (ap.add(i * a.rs + p0 * a.cs), a.rs, a.cs),
                        (bp.add(p0 * b.rs + j), L, b.rs),
                        (c.add(i * ldc + j), ldc, w),
                        p0 > 0,
                        (regs && p0 + kc == k).then_some((ep, i, j)),
                    )
                };
                j += w;
            }
            if fuse && p0 + kc == k {
                // The row tile just finished: its epilogue while it is still in L1 (only
                // on the tail columns if the tiles applied it).
                // SAFETY: rows i..i+r, columns j0..blk.j1 of the caller's rectangle.
                unsafe {
                    if !regs {
                        row_pass(ep, c, ldc, i..i + r, j0, blk.j1);
                    } else if j1 < blk.j1 {
                        ep.apply_points(c, ldc, i..i + r, j1, blk.j1);
                    }
                }
            }
            i += r;
        }
        p0 += kc;
    }
}

/// One packed block of `C = A·B` (`gemm::packed::panel_block`): `rows` rows of A in
/// 12-row panels (`ap`, by `pack_a::<12>`) against `cols` columns of B in 16-column
/// strips (`bp`, by `pack_b_panel`), both over `kc` steps of K; C at `c`. Each pair of
/// strips runs against every row panel of the block.
///
/// # Safety
/// `ap` holds `⌈rows/12⌉·12·kc` floats, `bp` `⌈cols/16⌉·16·kc`; `c` is writable over
/// `rows × cols` (row stride `ldc`) with no other alias; AVX-512F present.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn panel_tiles(
    kc: usize,
    ap: &[f32],
    rows: usize,
    bp: &[f32],
    cols: usize,
    c: *mut f32,
    ldc: usize,
    acc_in: bool,
) {
    debug_assert!(ap.len() >= rows.div_ceil(MR) * MR * kc && bp.len() >= cols.div_ceil(L) * L * kc);
    for j in (0..cols).step_by(2 * L) {
        let w = (2 * L).min(cols - j);
        for t in 0..rows.div_ceil(MR) {
            let r = MR.min(rows - t * MR);
            // SAFETY: panel t holds r rows × kc (12 per K step); strips j/16.. hold kc
            // rows of 16 each; the tile lies in the caller's rectangle.
            unsafe {
                any_tile(
                    r,
                    w.div_ceil(L),
                    kc,
                    (ap.as_ptr().add(t * MR * kc), 1, MR),
                    (bp.as_ptr().add(j * kc), kc * L, L),
                    (c.add(t * MR * ldc + j), ldc, w),
                    acc_in,
                    None,
                )
            };
        }
    }
}

/// Rows `rows`, columns `cols` (starting at a multiple of 16) of `C = A·B` with B packed
/// (`bp`, `k × n`, by [`crate::gemm::pack_b`]), K in blocks of [`KC`]; `ep`, if given
/// (one [`in_registers`] accepts), applied by each tile before its last store.
///
/// # Safety
/// A covers the rows × `k`; `bp` is the packed `k × n` B; `c` (C's element (0, 0)) is
/// writable over the rectangle with no other alias; the epilogue covers C (as
/// `Epilogue::check_output` asserts); AVX-512F present.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn packed(
    k: usize,
    a: Mat<'_>,
    bp: &[f32],
    n: usize,
    c: *mut f32,
    ldc: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    ep: Option<&Epilogue<'_>>,
) {
    let sd = k * PACK_COLS;
    let mut p0 = 0;
    while p0 < k {
        let kc = KC.min(k - p0);
        let mut j = cols.start;
        while j < cols.end {
            let w = (2 * L).min(cols.end - j);
            let mut i = rows.start;
            while i < rows.end {
                let r = MR.min(rows.end - i);
                // SAFETY: rows i..i+r, K steps p0..p0+kc of A; strips j/16.. of the packed
                // B from row p0 (whole strips: padded to 16 columns); C's tile at (i, j),
                // masked to the real columns; all inside the caller's bounds.
                unsafe {
                    any_tile(
                        r,
                        w.div_ceil(L),
                        kc,
                        (a.data.as_ptr().add(i * a.rs + p0 * a.cs), a.rs, a.cs),
                        (bp.as_ptr().add(j * k + p0 * PACK_COLS), sd, PACK_COLS),
                        (c.add(i * ldc + j), ldc, w.min(n - j)),
                        p0 > 0,
                        ep.filter(|_| p0 + kc == k).map(|e| (e, i, j)),
                    )
                };
                i += r;
            }
            j += w;
        }
        p0 += kc;
    }
}

/// Most columns [`tail_dots`] takes.
const DOT_COLS: usize = 4;
/// Shortest K [`tail_dots`] takes: below it, each dot's horizontal sum costs more than
/// the AVX2 tile's idle lanes (40 → 240 on a 14×14 plane: 41 µs by the tile, 44 by dots).
const DOT_MIN_K: usize = 64;
/// Longest K [`tail_dots`] takes (its gathered columns live on the stack: 32 KiB).
const DOT_MAX_K: usize = 2048;

/// Columns `jt..j1` (at most [`DOT_COLS`]) of the block's rows of `C = A·B` as dot
/// products: the columns of B gathered once into contiguous vectors, then each row of A
/// (contiguous, `a.cs == 1`) against all of them, 16 lanes at a time. A 6×8 AVX2 tile
/// for one column used one lane in eight and was bound by its 7 loads per 6 FMAs (a
/// 7×7 plane's last column cost 6× what the lanes needed).
///
/// # Safety
/// As [`nn`], with `a.cs == 1`, `k <= DOT_MAX_K`, `j1 − jt <= DOT_COLS`.
#[target_feature(enable = "avx512f")]
unsafe fn tail_dots(blk: Block<'_>, jt: usize) {
    let Block {
        k,
        a,
        b,
        c,
        ldc,
        i0,
        i1,
        j1,
        ..
    } = blk;
    let cols = j1 - jt;
    let mut g = [[0f32; DOT_MAX_K]; DOT_COLS];
    for (q, col) in g.iter_mut().enumerate().take(cols) {
        for (p, v) in col.iter_mut().enumerate().take(k) {
            *v = b.data[p * b.rs + jt + q];
        }
    }
    let rem = k % L;
    let mask: __mmask16 = if rem == 0 { 0 } else { (1u16 << rem) - 1 };
    let full = k - rem;
    for i in i0..i1 {
        let row = &a.data[i * a.rs..i * a.rs + k];
        let mut acc = [_mm512_setzero_ps(); DOT_COLS];
        // SAFETY: `row` and the gathered columns hold k floats; the last partial vector
        // is masked to them; C's (i, jt + q) lies in the caller's rectangle.
        unsafe {
            let mut p = 0;
            while p < full {
                let av = _mm512_loadu_ps(row.as_ptr().add(p));
                for q in 0..cols {
                    acc[q] = _mm512_fmadd_ps(av, _mm512_loadu_ps(g[q].as_ptr().add(p)), acc[q]);
                }
                p += L;
            }
            if rem > 0 {
                let av = _mm512_maskz_loadu_ps(mask, row.as_ptr().add(p));
                for q in 0..cols {
                    let bv = _mm512_maskz_loadu_ps(mask, g[q].as_ptr().add(p));
                    acc[q] = _mm512_fmadd_ps(av, bv, acc[q]);
                }
            }
            for (q, acc) in acc.iter().enumerate().take(cols) {
                *c.add(i * ldc + jt + q) = _mm512_reduce_add_ps(*acc);
            }
        }
    }
}

/// `y[r] = A[r]·x` for the rows of a row-major A (`k` columns, row stride `rs`):
/// eight rows at a time, each row's products in its own 16-lane accumulator over a
/// shared load of `x` (the last partial vector masked), the eight sums then reduced
/// together. For the small matrix-vector products of squeeze-and-excitation blocks,
/// where a dot product per row spent as long on its horizontal sum and call as on the
/// row.
///
/// # Safety
/// `a` readable at `r·rs + p` (r < `y.len()`, p < k); `x` holds `k` floats; AVX-512F
/// present.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn gemv_rows(a: *const f32, rs: usize, k: usize, x: &[f32], y: &mut [f32]) {
    debug_assert!(x.len() >= k);
    let rem = k % L;
    let mask: __mmask16 = if rem == 0 { 0 } else { (1u16 << rem) - 1 };
    let full = k - rem;
    let xp = x.as_ptr();
    // SAFETY: rows below y.len(), columns below k, as the caller guarantees; the last
    // partial vector is masked to k.
    unsafe {
        let mut r = 0;
        while r + 8 <= y.len() {
            let mut acc = [_mm512_setzero_ps(); 8];
            let mut p = 0;
            while p < full {
                let xv = _mm512_loadu_ps(xp.add(p));
                for (q, acc) in acc.iter_mut().enumerate() {
                    let av = _mm512_loadu_ps(a.add((r + q) * rs + p));
                    *acc = _mm512_fmadd_ps(av, xv, *acc);
                }
                p += L;
            }
            if rem > 0 {
                let xv = _mm512_maskz_loadu_ps(mask, xp.add(p));
                for (q, acc) in acc.iter_mut().enumerate() {
                    let av = _mm512_maskz_loadu_ps(mask, a.add((r + q) * rs + p));
                    *acc = _mm512_fmadd_ps(av, xv, *acc);
                }
            }
            _mm256_storeu_ps(y.as_mut_ptr().add(r), sum8(&acc));
            r += 8;
        }
        while r < y.len() {
            let mut acc = _mm512_setzero_ps();
            let mut p = 0;
            while p < full {
                let av = _mm512_loadu_ps(a.add(r * rs + p));
                acc = _mm512_fmadd_ps(av, _mm512_loadu_ps(xp.add(p)), acc);
                p += L;
            }
            if rem > 0 {
                let av = _mm512_maskz_loadu_ps(mask, a.add(r * rs + p));
                acc = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(mask, xp.add(p)), acc);
            }
            y[r] = _mm512_reduce_add_ps(acc);
            r += 1;
        }
    }
}

/// The eight horizontal sums of eight vectors, in order, as one 8-lane vector.
#[inline]
#[target_feature(enable = "avx512f")]
fn sum8(v: &[__m512; 8]) -> __m256 {
    // Halves added (16 lanes to 8), then three rounds of pairwise adds across vectors.
    let h: [__m256; 8] = std::array::from_fn(|q| {
        _mm256_add_ps(
            _mm512_castps512_ps256(v[q]),
            _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v[q]))),
        )
    });
    let t0 = _mm256_hadd_ps(h[0], h[1]);
    let t1 = _mm256_hadd_ps(h[2], h[3]);
    let t2 = _mm256_hadd_ps(h[4], h[5]);
    let t3 = _mm256_hadd_ps(h[6], h[7]);
    let u0 = _mm256_hadd_ps(t0, t1);
    let u1 = _mm256_hadd_ps(t2, t3);
    // u0 = [a b c d | a' b' c' d'] (the two 128-bit halves' partial sums), u1 for e..h.
    _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(u0, u1),
        _mm256_permute2f128_ps::<0x31>(u0, u1),
    )
}
