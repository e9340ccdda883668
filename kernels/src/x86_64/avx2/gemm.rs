//! The AVX2+FMA micro-kernels of [`crate::gemm`], written with intrinsics so that the
//! accumulators are `__m256` registers by construction (the auto-vectorized tile kept its
//! edge tiles on the stack and ran them scalar).
//!
//! A tile is `MR` rows × `NV` vectors of 8 columns. Full row tiles are 6 × 16 (12
//! accumulators); fewer rows take wider tiles so that at least 6–8 independent FMA chains
//! hide the FMA latency (1 row × 64 columns for a matrix-vector product). A tile narrower
//! than its vectors reads B full width where B's slice allows and writes its last vector
//! of C through a local copy (see [`tile`]).

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::gemm::types::{Block, Epilogue, RowPass, KC, PACK_COLS};

/// Rows per full tile.
pub(crate) const MR: usize = 6;
/// Rows and columns of a full tile (6 × 2 vectors), the unit the GEMM cuts its tasks in.
pub(crate) const TILE: (usize, usize) = (MR, 16);

/// Lanes `< n` set (n in 1..=8).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn lanes(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(n as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// One `R × 8·NV` tile over `kc` steps of K, of which the first `nr` (in `8·NV−7 ..=
/// 8·NV`) columns are real; `acc_in` adds to what C holds.
///
/// A narrower tile reads B full width in place when that stays inside B's slice
/// (`b_avail` floats readable from `b`; the extra lanes are computed and dropped), else
/// its last vector with a masked load; its last vector of C goes through a local copy
/// (masked stores are microcoded and slow on AMD).
///
/// # Safety
/// `a` readable at `i·rsa + p·csa` (i < R, p < kc), `b` at `p·ldb + j` (j < nr) and at
/// any offset below `b_avail`, `c` writable at `i·ldc + j` (j < nr).
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn tile<const R: usize, const NV: usize>(
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
    let last = nr - 8 * (NV - 1);
    let in_place = last == 8 || (kc - 1) * ldb + 8 * NV <= b_avail;
    let mut acc = [[_mm256_setzero_ps(); NV]; R];
    // SAFETY: every access is inside the bounds the caller guarantees: full-width B reads
    // only when `in_place`, C's last vector through `buf` when partial.
    unsafe {
        if acc_in {
            for i in 0..R {
                for v in 0..NV {
                    let p = c.add(i * ldc + 8 * v);
                    acc[i][v] = if v + 1 < NV || last == 8 {
                        _mm256_loadu_ps(p)
                    } else {
                        let mut buf = [0f32; 8];
                        std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), last);
                        _mm256_loadu_ps(buf.as_ptr())
                    };
                }
            }
        }
        if in_place {
            for p in 0..kc {
                let bp = b.add(p * ldb);
                let mut bv = [_mm256_setzero_ps(); NV];
                for v in 0..NV {
                    bv[v] = _mm256_loadu_ps(bp.add(8 * v));
                }
                for i in 0..R {
                    let av = _mm256_broadcast_ss(&*a.add(i * rsa + p * csa));
                    for v in 0..NV {
                        acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
                    }
                }
            }
        } else {
            let mask = lanes(last);
            for p in 0..kc {
                let bp = b.add(p * ldb);
                let mut bv = [_mm256_setzero_ps(); NV];
                for v in 0..NV {
                    bv[v] = if v + 1 < NV {
                        _mm256_loadu_ps(bp.add(8 * v))
                    } else {
                        _mm256_maskload_ps(bp.add(8 * v), mask)
                    };
                }
                for i in 0..R {
                    let av = _mm256_broadcast_ss(&*a.add(i * rsa + p * csa));
                    for v in 0..NV {
                        acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
                    }
                }
            }
        }
        for i in 0..R {
            for v in 0..NV {
                let p = c.add(i * ldc + 8 * v);
                if v + 1 < NV || last == 8 {
                    _mm256_storeu_ps(p, acc[i][v]);
                } else {
                    let mut buf = [0f32; 8];
                    _mm256_storeu_ps(buf.as_mut_ptr(), acc[i][v]);
                    std::ptr::copy_nonoverlapping(buf.as_ptr(), p, last);
                }
            }
        }
    }
}

/// The widest tile (in vectors of 8 columns) for a row tile of `r` rows.
fn max_vectors(r: usize) -> usize {
    match r {
        1 => 8,
        2 => 4,
        3 => 3,
        _ => 2,
    }
}

/// Rows `i0..i1`, columns `j0..j1` of `C = A·B` with B's rows contiguous (`b.cs == 1`),
/// the epilogue applied per finished row tile (`row_pass`).
///
/// # Safety
/// As `gemm::block`: `c` valid for writes over the rectangle with no other alias; `a` and
/// `b` cover the shape; AVX2 and FMA present.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn nn(blk: Block<'_>, ep: &Epilogue<'_>, row_pass: RowPass) {
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
    let mut p0 = 0;
    while p0 < k {
        let kc = KC.min(k - p0);
        let acc = p0 > 0;
        let mut i = i0;
        while i < i1 {
            let mr = MR.min(i1 - i);
            let width = 8 * max_vectors(mr);
            let mut j = j0;
            while j < j1 {
                let nr = width.min(j1 - j);
                let nv = nr.div_ceil(8);
                // SAFETY: (i..i+mr, p0..p0+kc) lies in A, (p0..p0+kc, j..j+nr) in B (the
                // caller checked the shapes); the tile lies in the caller's rectangle.
                unsafe {
                    let at = ap.add(i * a.rs + p0 * a.cs);
                    let bt = bp.add(p0 * b.rs + j);
                    let ct = c.add(i * ldc + j);
                    let b_avail = b.data.len() - (p0 * b.rs + j);
                    macro_rules! go {
                        ($r:literal, $($v:literal)*) => {
                            match nv {
                                $($v => tile::<$r, $v>(
                                    kc, at, a.rs, a.cs, bt, b.rs, b_avail, ct, ldc, nr, acc,
                                ),)*
                                _ => unreachable!("tile of {} vectors", nv),
                            }
                        };
                    }
                    match mr {
                        6 => go!(6, 1 2),
                        5 => go!(5, 1 2),
                        4 => go!(4, 1 2),
                        3 => go!(3, 1 2 3),
                        2 => go!(2, 1 2 3 4),
                        _ => go!(1, 1 2 3 4 5 6 7 8),
                    }
                }
                j += nr;
            }
            if fuse && p0 + kc == k {
                // The row tile just finished: its epilogue while it is still in L1.
                // SAFETY: rows i..i+mr, columns j0..j1 of the caller's rectangle.
                unsafe { row_pass(ep, c, ldc, i..i + mr, j0, j1) };
            }
            i += mr;
        }
        p0 += kc;
    }
}

