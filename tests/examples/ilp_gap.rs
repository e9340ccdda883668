//! Reports the gap between Kayak's DAG extraction and the exact ILP optimum on real models:
//! `cargo run --release -p kayak-tests --example ilp_gap -- MODEL_DIR... [--seconds N]`.
//! The ILP (good_lp + microlp) may not finish on large e-graphs; then the run says so.

use kayak_rewrite::extract::{dag_cost, extract_refined, ilp_optimum, lp_lower_bound};
use kayak_rewrite::{saturate, CostModel, Limits, RuleSet};
use std::sync::mpsc;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut secs = 120u64;
    if let Some(i) = args.iter().position(|a| a == "--seconds") {
        secs = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(secs);
        args.drain(i..=i + 1);
    }
    for dir in args {
        let m = kayak_proto::load(&kayak_proto::ModelSource::from_path(&dir))?;
        let sat = saturate(
            &m.graph,
            &m.graph.outputs,
            &RuleSet::builtin(),
            &Limits::default(),
        )?;
        let model = CostModel::cpu();
        let (choice, _) = extract_refined(&sat.egraph, &model, &sat.roots, &sat.shared)
            .ok_or_else(|| anyhow::anyhow!("no extraction"))?;
        let ours = dag_cost(&sat.egraph, &model, &choice, &sat.roots)
            .ok_or_else(|| anyhow::anyhow!("cycle"))?;
        let bound = lp_lower_bound(&sat.egraph, &model, &sat.roots);
        if let Some(b) = bound {
            println!(
                "{dir}: extraction {ours:.6e} s, LP lower bound {b:.6e} s: gap at most {:.4}%",
                (ours - b) / b * 100.0
            );
        }
        let (tx, rx) = mpsc::channel();
        let (eg, roots) = (sat.egraph, sat.roots);
        std::thread::spawn(move || {
            let _ = tx.send(ilp_optimum(&eg, &CostModel::cpu(), &roots));
        });
        match rx.recv_timeout(Duration::from_secs(secs)) {
            Ok(Some(best)) => println!(
                "{dir}: extraction {ours:.6e} s, ILP optimum {best:.6e} s, gap {:.4}%",
                (ours - best) / best * 100.0
            ),
            Ok(None) => println!("{dir}: extraction {ours:.6e} s; the ILP found no solution"),
            Err(_) => {
                println!("{dir}: extraction {ours:.6e} s; the ILP did not finish in {secs} s")
            }
        }
    }
    std::process::exit(0)
}
