//! Property-based verification of rewrite rules and of the whole optimizer.
//!
//! - [`verify_rule`]: draws random instances of a rule's left side — concrete, well-typed
//!   graphs ([`sample`]) or, for patterns a random draw rarely hits (an attention block, a
//!   layer norm written in primitives), matches found in random model-like graphs
//!   ([`graphs`]) after the other rules have run. Instances whose conditions fail are
//!   counted as rejected, not checked. On the rest the right side is built as the optimizer
//!   builds it (the same [`crate::rules::fire_calls`], then instantiation), and both sides are
//!   evaluated with the reference semantics ([`kayak_ir::Graph::evaluate`]) and compared
//!   within a [`Tolerance`] scaled to the values. A right side of another type is a failure
//!   too. A failure is shrunk — the smallest size that still fails, then simpler leaf
//!   values — and returned as a [`Counterexample`] that prints the s-expression, shapes,
//!   attributes and differing values.
//! - [`verify_optimizer`]: random graphs through the full pipeline (saturation, extraction,
//!   lowering, constant materialization), compared with the unoptimized graph.
//!
//! ```
//! use kayak_rewrite::{verify, RuleSet};
//!
//! let mut rules = RuleSet::empty();
//! // Wrong: relu6 clamps at 6, relu does not.
//! rules.add_text("relu6_as_relu: (relu6 ?h ?x) => (relu ?x)", "mine.rules")?;
//! let cfg = verify::VerifyConfig { cases: 20, ..Default::default() };
//! let verdict = verify::verify_rule(&rules, "relu6_as_relu", &cfg)?;
//! let cex = verdict.failure.expect("relu6 is not relu");
//! assert!(cex.to_string().contains("relu6"));
//!
//! // Right: scaling by 1 with no bias is the identity.
//! assert!(verify::verify_rule(&RuleSet::builtin(), "scale_identity_elim", &cfg)?.passed());
//! # Ok::<(), kayak_rewrite::Error>(())
//! ```

mod check;
mod found;
pub mod graphs;
mod optimizer;
mod report;
pub mod sample;
mod shrink;
#[cfg(feature = "proptest")]
pub mod strategy;

use crate::analysis::KGraph;
use crate::cost::CostModel;
use crate::extract::extract;
use crate::lift::lift;
use crate::lower::lower;
use crate::optimize::{optimize, saturate, Limits, RuleSet};
use crate::rules::{check_conditions, fire_calls, RuleDef};
use crate::{Error, Result};
use egg::{ENodeOrVar, Id, PatternAst, Searcher, Subst, Var};
use kayak_ir::{Graph, Tensor, ValueId};
use sample::{Given, Hint, Instance};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use check::*;
use found::*;
pub use optimizer::{check_graph, random_op, verify_optimizer, GraphFailure, OptimizerVerdict};
use report::fmt_vals;
pub use report::{Counterexample, Mismatch};
use shrink::*;

/// The seedable generator of the samplers (`kayak_ir::sample::Rng`); verification runs are
/// reproducible from their seed.
pub use kayak_ir::sample::Rng;

/// SplitMix64's finalizer: spreads nearby seeds apart.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
    })
}

/// `|a − b| ≤ atol · max(1, max|ref|) + rtol · |b|` for every element (`b` the reference).
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Relative part.
    pub rtol: f64,
    /// Absolute part, scaled by the largest reference magnitude.
    pub atol: f64,
}

impl Default for Tolerance {
    fn default() -> Tolerance {
        Tolerance {
            rtol: 1e-3,
            atol: 1e-4,
        }
    }
}

/// How hard to look.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// Instances to check per rule (graphs for [`verify_optimizer`]).
    pub cases: usize,
    /// Seed of the whole run.
    pub seed: u64,
    /// Draws per case before giving up on finding an instance that meets the conditions.
    pub attempts: usize,
    /// Largest size drawn (dimensions, blocks), 1 to [`graphs::MAX_SIZE`].
    pub max_size: usize,
    /// Comparison tolerance.
    pub tolerance: Tolerance,
}

impl Default for VerifyConfig {
    fn default() -> VerifyConfig {
        VerifyConfig {
            cases: 30,
            seed: 0,
            attempts: 60,
            max_size: graphs::MAX_SIZE,
            tolerance: Tolerance::default(),
        }
    }
}

/// What verifying one rule found.
#[derive(Debug, Clone)]
pub struct RuleVerdict {
    /// The rule.
    pub rule: String,
    /// Instances checked (conditions held, both sides compared).
    pub checked: usize,
    /// Of those, drawn directly from the pattern.
    pub drawn: usize,
    /// Of those, found in generated model-like graphs.
    pub found: usize,
    /// Draws rejected, by reason (a condition false, an applier declining, no fit).
    pub rejected: BTreeMap<String, usize>,
    /// The counterexample, if the rule is wrong.
    pub failure: Option<Counterexample>,
}

impl RuleVerdict {
    /// Checked at least one instance and found no counterexample.
    pub fn passed(&self) -> bool {
        self.failure.is_none() && self.checked > 0
    }
}

/// A failing instance, what differs, and the bindings.
type Found = (Instance, Mismatch, Vec<(String, String)>);

/// What one draw gave.
enum Draw {
    Rejected(String),
    Passed,
    Failed(Box<Found>),
}

/// One rule under verification, with what every draw needs computed once.
struct Verifier<'a> {
    def: &'a RuleDef,
    rules: &'a RuleSet,
    /// The rule set without this rule (it saturates the generated graphs).
    others: RuleSet,
    hints: HashMap<Var, Hint>,
    tol: Tolerance,
}