/// Columns of a packed strip of B.
const NP: usize = PACK_COLS;

/// One packed block of `C = A·B` (`gemm::packed::panel_block`): `rows` rows of A in
/// 6-row panels (`ap`, by `pack_a::<6>`) against `cols` columns of B in 16-column strips
/// (`bp`, by `pack_b_panel`), both over `kc` steps of K; C at `c`. Each strip runs
/// against every row panel of the block.
///
/// # Safety
/// `ap` holds `⌈rows/6⌉·6·kc` floats, `bp` `⌈cols/16⌉·16·kc`; `c` is writable over
/// `rows × cols` (row stride `ldc`) with no other alias; AVX2 and FMA present.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn panel_tiles(
    kc: usize,
    ap: &[f32],
    rows: usize,
    bp: &[f32],
    cols: usize,
    c: *mut f32,
    ldc: usize,
    acc: bool,
) {
    debug_assert!(
        ap.len() >= rows.div_ceil(MR) * MR * kc && bp.len() >= cols.div_ceil(NP) * NP * kc
    );
    for j in (0..cols).step_by(NP) {
        let nr = NP.min(cols - j);
        let nv = nr.div_ceil(8);
        let bt = bp[j * kc..].as_ptr();
        let avail = bp.len() - j * kc;
        for t in 0..rows.div_ceil(MR) {
            let mr = MR.min(rows - t * MR);
            // SAFETY: panel t holds mr rows × kc (6 per K step); strip j/16 holds kc rows
            // of 16 (zero-padded); the tile lies in the caller's rectangle.
            unsafe {
                let at = ap.as_ptr().add(t * MR * kc);
                let ct = c.add(t * MR * ldc + j);
                macro_rules! go {
                    ($r:literal) => {
                        if nv == 2 {
                            tile::<$r, 2>(kc, at, 1, MR, bt, NP, avail, ct, ldc, nr, acc)
                        } else {
                            tile::<$r, 1>(kc, at, 1, MR, bt, NP, avail, ct, ldc, nr, acc)
                        }
                    };
                }
                match mr {
                    6 => go!(6),
                    5 => go!(5),
                    4 => go!(4),
                    3 => go!(3),
                    2 => go!(2),
                    _ => go!(1),
                }
            }
        }
    }
}

/// One row of `C = A·B` against a packed B ([`crate::gemm::pack_b`]), over its strips
/// `strips`, four strips (64 columns, 8 accumulator chains) at a time: the rows a packed
/// product has too few of for 6-row tiles (a matrix-vector product, a block's last rows),
/// where one strip's 2 chains would leave the FMA units waiting on latency.
///
/// # Safety
/// `a` readable at `p·csa` (p < k); `bp` holds the packed `k × n` B; `c` writable at
/// `j` for `j` in the strips' columns below `n` (C's row, column 0 at `c`); AVX2 and FMA present.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn packed_row(
    k: usize,
    a: *const f32,
    csa: usize,
    bp: *const f32,
    n: usize,
    strips: std::ops::Range<usize>,
    c: *mut f32,
) {
    let strip = k * NP;
    let (mut s, s1) = (strips.start, strips.end);
    while s < s1 {
        let w = 4.min(s1 - s);
        let mut acc = [[_mm256_setzero_ps(); 2]; 4];
        // SAFETY: strips s..s+w lie in `bp` (k × 16 floats each); `a` as the caller says.
        unsafe {
            let b = bp.add(s * strip);
            macro_rules! steps {
                ($w:literal) => {
                    for p in 0..k {
                        let av = _mm256_broadcast_ss(&*a.add(p * csa));
                        for (q, acc) in acc.iter_mut().enumerate().take($w) {
                            let bq = b.add(q * strip + p * NP);
                            acc[0] = _mm256_fmadd_ps(av, _mm256_loadu_ps(bq), acc[0]);
                            acc[1] = _mm256_fmadd_ps(av, _mm256_loadu_ps(bq.add(8)), acc[1]);
                        }
                    }
                };
            }
            match w {
                4 => steps!(4),
                3 => steps!(3),
                2 => steps!(2),
                _ => steps!(1),
            }
            for (q, acc) in acc.iter().enumerate().take(w) {
                let j = (s + q) * NP;
                let cols = NP.min(n - j);
                let mut buf = [0f32; NP];
                _mm256_storeu_ps(buf.as_mut_ptr(), acc[0]);
                _mm256_storeu_ps(buf.as_mut_ptr().add(8), acc[1]);
                std::ptr::copy_nonoverlapping(buf.as_ptr(), c.add(j), cols);
            }
        }
        s += w;
    }
}
