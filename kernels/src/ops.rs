//! Everything but products and convolutions: pooling, normalization, softmax, attention,
//! squeeze-excitation, elementwise with broadcasting, and layout moves. All write into
//! caller-given buffers; ops that can run in place take a [`Src`] that may be the output.

use crate::act::Act;
use crate::pool::{chunk_range, chunks, SharedMut, ThreadPool};

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

// ---------------------------------------------------------------------------------------
// Unary

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

// ---------------------------------------------------------------------------------------
// Binary with broadcasting

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

// ---------------------------------------------------------------------------------------
// Normalization and softmax

/// Softmax over the middle axis of `[outer, len, inner]`, in place or from `x`.
pub fn softmax(
    pool: &ThreadPool,
    outer: usize,
    len: usize,
    inner: usize,
    x: Src<'_>,
    out: &mut [f32],
) {
    x.load_into(out);
    let op = SharedMut::new(out);
    if inner == 1 {
        par_ranges(pool, outer, len * 4, &|r| {
            // SAFETY: disjoint row ranges.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(r.start * len, r.len() * len) };
            for row in o.chunks_exact_mut(len) {
                softmax_row(row);
            }
        });
    } else {
        par_ranges(pool, outer, len * inner * 4, &|r| {
            for b in r {
                // SAFETY: disjoint outer blocks.
                #[allow(unsafe_code)]
                let o = unsafe { op.slice(b * len * inner, len * inner) };
                for i in 0..inner {
                    let mut m = f32::NEG_INFINITY;
                    for l in 0..len {
                        m = m.max(o[l * inner + i]);
                    }
                    let mut s = 0.0f32;
                    for l in 0..len {
                        let e = (o[l * inner + i] - m).exp();
                        o[l * inner + i] = e;
                        s += e;
                    }
                    let inv = 1.0 / s;
                    for l in 0..len {
                        o[l * inner + i] *= inv;
                    }
                }
            }
        });
    }
}

