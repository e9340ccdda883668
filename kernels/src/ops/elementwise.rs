//! Elementwise ops: unary activations, binary ops with numpy broadcasting (an operand may
//! be the output itself), comparisons.

use super::{par_ranges, Src, MAX_RANK};
use crate::act::Act;
use crate::pool::{SharedMut, ThreadPool};

/// `out = act(x)` (or in place).
pub fn unary(pool: &ThreadPool, act: Act, x: Src<'_>, out: &mut [f32]) {
    let n = out.len();
    let op = SharedMut::new(out);
    par_ranges(pool, n, 8, &|r| {
        // SAFETY: ranges from `par_ranges` are disjoint and inside `out`.
        #[allow(unsafe_code)]
        let o = unsafe { op.slice(r.start, r.len()) };
        if let Src::Slice(s) = x {
            o.copy_from_slice(&s[r]);
        }
        act.apply_slice(o);
    });
}

/// An elementwise binary operation on f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `max(a, b)`.
    Max,
    /// `min(a, b)`.
    Min,
    /// `a^b`.
    Pow,
}

/// Shapes and strides of a broadcast elementwise op, left-padded to [`MAX_RANK`]; a stride
/// of 0 repeats an operand along that axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Broadcast {
    /// Output dims.
    pub dims: [usize; MAX_RANK],
    /// Strides of `a` in elements.
    pub sa: [usize; MAX_RANK],
    /// Strides of `b` in elements.
    pub sb: [usize; MAX_RANK],
}

impl Broadcast {
    /// Numpy-style broadcast of two shapes already aligned to the output's rank (1 where an
    /// operand repeats). `None` if a rank exceeds [`MAX_RANK`] or the dims do not broadcast.
    pub fn new(out: &[usize], a: &[usize], b: &[usize]) -> Option<Broadcast> {
        let r = out.len();
        if r > MAX_RANK || a.len() != r || b.len() != r {
            return None;
        }
        let mut bc = Broadcast {
            dims: [1; MAX_RANK],
            sa: [0; MAX_RANK],
            sb: [0; MAX_RANK],
        };
        let (mut ra, mut rb) = (1usize, 1usize);
        for i in (0..r).rev() {
            let k = MAX_RANK - r + i;
            bc.dims[k] = out[i];
            for (d, s, run) in [
                (a[i], &mut bc.sa[k], &mut ra),
                (b[i], &mut bc.sb[k], &mut rb),
            ] {
                if d == out[i] {
                    *s = if d == 1 { 0 } else { *run };
                } else if d == 1 {
                    *s = 0;
                } else {
                    return None;
                }
                *run *= d;
            }
        }
        bc.coalesce();
        Some(bc)
    }

    /// Merges neighbouring axes that both operands walk the same way (contiguously across
    /// them, or repeating across both), so the innermost loop is as long as possible: a
    /// per-channel operand over `[n, c, h, w]` becomes rows of `h·w`.
    fn coalesce(&mut self) {
        let mut k = MAX_RANK - 1;
        while k > 0 {
            let (inner, outer) = (k, k - 1);
            let mergeable = |s: &[usize; MAX_RANK]| {
                (s[outer] == 0 && s[inner] == 0) || s[outer] == s[inner] * self.dims[inner]
            };
            if self.dims[outer] == 1 {
                // A unit axis merges with anything.
                self.sa[outer] = 0;
                self.sb[outer] = 0;
            }
            if self.dims[outer] == 1 || (mergeable(&self.sa) && mergeable(&self.sb)) {
                // Fold `outer` into `inner`, shifting the axes above down by one.
                self.dims[inner] *= self.dims[outer];
                for j in (1..=outer).rev() {
                    self.dims[j] = self.dims[j - 1];
                    self.sa[j] = self.sa[j - 1];
                    self.sb[j] = self.sb[j - 1];
                }
                self.dims[0] = 1;
                self.sa[0] = 0;
                self.sb[0] = 0;
                // All axes from 0 to `outer` moved up: stop when only unit axes remain.
                if self.dims[..=outer].iter().all(|&d| d == 1) {
                    break;
                }
            } else {
                k -= 1;
            }
        }
    }

    /// Element count of the output.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// True when the output is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The offsets of `a` and `b` at the start of output row `row` (all axes but the last).
    fn offsets(&self, row: usize) -> (usize, usize) {
        let (mut rem, mut ao, mut bo) = (row, 0, 0);
        for k in (0..MAX_RANK - 1).rev() {
            let i = rem % self.dims[k];
            rem /= self.dims[k];
            ao += i * self.sa[k];
            bo += i * self.sb[k];
        }
        (ao, bo)
    }

    /// Calls `f(row, a_offset, b_offset)` for every output row (all axes but the last) in
    /// `rows`.
    fn rows(&self, rows: std::ops::Range<usize>, mut f: impl FnMut(usize, usize, usize)) {
        for row in rows {
            let (ao, bo) = self.offsets(row);
            f(row, ao, bo);
        }
    }
}

