//! DAG extraction against the exact optimum: an integer program (good_lp + microlp) over
//! the saturated e-graphs of small graphs.

mod common;
use common::*;
use egg::{Id, Language, Runner};
use kayak_ir::ops::*;
use kayak_ir::{Graph, Op};
use kayak_rewrite::extract::{dag_cost, extract_refined, ilp_optimum};
use kayak_rewrite::{lift, CostModel, KGraph, RuleSet};
use std::collections::HashMap;

fn saturated(g: &Graph) -> (KGraph, Vec<Id>, Vec<Id>) {
    let keep = g.outputs.clone();
    let l = lift::lift(g, &keep, true).unwrap();
    let shared: Vec<Id> = {
        let mut readers: HashMap<Id, usize> = HashMap::new();
        for n in &l.original {
            for &c in n.children() {
                *readers.entry(c).or_insert(0) += 1;
            }
        }
        readers
            .into_iter()
            .filter(|&(_, n)| n > 1)
            .map(|(c, _)| c)
            .collect()
    };
    let runner = Runner::default()
        .with_egraph(l.egraph)
        .run(&RuleSet::builtin().rewrites().unwrap());
    let eg = runner.egraph;
    let roots = l.roots.iter().map(|&r| eg.find(r)).collect();
    (eg, roots, shared)
}

fn check(g: Graph) {
    let model = CostModel::cpu();
    let (eg, roots, shared) = saturated(&g);
    let (choice, _) = extract_refined(&eg, &model, &roots, &shared).unwrap();
    let ours = dag_cost(&eg, &model, &choice, &roots).expect("acyclic");
    let best = ilp_optimum(&eg, &model, &roots).expect("the ILP solves");
    println!("extraction {ours:.6e}, ILP optimum {best:.6e}");
    assert!(
        (ours - best).abs() <= 1e-6 * best.abs().max(1e-12),
        "extraction {ours} vs ILP optimum {best}"
    );
}

fn chain(n: usize, big: bool) -> Graph {
    let (c, hw) = if big { (16, 20) } else { (3, 5) };
    let mut b = B::new();
    let x = b.input(&[1, c, hw, hw]);
    let mut y = x;
    for i in 0..n {
        let w = b.w(rand(&[c, c, 3, 3], i as u64));
        y = b.op(conv(1), &[y, w]);
        let bias = b.w(rand(&[c], 10 + i as u64));
        y = b.op(add(1), &[y, bias]);
        y = b.op(un(UnaryOp::Relu), &[y]);
    }
    b.out(&[y])
}

fn fan_out(big: bool) -> Graph {
    let (c, hw) = if big { (16, 24) } else { (3, 5) };
    let mut b = B::new();
    let x = b.input(&[1, c, hw, hw]);
    let w = b.w(rand(&[c, c, 3, 3], 1));
    let conv_out = b.op(conv(1), &[x, w]);
    let r = b.op(un(UnaryOp::Relu), &[conv_out]);
    let s = b.op(un(UnaryOp::Sigmoid), &[conv_out]);
    let y = b.op(add(-1), &[r, s]);
    b.out(&[y, conv_out])
}

fn residual(big: bool) -> Graph {
    let (c, hw) = if big { (8, 16) } else { (4, 4) };
    let mut b = B::new();
    let x = b.input(&[1, c, hw, hw]);
    let w1 = b.w(rand(&[c, c, 3, 3], 1));
    let w2 = b.w(rand(&[c, c, 3, 3], 2));
    let a = b.op(conv(1), &[x, w1]);
    let a = b.op(un(UnaryOp::Relu), &[a]);
    let c2 = b.op(conv(1), &[a, w2]);
    let y = b.op(add(-1), &[c2, x]);
    let y = b.op(un(UnaryOp::Relu), &[y]);
    let z = b.op(mul(-1), &[y, a]);
    b.out(&[z])
}

#[test]
fn chain_matches_ilp() {
    check(chain(3, false));
    check(chain(2, true));
}

#[test]
fn fan_out_matches_ilp() {
    check(fan_out(false));
    check(fan_out(true));
}

#[test]
fn residual_matches_ilp() {
    check(residual(false));
    check(residual(true));
}

#[test]
fn extraction_is_deterministic() {
    let g = residual(true);
    let a = kayak_rewrite::optimize(
        &g,
        &g.outputs,
        &RuleSet::builtin(),
        &Default::default(),
        &CostModel::cpu(),
    )
    .unwrap();
    let b = kayak_rewrite::optimize(
        &g,
        &g.outputs,
        &RuleSet::builtin(),
        &Default::default(),
        &CostModel::cpu(),
    )
    .unwrap();
    assert_eq!(
        format!(
            "{:?}",
            a.graph.nodes.iter().map(|n| &n.op).collect::<Vec<_>>()
        ),
        format!(
            "{:?}",
            b.graph.nodes.iter().map(|n| &n.op).collect::<Vec<_>>()
        )
    );
    let _ = Op::Identity(Identity);
}
