//! Rule files: parsing, validation, and their rewrites.
//!
//! ```text
//! # What it fuses: ...        (comment lines right above a rule are its documentation)
//! # Why faster: ...
//! # Preconditions: ...
//! # Example: ...
//! conv_bias: (add ?a (fused_conv ?f ?x ?w ?b) ?c) => (fused_conv ?g ?x ?w ?d)
//!     if plain_conv(?f), channel_bias(?a, ?c, ?w)
//!     let ?d = bias_sum(?b, ?c)
//!     let ?g = same(?f)
//! ```
//!
//! A multi-pattern rule binds several patterns at once (horizontal fusion):
//! `name: ?a = P, ?b = Q => ?a = R, ?b = S` — every right pattern is merged with the class
//! its variable matched, all or none.
//!
//! A line `%phase canonicalize` (or `%phase fuse`, the default) puts the rules after it in
//! that saturation phase.
//!
//! A rule is `name: LHS => RHS` (or `<=>` for a rule valid both ways, which may have no
//! conditions or lets), then optional indented lines: `if` with comma-separated named
//! conditions, and `let ?v = applier(?args)` bindings that compute attributes or folded
//! constants. Patterns are s-expressions over the op set; `?x` are variables. Blank lines
//! separate rules.

use crate::analysis::{KAnalysis, KGraph};
use crate::language::Node;
use crate::registry::Registry;
use crate::Error;
use egg::{Applier, Id, Pattern, PatternAst, Rewrite, Subst, Symbol, Var};
use std::sync::Arc;

/// A call of a named condition or applier.
#[derive(Debug, Clone)]
pub struct Call {
    /// Registered name.
    pub name: String,
    /// Variable arguments.
    pub args: Vec<Var>,
}

/// One rule as written.
#[derive(Debug, Clone)]
pub struct RuleDef {
    /// Name (snake_case).
    pub name: String,
    /// The comment block above it.
    pub doc: String,
    /// Left pattern.
    pub lhs: Pattern<Node>,
    /// Right pattern.
    pub rhs: Pattern<Node>,
    /// `<=>`.
    pub both_ways: bool,
    /// Conditions (all must hold).
    pub conds: Vec<Call>,
    /// Let-bindings, in order.
    pub lets: Vec<(Var, Call)>,
    /// File and line, for messages.
    pub at: String,
    /// The saturation phase the rule first runs in (`canonicalize` or `fuse`).
    pub phase: Phase,
    /// For a multi-pattern rule (`?a = P, ?b = Q => ?a = R, ?b = S`): both sides in full
    /// (`lhs` and `rhs` then hold the first pattern of each side).
    pub multi: Option<(Bindings, Bindings)>,
}

/// Patterns bound to variables: one side of a multi-pattern rule.
pub type Bindings = Vec<(Var, PatternAst<Node>)>;

/// Parses `?a = pattern, ?b = pattern, ...` (commas at parenthesis depth 0 separate).
fn parse_multi(s: &str, file: &str, line: usize) -> Result<Bindings, Error> {
    let mut out = Vec::new();
    for part in split_calls(s) {
        let (v, p) = part.split_once('=').ok_or_else(|| {
            err(
                file,
                line,
                format!("expected `?v = pattern` in `{}`", part.trim()),
            )
        })?;
        let v: Var = v
            .trim()
            .parse()
            .map_err(|_| err(file, line, format!("`{}` is not a ?variable", v.trim())))?;
        let p: PatternAst<Node> = p
            .trim()
            .parse()
            .map_err(|e| err(file, line, format!("pattern for {v}: {e}")))?;
        out.push((v, p));
    }
    if out.len() < 2 {
        return Err(err(
            file,
            line,
            "a multi-pattern rule binds at least two patterns",
        ));
    }
    Ok(out)
}

fn ast_vars(p: &PatternAst<Node>) -> Vec<Var> {
    p.as_ref()
        .iter()
        .filter_map(|n| {
            if let egg::ENodeOrVar::Var(v) = n {
                Some(*v)
            } else {
                None
            }
        })
        .collect()
}

/// Saturation phases, run in order on one e-graph. Rules of an earlier phase keep running
/// in later ones, so canonical forms stay available to the fusions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Eliminations and canonical forms.
    Canonicalize,
    /// Fusions (the default for rules).
    Fuse,
}

impl RuleDef {
    /// The first line of the documentation (the summary `kayak rules list` prints).
    pub fn summary(&self) -> &str {
        self.doc.lines().next().unwrap_or("")
    }
}