/// `out = act(op(a, b))` with broadcasting; `a` or `b` may be [`Src::Out`] when it has the
/// output's shape.
pub fn binary(
    pool: &ThreadPool,
    op: BinOp,
    act: Act,
    bc: &Broadcast,
    a: Src<'_>,
    b: Src<'_>,
    out: &mut [f32],
) {
    let inner = bc.dims[MAX_RANK - 1];
    let total = bc.len();
    if inner == 0 || total == 0 {
        return;
    }
    let (ia, ib) = (bc.sa[MAX_RANK - 1], bc.sb[MAX_RANK - 1]);
    let op_ = SharedMut::new(out);
    // Split the flat output (not the rows: after coalescing a same-shape op is one row).
    par_ranges(pool, total, 1, &|r| {
        let mut at = r.start;
        while at < r.end {
            let row = at / inner;
            let (j0, j1) = (at % inner, (r.end - row * inner).min(inner));
            let (ao0, bo0) = bc.offsets(row);
            let (ao, bo) = (ao0 + j0 * ia, bo0 + j0 * ib);
            let n = j1 - j0;
            // SAFETY: ranges are disjoint parts of the output.
            #[allow(unsafe_code)]
            let o = unsafe { op_.slice(at, n) };
            binary_row(op, o, Operand::of(a, ao, ia, n), Operand::of(b, bo, ib, n));
            act.apply_slice(o);
            at += n;
        }
    });
}

/// One operand of a row of [`binary`].
#[derive(Clone, Copy)]
enum Operand<'a> {
    /// The output row itself (in place).
    Out,
    /// One value for the whole row.
    Scalar(f32),
    /// As many contiguous values as the row.
    Run(&'a [f32]),
    /// Values `inc` apart.
    Strided(&'a [f32], usize),
}

impl<'a> Operand<'a> {
    /// `n` values of `s` from `off`, `inc` apart.
    fn of(s: Src<'a>, off: usize, inc: usize, n: usize) -> Operand<'a> {
        match s {
            Src::Out => Operand::Out,
            Src::Slice(x) if inc == 0 => Operand::Scalar(x[off]),
            Src::Slice(x) if inc == 1 => Operand::Run(&x[off..off + n]),
            Src::Slice(x) => Operand::Strided(&x[off..off + (n - 1) * inc + 1], inc),
        }
    }
}

/// `o[j] = op(a[j], b[j])` over one row, the op chosen once (so each loop is one op and
/// vectorizes), compiled for the best instruction set.
fn binary_row(op: BinOp, o: &mut [f32], a: Operand<'_>, b: Operand<'_>) {
    crate::simd!(binary_row_body(op: BinOp, o: &mut [f32], a: Operand<'_>, b: Operand<'_>))
}

#[inline(always)]
fn binary_row_body(op: BinOp, o: &mut [f32], a: Operand<'_>, b: Operand<'_>) {
    match op {
        BinOp::Add => row_with(|x, y| x + y, o, a, b),
        BinOp::Sub => row_with(|x, y| x - y, o, a, b),
        BinOp::Mul => row_with(|x, y| x * y, o, a, b),
        BinOp::Div => row_with(|x, y| x / y, o, a, b),
        // `f32::max`/`min` semantics (a NaN operand yields the other), written out: LLVM
        // fails to select the vectorized `maxnum` for AVX-512F.
        BinOp::Max => row_with(|x, y| if y.is_nan() || x > y { x } else { y }, o, a, b),
        BinOp::Min => row_with(|x, y| if y.is_nan() || x < y { x } else { y }, o, a, b),
        BinOp::Pow => row_with(f32::powf, o, a, b),
    }
}

#[inline(always)]
fn row_with(f: impl Fn(f32, f32) -> f32 + Copy, o: &mut [f32], a: Operand<'_>, b: Operand<'_>) {
    use Operand::*;
    let n = o.len();
    let get = |x: Operand<'_>, j: usize, v: f32| match x {
        Out => v,
        Scalar(s) => s,
        Run(r) => r[j],
        Strided(r, inc) => r[j * inc],
    };
    match (a, b) {
        (Out, Run(y)) => o.iter_mut().zip(&y[..n]).for_each(|(v, y)| *v = f(*v, *y)),
        (Out, Scalar(y)) => o.iter_mut().for_each(|v| *v = f(*v, y)),
        (Run(x), Out) => o.iter_mut().zip(&x[..n]).for_each(|(v, x)| *v = f(*x, *v)),
        (Scalar(x), Out) => o.iter_mut().for_each(|v| *v = f(x, *v)),
        (Run(x), Run(y)) => {
            for ((v, x), y) in o.iter_mut().zip(&x[..n]).zip(&y[..n]) {
                *v = f(*x, *y);
            }
        }
        (Run(x), Scalar(y)) => o.iter_mut().zip(&x[..n]).for_each(|(v, x)| *v = f(*x, y)),
        (Scalar(x), Run(y)) => o.iter_mut().zip(&y[..n]).for_each(|(v, y)| *v = f(x, *y)),
        _ => {
            for (j, v) in o.iter_mut().enumerate() {
                *v = f(get(a, j, *v), get(b, j, *v));
            }
        }
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// `out = (a op b)` as 0/1 bytes, with broadcasting, for any ordered element type.
pub fn compare<T: Copy + PartialOrd>(op: CmpOp, bc: &Broadcast, a: &[T], b: &[T], out: &mut [u8]) {
    let inner = bc.dims[MAX_RANK - 1];
    let rows = bc.len() / inner.max(1);
    let (ia, ib) = (bc.sa[MAX_RANK - 1], bc.sb[MAX_RANK - 1]);
    bc.rows(0..rows, |row, ao, bo| {
        for j in 0..inner {
            let (x, y) = (a[ao + j * ia], b[bo + j * ib]);
            out[row * inner + j] = match op {
                CmpOp::Eq => x == y,
                CmpOp::Ne => x != y,
                CmpOp::Lt => x < y,
                CmpOp::Le => x <= y,
                CmpOp::Gt => x > y,
                CmpOp::Ge => x >= y,
            } as u8;
        }
    });
}
