//! Graphviz pictures of graphs before and after optimization.

use kayak_ir::{Graph, ValueDef};
use std::fmt::Write;

/// One Graphviz `digraph` with the graph before and after as two clusters. Nodes made by a
/// rule (`fused[i]` true for node `i` of `after`) are filled orange; weights are omitted.
pub fn before_after(before: &Graph, after: &Graph, fused: &[bool]) -> String {
    let mut s = String::from("digraph kayak {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=Helvetica];\n");
    cluster(&mut s, "before", before, &[]);
    cluster(&mut s, "after", after, fused);
    s.push_str("}\n");
    s
}

fn esc(x: &str) -> String {
    x.replace('\\', "\\\\").replace('"', "\\\"")
}

fn cluster(s: &mut String, name: &str, g: &Graph, fused: &[bool]) {
    let _ = writeln!(
        s,
        "  subgraph cluster_{name} {{\n    label=\"{name}: {} ops\";",
        g.nodes.len()
    );
    for (k, &v) in g.inputs.iter().enumerate() {
        let _ = writeln!(
            s,
            "    {name}_in{k} [label=\"{}\\n{}\", shape=ellipse, fillcolor=lightblue];",
            esc(&g.values[v].name),
            esc(&g.values[v].ty.to_string())
        );
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let color = if fused.get(i).copied().unwrap_or(false) {
            "orange"
        } else {
            "white"
        };
        let out = n
            .outputs
            .first()
            .map(|&o| g.values[o].ty.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "    {name}_n{i} [label=\"{}\\n{}\", fillcolor={color}];",
            n.op.name(),
            esc(&out)
        );
    }
    let producer = |v: usize| -> Option<String> {
        match &g.values[v].def {
            ValueDef::Input => g
                .inputs
                .iter()
                .position(|&i| i == v)
                .map(|k| format!("{name}_in{k}")),
            ValueDef::Node { node, .. } => Some(format!("{name}_n{node}")),
            ValueDef::Const(_) => None,
        }
    };
    for (i, n) in g.nodes.iter().enumerate() {
        for &v in &n.inputs {
            if let Some(p) = producer(v) {
                let _ = writeln!(s, "    {p} -> {name}_n{i};");
            }
        }
    }
    s.push_str("  }\n");
}