fn err(file: &str, line: usize, msg: impl Into<String>) -> Error {
    Error::Rule {
        at: format!("{file}:{line}"),
        msg: msg.into(),
    }
}

fn parse_call(s: &str, file: &str, line: usize) -> Result<Call, Error> {
    let s = s.trim();
    let open = s
        .find('(')
        .ok_or_else(|| err(file, line, format!("expected name(?args) in `{s}`")))?;
    if !s.ends_with(')') {
        return Err(err(file, line, format!("missing `)` in `{s}`")));
    }
    let name = s[..open].trim().to_string();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(err(file, line, format!("bad name `{name}`")));
    }
    let inner = &s[open + 1..s.len() - 1];
    let args = inner
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse::<Var>()
                .map_err(|_| err(file, line, format!("`{a}` is not a ?variable")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Call { name, args })
}

/// Splits a condition list on top-level commas.
fn split_calls(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// Parses a rule file and checks every name against the registry.
pub fn parse_rules(text: &str, file: &str, reg: &Registry) -> Result<Vec<RuleDef>, Error> {
    let mut rules: Vec<RuleDef> = Vec::new();
    let mut doc: Vec<String> = Vec::new();
    let mut phase = Phase::Fuse;
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        let line = raw.trim();
        let lineno = i + 1;
        i += 1;
        if line.is_empty() {
            doc.clear();
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            doc.push(c.trim().to_string());
            continue;
        }
        if let Some(p) = line.strip_prefix("%phase ") {
            phase = match p.trim() {
                "canonicalize" => Phase::Canonicalize,
                "fuse" => Phase::Fuse,
                other => {
                    return Err(err(
                        file,
                        lineno,
                        format!("unknown phase `{other}` (canonicalize or fuse)"),
                    ))
                }
            };
            continue;
        }
        if raw.starts_with(char::is_whitespace) {
            return Err(err(file, lineno, "an indented line outside a rule"));
        }
        let (name, body) = line
            .split_once(':')
            .ok_or_else(|| err(file, lineno, "expected `name: lhs => rhs`"))?;
        let name = name.trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(err(
                file,
                lineno,
                format!("rule name `{name}` must be snake_case"),
            ));
        }
        if rules.iter().any(|r| r.name == name) {
            return Err(err(file, lineno, format!("rule `{name}` defined twice")));
        }
        let (lhs_s, rhs_s, both_ways) = if let Some((l, r)) = body.split_once("<=>") {
            (l, r, true)
        } else if let Some((l, r)) = body.split_once("=>") {
            (l, r, false)
        } else {
            return Err(err(file, lineno, "expected `=>` or `<=>`"));
        };
        let is_multi = lhs_s.trim_start().starts_with('?') && lhs_s.contains('=');
        let multi = if is_multi {
            let l = parse_multi(lhs_s, file, lineno)?;
            let r = parse_multi(rhs_s, file, lineno)?;
            if both_ways {
                return Err(err(file, lineno, "a multi-pattern rule cannot be `<=>`"));
            }
            for (v, _) in &r {
                if !l.iter().any(|(u, _)| u == v) {
                    return Err(err(
                        file,
                        lineno,
                        format!("right side binds {v}, which the left side does not"),
                    ));
                }
            }
            Some((l, r))
        } else {
            None
        };
        let (lhs, rhs): (Pattern<Node>, Pattern<Node>) = match &multi {
            Some((l, r)) => (Pattern::new(l[0].1.clone()), Pattern::new(r[0].1.clone())),
            None => (
                lhs_s
                    .trim()
                    .parse()
                    .map_err(|e| err(file, lineno, format!("left pattern: {e}")))?,
                rhs_s
                    .trim()
                    .parse()
                    .map_err(|e| err(file, lineno, format!("right pattern: {e}")))?,
            ),
        };
        let mut conds = Vec::new();
        let mut lets = Vec::new();
        while i < lines.len()
            && lines[i].starts_with(char::is_whitespace)
            && !lines[i].trim().is_empty()
        {
            let l = lines[i].trim();
            let ln = i + 1;
            i += 1;
            if let Some(c) = l.strip_prefix("if ") {
                for part in split_calls(c) {
                    let call = parse_call(part, file, ln)?;
                    let Some((need, _)) = reg.get_condition(&call.name) else {
                        return Err(err(file, ln, format!("unknown condition `{}`", call.name)));
                    };
                    if call.args.len() < need {
                        return Err(err(
                            file,
                            ln,
                            format!(
                                "condition `{}` takes {need} arguments, got {}",
                                call.name,
                                call.args.len()
                            ),
                        ));
                    }
                    conds.push(call);
                }
            } else if let Some(b) = l.strip_prefix("let ") {
                let (v, call) = b
                    .split_once('=')
                    .ok_or_else(|| err(file, ln, "expected `let ?v = applier(?args)`"))?;
                let v: Var = v
                    .trim()
                    .parse()
                    .map_err(|_| err(file, ln, format!("`{}` is not a ?variable", v.trim())))?;
                let call = parse_call(call, file, ln)?;
                let Some((need, _)) = reg.get_applier(&call.name) else {
                    return Err(err(file, ln, format!("unknown applier `{}`", call.name)));
                };
                if call.args.len() < need {
                    return Err(err(
                        file,
                        ln,
                        format!(
                            "applier `{}` takes {need} arguments, got {}",
                            call.name,
                            call.args.len()
                        ),
                    ));
                }
                lets.push((v, call));
            } else if l.starts_with('#') {
                continue;
            } else {
                return Err(err(
                    file,
                    ln,
                    format!("expected `if ...` or `let ...`, got `{l}`"),
                ));
            }
        }
        // Every variable used must be bound: by the left pattern or an earlier let.
        let mut bound: Vec<Var> = match &multi {
            Some((l, _)) => l
                .iter()
                .flat_map(|(v, p)| std::iter::once(*v).chain(ast_vars(p)))
                .collect(),
            None => lhs.vars(),
        };
        for c in &conds {
            if let Some(v) = c.args.iter().find(|v| !bound.contains(v)) {
                return Err(err(
                    file,
                    lineno,
                    format!("condition `{}` uses unbound {v}", c.name),
                ));
            }
        }
        for (v, c) in &lets {
            if let Some(a) = c.args.iter().find(|a| !bound.contains(a)) {
                return Err(err(
                    file,
                    lineno,
                    format!("applier `{}` uses unbound {a}", c.name),
                ));
            }
            bound.push(*v);
        }
        let rhs_vars: Vec<Var> = match &multi {
            Some((_, r)) => r.iter().flat_map(|(_, p)| ast_vars(p)).collect(),
            None => rhs.vars(),
        };
        if let Some(v) = rhs_vars.into_iter().find(|v| !bound.contains(v)) {
            return Err(err(file, lineno, format!("right pattern uses unbound {v}")));
        }
        if both_ways
            && (!conds.is_empty() || !lets.is_empty() || lhs.vars().len() != rhs.vars().len())
        {
            return Err(err(
                file,
                lineno,
                "a `<=>` rule takes no conditions or lets, and both sides bind the same variables",
            ));
        }
        rules.push(RuleDef {
            name,
            doc: doc.join("\n"),
            lhs,
            rhs,
            both_ways,
            conds,
            lets,
            at: format!("{file}:{lineno}"),
            phase,
            multi,
        });
        doc.clear();
    }
    Ok(rules)
}

