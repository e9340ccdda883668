//! Random well-typed instances of ops, for the property tests that verify rewrite rules and
//! the optimizer (`kayak-rewrite`'s `verify`).
//!
//! Each op family draws its own instances ([`crate::ops::OpDef::sample`]), beside its type
//! inference and reference semantics, so that a new op brings its sampler with it. A
//! sampler works on one pattern node at a time: some of its tensor inputs already have
//! shapes (children built before it), the others are free; it draws the attributes (or
//! takes the ones a pattern variable already holds) and a [`Leaf`] — a shape and how to
//! draw its values — for every free input, so that the node type-checks. Attributes are
//! drawn from the values models use most, with rarer values mixed in, so that rule
//! conditions hold often and fail sometimes.

use crate::ops::{Member, OpDef};
use crate::{DType, InferInput, Op, Tensor, TypeInfo};

/// A small deterministic generator (xorshift64*, seeded through SplitMix64's finalizer):
/// the same seed gives the same instances on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed) | 1)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }
    /// Uniform in `[0, 1)`.
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// A dim in `1..=size + 1`.
    pub fn dim(&mut self, size: usize) -> usize {
        1 + self.below(size + 1)
    }
    /// A shape of `rank` dims, each from [`Rng::dim`].
    pub fn shape(&mut self, size: usize, rank: usize) -> Vec<usize> {
        (0..rank).map(|_| self.dim(size)).collect()
    }
    /// One of `xs`, uniformly.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// SplitMix64's finalizer: spreads nearby seeds apart.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How a leaf's values are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValKind {
    /// Uniform in `[-1, 1)`.
    Normal,
    /// Uniform in `[0.5, 1.5)` (variances, divisors, logs' arguments).
    Positive,
    /// Integer ids below the bound (embedding lookups).
    Ids(usize),
}

/// What a rule's conditions ask of a variable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hint {
    /// Nothing known.
    Any,
    /// A constant.
    Const,
    /// A graph input.
    Input,
    /// A one-element constant.
    Scalar,
}

/// A free input to create: its shape and values.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values.
    pub kind: ValKind,
}

impl Leaf {
    /// Values uniform in `[-1, 1)`.
    pub fn normal(shape: Vec<usize>) -> Leaf {
        Leaf {
            shape,
            kind: ValKind::Normal,
        }
    }
    /// Values uniform in `[0.5, 1.5)`.
    pub fn positive(shape: Vec<usize>) -> Leaf {
        Leaf {
            shape,
            kind: ValKind::Positive,
        }
    }
    /// Draws the leaf's values.
    pub fn value(&self, r: &mut Rng) -> Option<Tensor> {
        Some(match self.kind {
            ValKind::Normal => uniform(r, &self.shape),
            ValKind::Positive => positive(r, &self.shape),
            ValKind::Ids(max) => {
                let n: usize = self.shape.iter().product();
                let ids: Vec<i64> = (0..n).map(|_| r.below(max) as i64).collect();
                Tensor::from_i64s(&ids).reshape(&self.shape).ok()?
            }
        })
    }
}

/// Values uniform in `[-1, 1)`.
pub fn uniform(r: &mut Rng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|_| r.f32() * 2.0 - 1.0).collect();
    Tensor::from_f32s(shape, v).expect("length matches the shape")
}

/// Values uniform in `[0.5, 1.5)` (variances, divisors).
pub fn positive(r: &mut Rng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|_| r.f32() + 0.5).collect();
    Tensor::from_f32s(shape, v).expect("length matches the shape")
}

/// One op node being drawn: its inputs' shapes where known, the attributes a pattern
/// variable already holds, and the leaves drawn for its free inputs.
pub struct Sampler<'a> {
    /// The generator.
    pub rng: &'a mut Rng,
    /// The size scale: dims are drawn in `1..=size + 1`.
    pub size: usize,
    given: Option<&'a Op>,
    known: &'a [Option<Vec<usize>>],
    hints: &'a [Hint],
    leaves: Vec<Option<Leaf>>,
}

