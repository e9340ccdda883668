//! The recognizer reads the rendered text lines exactly (inputs and expected strings are
//! committed in `tests/data/ocr_text`, so this runs wherever the PP-OCR rec model is found).

use kayak::{Config, Predictor};
use kayak_tests::*;

#[test]
fn recognizer_reads_the_committed_lines_exactly() {
    let (cases, chars) = committed_rec_cases().unwrap();
    let Some(mdir) = require(
        "recognizer_reads_the_committed_lines_exactly",
        "ppocr_rec/inference.pdmodel",
    )
    .map(|p| p.parent().unwrap().to_path_buf()) else {
        return;
    };
    let mut p = Predictor::new(Config::new().model_dir(&mdir)).unwrap();
    let mut n = 0;
    for case in &cases {
        let x = npy(&case.input).unwrap();
        let out = p.run_with(&[x]).unwrap();
        let text = ctc_decode(&out[0], &chars).unwrap();
        println!("{} -> {text:?}", case.input.display());
        assert_eq!(text, case.text);
        // Where the shared references are present, the probabilities match them too.
        if let Some(r) = find(&format!("ocr_text/{}", case.output)) {
            let (ratio, at) = worst_ratio(&out[0], &npy(&r).unwrap(), ATOL, RTOL).unwrap();
            println!("  worst |err|/tol = {ratio:.4} at {at}");
            assert!(ratio <= 1.0);
        }
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn detector_on_the_page_matches_reference() {
    let Some(inp) = require(
        "detector_on_the_page_matches_reference",
        "ocr_text/det_page_input.npy",
    ) else {
        return;
    };
    let Some(mdir) = require(
        "detector_on_the_page_matches_reference",
        "ppocr_det/inference.pdmodel",
    )
    .map(|p| p.parent().unwrap().to_path_buf()) else {
        return;
    };
    let want = npy(&inp.with_file_name("det_page_output.npy")).unwrap();
    let mut p = Predictor::new(Config::new().model_dir(&mdir)).unwrap();
    let out = p.run_with(&[npy(&inp).unwrap()]).unwrap();
    let (r, at) = worst_ratio(&out[0], &want, ATOL, RTOL).unwrap();
    println!("det_page worst |err|/tol = {r:.4} at {at}");
    assert!(r <= 1.0);
    // The text regions: the share of pixels above 0.3 is what Paddle found.
    let v = out[0].to_f64_vec();
    let frac = v.iter().filter(|&&x| x > 0.3).count() as f64 / v.len() as f64;
    assert!((frac - 0.03947265625).abs() < 1e-3, "{frac}");
}
