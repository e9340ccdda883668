//! Helpers for Kayak's integration tests: finding model files, comparing with references,
//! and recording tests that could not run.
//!
//! Models are looked up in `$KAYAK_MODELS`, then `../shared/models` beside the repository,
//! then the cache that `scripts/fetch-models.sh` fills (`$KAYAK_MODEL_CACHE`, default
//! `~/.cache/kayak/models`). A test whose files are missing fails — unless
//! `KAYAK_SKIP_MISSING=1`, in which case it records itself in `target/kayak-skipped.txt`
//! (which the test script prints as "did not run", never as passed) and returns.
#![warn(missing_docs)]

pub mod program;

use anyhow::{Context, Result};
use kayak::Tensor;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repo")
        .to_path_buf()
}

/// Directories searched for models, in order.
pub fn model_roots() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os("KAYAK_MODELS") {
        v.push(PathBuf::from(p));
    }
    v.push(repo_root().join("../shared/models"));
    match std::env::var_os("KAYAK_MODEL_CACHE") {
        Some(p) => v.push(PathBuf::from(p)),
        None => {
            if let Some(h) = std::env::var_os("HOME") {
                v.push(PathBuf::from(h).join(".cache/kayak/models"));
            }
        }
    }
    v
}

/// Finds `rel` (a file or directory under a model root).
pub fn find(rel: &str) -> Option<PathBuf> {
    model_roots()
        .into_iter()
        .map(|r| r.join(rel))
        .find(|p| p.exists())
}

/// Finds `rel`, or handles its absence: panics, or (with `KAYAK_SKIP_MISSING=1`) records
/// the test as not run and returns `None`.
pub fn require(test: &str, rel: &str) -> Option<PathBuf> {
    if let Some(p) = find(rel) {
        return Some(p);
    }
    let roots: Vec<String> = model_roots()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    record_skip(test, &format!("{rel}, not found under {roots:?}"));
    None
}

/// A test that cannot run for want of `needs`: panics, or (with `KAYAK_SKIP_MISSING=1`)
/// records the test as not run (never as passed).
pub fn record_skip(test: &str, needs: &str) {
    let why = format!("{test}: needs {needs}");
    if std::env::var("KAYAK_SKIP_MISSING").is_ok_and(|v| v == "1") {
        let log = repo_root().join("target/kayak-skipped.txt");
        let _ = std::fs::create_dir_all(log.parent().expect("target/"));
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
        {
            // One write per line: tests record themselves from several threads at once.
            let _ = f.write_all(format!("{why}\n").as_bytes());
        }
        eprintln!("DID NOT RUN: {why}");
    } else {
        panic!("{why} (set KAYAK_MODELS, or KAYAK_SKIP_MISSING=1 to record it as not run)");
    }
}

/// The shapes the models' reference inputs have (`../shared/models/README.md`), for runs on
/// models whose directory has no reference inputs (the PP-OCR models that
/// `scripts/fetch-models.sh` fetches carry only the model files).
const REFERENCE_SHAPES: [(&str, &[usize]); 3] = [
    ("ppocr_cls", &[1, 3, 48, 192]),
    ("ppocr_rec", &[1, 3, 48, 320]),
    ("ppocr_det", &[1, 3, 640, 640]),
];

/// Inputs for a test that needs a model's inputs but not its reference outputs: the
/// reference inputs (`input_<name>.npy`) where the directory has them, else seeded f32 inputs
/// in `[0, 1)` at the reference shape for the models that are fetched without them.
/// `None` (the test recorded as not run, see [`require`]) when neither applies.
pub fn model_inputs(
    test: &str,
    model: &str,
    dir: &Path,
    p: &kayak::Predictor,
) -> Option<Vec<Tensor>> {
    let files: Vec<PathBuf> = p
        .input_names()
        .iter()
        .map(|n| dir.join(format!("input_{n}.npy")))
        .collect();
    if files.iter().all(|f| f.exists()) {
        return Some(files.iter().map(|f| npy(f).unwrap()).collect());
    }
    if let Some((_, shape)) = REFERENCE_SHAPES.iter().find(|(m, _)| *m == model) {
        if p.input_names().len() == 1 {
            let t = rand_t(shape, 7);
            let v: Vec<f32> = t
                .to_f64_vec()
                .iter()
                .map(|&x| (x as f32 + 1.0) / 2.0)
                .collect();
            return Some(vec![Tensor::from_f32s(shape, v).unwrap()]);
        }
    }
    require(test, &format!("{model}/input_{}.npy", p.input_names()[0]))?;
    unreachable!("require found a file that was just missing")
}

