//! The ONNX backend *node* test suite (`onnx/backend/test/data/node` of the `onnx` pip
//! package: one small model per case, with inputs and ONNX's expected outputs as
//! `TensorProto` files) run through Kayak: load (import + optimize), run, compare at the
//! suite's tolerance (`|got − want| ≤ 1e-7 + 1e-3·|want|`, exact for integers and bools).
//!
//! `tests/data/onnx_node_pass.txt` lists the cases that pass; each listed case must still
//! pass (the list may only grow). Every case's outcome and the miss reasons go to
//! `target/onnx-node-report.txt`. The suite is found at `$KAYAK_ONNX_NODE_TESTS`, else in the
//! peers' environment (`../shared/tools/setup-peers.sh` installs `onnx`).

use kayak::{Config, Predictor, Tensor};
use kayak_tests::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn suite_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KAYAK_ONNX_NODE_TESTS") {
        return Some(PathBuf::from(p));
    }
    let peers = std::env::var_os("KAYAK_PEERS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kayak-peers"))
        })?;
    let lib = std::fs::read_dir(peers.join("lib")).ok()?;
    lib.filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/onnx/backend/test/data/node"))
        .find(|p| p.is_dir())
}

fn read_pb(p: &Path) -> Result<Tensor, String> {
    let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
    kayak_proto::onnx::read_tensor_proto(&bytes).map(|(_, t)| t)
}

/// Files `prefix_0.pb`, `prefix_1.pb`, ... of a data set, in order.
fn numbered(dir: &Path, prefix: &str) -> Result<Vec<Tensor>, String> {
    let mut v = Vec::new();
    for k in 0.. {
        let p = dir.join(format!("{prefix}_{k}.pb"));
        if !p.is_file() {
            break;
        }
        v.push(read_pb(&p).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    Ok(v)
}

/// Whether `got` is `want` at the suite's tolerance; `Err` says how not.
fn close(got: &Tensor, want: &Tensor) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!(
            "shape {:?}, expected {:?}",
            got.shape(),
            want.shape()
        ));
    }
    if got.dtype() != want.dtype() {
        return Err(format!(
            "dtype {:?}, expected {:?}",
            got.dtype(),
            want.dtype()
        ));
    }
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let exact = !matches!(
        want.dtype(),
        kayak::DType::F32 | kayak::DType::F64 | kayak::DType::F16 | kayak::DType::BF16
    );
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok = if exact {
            a == b
        } else if b.is_nan() {
            a.is_nan()
        } else if b.is_infinite() {
            a == b
        } else {
            (a - b).abs() <= 1e-7 + 1e-3 * b.abs()
        };
        if !ok {
            return Err(format!("element {i}: {a}, expected {b}"));
        }
    }
    Ok(())
}

/// One case: `Ok` if it passes, else the reason (its first line names the kind of miss).
fn run_case(dir: &Path) -> Result<(), String> {
    let mut p = Predictor::new(Config::new().model_file(dir.join("model.onnx")).threads(1))
        .map_err(|e| format!("load: {e}"))?;
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    sets.sort();
    for set in sets {
        let inputs = numbered(&set, "input").map_err(|e| format!("data: {e}"))?;
        let want = numbered(&set, "output").map_err(|e| format!("data: {e}"))?;
        let got = p.run_with(&inputs).map_err(|e| format!("run: {e}"))?;
        if got.len() != want.len() {
            return Err(format!(
                "outputs: {} produced, {} expected",
                got.len(),
                want.len()
            ));
        }
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            close(g, w).map_err(|e| format!("mismatch: output {k}: {e}"))?;
        }
    }
    Ok(())
}

