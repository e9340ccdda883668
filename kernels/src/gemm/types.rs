//! The types the GEMM's kernels share, the portable ones and those of each instruction set
//! alike: operands ([`Mat`]), the epilogue ([`Epilogue`]), a task's rectangle ([`Block`]),
//! the blocking and strip constants, and the signatures of the kernels the dispatch table
//! (`crate::isa`) holds. Nothing here dispatches: the ISA modules build on this file only.

use crate::act::portable::Act;

/// K is accumulated in blocks of this many (a `KC × NB` panel of B stays in L2).
pub const KC: usize = 256;

/// Columns per strip of a packed B ([`crate::gemm::pack_b`]).
pub const PACK_COLS: usize = 16;

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
    pub(crate) fn max_index(&self, rows: usize, cols: usize) -> usize {
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
    pub(crate) fn check_output(&self, m: usize, n: usize, c_len: usize, ldc: usize, co: usize) {
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

    /// Applies the epilogue element by element to rows `rows`, columns `j0..j1` of C at
    /// `c` (row stride `ldc`): for a few columns per row (a tile's tail columns), where
    /// [`crate::gemm`]'s vectorized row pass ([`RowPass`]) per row costs more than the values. The
    /// same operations in the same order as that pass, so the values agree bit for bit
    /// (for the activations [`in_registers`] takes).
    ///
    /// # Safety
    /// `c` valid for reads and writes at `i·ldc + j` for those rows and columns, and no
    /// other reference to them alive.
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

/// Whether a tile can apply `ep` in registers (the AVX-512 tiles do, before their store): any alpha, biases, residual and post
/// affine, with a piecewise-linear activation (the others need the vectorized
/// transcendental passes of [`crate::act`]). [`Epilogue::apply_points`] computes the same
/// values one by one.
pub(crate) fn in_registers(ep: &Epilogue<'_>) -> bool {
    matches!(
        ep.act,
        Act::Identity
            | Act::Relu
            | Act::Relu6(_)
            | Act::LeakyRelu(_)
            | Act::HardSwish { .. }
            | Act::HardSigmoid { .. }
    )
}

/// The epilogue pass over finished rows of C that a micro-kernel runs while they are in
/// L1: `Epilogue::apply_rows` (in [`crate::gemm`]), as [`Epilogue::apply_points`] takes
/// them — rows, then columns `j0..j1` of C at `c` with row stride `ldc`. The dispatcher
/// hands it to the kernels, since it reaches the vectorized activations through the
/// dispatch table, which the ISA modules sit below.
///
/// # Safety
/// As [`Epilogue::apply_points`].
pub(crate) type RowPass =
    unsafe fn(&Epilogue<'_>, *mut f32, usize, std::ops::Range<usize>, usize, usize);

/// A block's product with B's rows contiguous (`b.cs == 1`), its epilogue applied per
/// finished row tile (through the [`RowPass`]); `gemm::block` says when.
///
/// # Safety
/// As `gemm::block`: `c` valid for writes over the block's rectangle with no other alias;
/// `a` and `b` cover the shape; the kernel's instruction set present.
pub(crate) type NnKernel = unsafe fn(Block<'_>, &Epilogue<'_>, RowPass);

/// Packs rows `i0..i1`, K steps `p0..p0+kc` of A into a tile's row panels
/// (`generic::pack_a` for the tile's rows): `(a, i0, i1, p0, kc, out)`.
pub(crate) type PackA = fn(Mat<'_>, usize, usize, usize, usize, &mut [f32]);

/// One packed block of the BLIS-style path: `(kc, A's panels, rows, B's strips, columns,
/// c, ldc, accumulate)`, as the ISA modules' `panel_tiles` say.
///
/// # Safety
/// The packs as long as those functions say; `c` writable over `rows × cols` (row stride
/// `ldc`) with no other alias; the kernel's instruction set present.
pub(crate) type PanelTiles = unsafe fn(usize, &[f32], usize, &[f32], usize, *mut f32, usize, bool);

/// The packed block of the BLIS-style path for one instruction set: its A packing (rows
/// per panel those of its tile) and its tiles.
#[derive(Clone, Copy)]
pub(crate) struct Panel {
    /// A into row panels of the tile's height.
    pub(crate) pack: PackA,
    /// The tiles over the packs.
    pub(crate) tiles: PanelTiles,
}

/// Rows `rows`, columns `cols` of `C = A·B` against a packed B (`crate::gemm::pack_b`):
/// `(k, a, bp, n, c, ldc, rows, cols, epilogue applied in registers)` (the AVX-512
/// `packed`).
///
/// # Safety
/// A covers the rows × `k`; `bp` is the packed `k × n` B; `c` (C's element (0, 0)) is
/// writable over the rectangle with no other alias; the epilogue, if given, is one
/// [`in_registers`] accepts and covers C; the kernel's instruction set present.
pub(crate) type PackedTiles = unsafe fn(
    usize,
    Mat<'_>,
    &[f32],
    usize,
    *mut f32,
    usize,
    std::ops::Range<usize>,
    std::ops::Range<usize>,
    Option<&Epilogue<'_>>,
);

/// One row of `C = A·B` against a packed B over a range of its strips: `(k, a, csa, bp,
/// n, strips, c)` (the AVX2 `packed_row`).
///
/// # Safety
/// `a` readable at `p·csa` (p < k); `bp` holds the packed `k × n` B; `c` writable at `j`
/// for `j` in the strips' columns below `n`; the kernel's instruction set present.
pub(crate) type PackedRow =
    unsafe fn(usize, *const f32, usize, *const f32, usize, std::ops::Range<usize>, *mut f32);

/// `y[r] = A[r]·x` for the rows of a row-major A: `(a, rs, k, x, y)` (the AVX-512
/// `gemv_rows`).
///
/// # Safety
/// `a` readable at `r·rs + p` (r < `y.len()`, p < k); `x` holds `k` floats; the kernel's
/// instruction set present.
pub(crate) type Gemv = unsafe fn(*const f32, usize, usize, &[f32], &mut [f32]);
