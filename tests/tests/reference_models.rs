//! Every shared model matches Paddle Inference's reference outputs.

use kayak_tests::*;

fn check_model(test: &str, name: &str, extra: &[(&str, &str, &str)]) {
    check_model_with(test, name, extra, |c| c);
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
