//! The subgraph partitioner (`kayak_ir::partition`) on a real model: MobileNetV3-small as
//! imported, with a stand-in engine that takes every op but pooling (which cuts the model
//! at each SE block's squeeze and at the head). Every group is convex, each holds only
//! ops the engine takes, every op it takes is in a group of at least `min_size` or in a
//! smaller one that was dropped, and each group extracted as a graph of its own computes,
//! from the values its inputs have in the whole model, the values its outputs have there.

use kayak::ir::partition::partition;
use kayak::ir::{Graph, Op, ValueDef};
use kayak_tests::*;

fn no_pooling(g: &Graph, k: usize) -> bool {
    !matches!(g.nodes[k].op, Op::Pool2d(_))
}

#[test]
fn mobilenet_partitions_around_pooling_into_groups_that_compute_the_same() {
    let Some(dir) = require(
        "mobilenet_partitions_around_pooling",
        "mobilenet_v3_small/model.pdmodel",
    ) else {
        return;
    };
    let model = kayak_proto::load(&kayak_proto::ModelSource::ModelFile(dir)).unwrap();
    let g = model.graph;
    let pools = (0..g.nodes.len()).filter(|&k| !no_pooling(&g, k)).count();
    assert!(pools >= 10, "{pools} pooling ops");
    let parts = partition(&g, &no_pooling, 3);
    assert!(parts.len() >= 2, "{} groups", parts.len());
    let covered: usize = parts.iter().map(|p| p.nodes.len()).sum();
    assert!(
        covered + pools <= g.nodes.len() && covered > g.nodes.len() / 2,
        "{covered} of {} nodes in groups",
        g.nodes.len()
    );
    eprintln!(
        "{} nodes, {pools} pooling: {} groups of {:?} nodes",
        g.nodes.len(),
        parts.len(),
        parts.iter().map(|p| p.nodes.len()).collect::<Vec<_>>()
    );
    for p in &parts {
        assert!(p.nodes.iter().all(|&k| no_pooling(&g, k)));
        assert!(!p.outputs.is_empty() && !p.inputs.is_empty());
    }
    // Every value of the whole model, by the reference evaluation, on the shipped input.
    let x = npy(&find("mobilenet_v3_small/input_x.npy").unwrap()).unwrap();
    let mut all = g.clone();
    all.outputs = (0..g.values.len())
        .filter(|&v| !matches!(g.values[v].def, ValueDef::Const(_)))
        .collect();
    let vals = all.evaluate(&[x]).unwrap();
    let mut at = vec![usize::MAX; g.values.len()];
    for (i, &v) in all.outputs.iter().enumerate() {
        at[v] = i;
    }
    for (i, p) in parts.iter().enumerate() {
        let sub = p.extract(&g).unwrap();
        let ins: Vec<_> = p.inputs.iter().map(|&v| vals[at[v]].clone()).collect();
        let got = sub.evaluate(&ins).unwrap();
        for (&v, t) in p.outputs.iter().zip(&got) {
            assert_eq!(
                t.to_f64_vec(),
                vals[at[v]].to_f64_vec(),
                "group {i}: output {}",
                g.values[v].name
            );
        }
        assert_eq!(p.key(&g).unwrap(), p.key(&g).unwrap());
    }
}