/// Softmax of one contiguous row, in place.
pub fn softmax_row(row: &mut [f32]) {
    let m = reduce_lanes(row, true);
    let s = crate::act::exp_sum(row, m);
    let inv = 1.0 / s;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// Layer normalization of each `cols`-long row, in place.
pub fn layer_norm_row(row: &mut [f32], scale: Option<&[f32]>, bias: Option<&[f32]>, eps: f32) {
    crate::simd!(layer_norm_row_body(
        row: &mut [f32],
        scale: Option<&[f32]>,
        bias: Option<&[f32]>,
        eps: f32
    ))
}

/// `Σ f(x)` in 16 independent lanes (so it vectorizes; a plain `sum` is one chain of
/// dependent adds).
#[inline(always)]
fn sum_lanes(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    const L: usize = 16;
    let full = x.len() / L * L;
    let mut acc = [0f32; L];
    for c in x[..full].chunks_exact(L) {
        for l in 0..L {
            acc[l] += f(c[l]);
        }
    }
    acc.iter().sum::<f32>() + x[full..].iter().map(|&v| f(v)).sum::<f32>()
}

#[inline(always)]
fn layer_norm_row_body(row: &mut [f32], scale: Option<&[f32]>, bias: Option<&[f32]>, eps: f32) {
    let n = row.len() as f32;
    let mean = sum_lanes(row, |v| v) / n;
    let var = sum_lanes(row, |v| (v - mean) * (v - mean)) / n;
    let inv = 1.0 / (var + eps).sqrt();
    match (scale, bias) {
        (Some(s), Some(b)) => {
            for ((v, s), b) in row.iter_mut().zip(s).zip(b) {
                *v = (*v - mean) * inv * s + b;
            }
        }
        (Some(s), None) => {
            for (v, s) in row.iter_mut().zip(s) {
                *v = (*v - mean) * inv * s;
            }
        }
        (None, Some(b)) => {
            for (v, b) in row.iter_mut().zip(b) {
                *v = (*v - mean) * inv + b;
            }
        }
        (None, None) => row.iter_mut().for_each(|v| *v = (*v - mean) * inv),
    }
}

/// `out = layer_norm(a + b)` over rows of `cols` (`b` absent: plain layer norm). Either
/// input may be [`Src::Out`].
#[allow(clippy::too_many_arguments)]
pub fn skip_layer_norm(
    pool: &ThreadPool,
    cols: usize,
    a: Src<'_>,
    b: Option<Src<'_>>,
    scale: Option<&[f32]>,
    bias: Option<&[f32]>,
    eps: f32,
    out: &mut [f32],
) {
    if cols == 0 {
        return;
    }
    let rows = out.len() / cols;
    let op = SharedMut::new(out);
    par_ranges(pool, rows, cols * 6, &|r| {
        for row in r {
            // SAFETY: disjoint rows.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(row * cols, cols) };
            let rr = row * cols..(row + 1) * cols;
            match (a, b) {
                (Src::Slice(a), None) => o.copy_from_slice(&a[rr]),
                (Src::Out, None) | (Src::Out, Some(Src::Out)) => {}
                (Src::Out, Some(Src::Slice(b))) | (Src::Slice(b), Some(Src::Out)) => {
                    o.iter_mut().zip(&b[rr]).for_each(|(v, y)| *v += y)
                }
                (Src::Slice(a), Some(Src::Slice(b))) => {
                    for ((v, x), y) in o.iter_mut().zip(&a[rr.clone()]).zip(&b[rr]) {
                        *v = x + y;
                    }
                }
            }
            if matches!((a, b), (Src::Out, Some(Src::Out))) {
                o.iter_mut().for_each(|v| *v += *v);
            }
            layer_norm_row(o, scale, bias, eps);
        }
    });
}

/// `out[r, :] = layer_norm(Σᵢ tableᵢ[idsᵢ[r], :])` for the token rows `r` of the output's
/// leading dims `lead` (left-padded to 4). Lookup `i` reads its id for row
/// `(r₀, r₁, r₂, r₃)` at `Σ rₖ·strides[i][k]` (stride 0 where its ids broadcast). An id
/// outside its table is reported as `Err((lookup, row, id))`; a row whose id is its
/// lookup's `padding_idx` reads as zeros.
#[allow(clippy::too_many_arguments)]
pub fn embedding_layer_norm(
    ids: &[&[i64]],
    strides: &[[usize; 4]],
    lead: [usize; 4],
    tables: &[(&[f32], usize)],
    padding: &[Option<i64>],
    cols: usize,
    scale: Option<&[f32]>,
    bias: Option<&[f32]>,
    eps: f32,
    out: &mut [f32],
) -> Result<(), (usize, usize, i64)> {
    let rows = out.len() / cols.max(1);
    for r in 0..rows {
        let o = &mut out[r * cols..(r + 1) * cols];
        o.fill(0.0);
        let mut idx = [0usize; 4];
        let mut rem = r;
        for k in (0..4).rev() {
            idx[k] = rem % lead[k].max(1);
            rem /= lead[k].max(1);
        }
        for (l, ((ids, (table, vocab)), pad)) in ids.iter().zip(tables).zip(padding).enumerate() {
            let at: usize = (0..4).map(|k| idx[k] * strides[l][k]).sum();
            let id = ids[at];
            if id < 0 || id as usize >= *vocab {
                return Err((l, r, id));
            }
            if Some(id) == *pad {
                continue;
            }
            let t = &table[id as usize * cols..(id as usize + 1) * cols];
            o.iter_mut().zip(t).for_each(|(v, x)| *v += x);
        }
        layer_norm_row(o, scale, bias, eps);
    }
    Ok(())
}

/// Inference batch norm over `[outer, c, inner]` (channel axis in the middle): per channel
/// `y = (x − mean)·scale/√(var + eps) + bias`, in place or from `x`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    pool: &ThreadPool,
    (outer, c, inner): (usize, usize, usize),
    x: Src<'_>,
    (scale, bias, mean, var): (&[f32], &[f32], &[f32], &[f32]),
    eps: f32,
    out: &mut [f32],
) {
    let op = SharedMut::new(out);
    par_ranges(pool, outer * c, inner, &|r| {
        for plane in r {
            let ch = plane % c;
            let a = scale[ch] / (var[ch] + eps).sqrt();
            let b = bias[ch] - mean[ch] * a;
            // SAFETY: disjoint planes of the output.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(plane * inner, inner) };
            match x {
                Src::Slice(x) => o
                    .iter_mut()
                    .zip(&x[plane * inner..(plane + 1) * inner])
                    .for_each(|(v, x)| *v = x * a + b),
                Src::Out => o.iter_mut().for_each(|v| *v = *v * a + b),
            }
        }
    });
}

