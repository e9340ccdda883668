//! Every shared model matches Paddle Inference's reference outputs.

use kayak::{Config, Predictor};
use kayak_tests::*;

fn check_model(test: &str, name: &str, extra: &[(&str, &str, &str)]) {
    let Some(dir) =
        require(test, &format!("{name}/manifest.json")).map(|p| p.parent().unwrap().to_path_buf())
    else {
        return;
    };
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut cfg = Config::new().model_dir(&dir);
    let fetch: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("extra_fetch.json"))
        .ok()
        .map(|s| vec![serde_json::from_str(&s).unwrap()])
        .unwrap_or_default();
    for f in &fetch {
        cfg = cfg.fetch_var(f["var"].as_str().unwrap());
    }
    let mut p = Predictor::new(cfg).unwrap();
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
        let (r, at) = worst_ratio(got, &want, ATOL, RTOL).unwrap();
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
        let (r, at) = worst_ratio(&got[0], &want, ATOL, RTOL).unwrap();
        println!("{name} {label}: worst |err|/tol = {r:.4} at {at}");
        assert!(
            r <= 1.0,
            "{name} {label}: error {r:.3}x the tolerance at element {at}"
        );
    }
}

#[test]
fn ppocr_det_matches_reference() {
    check_model(
        "ppocr_det_matches_reference",
        "ppocr_det",
        &[("input_x_textlike.npy", "output_0_textlike.npy", "textlike")],
    );
}

#[test]
fn ppocr_rec_matches_reference() {
    check_model("ppocr_rec_matches_reference", "ppocr_rec", &[]);
}

#[test]
fn ppocr_cls_matches_reference() {
    check_model("ppocr_cls_matches_reference", "ppocr_cls", &[]);
}

#[test]
fn mobilenet_v3_small_matches_reference() {
    check_model(
        "mobilenet_v3_small_matches_reference",
        "mobilenet_v3_small",
        &[],
    );
}

#[test]
fn ernie_mini_matches_reference_with_hidden_fetch() {
    check_model(
        "ernie_mini_matches_reference_with_hidden_fetch",
        "ernie_mini",
        &[],
    );
}
