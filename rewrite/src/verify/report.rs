//! What a failed verification reports: how the two sides differ, and a counterexample that prints the instance, its bindings and the values.

use super::*;

/// How the two sides differ.
#[derive(Debug, Clone)]
pub enum Mismatch {
    /// The right side has another type than the left.
    Type {
        /// Left side's type.
        lhs: String,
        /// Right side's type.
        rhs: String,
    },
    /// Values differ beyond the tolerance.
    Values {
        /// Which root (multi-pattern rules have several).
        root: usize,
        /// Shape of the output.
        shape: Vec<usize>,
        /// Left side's values (the reference), the first few.
        lhs: Vec<f64>,
        /// Right side's values, the first few.
        rhs: Vec<f64>,
        /// Index of the worst element.
        worst_at: Vec<usize>,
        /// Left and right values there.
        worst: (f64, f64),
        /// The tolerance there.
        allowed: f64,
    },
    /// The right side fails to build or evaluate.
    Error(String),
}

/// A shrunk instance on which a rule (or the optimizer) computes something else.
#[derive(Debug, Clone)]
pub struct Counterexample {
    /// Rule name (or `optimizer`).
    pub rule: String,
    /// Where the rule is defined.
    pub at: String,
    /// Left pattern as written.
    pub lhs: String,
    /// Right pattern as written.
    pub rhs: String,
    /// Where the instance came from: `random instance` or a generator's name.
    pub source: String,
    /// Seed and size that reproduce it.
    pub seed: u64,
    /// Size (1 is the smallest).
    pub size: usize,
    /// The instance as an s-expression (leaves named, with their types).
    pub instance: String,
    /// Every variable's binding: attributes, or a tensor's kind, type and values.
    pub bindings: Vec<(String, String)>,
    /// For the optimizer: the optimized graph, one node a line.
    pub optimized: String,
    /// What differs.
    pub mismatch: Mismatch,
}

pub(super) fn fmt_vals(v: &[f64]) -> String {
    let s: Vec<String> = v.iter().take(12).map(|x| format!("{x:.6}")).collect();
    if v.len() > 12 {
        format!("[{}, …]", s.join(", "))
    } else {
        format!("[{}]", s.join(", "))
    }
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rule `{}` ({}) is wrong; counterexample shrunk to size {} (seed {}, {}):",
            self.rule, self.at, self.size, self.seed, self.source
        )?;
        if !self.lhs.is_empty() {
            writeln!(f, "  lhs: {}", self.lhs)?;
            writeln!(f, "  rhs: {}", self.rhs)?;
        }
        writeln!(f, "  instance: {}", self.instance)?;
        for (k, v) in &self.bindings {
            writeln!(f, "    {k} = {v}")?;
        }
        if !self.optimized.is_empty() {
            writeln!(f, "  optimized:\n{}", self.optimized)?;
        }
        match &self.mismatch {
            Mismatch::Type { lhs, rhs } => {
                write!(f, "  type differs: left side {lhs}, right side {rhs}")
            }
            Mismatch::Values {
                root,
                shape,
                lhs,
                rhs,
                worst_at,
                worst,
                allowed,
            } => {
                writeln!(f, "  output {root} {shape:?}:")?;
                writeln!(f, "    lhs: {}", fmt_vals(lhs))?;
                writeln!(f, "    rhs: {}", fmt_vals(rhs))?;
                write!(
                    f,
                    "    worst at {worst_at:?}: lhs {:.6} rhs {:.6}, |diff| {:.3e} > tolerance {:.3e}",
                    worst.0,
                    worst.1,
                    (worst.0 - worst.1).abs(),
                    allowed
                )
            }
            Mismatch::Error(e) => write!(f, "  right side fails: {e}"),
        }
    }
}