/// Embedding lookup: row `ids[i]` of `table` (`[vocab, d]`) into `out[i, :]`; the
/// `padding` id's rows read as zeros. An id outside the table is `Err((position, id))`.
pub fn embedding<I: Copy + Into<i64>>(
    ids: &[I],
    table: &[f32],
    (vocab, d): (usize, usize),
    padding: Option<i64>,
    out: &mut [f32],
) -> Result<(), (usize, i64)> {
    for (i, (&id, o)) in ids.iter().zip(out.chunks_exact_mut(d.max(1))).enumerate() {
        let id: i64 = id.into();
        if id < 0 || id as usize >= vocab {
            return Err((i, id));
        }
        if Some(id) == padding {
            o.fill(0.0);
        } else {
            o.copy_from_slice(&table[id as usize * d..(id as usize + 1) * d]);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Squeeze-and-excitation

/// `out = x · act2(w2 · act1(w1 · mean_hw(x) + b1) + b2)` per channel, over `[n, c, hw]`.
/// `w1` is `[c1, c]`, `w2` is `[c, c1]`; `scratch` holds `c + c1` floats. With `means`
/// (`[n, c]`, the op before computed them as it wrote `x`: see
/// [`crate::conv::depthwise_means`]) the pass over `x` for them is skipped.
#[allow(clippy::too_many_arguments)]
pub fn se_block(
    pool: &ThreadPool,
    (n, c, hw): (usize, usize, usize),
    x: Src<'_>,
    (w1, b1, w2, b2): (&[f32], &[f32], &[f32], &[f32]),
    (act1, act2): (Act, Act),
    out: &mut [f32],
    scratch: &mut [f32],
    means: Option<&[f32]>,
) {
    let c1 = b1.len();
    assert!(means.is_none_or(|m| m.len() >= n * c), "SE means too short");
    let (mean, hidden) = scratch[..c + c1].split_at_mut(c);
    for b in 0..n {
        let img = b * c * hw..(b + 1) * c * hw;
        if let Some(m) = means {
            mean.copy_from_slice(&m[b * c..(b + 1) * c]);
        } else {
            let src: &[f32] = match x {
                Src::Slice(s) => &s[img.clone()],
                Src::Out => &out[img.clone()],
            };
            let mp = SharedMut::new(&mut *mean);
            par_ranges(pool, c, hw, &|r| {
                // SAFETY: disjoint channel ranges of `mean`.
                #[allow(unsafe_code)]
                let ms = unsafe { mp.slice(r.start, r.len()) };
                reduce_planes(&src[r.start * hw..r.end * hw], hw, false, ms);
                ms.iter_mut().for_each(|m| *m /= hw as f32);
            });
        }
        // The tasks above are done: `mean` (only reborrowed for the raw pointer) holds the
        // means. The two projections are matrix-vector products, rows split over the pool
        // (one thread below ~32K multiply-adds), each range's bias and activation in one
        // pass; the gates go back into `mean`'s place.
        let project = |w: &[f32], v: &[f32], bias: &[f32], act: Act, y: &mut [f32]| {
            let k = v.len();
            let yp = SharedMut::new(y);
            par_ranges(pool, bias.len(), k, &|r| {
                // SAFETY: disjoint row ranges of `y`.
                #[allow(unsafe_code)]
                let ys = unsafe { yp.slice(r.start, r.len()) };
                crate::gemm::gemv_rows(w, k, v, r.clone(), ys);
                ys.iter_mut().zip(&bias[r]).for_each(|(y, b)| *y += b);
                act.apply_slice(ys);
            });
        };
        project(w1, mean, b1, act1, hidden);
        project(w2, hidden, b2, act2, mean);
        let gates: &[f32] = mean;
        let o = SharedMut::new(&mut out[img.clone()]);
        par_ranges(pool, c, hw, &|r| {
            // SAFETY: disjoint channel planes of this image.
            #[allow(unsafe_code)]
            let planes = unsafe { o.slice(r.start * hw, r.len() * hw) };
            let src = match x {
                Src::Slice(s) => Some(&s[img.start + r.start * hw..img.start + r.end * hw]),
                Src::Out => None,
            };
            scale_planes(planes, src, &gates[r], hw);
        });
    }
}

// ---------------------------------------------------------------------------------------
// Attention

/// Geometry of multi-head attention on packed heads: Q is `[b, s, ·]`, K and V `[b, t, ·]`;
/// head `h` of a row occupies `h·d .. (h+1)·d` after the operand's offset. Row strides let
/// Q, K and V live in one packed `[b, s, 3·H·D]` tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttnGeom {
    /// Batch.
    pub b: usize,
    /// Query length.
    pub s: usize,
    /// Key length.
    pub t: usize,
    /// Heads.
    pub heads: usize,
    /// Head size.
    pub d: usize,
    /// Logit multiplier.
    pub scale: f32,
    /// Row stride of Q, K and V (elements).
    pub row: usize,
    /// Offsets of Q, K and V within a row.
    pub off: [usize; 3],
    /// Strides of the mask over (b, h, s, t); all zero without a mask.
    pub mask_strides: [usize; 4],
}

/// Scratch floats [`attention`] needs at `threads` threads: per thread one head's logits
/// (`s × t`) and its transposed keys (`d × t`).
pub fn attention_scratch(g: &AttnGeom, threads: usize) -> usize {
    threads.max(1) * (g.s * g.t + g.d * g.t)
}

/// `out[b, s, h·D + d] = Σ_t softmax_t(scale·q·k + mask) · v`, out `[b, s, H·D]`. `q`, `k`,
/// `v` may be the same slice (packed). Per (batch, head): the logits `scale·Q·Kᵀ` as one
/// product (keys transposed into scratch so the register-tiled kernel runs), the mask and
/// a softmax per row, then `P·V` as a second product written straight into the head's
/// columns of the output. (Batch, head) pairs are split over the pool.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    pool: &ThreadPool,
    g: &AttnGeom,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    use crate::gemm::{sgemm_serial, Epilogue, Gemm, Mat};
    let hd = g.heads * g.d;
    let units = g.b * g.heads;
    let threads = if units * g.s * g.t * g.d < 1 << 15 {
        1
    } else {
        pool.threads().min(units).max(1)
    };
    let per = g.s * g.t + g.d * g.t;
    assert!(
        scratch.len() >= threads * per,
        "attention scratch too short"
    );
    if g.s == 0 || g.t == 0 || g.d == 0 {
        return;
    }
    let op = SharedMut::new(out);
    let sp = SharedMut::new(scratch);
    let task = |th: usize| {
        // SAFETY: each task has its own scratch slot.
        #[allow(unsafe_code)]
        let mine = unsafe { sp.slice(th * per, per) };
        let (logits, kt) = mine.split_at_mut(g.s * g.t);
        for u in chunk_range(units, threads, th) {
            let (bi, hi) = (u / g.heads, u % g.heads);
            // Kᵀ of this head: kt[d][t].
            for ti in 0..g.t {
                let kr = &k[(bi * g.t + ti) * g.row + g.off[1] + hi * g.d..][..g.d];
                for (di, &x) in kr.iter().enumerate() {
                    kt[di * g.t + ti] = x;
                }
            }
            let qh = Mat {
                data: &q[bi * g.s * g.row + g.off[0] + hi * g.d..],
                rs: g.row,
                cs: 1,
            };
            sgemm_serial(
                Gemm {
                    m: g.s,
                    n: g.t,
                    k: g.d,
                },
                qh,
                Mat::rows(kt, g.t),
                logits,
                g.t,
                &Epilogue {
                    alpha: g.scale,
                    ..Epilogue::default()
                },
            );
            for (si, row) in logits.chunks_exact_mut(g.t).enumerate() {
                if let Some(m) = mask {
                    let [ma, mb, mc, md] = g.mask_strides;
                    let base = bi * ma + hi * mb + si * mc;
                    if md == 1 {
                        row.iter_mut()
                            .zip(&m[base..base + g.t])
                            .for_each(|(l, x)| *l += x);
                    } else {
                        row.iter_mut()
                            .enumerate()
                            .for_each(|(ti, l)| *l += m[base + ti * md]);
                    }
                }
                softmax_row(row);
            }
            // SAFETY: unit (b, h) owns rows b·s .. (b+1)·s, columns h·D .. (h+1)·D of the
            // output; units are disjoint, and the slice is only written at those elements.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(bi * g.s * hd + hi * g.d, (g.s - 1) * hd + g.d) };
            sgemm_serial(
                Gemm {
                    m: g.s,
                    n: g.d,
                    k: g.t,
                },
                Mat::rows(logits, g.t),
                Mat {
                    data: &v[bi * g.t * g.row + g.off[2] + hi * g.d..],
                    rs: g.row,
                    cs: 1,
                },
                o,
                hd,
                &Epilogue::default(),
            );
        }
    };
    pool.run(threads, &task);
}

// ---------------------------------------------------------------------------------------
// Pooling

/// A 2-D pooling window geometry (NCHW, padding resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2d {
    /// Max (else average).
    pub max: bool,
    /// Planes (`n · c`).
    pub planes: usize,
    /// Input size.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output size.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Window.
    pub k: [usize; 2],
    /// Strides.
    pub s: [usize; 2],
    /// Padding before (top, left).
    pub pad: [usize; 2],
    /// Adaptive windows (`k`, `s`, `pad` unused).
    pub adaptive: bool,
    /// Average over the valid elements only (else over the padded window).
    pub exclusive: bool,
}

