//! Dynamic input shapes: every case in `dynamic/cases.json` matches Paddle Inference, with
//! one predictor per model re-planning per shape signature (plans cached).

use kayak::{Config, Predictor};
use kayak_tests::*;
use std::collections::HashMap;

#[test]
fn every_dynamic_case_matches_reference() {
    let Some(cases_file) = require("every_dynamic_case_matches_reference", "dynamic/cases.json")
    else {
        return;
    };
    let dir = cases_file.parent().unwrap().to_path_buf();
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cases_file).unwrap()).unwrap();
    let mut preds: HashMap<String, Predictor> = HashMap::new();
    let mut report = Vec::new();
    for case in cases["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let model = case["model"].as_str().unwrap();
        let Some(mdir) = require("every_dynamic_case_matches_reference", model) else {
            return;
        };
        let p = preds
            .entry(model.to_string())
            .or_insert_with(|| Predictor::new(Config::new().model_dir(&mdir)).unwrap());
        let inputs: Vec<kayak::Tensor> = p
            .input_names()
            .to_vec()
            .iter()
            .map(|n| {
                npy(&dir.join(
                    case["inputs"][n.as_str()]
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}: no input {n}")),
                ))
                .unwrap()
            })
            .collect();
        for (t, n) in inputs.iter().zip(p.input_names()) {
            let want: Vec<usize> = case["shapes"][n.as_str()]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(t.shape(), want.as_slice(), "{name}: input {n}");
        }
        let outs = p.run_with(&inputs).unwrap();
        for (k, f) in case["outputs"].as_array().unwrap().iter().enumerate() {
            let want = npy(&dir.join(f.as_str().unwrap())).unwrap();
            let (r, at) = worst_ratio(&outs[k], &want, ATOL, RTOL).unwrap();
            report.push(format!(
                "{name}: output {k} {:?} worst |err|/tol = {r:.4} at {at}",
                want.shape()
            ));
            assert!(
                r <= 1.0,
                "{name}: output {k} error {r:.3}x the tolerance at element {at}"
            );
        }
    }
    for line in &report {
        println!("{line}");
    }
    assert!(
        report.len() >= 11,
        "expected every case to run, ran {}",
        report.len()
    );
}

#[test]
fn rec_text_at_each_width_matches_the_reference_reading() {
    // The recognizer's argmax path at widths 160 and 640 reads what Paddle read.
    let Some(cases_file) = require(
        "rec_text_at_each_width_matches_the_reference_reading",
        "dynamic/cases.json",
    ) else {
        return;
    };
    let Some(keys) = require(
        "rec_text_at_each_width_matches_the_reference_reading",
        "ocr_text/ppocr_keys_v1.txt",
    ) else {
        return;
    };
    let Some(mdir) = require(
        "rec_text_at_each_width_matches_the_reference_reading",
        "ppocr_rec",
    ) else {
        return;
    };
    let dir = cases_file.parent().unwrap().to_path_buf();
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cases_file).unwrap()).unwrap();
    let chars = charset(&keys).unwrap();
    let mut p = Predictor::new(Config::new().model_dir(&mdir)).unwrap();
    let mut n = 0;
    for case in cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["text"].is_string())
    {
        let x = npy(&dir.join(case["inputs"]["x"].as_str().unwrap())).unwrap();
        let out = p.run_with(&[x]).unwrap();
        let text = ctc_decode(&out[0], &chars).unwrap();
        assert_eq!(text, case["text"].as_str().unwrap(), "{}", case["name"]);
        n += 1;
    }
    assert_eq!(n, 6);
}
