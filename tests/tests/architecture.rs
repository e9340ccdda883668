//! The architecture's invariants that a machine can check (ARCHITECTURE.md names each
//! one's enforcer): the crate graph's layers, format op names only in their importer's
//! registry, a predictor that names no backend, ISA folders that do not import each other,
//! and no source file over 1,000 lines.

use kayak_tests::repo_root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each workspace crate's normal (not dev-, not build-) dependencies, by `cargo metadata`.
fn crate_graph() -> BTreeMap<String, BTreeSet<String>> {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut g = BTreeMap::new();
    for p in meta["packages"].as_array().unwrap() {
        let deps = p["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect();
        g.insert(p["name"].as_str().unwrap().to_string(), deps);
    }
    g
}

#[test]
fn the_crate_graph_is_layered() {
    let g = crate_graph();
    // Which of our crates each crate may depend on, and which outside crates it must not.
    let ours: BTreeSet<&str> = [
        "kayak",
        "kayak-ir",
        "kayak-proto",
        "kayak-rewrite",
        "kayak-kernels",
        "kayak-exec",
        "kayak-exec-gpu",
        "kayak-gpu",
    ]
    .into();
    let rules: [(&str, &[&str], &[&str]); 7] = [
        ("kayak-ir", &[], &["egg", "prost", "protox"]),
        ("kayak-kernels", &[], &[]),
        ("kayak-gpu", &[], &["egg"]),
        ("kayak-proto", &["kayak-ir"], &["egg"]),
        ("kayak-rewrite", &["kayak-ir"], &["prost"]),
        (
            "kayak-exec",
            &["kayak-ir", "kayak-kernels"],
            &["egg", "prost"],
        ),
        (
            "kayak-exec-gpu",
            &["kayak-ir", "kayak-exec", "kayak-gpu"],
            &["egg", "prost"],
        ),
    ];
    for (krate, allowed, forbidden) in rules {
        let deps = g
            .get(krate)
            .unwrap_or_else(|| panic!("{krate} is not in the workspace"));
        for d in deps {
            assert!(
                !ours.contains(d.as_str()) || allowed.contains(&d.as_str()),
                "{krate} depends on {d}: its layer allows only {allowed:?}"
            );
            assert!(
                !forbidden.contains(&d.as_str()),
                "{krate} depends on {d}, which it must not"
            );
        }
    }
    // The facade is the only crate that sees every backend; bindings (when they come)
    // depend on the facade alone.
    for (krate, deps) in &g {
        if krate.starts_with("kayak-") && krate.contains("bind") {
            let of_ours: Vec<_> = deps.iter().filter(|d| ours.contains(d.as_str())).collect();
            assert_eq!(of_ours, ["kayak"], "{krate} must use only the facade");
        }
    }
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// The library sources (not tests, benches or examples) of every crate.
fn library_sources() -> Vec<PathBuf> {
    let root = repo_root();
    [
        "src",
        "ir/src",
        "proto/src",
        "rewrite/src",
        "kernels/src",
        "exec/src",
        "exec/gpu/src",
        "gpu/src",
        "cli/src",
    ]
    .iter()
    .flat_map(|d| rust_files(&root.join(d)))
    .collect()
}

#[test]
fn no_source_file_is_over_1000_lines() {
    let files = library_sources();
    assert!(files.len() > 50, "found only {} source files", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 1000).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split by concept: {long:?}");
}

#[test]
fn paddle_op_names_live_only_in_the_importers_registry() {
    let kinds: BTreeSet<&str> = kayak::ir::Op::kinds().iter().copied().collect();
    // The format's names that are not also IR kinds (`relu` is both).
    let names: Vec<&str> = kayak_proto::paddle::registry()
        .keys()
        .copied()
        .filter(|n| !kinds.contains(n))
        .collect();
    assert!(names.contains(&"elementwise_add") && names.contains(&"lookup_table_v2"));
    let proto = repo_root().join("proto");
    for f in library_sources().iter().filter(|f| !f.starts_with(&proto)) {
        let text = std::fs::read_to_string(f).unwrap();
        for n in &names {
            assert!(
                !text.contains(&format!("\"{n}\"")),
                "{}: spells the Paddle op type \"{n}\" outside the importer",
                f.display()
            );
        }
    }
}

#[test]
fn the_predictor_names_no_backend() {
    let text = std::fs::read_to_string(repo_root().join("src/predictor.rs")).unwrap();
    let lower = text.to_lowercase();
    for word in [
        "gpu",
        "cuda",
        "emulator",
        "cpubackend",
        "runstate",
        "device",
    ] {
        assert!(
            !lower.contains(word),
            "src/predictor.rs mentions `{word}`: backends are built in src/backend.rs and \
             run through kayak_exec::Backend"
        );
    }
}

#[test]
fn isa_folders_do_not_import_each_other() {
    let isa = repo_root().join("kernels/src/x86_64");
    let isas = ["avx2", "avx512"];
    let mut seen = 0;
    for me in isas {
        for f in rust_files(&isa.join(me)) {
            seen += 1;
            let text = std::fs::read_to_string(&f).unwrap();
            for other in isas.iter().filter(|&&o| o != me) {
                assert!(
                    !text.contains(&format!("{other}::")),
                    "{} reaches into {other}: ISA folders implement what the generic side \
                     declares and meet only in the dispatch table",
                    f.display()
                );
            }
        }
    }
    assert!(seen >= 4, "only {seen} ISA files under {}", isa.display());
}