impl Verifier<'_> {
    /// A random instance of the left side, checked.
    fn draw_random(&self, seed: u64, size: usize) -> Draw {
        let mut r = Rng::new(seed);
        let Some(inst) = sample::instantiate(
            &patterns(self.def),
            &mut r,
            size,
            &self.hints,
            &HashMap::new(),
        ) else {
            return Draw::Rejected("no well-typed draw".into());
        };
        match check(self.def, self.rules, &inst, self.tol) {
            Outcome::Rejected(why) => Draw::Rejected(why),
            Outcome::Passed => Draw::Passed,
            Outcome::Failed(m, b) => Draw::Failed(Box::new((inst, m, b))),
        }
    }

    /// Instances found in one generated graph, checked: how many passed, or a failure.
    fn draw_found(&self, generator: usize, seed: u64, size: usize) -> (usize, Option<Box<Found>>) {
        let rg = (graphs::GENERATORS[generator].1)(seed, size);
        let mut passed = 0;
        for inst in found_instances(self.def, &self.others, &rg, 3) {
            match check(self.def, self.rules, &inst, self.tol) {
                Outcome::Passed => passed += 1,
                Outcome::Failed(m, b) => return (passed, Some(Box::new((inst, m, b)))),
                Outcome::Rejected(_) => {}
            }
        }
        (passed, None)
    }

    /// Shrinks a failure found at `size`: the smallest size at which one of `tries` seeds
    /// (`seed_of(size, try)`) still fails under `draw`, then simpler leaf values.
    #[allow(clippy::too_many_arguments)]
    fn shrink(
        &self,
        size: usize,
        seed: u64,
        found: Found,
        tries: u64,
        seed_of: impl Fn(usize, u64) -> u64,
        draw: impl Fn(u64, usize) -> Option<Box<Found>>,
        source: &str,
    ) -> Counterexample {
        let mut best = (size, seed, found);
        'sizes: for s in 1..size {
            for t in 0..tries {
                let sd = seed_of(s, t);
                if let Some(f) = draw(sd, s) {
                    best = (s, sd, *f);
                    break 'sizes;
                }
            }
        }
        let (size, seed, (inst, m, b)) = best;
        let (inst, m, b) = simplify(self.def, self.rules, inst, m, b, self.tol);
        counterexample(self.def, source, seed, size, &inst, m, b)
    }
}

/// Verifies one rule of `rules` by name (see the module docs).
pub fn verify_rule(rules: &RuleSet, name: &str, cfg: &VerifyConfig) -> Result<RuleVerdict> {
    let def = rules
        .rules()
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| Error::Rule {
            at: "verify".into(),
            msg: format!("no rule named `{name}`"),
        })?;
    let mut others = rules.clone();
    others.disable(name)?;
    let v = Verifier {
        def,
        rules,
        others,
        hints: hints_of(def),
        tol: cfg.tolerance,
    };
    let max_size = cfg.max_size.clamp(1, graphs::MAX_SIZE);
    let base = mix(cfg.seed ^ hash_str(name));
    let mut verdict = RuleVerdict {
        rule: name.to_string(),
        checked: 0,
        drawn: 0,
        found: 0,
        rejected: BTreeMap::new(),
        failure: None,
    };
    let mut preferred: Option<usize> = None;
    for case in 0..cfg.cases {
        let size = 1 + case % max_size;
        let mut done = false;
        // Random draws first, unless they never met the conditions so far.
        let random_useless = case >= 3 && verdict.drawn == 0;
        if !random_useless {
            for attempt in 0..cfg.attempts {
                let seed = mix(base ^ mix((case as u64) << 20 | attempt as u64));
                match v.draw_random(seed, size) {
                    Draw::Rejected(why) => *verdict.rejected.entry(why).or_insert(0) += 1,
                    Draw::Passed => {
                        verdict.checked += 1;
                        verdict.drawn += 1;
                        done = true;
                        break;
                    }
                    Draw::Failed(found) => {
                        verdict.failure = Some(v.shrink(
                            size,
                            seed,
                            *found,
                            cfg.attempts as u64 * 4,
                            |s, t| mix(base ^ 0x5EED ^ ((s as u64) << 32 | t)),
                            |sd, s| match v.draw_random(sd, s) {
                                Draw::Failed(f) => Some(f),
                                _ => None,
                            },
                            "random instance",
                        ));
                        return Ok(verdict);
                    }
                }
            }
        }
        if done {
            continue;
        }
        // Matches in generated graphs: the generator that matched before first.
        let n = graphs::GENERATORS.len();
        let order: Vec<usize> = match preferred {
            Some(p) => std::iter::repeat_n(p, 4)
                .chain((0..n).filter(|&k| k != p))
                .collect(),
            None => (0..n).collect(),
        };
        for (j, k) in order.into_iter().enumerate() {
            let seed = mix(base ^ 0xF00D ^ ((case as u64) << 8 | j as u64));
            let (passed, failed) = v.draw_found(k, seed, size);
            if let Some(found) = failed {
                let source = format!("found in a `{}` graph", graphs::GENERATORS[k].0);
                verdict.failure = Some(v.shrink(
                    size,
                    seed,
                    *found,
                    40,
                    |s, t| mix(seed ^ (s as u64) << 40 ^ t),
                    |sd, s| v.draw_found(k, sd, s).1,
                    &source,
                ));
                return Ok(verdict);
            }
            if passed > 0 {
                verdict.checked += passed;
                verdict.found += passed;
                preferred = Some(k);
                break;
            }
        }
    }
    Ok(verdict)
}

/// Verifies every enabled rule.
pub fn verify_rules(rules: &RuleSet, cfg: &VerifyConfig) -> Result<Vec<RuleVerdict>> {
    rules
        .rules()
        .iter()
        .filter(|d| rules.enabled(&d.name))
        .map(|d| verify_rule(rules, &d.name, cfg))
        .collect()
}