/// Pools each plane of `x` into `out`.
pub fn pool2d(pool: &ThreadPool, p: &Pool2d, x: &[f32], out: &mut [f32]) {
    let (hw, ohw) = (p.h * p.w, p.oh * p.ow);
    let op = SharedMut::new(out);
    // (start, end) clipped to the input, and the window size counted when not exclusive.
    let win = |i: usize, ax: usize, len: usize, o: usize| -> (usize, usize, usize) {
        if p.adaptive {
            let start = (i * len) / o;
            let end = ((i + 1) * len).div_ceil(o);
            (start, end, end - start)
        } else {
            let start = (i * p.s[ax]) as isize - p.pad[ax] as isize;
            let end = (start + p.k[ax] as isize).min(len as isize);
            let sc = start.max(0);
            (sc as usize, end.max(sc) as usize, p.k[ax])
        }
    };
    // Small windows that all lie inside the plane (PP-LCNet's final 2×2 max pool) skip
    // the clipping; large ones keep the lane-reduced path below.
    let inside = !p.adaptive
        && p.k[0] * p.k[1] < 32
        && p.pad == [0, 0]
        && p.oh > 0
        && p.ow > 0
        && (p.oh - 1) * p.s[0] + p.k[0] <= p.h
        && (p.ow - 1) * p.s[1] + p.k[1] <= p.w;
    // One output per plane whose window is the whole plane (global pooling): the planes
    // of a range reduced in one call (a call per plane cost more than MobileNetV3's 49
    // floats each: 576 planes took 10 µs).
    let whole = p.oh == 1 && p.ow == 1 && hw > 0 && {
        let ((y0, y1, ky), (x0, x1, kx)) = (win(0, 0, p.h, 1), win(0, 1, p.w, 1));
        (y0, y1, x0, x1) == (0, p.h, 0, p.w) && (p.exclusive || p.adaptive || ky * kx == hw)
    };
    if whole {
        par_ranges(pool, p.planes, hw, &|r| {
            // SAFETY: disjoint output ranges (one float per plane).
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(r.start, r.len()) };
            reduce_planes(&x[r.start * hw..r.end * hw], hw, p.max, o);
            if !p.max {
                o.iter_mut().for_each(|v| *v /= hw as f32);
            }
        });
        return;
    }
    par_ranges(pool, p.planes, hw, &|r| {
        for pl in r {
            let xs = &x[pl * hw..(pl + 1) * hw];
            // SAFETY: disjoint output planes.
            #[allow(unsafe_code)]
            let o = unsafe { op.slice(pl * ohw, ohw) };
            if inside {
                // Every window lies inside the plane: no clipping, and each output is
                // reduced row by row as below (same order, same result).
                let [kh, kw] = p.k;
                let count = (kh * kw) as f32;
                for (oy, orow) in o.chunks_exact_mut(p.ow).enumerate() {
                    let rows = &xs[oy * p.s[0] * p.w..(oy * p.s[0] + kh) * p.w];
                    for (ox, d) in orow.iter_mut().enumerate() {
                        let x0 = ox * p.s[1];
                        if p.max {
                            // `v > m` skips NaN as `f32::max` does, without its NaN fix-up
                            // in the dependency chain; rows reduce independently.
                            let gt = |m: f32, v: f32| if v > m { v } else { m };
                            *d = rows
                                .chunks_exact(p.w)
                                .map(|r| {
                                    r[x0..x0 + kw]
                                        .iter()
                                        .fold(f32::NEG_INFINITY, |m, &v| gt(m, v))
                                })
                                .fold(f32::NEG_INFINITY, gt);
                        } else {
                            let mut s = 0.0f32;
                            for r in rows.chunks_exact(p.w) {
                                s += r[x0..x0 + kw].iter().sum::<f32>();
                            }
                            *d = s / count;
                        }
                    }
                }
                continue;
            }
            for oy in 0..p.oh {
                let (y0, y1, ky) = win(oy, 0, p.h, p.oh);
                for ox in 0..p.ow {
                    let (x0, x1, kx) = win(ox, 1, p.w, p.ow);
                    // A window of whole rows (global pooling, SE blocks) is one contiguous
                    // block: reduced in lanes, not one sequential chain of adds.
                    if x0 == 0 && x1 == p.w && (y1 - y0) * p.w >= 32 {
                        let block = &xs[y0 * p.w..y1 * p.w];
                        o[oy * p.ow + ox] = if p.max {
                            reduce_lanes(block, true)
                        } else {
                            let count = if p.exclusive || p.adaptive {
                                block.len()
                            } else {
                                ky * kx
                            };
                            reduce_lanes(block, false) / count.max(1) as f32
                        };
                        continue;
                    }
                    o[oy * p.ow + ox] = if p.max {
                        let mut m = f32::NEG_INFINITY;
                        for iy in y0..y1 {
                            for v in &xs[iy * p.w + x0..iy * p.w + x1] {
                                m = m.max(*v);
                            }
                        }
                        m
                    } else {
                        let mut s = 0.0f32;
                        for iy in y0..y1 {
                            s += xs[iy * p.w + x0..iy * p.w + x1].iter().sum::<f32>();
                        }
                        let count = if p.exclusive || p.adaptive {
                            (y1 - y0) * (x1 - x0)
                        } else {
                            ky * kx
                        };
                        s / count.max(1) as f32
                    };
                }
            }
        }
    });
}

