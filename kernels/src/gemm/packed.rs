//! Products against a packed B: a constant B packed once ([`pack_b`]) into 16-column
//! strips that [`sgemm_packed`] reads sequentially, and the BLIS-style path that packs
//! both operands per block ([`panel_block`]) where B's rows alias in the cache.

use super::generic::pack_b_panel;
use super::types::{in_registers, Block, Epilogue, Mat, Panel, PACK_COLS};
use super::Gemm;
use super::{block, row_pass, PAR_MIN_FLOPS};
use crate::isa::table;
use crate::pool::{SharedMut, ThreadPool};

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
    let tab = table();
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
            if let (Some(packed), true) = (tab.gemm.packed, i1 - i0 >= 6) {
                let fin = in_registers(ep).then_some(ep);
                // SAFETY: rows i0..i1 of A (asserted to cover m × k), the packed B, this
                // task's rectangle of C, the epilogue checked against C above; the kernel
                // from the dispatch table, which holds only kernels whose features it
                // detected.
                #[allow(unsafe_code)]
                unsafe {
                    packed(k, a, bp, n, cp.0, ldc, i0..i1, j0..j1, fin)
                };
                return fin.is_some();
            }
            if let (Some(packed_row), true) = (tab.gemm.packed_row, i1 - i0 < 6) {
                // Fewer rows than a tile: a row at a time, four strips per step.
                for i in i0..i1 {
                    // SAFETY: row i of A (asserted to cover m × k); the packed B; row i,
                    // columns j0..j1 of this task's rectangle; the kernel from the dispatch
                    // table (its features detected).
                    #[allow(unsafe_code)]
                    unsafe {
                        packed_row(
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
                    block(tab, blk, &Epilogue::default())
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

/// Rows of A per packed block in [`panel_block`] (a multiple of every tile height).
pub(super) const MC: usize = 48;
/// Most columns of B per packed panel in [`panel_block`].
pub(super) const NC: usize = 1024;
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

/// The block's rectangle of `C = epilogue(A·B)` with both operands packed, BLIS-style.
/// Per block of (at most) [`PKC`] steps of K, the block's columns of B go into 16-column
/// strips once ([`pack_b_panel`]); then per [`MC`] rows, A's rows into `MR`-row panels
/// ([`super::generic::pack_a`]), and the ISA's tiles run each strip (pair) against every row panel. Every
/// read is then sequential whatever the operands' strides. Rows get their epilogue when
/// their last K block is done, while in L2. On Zen 4, 1024³ at 1 thread went from 86 to
/// 106 GFLOP/s against packing B's strips again for every 120 rows, with K in blocks of
/// 256.
///
/// # Safety
/// As [`block`], with B's rows contiguous (`b.cs == 1`), `j1 − j0 <= NC`, and `panel` the
/// dispatch table's (whose kernels' features it detected on this CPU).
#[allow(unsafe_code)]
pub(super) unsafe fn panel_block(panel: Panel, blk: Block<'_>, ep: &Epilogue<'_>) {
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
    let Panel { pack, tiles } = panel;
    let mut p0 = 0;
    while p0 < k {
        let kc = pkc.min(k - p0);
        pack_b_panel(b, p0, kc, j0, j1, bpack);
        for r0 in (i0..i1).step_by(MC) {
            let r1 = (r0 + MC).min(i1);
            pack(a, r0, r1, p0, kc, apack);
            // SAFETY: the packs hold rows r0..r1 × kc and kc × the block's columns; C's
            // rectangle is the caller's; the tiles are the table's (features detected).
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
                unsafe { row_pass(ep, c, ldc, r0..r1, j0, j1) };
            }
        }
        p0 += kc;
    }
    PACKS.set(buf);
}