/// Reads a `.npy` file.
pub fn npy(p: &Path) -> Result<Tensor> {
    kayak::npy::read(p).with_context(|| format!("reading {}", p.display()))
}

/// Elementwise tolerance check `|a - b| <= atol + rtol * |b|`; returns the worst ratio of
/// error to tolerance (≤ 1 passes) and where it is.
pub fn worst_ratio(got: &Tensor, want: &Tensor, atol: f64, rtol: f64) -> Result<(f64, usize)> {
    anyhow::ensure!(
        got.shape() == want.shape(),
        "shape {:?} vs reference {:?}",
        got.shape(),
        want.shape()
    );
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let mut worst = (0.0f64, 0usize);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let r = if a.is_nan() || b.is_nan() {
            if a.is_nan() && b.is_nan() {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            (a - b).abs() / (atol + rtol * b.abs())
        };
        if r > worst.0 {
            worst = (r, i);
        }
    }
    Ok(worst)
}

/// The fp32 tolerance of the shared references: `1e-4 + 1e-3 * |ref|`.
pub const ATOL: f64 = 1e-4;
/// See [`ATOL`].
pub const RTOL: f64 = 1e-3;

/// Greedy CTC decoding of a `[1, T, C]` probability tensor: argmax per step, merge repeats,
/// drop blanks (class 0); class `k` is `charset[k - 1]`, and the last class is a space.
pub fn ctc_decode(probs: &Tensor, charset: &[String]) -> Result<String> {
    let s = probs.shape();
    anyhow::ensure!(s.len() == 3 && s[0] == 1, "expected [1, T, C], got {s:?}");
    let (t, c) = (s[1], s[2]);
    let v = probs.to_f64_vec();
    let mut out = String::new();
    let mut prev = 0usize;
    for step in 0..t {
        let row = &v[step * c..(step + 1) * c];
        let k = row
            .iter()
            .enumerate()
            .fold(0, |b, (i, &x)| if x > row[b] { i } else { b });
        if k != 0 && k != prev {
            // Classes past the character list (the last one) are the space.
            let ch = charset.get(k - 1).map(String::as_str).unwrap_or(" ");
            out.push_str(ch);
        }
        prev = k;
    }
    Ok(out)
}

/// Reads a PaddleOCR character list (one per line).
pub fn charset(p: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_to_string(p)
        .with_context(|| format!("reading {}", p.display()))?
        .lines()
        .map(str::to_string)
        .collect())
}

/// One committed recognizer case of `tests/data/ocr_text`.
#[derive(Debug, Clone)]
pub struct RecCase {
    /// The preprocessed line, `[1, 3, 48, 320]`.
    pub input: PathBuf,
    /// What Paddle reads.
    pub text: String,
    /// The reference output's file name (under the shared `ocr_text/`, when present).
    pub output: String,
}

/// The committed recognizer cases and the character list to decode them with.
pub fn committed_rec_cases() -> Result<(Vec<RecCase>, Vec<String>)> {
    let data = repo_root().join("tests/data/ocr_text");
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("cases.json"))?)?;
    let mut out = Vec::new();
    for c in cases["cases"]
        .as_array()
        .context("cases.json has no cases")?
    {
        if !c["model"].as_str().unwrap_or("").contains("rec") {
            continue;
        }
        let field = |k: &str| {
            c[k].as_str()
                .map(str::to_string)
                .with_context(|| format!("case without `{k}`"))
        };
        out.push(RecCase {
            input: data.join(field("input")?),
            text: field("text")?,
            output: field("output")?,
        });
    }
    Ok((out, charset(&data.join("ppocr_keys_v1.txt"))?))
}