/// `planes[i] = src[i] · gates[i / hw]` (`src` absent: `planes` itself), one call for
/// all the planes: on AVX-512 a plane's whole vectors and then its tail under a lane
/// mask (a 7×7 plane is 3 vectors and 1 float, which a loop unrolled by 64 ran mostly
/// in its 8-wide and scalar remainders: 576 such planes took 4 µs), else compiled for
/// the best instruction set.
fn scale_planes(planes: &mut [f32], src: Option<&[f32]>, gates: &[f32], hw: usize) {
    let n = planes.len() / hw.max(1);
    assert!(gates.len() >= n && src.is_none_or(|s| s.len() >= n * hw));
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::isa() == crate::gemm::Isa::Avx512 {
        // SAFETY: the planes and the source hold n·hw floats (asserted), the gates n;
        // AVX-512F detected by `isa()`.
        #[allow(unsafe_code)]
        unsafe {
            scale_planes512(planes.as_mut_ptr(), src.map(|s| s.as_ptr()), gates, n, hw)
        };
        return;
    }
    #[inline(always)]
    fn body(planes: &mut [f32], src: Option<&[f32]>, gates: &[f32], hw: usize) {
        for (k, (plane, &g)) in planes.chunks_exact_mut(hw).zip(gates).enumerate() {
            match src {
                Some(s) => plane
                    .iter_mut()
                    .zip(&s[k * hw..(k + 1) * hw])
                    .for_each(|(v, x)| *v = x * g),
                None => plane.iter_mut().for_each(|v| *v *= g),
            }
        }
    }
    crate::simd!(body(planes: &mut [f32], src: Option<&[f32]>, gates: &[f32], hw: usize))
}