/// Why a match does not fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declined {
    /// A condition is false.
    Condition(String),
    /// An applier returned nothing.
    Applier(String),
}

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Declined::Condition(c) => write!(f, "condition {c} false"),
            Declined::Applier(a) => write!(f, "applier {a} declined"),
        }
    }
}

fn call_ids(args: &[Var], s: &Subst) -> Vec<Id> {
    args.iter().map(|v| s[*v]).collect()
}

/// Checks a rule's conditions on a match, in order.
pub fn check_conditions(
    conds: &[Call],
    reg: &Registry,
    egraph: &KGraph,
    subst: &Subst,
) -> Result<(), Declined> {
    for c in conds {
        let f = reg
            .get_condition(&c.name)
            .map(|(_, f)| f)
            .ok_or_else(|| Declined::Condition(c.name.clone()))?;
        if !f(egraph, &call_ids(&c.args, subst)) {
            return Err(Declined::Condition(c.name.clone()));
        }
    }
    Ok(())
}

/// What a rule does to a match before it builds its right side: the conditions, then the
/// `let` appliers in order. Returns the substitution extended with the lets' variables.
/// The optimizer's appliers and the verifier both go through here.
pub fn fire_calls(
    conds: &[Call],
    lets: &[(Var, Call)],
    reg: &Registry,
    egraph: &mut KGraph,
    subst: &Subst,
) -> Result<Subst, Declined> {
    check_conditions(conds, reg, egraph, subst)?;
    let mut s = subst.clone();
    for (v, c) in lets {
        let f = reg
            .get_applier(&c.name)
            .map(|(_, f)| f)
            .ok_or_else(|| Declined::Applier(c.name.clone()))?;
        let args: Vec<Id> = call_ids(&c.args, &s)
            .into_iter()
            .map(|a| egraph.find(a))
            .collect();
        let key = (f as usize, args);
        let got = match egraph.analysis.applier_memo.get(&key) {
            Some(&id) => Some(id),
            None => {
                let r = f(egraph, &key.1);
                if let Some(id) = r {
                    egraph.analysis.applier_memo.insert(key, id);
                }
                r
            }
        };
        match got {
            Some(id) => {
                s.insert(*v, id);
            }
            None => return Err(Declined::Applier(c.name.clone())),
        }
    }
    Ok(s)
}