impl<'a> Sampler<'a> {
    /// A node with `known.len()` tensor inputs (`known[i]`: input `i`'s shape when already
    /// built), `hints[i]` what the rule asks of input `i`, and the attributes `given`.
    pub fn new(
        rng: &'a mut Rng,
        size: usize,
        given: Option<&'a Op>,
        known: &'a [Option<Vec<usize>>],
        hints: &'a [Hint],
    ) -> Sampler<'a> {
        Sampler {
            rng,
            size,
            given,
            known,
            hints,
            leaves: vec![None; known.len()],
        }
    }

    /// How many tensor inputs the node has.
    pub fn arity(&self) -> usize {
        self.known.len()
    }

    /// Input `i`'s shape, if it is already built.
    pub fn known(&self, i: usize) -> Option<&[usize]> {
        self.known.get(i).and_then(|k| k.as_deref())
    }

    /// Input `i`'s shape: as built, or as drawn for it here.
    pub fn shape_of(&self, i: usize) -> Option<&[usize]> {
        self.known(i)
            .or_else(|| self.leaves.get(i)?.as_ref().map(|l| l.shape.as_slice()))
    }

    /// True if input `i` is still to be drawn.
    pub fn free(&self, i: usize) -> bool {
        self.known.get(i).is_some_and(Option::is_none)
    }

    /// What the rule asks of input `i`.
    pub fn hint(&self, i: usize) -> Hint {
        self.hints.get(i).copied().unwrap_or(Hint::Any)
    }

    /// Draws input `i` as `leaf` (kept only if the input is free).
    pub fn set(&mut self, i: usize, leaf: Leaf) {
        if self.free(i) {
            self.leaves[i] = Some(leaf);
        }
    }

    /// The attributes of kind `kind`: the ones given by the pattern (when of this kind;
    /// attributes of another kind make the draw fail), else `draw`.
    pub fn attrs<T: OpDef + Member>(
        &mut self,
        kind: &str,
        draw: impl FnOnce(&mut Rng) -> Option<T>,
    ) -> Option<T> {
        match self.given {
            Some(g) if g.name() == kind => T::of(g).cloned(),
            Some(_) => None,
            None => draw(self.rng),
        }
    }

    /// The attributes the pattern gives, if any.
    pub fn given(&self) -> Option<&'a Op> {
        self.given
    }

    /// The first input's shape: as built, or drawn (its rank from `rank`) as a leaf.
    pub fn first_input(&mut self, rank: impl FnOnce(&mut Rng) -> usize) -> Vec<usize> {
        match self.known(0) {
            Some(x) => x.to_vec(),
            None => {
                let rank = rank(self.rng);
                let s = self.rng.shape(self.size, rank);
                self.set(0, Leaf::normal(s.clone()));
                s
            }
        }
    }

    /// For a one-input op whose output has the input's shape: draws the input (rank 1 to
    /// 4, or one element where the rule wants a scalar) with values of `kind`.
    pub fn same_shape(&mut self, kind: ValKind) {
        if self.arity() == 1 && self.free(0) {
            let rank = 1 + self.rng.below(4);
            let shape = if self.hint(0) == Hint::Scalar {
                vec![1]
            } else {
                self.rng.shape(self.size, rank)
            };
            self.set(0, Leaf { shape, kind });
        }
    }

    /// The leaves drawn, one per input (`None` for the inputs that were built).
    pub fn into_leaves(self) -> Vec<Option<Leaf>> {
        self.leaves
    }
}

/// The output shape of `op` on f32 inputs of these shapes, if it type-checks.
pub fn infer_f32(op: &Op, shapes: &[&[usize]]) -> Option<Vec<usize>> {
    let tys: Vec<TypeInfo> = shapes
        .iter()
        .map(|s| TypeInfo::known(DType::F32, s))
        .collect();
    let ins: Vec<InferInput<'_>> = tys
        .iter()
        .map(|ty| InferInput { ty, value: None })
        .collect();
    op.infer(&ins).ok()?.first()?.shape.to_known()
}

/// Draws one node of kind `kind` (see the module docs): its op and a leaf for every free
/// input. `None` when this kind has no sampler or the draw does not fit the inputs given.
pub fn fit(
    kind: &str,
    rng: &mut Rng,
    size: usize,
    given: Option<&Op>,
    known: &[Option<Vec<usize>>],
    hints: &[Hint],
) -> Option<(Op, Vec<Option<Leaf>>)> {
    let mut s = Sampler::new(rng, size, given, known, hints);
    let op = Op::sample(kind, &mut s)?;
    Some((op, s.into_leaves()))
}
