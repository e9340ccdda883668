//! The portable side of the GEMM: the packing both instruction sets' BLIS-style path reads
//! (A into row panels, [`pack_a`]; B into 16-column strips, [`pack_b_panel`], also the
//! layout of `gemm::pack_b`), the generic micro-kernel (plain loops the compiler
//! vectorizes, [`nn_generic`]) and the 16-lane dot product.

use super::types::{Block, Epilogue, Mat, RowPass, KC, PACK_COLS};
use crate::consts::LANES;

/// Rows and columns of the generic micro-kernel's tile ([`nn_generic`]).
pub(crate) const TILE: (usize, usize) = (4, 8);

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

/// Rows `p0..p0+kc`, columns `j0..j1` of B (rows contiguous) into 16-column strips: strip
/// `s` holds columns `j0 + 16s ..` (zeros past `j1`), its row `p` at `16·(s·kc + p)` — the
/// layout of [`crate::gemm::pack_b`] for that sub-matrix. B's rows are read one after another.
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
    row_pass: RowPass,
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
                unsafe { row_pass(ep, c, ldc, i..i + mr, j0, j1) };
            }
            i += mr;
        }
        p0 += kc;
    }
}

/// The generic NN kernel ([`super::types::NnKernel`]): the block loop with [`TILE`]'s
/// tiles, plain multiply-adds.
///
/// # Safety
/// As [`super::types::NnKernel`].
#[allow(unsafe_code)]
pub(crate) unsafe fn nn_generic(blk: Block<'_>, ep: &Epilogue<'_>, row_pass: RowPass) {
    // SAFETY: the caller's contract.
    unsafe { nn_loop::<{ TILE.0 }, { TILE.1 }, false>(blk, ep, row_pass) }
}

/// A dot product in 16 independent lanes (so it vectorizes without reassociation).
#[inline(always)]
pub(crate) fn dot_lanes(x: &[f32], y: &[f32]) -> f32 {
    const L: usize = LANES;
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