/// The applier of a rule: checks conditions, runs the lets, then builds the right side.
pub struct RuleApplier {
    lhs: Pattern<Node>,
    rhs: Pattern<Node>,
    conds: Vec<Call>,
    lets: Vec<(Var, Call)>,
    reg: Arc<Registry>,
}

impl Applier<Node, KAnalysis> for RuleApplier {
    fn apply_one(
        &self,
        egraph: &mut KGraph,
        eclass: Id,
        subst: &Subst,
        searcher_ast: Option<&PatternAst<Node>>,
        rule_name: Symbol,
    ) -> Vec<Id> {
        let Ok(s) = fire_calls(&self.conds, &self.lets, &self.reg, egraph, subst) else {
            return vec![];
        };
        // Soundness guard: the right side must have exactly the matched class' type, so
        // no rule, however written, can merge values of different types.
        let _ = searcher_ast;
        let id = egraph.add_instantiation(&self.rhs.ast, &s);
        let same = match (egraph[id].data.ty(), egraph[eclass].data.ty()) {
            (Some(a), Some(b)) => compatible(a, b),
            _ => false,
        };
        if same && egraph.union(eclass, id) {
            record(egraph, &self.lhs, &self.rhs, &s, rule_name);
            vec![eclass]
        } else {
            vec![]
        }
    }

    /// Variables this applier reads from the match (not the ones its lets bind).
    fn vars(&self) -> Vec<Var> {
        applier_vars(self.rhs.vars(), &self.conds, &self.lets)
    }
}

/// The applier of a multi-pattern rule: conditions, lets, then every right-side pattern is
/// built and merged with the class its variable matched — all or none, each type-checked.
pub struct MultiApplier {
    rhs: Vec<(Var, PatternAst<Node>)>,
    conds: Vec<Call>,
    lets: Vec<(Var, Call)>,
    reg: Arc<Registry>,
}

impl Applier<Node, KAnalysis> for MultiApplier {
    fn apply_one(
        &self,
        egraph: &mut KGraph,
        _eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<Node>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let Ok(s) = fire_calls(&self.conds, &self.lets, &self.reg, egraph, subst) else {
            return vec![];
        };
        let mut built = Vec::with_capacity(self.rhs.len());
        for (v, ast) in &self.rhs {
            let id = egraph.add_instantiation(ast, &s);
            let ok = match (egraph[id].data.ty(), egraph[s[*v]].data.ty()) {
                (Some(a), Some(b)) => compatible(a, b),
                _ => false,
            };
            if !ok {
                return vec![];
            }
            built.push((s[*v], id));
        }
        // One application, one count (as for single-pattern rules), however many merges.
        let mut changed = vec![];
        for (target, id) in built {
            if egraph.union(target, id) && changed.is_empty() {
                changed.push(target);
            }
        }
        changed
    }

    fn vars(&self) -> Vec<Var> {
        let rhs = self
            .rhs
            .iter()
            .flat_map(|(t, p)| std::iter::once(*t).chain(ast_vars(p)))
            .collect();
        applier_vars(rhs, &self.conds, &self.lets)
    }
}

