//! Model-like random graphs (`kayak_rewrite::verify::graphs`: CNN blocks, MLPs, attention,
//! layer-norm and GELU primitives, embeddings), as generated and as the optimizer fuses
//! them, through GPU plans on the CPU emulator with every op that has a device kernel on
//! the device: each output against the reference evaluation of the original graph.

use kayak::gpu::{Device, Emulator};
use kayak::gpu_exec::{concretize, device_support, GpuPlan, GpuState};
use kayak_rewrite::verify::graphs::{random_graph, MAX_SIZE};
use kayak_tests::worst_ratio;
use std::sync::Arc;

#[test]
fn random_graphs_run_on_the_emulated_device_as_the_reference_computes_them() {
    let dev: Arc<dyn Device> = Arc::new(Emulator::new().unwrap());
    let (mut device_nodes, mut graphs) = (0, 0);
    for seed in 0..36u64 {
        let rg = random_graph(seed, 1 + (seed as usize / 6) % MAX_SIZE);
        let want = rg.graph.evaluate(&rg.inputs).unwrap();
        let optimized = kayak_rewrite::optimize(
            &rg.graph,
            &rg.graph.outputs,
            &kayak_rewrite::RuleSet::builtin(),
            &kayak_rewrite::Limits::default(),
            &kayak_rewrite::CostModel::gpu(),
        )
        .unwrap();
        for (label, graph, keep) in [
            ("as generated", &rg.graph, rg.graph.outputs.clone()),
            ("optimized", &optimized.graph, optimized.keep.clone()),
        ] {
            let shapes: Vec<Vec<usize>> = rg.inputs.iter().map(|t| t.shape().to_vec()).collect();
            let (g, _) = concretize(graph, &keep, &shapes).unwrap();
            let support = device_support(&g);
            let plan = GpuPlan::new(dev.clone(), g, &support)
                .unwrap_or_else(|e| panic!("{} seed {seed} {label}: {e}", rg.kind));
            device_nodes += plan.report().device_nodes;
            graphs += 1;
            let mut state = GpuState::new(dev.clone());
            plan.run(&mut state, &rg.inputs)
                .unwrap_or_else(|e| panic!("{} seed {seed} {label}: {e}", rg.kind));
            let got = state.outputs();
            assert_eq!(got.len(), want.len());
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                let (r, at) = worst_ratio(a, b, 1e-4, 1e-3).unwrap();
                assert!(
                    r <= 1.0,
                    "{} seed {seed} size {} {label}, output {k}: {r:.2}x the tolerance at {at}",
                    rg.kind,
                    rg.size
                );
            }
        }
    }
    println!("{graphs} graphs, {device_nodes} nodes on the device");
    assert!(device_nodes > 200, "{device_nodes}");
}
