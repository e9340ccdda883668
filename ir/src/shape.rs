//! Shapes with symbolic dimensions.

use std::fmt;
use std::sync::Arc;

/// One dimension of a shape: known, a named symbol (a dynamic input dimension such as
/// `x.0`), or unknown (derived from symbols in a way the IR does not track).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A concrete size.
    Known(usize),
    /// A named dynamic size; two equal symbols are equal sizes.
    Sym(Arc<str>),
    /// A size only known once the input shapes are.
    Unknown,
}

impl Dim {
    /// The concrete size, if known.
    pub fn known(&self) -> Option<usize> {
        match self {
            Dim::Known(n) => Some(*n),
            _ => None,
        }
    }

    /// Applies `f` to a known size; anything else becomes [`Dim::Unknown`].
    pub fn map(&self, f: impl FnOnce(usize) -> usize) -> Dim {
        match self {
            Dim::Known(n) => Dim::Known(f(*n)),
            _ => Dim::Unknown,
        }
    }

    /// Combines two dims that must be equal; prefers the more precise one.
    pub fn unify(&self, other: &Dim) -> Option<Dim> {
        match (self, other) {
            (Dim::Known(a), Dim::Known(b)) => (a == b).then_some(Dim::Known(*a)),
            (Dim::Known(a), _) | (_, Dim::Known(a)) => Some(Dim::Known(*a)),
            (Dim::Sym(a), _) => Some(Dim::Sym(a.clone())),
            (_, Dim::Sym(b)) => Some(Dim::Sym(b.clone())),
            _ => Some(Dim::Unknown),
        }
    }

    /// Sum of two dims.
    pub fn add(&self, other: &Dim) -> Dim {
        match (self, other) {
            (Dim::Known(a), Dim::Known(b)) => Dim::Known(a + b),
            _ => Dim::Unknown,
        }
    }

    /// Product of two dims.
    pub fn mul(&self, other: &Dim) -> Dim {
        match (self, other) {
            (Dim::Known(1), d) | (d, Dim::Known(1)) => d.clone(),
            (Dim::Known(a), Dim::Known(b)) => Dim::Known(a * b),
            _ => Dim::Unknown,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => write!(f, "{s}"),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// A tensor shape: one [`Dim`] per axis.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    /// A fully known shape.
    pub fn known(dims: &[usize]) -> Shape {
        Shape(dims.iter().map(|&d| Dim::Known(d)).collect())
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The dims.
    pub fn dims(&self) -> &[Dim] {
        &self.0
    }

    /// All sizes, if every dim is known.
    pub fn to_known(&self) -> Option<Vec<usize>> {
        self.0.iter().map(Dim::known).collect()
    }

    /// The element count: known only if every dim is.
    pub fn numel(&self) -> Dim {
        self.0.iter().fold(Dim::Known(1), |acc, d| acc.mul(d))
    }

    /// True if every dim is known.
    pub fn is_known(&self) -> bool {
        self.0.iter().all(|d| matches!(d, Dim::Known(_)))
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Shape {
        Shape::known(d)
    }
}

/// The static type of a value: dtype and shape.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypeInfo {
    /// Element type.
    pub dtype: crate::DType,
    /// Shape, possibly symbolic.
    pub shape: Shape,
}

impl TypeInfo {
    /// A type with a fully known shape.
    pub fn known(dtype: crate::DType, dims: &[usize]) -> TypeInfo {
        TypeInfo {
            dtype,
            shape: Shape::known(dims),
        }
    }
}

impl fmt::Display for TypeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)
    }
}

/// Normalizes a possibly negative axis against `rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r.max(1)).contains(&a).then_some(a as usize)
}