/// Makes the egg rewrites of a rule (two for `<=>`).
pub fn rewrites(
    def: &RuleDef,
    reg: &Arc<Registry>,
) -> Result<Vec<Rewrite<Node, KAnalysis>>, Error> {
    let mk = |name: String,
              lhs: &Pattern<Node>,
              rhs: &Pattern<Node>,
              conds: Vec<Call>,
              lets: Vec<(Var, Call)>| {
        let app = RuleApplier {
            lhs: lhs.clone(),
            rhs: rhs.clone(),
            conds,
            lets,
            reg: reg.clone(),
        };
        Rewrite::new(name, lhs.clone(), app).map_err(|e| Error::Rule {
            at: def.at.clone(),
            msg: e,
        })
    };
    if let Some((l, r)) = &def.multi {
        let app = MultiApplier {
            rhs: r.clone(),
            conds: def.conds.clone(),
            lets: def.lets.clone(),
            reg: reg.clone(),
        };
        let rw = Rewrite::new(def.name.clone(), egg::MultiPattern::new(l.clone()), app).map_err(
            |e| Error::Rule {
                at: def.at.clone(),
                msg: e,
            },
        )?;
        return Ok(vec![rw]);
    }
    let mut out = vec![mk(
        def.name.clone(),
        &def.lhs,
        &def.rhs,
        def.conds.clone(),
        def.lets.clone(),
    )?];
    if def.both_ways {
        out.push(mk(
            format!("{}_rev", def.name),
            &def.rhs,
            &def.lhs,
            vec![],
            vec![],
        )?);
    }
    Ok(out)
}

/// Same dtype and rank, and no dim known to differ (an unknown dim agrees with anything).
fn compatible(a: &kayak_ir::TypeInfo, b: &kayak_ir::TypeInfo) -> bool {
    use kayak_ir::Dim;
    a.dtype == b.dtype
        && a.shape.rank() == b.shape.rank()
        && a.shape
            .dims()
            .iter()
            .zip(b.shape.dims())
            .all(|(x, y)| match (x, y) {
                (Dim::Unknown, _) | (_, Dim::Unknown) => true,
                (Dim::Known(p), Dim::Known(q)) => p == q,
                (Dim::Sym(p), Dim::Sym(q)) => p == q,
                _ => true,
            })
}

/// The e-nodes a pattern matched (or built) under a substitution, bottom-up; the last is the
/// root's. Pattern nodes that are not in the e-graph are skipped.
fn pattern_nodes(egraph: &KGraph, pat: &Pattern<Node>, s: &Subst) -> Vec<Node> {
    use egg::{ENodeOrVar, Language};
    let ast = pat.ast.as_ref();
    let mut classes: Vec<Option<Id>> = Vec::with_capacity(ast.len());
    let mut out = Vec::new();
    for n in ast {
        match n {
            ENodeOrVar::Var(v) => classes.push(s.get(*v).map(|&c| egraph.find(c))),
            ENodeOrVar::ENode(node) => {
                let kids: Option<Vec<Id>> = node
                    .children()
                    .iter()
                    .map(|&c| classes[usize::from(c)])
                    .collect();
                let found = kids.and_then(|kids| {
                    let mut m = node.clone();
                    for (slot, k) in m.children_mut().iter_mut().zip(kids) {
                        *slot = k;
                    }
                    egraph.lookup(m.clone()).map(|c| (m, c))
                });
                match found {
                    Some((m, c)) => {
                        if !matches!(m, Node::Attr(_) | Node::Const(_) | Node::Input(_)) {
                            out.push(m);
                        }
                        classes.push(Some(egraph.find(c)));
                    }
                    None => classes.push(None),
                }
            }
        }
    }
    out
}

/// Remembers that `rule` built the right side's root node from the left side's nodes.
fn record(egraph: &mut KGraph, lhs: &Pattern<Node>, rhs: &Pattern<Node>, s: &Subst, rule: Symbol) {
    let from = pattern_nodes(egraph, lhs, s);
    if let Some(made) = pattern_nodes(egraph, rhs, s).pop() {
        egraph
            .analysis
            .provenance
            .entry(made)
            .or_insert((rule.to_string(), from));
    }
}

/// The variables an applier reads from a match: those of its right side and of its calls,
/// less the ones its lets bind.
fn applier_vars(mut v: Vec<Var>, conds: &[Call], lets: &[(Var, Call)]) -> Vec<Var> {
    let own: Vec<Var> = lets.iter().map(|(v, _)| *v).collect();
    v.extend(
        conds
            .iter()
            .chain(lets.iter().map(|(_, c)| c))
            .flat_map(|c| c.args.iter().copied()),
    );
    v.retain(|x| !own.contains(x));
    v.sort();
    v.dedup();
    v
}