/// The kind of a miss, for the report's tally: the error with names of values removed.
fn reason_kind(e: &str) -> String {
    let e = e.lines().next().unwrap_or("");
    // The file a load or data error names is the case's own: drop it.
    let e = match e.find(".onnx: ").or_else(|| e.find(".pb: ")) {
        Some(i) => {
            let kind = &e[..e.find(": ").unwrap_or(0)];
            let rest = &e[i + e[i..].find(": ").unwrap() + 2..];
            // Value names differ from case to case.
            let mut out = String::new();
            let mut inside = false;
            for ch in rest.chars() {
                if ch == '`' {
                    inside = !inside;
                    out.push_str(if inside { "`…" } else { "`" });
                } else if !inside {
                    out.push(ch);
                }
            }
            return format!("{kind}: {out}");
        }
        None => e,
    };
    if let Some(i) = e.find("unknown op type: op `") {
        let rest = &e[i + 21..];
        return format!(
            "op not supported: {}",
            &rest[..rest.find('`').unwrap_or(rest.len())]
        );
    }
    if let Some(i) = e.find("not supported yet: ") {
        let rest = &e[i + 19..];
        return format!(
            "unsupported: {}",
            &rest[..rest.find(", at op").unwrap_or(rest.len())]
        );
    }
    let head: String = e.chars().take(70).collect();
    head
}

#[test]
fn onnx_node_conformance_suite() {
    let Some(root) = suite_dir().filter(|p| p.is_dir()) else {
        record_skip(
            "onnx_node_conformance_suite",
            "the onnx package's backend node tests (../shared/tools/setup-peers.sh installs onnx; or set KAYAK_ONNX_NODE_TESTS)",
        );
        return;
    };
    let list_path = repo_root().join("tests/data/onnx_node_pass.txt");
    let listed: Vec<String> = std::fs::read_to_string(&list_path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    cases.sort();
    let mut outcome: BTreeMap<String, Result<(), String>> = BTreeMap::new();
    for c in &cases {
        let name = c.file_name().unwrap().to_string_lossy().into_owned();
        let r = std::panic::catch_unwind(|| run_case(c))
            .unwrap_or_else(|_| Err("PANIC (a bug: bad input must get a typed error)".into()));
        outcome.insert(name, r);
    }
    let passed: Vec<&String> = outcome
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(n, _)| n)
        .collect();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for r in outcome.values() {
        if let Err(e) = r {
            *tally.entry(reason_kind(e)).or_insert(0) += 1;
        }
    }
    let mut tally: Vec<(String, usize)> = tally.into_iter().collect();
    tally.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let rate = 100.0 * passed.len() as f64 / cases.len().max(1) as f64;
    let mut report = format!(
        "ONNX node tests: {} of {} pass ({rate:.1}%), suite at {}\n\nmisses by reason:\n",
        passed.len(),
        cases.len(),
        root.display()
    );
    for (k, n) in &tally {
        report += &format!("{n:5}  {k}\n");
    }
    report += "\nevery case:\n";
    for (n, r) in &outcome {
        match r {
            Ok(()) => report += &format!("pass  {n}\n"),
            Err(e) => report += &format!("MISS  {n}: {}\n", e.lines().next().unwrap_or("")),
        }
    }
    let out = repo_root().join("target/onnx-node-report.txt");
    let _ = std::fs::create_dir_all(out.parent().unwrap());
    std::fs::write(&out, &report).unwrap();
    println!("{}", report.lines().take(40).collect::<Vec<_>>().join("\n"));
    println!("(full report: {})", out.display());
    let new: Vec<&&String> = passed.iter().filter(|n| !listed.contains(n)).collect();
    if !new.is_empty() {
        println!(
            "{} cases pass that {} does not list yet: add them",
            new.len(),
            list_path.display()
        );
    }
    let broken: Vec<String> = listed
        .iter()
        .filter(|n| !matches!(outcome.get(*n), Some(Ok(()))))
        .map(|n| match outcome.get(n) {
            Some(Err(e)) => format!("{n}: {e}"),
            _ => format!("{n}: no such case in the suite"),
        })
        .collect();
    assert!(
        broken.is_empty(),
        "{} listed cases no longer pass:\n{}",
        broken.len(),
        broken.join("\n")
    );
}