/// An f32 tensor of `shape` with values in [-1, 1) from a xorshift generator seeded by
/// `seed` (the same seed gives the same tensor).
pub fn rand_t(shape: &[usize], seed: u64) -> Tensor {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_f32s(shape, v).expect("the shape's element count")
}

/// Runs shared model `name` (with its `extra_fetch.json` variable, if any) under
/// `tweak(config)` and checks every output against Paddle Inference's references
/// ([`ATOL`], [`RTOL`]), then each `(input, output, label)` file pair of `extra`. Returns
/// the predictor (for its reports), or `None` when the model is missing and the test
/// recorded itself as not run.
pub fn check_model_with(
    test: &str,
    name: &str,
    extra: &[(&str, &str, &str)],
    tweak: impl FnOnce(kayak::Config) -> kayak::Config,
) -> Option<kayak::Predictor> {
    check_model_tol(test, name, extra, (ATOL, RTOL), tweak).map(|(p, _)| p)
}

/// The GPU's fp32 tolerance, `|a − b| ≤ 1e-3 + 1e-2·|b|` (the GPU issue's).
pub const GPU_TOL: (f64, f64) = (1e-3, 1e-2);

/// [`check_model_with`] at tolerance `(atol, rtol)`; also returns the main inputs' shapes.
pub fn check_model_tol(
    test: &str,
    name: &str,
    extra: &[(&str, &str, &str)],
    (atol, rtol): (f64, f64),
    tweak: impl FnOnce(kayak::Config) -> kayak::Config,
) -> Option<(kayak::Predictor, Vec<Vec<usize>>)> {
    let dir = require(test, &format!("{name}/manifest.json"))?
        .parent()
        .unwrap()
        .to_path_buf();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut cfg = kayak::Config::new().model_dir(&dir);
    let fetch: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("extra_fetch.json"))
        .ok()
        .map(|s| vec![serde_json::from_str(&s).unwrap()])
        .unwrap_or_default();
    for f in &fetch {
        cfg = cfg.fetch_var(f["var"].as_str().unwrap());
    }
    let mut p = kayak::Predictor::new(tweak(cfg)).unwrap();
    let inputs: Vec<kayak::Tensor> = manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| npy(&dir.join(i["file"].as_str().unwrap())).unwrap())
        .collect();
    let names: Vec<&str> = manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(p.input_names(), names.as_slice());
    let outs = p.run_with(&inputs).unwrap();
    let mut refs: Vec<(String, std::path::PathBuf)> = manifest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                dir.join(o["file"].as_str().unwrap()),
            )
        })
        .collect();
    for f in &fetch {
        refs.push((
            f["var"].as_str().unwrap().to_string(),
            dir.join(f["file"].as_str().unwrap()),
        ));
    }
    assert_eq!(outs.len(), refs.len());
    for (got, (oname, file)) in outs.iter().zip(&refs) {
        let want = npy(file).unwrap();
        let (r, at) = worst_ratio(got, &want, atol, rtol).unwrap();
        println!("{name} {oname}: worst |err|/tol = {r:.4} at {at}");
        assert!(
            r <= 1.0,
            "{name} {oname}: error {r:.3}x the tolerance at element {at}"
        );
    }
    for (input, output, label) in extra {
        let x = npy(&dir.join(input)).unwrap();
        let got = p.run_with(&[x]).unwrap();
        let want = npy(&dir.join(output)).unwrap();
        let (r, at) = worst_ratio(&got[0], &want, atol, rtol).unwrap();
        println!("{name} {label}: worst |err|/tol = {r:.4} at {at}");
        assert!(
            r <= 1.0,
            "{name} {label}: error {r:.3}x the tolerance at element {at}"
        );
    }
    let shapes = inputs.iter().map(|t| t.shape().to_vec()).collect();
    Some((p, shapes))
}

/// What a GPU predictor's plan for these shapes runs where; `None` for a predictor on
/// another backend.
pub fn gpu_report(
    p: &kayak::Predictor,
    shapes: &[Vec<usize>],
) -> Option<kayak::gpu_exec::GpuReport> {
    p.plan_as::<kayak::gpu_exec::GpuPlan>(shapes)
        .unwrap()
        .map(|g| g.report().clone())
}
