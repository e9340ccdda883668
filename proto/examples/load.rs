//! Loads a model and prints a summary: `cargo run -p kayak-proto --example load -- DIR`.
fn main() {
    for p in std::env::args().skip(1) {
        match kayak_proto::load(&kayak_proto::ModelSource::from_path(&p)) {
            Ok(m) => {
                let g = &m.graph;
                eprintln!(
                    "{p}: {} nodes, {} params ({} bytes)",
                    g.nodes.len(),
                    m.param_count,
                    m.param_bytes
                );
                for &i in &g.inputs {
                    eprintln!("  in  {} {}", g.values[i].name, g.values[i].ty);
                }
                for &o in &g.outputs {
                    eprintln!("  out {} {}", g.values[o].name, g.values[o].ty);
                }
            }
            Err(e) => eprintln!("{p}: error: {e}"),
        }
    }
}
