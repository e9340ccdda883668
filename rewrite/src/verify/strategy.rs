//! proptest strategies (feature `proptest`): random graphs and rule instances as values
//! proptest can generate and shrink. A strategy draws a `(size, seed)` pair and builds from
//! it, so proptest's shrinking walks toward size 1 and seed 0 — small graphs.
//!
//! ```
//! use kayak_rewrite::verify::{check_graph, strategy, Tolerance};
//! use kayak_rewrite::RuleSet;
//! use proptest::prelude::*;
//!
//! let rules = RuleSet::builtin();
//! let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(4));
//! runner
//!     .run(&strategy::graph(), |rg| {
//!         prop_assert!(check_graph(&rg, &rules, Tolerance::default()).is_ok());
//!         Ok(())
//!     })
//!     .unwrap();
//! ```

use super::graphs::{self, RandomGraph, MAX_SIZE};
use proptest::prelude::*;

/// Any random graph of any generator.
pub fn graph() -> impl Strategy<Value = RandomGraph> {
    (1..=MAX_SIZE, any::<u64>()).prop_map(|(size, seed)| graphs::random_graph(seed, size))
}

/// Random graphs of one generator ([`graphs::GENERATORS`] by name).
pub fn graph_of(generator: &str) -> impl Strategy<Value = RandomGraph> {
    let f = graphs::GENERATORS
        .iter()
        .find(|(n, _)| *n == generator)
        .map(|(_, f)| *f)
        .unwrap_or(graphs::cnn);
    (1..=MAX_SIZE, any::<u64>()).prop_map(move |(size, seed)| f(seed, size))
}