/// [`scale_planes`] on AVX-512: `n` planes of `hw` floats at `o` (read from `src`, else
/// from `o`).
///
/// # Safety
/// `o` (and `src`) valid for `n·hw` floats, `gates` for `n`; AVX-512F present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(unsafe_code)]
unsafe fn scale_planes512(
    o: *mut f32,
    src: Option<*const f32>,
    gates: &[f32],
    n: usize,
    hw: usize,
) {
    use std::arch::x86_64::*;
    let rem = hw % 16;
    let mask: __mmask16 = if rem == 0 { 0 } else { (1u16 << rem) - 1 };
    let full = hw - rem;
    let x = src.unwrap_or(o.cast_const());
    for (k, &g) in gates.iter().enumerate().take(n) {
        let gv = _mm512_set1_ps(g);
        let base = k * hw;
        // SAFETY: plane k lies in the n·hw floats the caller guarantees; the tail is
        // masked to the plane.
        unsafe {
            let mut p = base;
            while p < base + full {
                _mm512_storeu_ps(o.add(p), _mm512_mul_ps(_mm512_loadu_ps(x.add(p)), gv));
                p += 16;
            }
            if rem > 0 {
                let v = _mm512_maskz_loadu_ps(mask, x.add(p));
                _mm512_mask_storeu_ps(o.add(p), mask, _mm512_mul_ps(v, gv));
            }
        }
    }
}

/// [`reduce_lanes`] of each `hw`-float plane of `x` into `out` (one float per plane), in
/// one call compiled for the best instruction set.
fn reduce_planes(x: &[f32], hw: usize, max: bool, out: &mut [f32]) {
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
fn reduce_lanes(x: &[f32], max: bool) -> f32 {
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
        const L: usize = 16;
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

// ---------------------------------------------------------------------------------------
// Layout moves

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Pooling whose window covers whole rows (global and adaptive-to-1 pooling, SE
    /// blocks, tall windows: the lane-reduced path) and ordinary windows, max and
    /// average, against a plain loop; NaN inputs are skipped by max as `f32::max` does.
    #[test]
    fn pooling_matches_a_plain_loop() {
        let (planes, h, w) = (3, 9, 7);
        let mut x: Vec<f32> = (0..planes * h * w)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        x[5] = f32::NAN;
        for max in [true, false] {
            for (oh, ow, k, s, pad, adaptive, exclusive) in [
                (1, 1, [h, w], [1, 1], [0, 0], false, true),
                (1, 1, [h, w], [1, 1], [0, 0], false, false),
                // A whole-plane window counting its padding: not a plain mean.
                (1, 1, [h + 2, w + 2], [1, 1], [1, 1], false, false),
                (1, 1, [0, 0], [0, 0], [0, 0], true, true),
                (2, 1, [0, 0], [0, 0], [0, 0], true, true),
                (2, 1, [5, w], [4, 1], [0, 0], false, true),
                (3, 1, [5, w], [4, 1], [1, 0], false, false),
                (4, 3, [3, 3], [2, 2], [1, 1], false, true),
                // Windows all inside the plane (no padding, no clipping).
                (4, 3, [2, 2], [2, 2], [0, 0], false, true),
                (3, 2, [3, 3], [3, 3], [0, 0], false, false),
            ] {
                let p = Pool2d {
                    max,
                    planes,
                    h,
                    w,
                    oh,
                    ow,
                    k,
                    s,
                    pad,
                    adaptive,
                    exclusive,
                };
                let mut got = vec![0f32; planes * oh * ow];
                pool2d(&ThreadPool::new(2), &p, &x, &mut got);
                for pl in 0..planes {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let (y0, y1, x0, x1, cnt) = if adaptive {
                                let (y0, y1) = (oy * h / oh, ((oy + 1) * h).div_ceil(oh));
                                let (x0, x1) = (ox * w / ow, ((ox + 1) * w).div_ceil(ow));
                                (y0, y1, x0, x1, (y1 - y0) * (x1 - x0))
                            } else {
                                let ys = (oy * s[0]) as isize - pad[0] as isize;
                                let xs = (ox * s[1]) as isize - pad[1] as isize;
                                let y0 = ys.max(0) as usize;
                                let x0 = xs.max(0) as usize;
                                let y1 = ((ys + k[0] as isize) as usize).min(h);
                                let x1 = ((xs + k[1] as isize) as usize).min(w);
                                let cnt = if exclusive {
                                    (y1 - y0) * (x1 - x0)
                                } else {
                                    k[0] * k[1]
                                };
                                (y0, y1, x0, x1, cnt)
                            };
                            let vals = (y0..y1)
                                .flat_map(|iy| (x0..x1).map(move |ix| (iy, ix)))
                                .map(|(iy, ix)| x[(pl * h + iy) * w + ix] as f64);
                            let want = if max {
                                vals.fold(f64::NEG_INFINITY, f64::max)
                            } else {
                                vals.sum::<f64>() / cnt as f64
                            };
                            let g = got[(pl * oh + oy) * ow + ox] as f64;
                            let ok = if want.is_nan() {
                                g.is_nan()
                            } else {
                                (g - want).abs() <= 1e-5 * (1.0 + want.abs())
                            };
                            assert!(
                                ok,
                                "max {max} {oh}x{ow} k{k:?} [{pl},{oy},{ox}]: {g} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn broadcast_binary_matches_direct_indexing() {
        let pool = ThreadPool::new(2);
        let out = [2, 3, 4];
        let a: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..3).map(|i| 10.0 * i as f32).collect();
        let bc = Broadcast::new(&out, &[2, 3, 4], &[1, 3, 1]).unwrap();
        let mut o = vec![0f32; 24];
        binary(
            &pool,
            BinOp::Sub,
            Act::Identity,
            &bc,
            Src::Slice(&a),
            Src::Slice(&b),
            &mut o,
        );
        for i in 0..24 {
            assert_eq!(o[i], a[i] - b[(i / 4) % 3]);
        }
        // In place on a.
        let mut o2 = a.clone();
        binary(
            &pool,
            BinOp::Mul,
            Act::Relu,
            &bc,
            Src::Out,
            Src::Slice(&b),
            &mut o2,
        );
        for i in 0..24 {
            assert_eq!(o2[i], (a[i] * b[(i / 4) % 3]).max(0.0));
        }
        assert!(Broadcast::new(&out, &[2, 3, 4], &[1, 3, 4]).is_some());
        assert!(Broadcast::new(&out, &[2, 3, 4], &[1, 2, 1]).is_none());
        // Coalescing: per-channel over [2, 3, 4, 5] gives rows of 20; same shapes, one row.
        let bc = Broadcast::new(&[2, 3, 4, 5], &[2, 3, 4, 5], &[1, 3, 1, 1]).unwrap();
        assert_eq!(bc.dims[MAX_RANK - 1], 20);
        let bc = Broadcast::new(&[2, 3, 4], &[2, 3, 4], &[2, 3, 4]).unwrap();
        assert_eq!(bc.dims[MAX_RANK - 1], 24);
        // And every coalesced form still computes the right thing.
        for (sa, sb) in [
            (vec![2, 3, 4, 5], vec![1, 3, 1, 1]),
            (vec![2, 1, 4, 5], vec![2, 3, 1, 5]),
            (vec![1, 3, 4, 1], vec![2, 3, 4, 5]),
            (vec![2, 3, 4, 5], vec![2, 3, 4, 5]),
            (vec![2, 3, 1, 1], vec![1, 1, 4, 5]),
        ] {
            let o = [2, 3, 4, 5];
            let a: Vec<f32> = (0..sa.iter().product::<usize>())
                .map(|i| i as f32)
                .collect();
            let b: Vec<f32> = (0..sb.iter().product::<usize>())
                .map(|i| (i * 7) as f32)
                .collect();
            let bc = Broadcast::new(&o, &sa, &sb).unwrap();
            let mut got = vec![0f32; 120];
            binary(
                &pool,
                BinOp::Add,
                Act::Identity,
                &bc,
                Src::Slice(&a),
                Src::Slice(&b),
                &mut got,
            );
            let idx = |s: &[usize], i: [usize; 4]| {
                let mut f = 0;
                for k in 0..4 {
                    f = f * s[k] + if s[k] == 1 { 0 } else { i[k] };
                }
                f
            };
            let mut f = 0;
            for i0 in 0..2 {
                for i1 in 0..3 {
                    for i2 in 0..4 {
                        for i3 in 0..5 {
                            let i = [i0, i1, i2, i3];
                            assert_eq!(
                                got[f],
                                a[idx(&sa, i)] + b[idx(&sb, i)],
                                "{sa:?} {sb:?} at {i:?}"
                            );
                            f += 1;
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn big_broadcasts_split_inside_rows() {
        // Enough elements to run on 3 threads, with ranges that start and end mid-row.
        let pool = ThreadPool::new(3);
        let o = [3, 7, 1901];
        let a: Vec<f32> = (0..3 * 7 * 1901).map(|i| (i % 97) as f32).collect();
        let b: Vec<f32> = (0..7).map(|i| i as f32 * 0.5).collect();
        let bc = Broadcast::new(&o, &[3, 7, 1901], &[1, 7, 1]).unwrap();
        let mut got = vec![0f32; a.len()];
        binary(
            &pool,
            BinOp::Mul,
            Act::Identity,
            &bc,
            Src::Slice(&a),
            Src::Slice(&b),
            &mut got,
        );
        for (i, g) in got.iter().enumerate() {
            assert_eq!(*g, a[i] * b[(i / 1901) % 7], "at {i}");
        }
    }

    #[test]
    fn softmax_and_layer_norm_rows() {
        let pool = ThreadPool::new(1);
        let x = [1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0];
        let mut o = [0f32; 6];
        softmax(&pool, 2, 3, 1, Src::Slice(&x), &mut o);
        let e: f32 = 1.0 + 1f32.exp() + 2f32.exp();
        assert!((o[0] - 1.0 / e).abs() < 1e-6 && (o[4] - 1.0 / 3.0).abs() < 1e-6);
        // Axis 0 of [3, 2] == middle axis of [1, 3, 2].
        let mut o2 = [0f32; 6];
        softmax(&pool, 1, 3, 2, Src::Slice(&x), &mut o2);
        assert!((o2[0] - 1f32.exp() / (1f32.exp() + 3f32.exp() + 1.0)).abs() < 1e-6);
        let mut r = [1.0f32, 3.0];
        layer_norm_row(&mut r, Some(&[2.0, 1.0]), Some(&[0.0, 10.0]), 0.0);
        assert_eq!(r, [-2.0, 11.0]);
    }

    #[test]
    fn gather_transposes() {
        // x [2, 3] -> out [3, 2]: tables are the permuted strides.
        let x = [0, 1, 2, 3, 4, 5];
        let mut dims = [1; MAX_RANK];
        let mut tables = vec![vec![0usize]; MAX_RANK];
        dims[4] = 3;
        dims[5] = 2;
        tables[4] = vec![0, 1, 2];
        tables[5] = vec![0, 3];
        let mut o = [0; 6];
        gather(&ThreadPool::new(1), &Gather { dims, tables }, &x, &mut o);
        assert_eq!(o, [0, 3, 1, 4, 2, 5]);
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
