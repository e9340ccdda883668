//! Corrupted model files never panic: every mutation either loads and runs, or fails with a
//! typed error.

use kayak::{Config, Predictor, Tensor};
use kayak_tests::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(buf: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = buf.to_vec();
    match rng.below(4) {
        0 => {
            // Flip a few bytes.
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = rng.below(b.len());
            b[i] = [0x00, 0xff, 0x7f, 0x80][rng.below(4)];
        }
        2 => b.truncate(rng.below(b.len())),
        _ => {
            // Duplicate a span (shifts everything after it).
            let i = rng.below(b.len());
            let n = 1 + rng.below(16);
            let span: Vec<u8> = b[i..(i + n).min(b.len())].to_vec();
            b.splice(i..i, span);
        }
    }
    b
}

#[test]
fn mutated_models_give_errors_not_panics() {
    let dir = repo_root().join("assets/ppocr_cls");
    let model = std::fs::read(dir.join("inference.pdmodel")).unwrap();
    let params = std::fs::read(dir.join("inference.pdiparams")).unwrap();
    let x = npy(&repo_root().join("assets/text_line.npy")).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut loaded, mut failed) = (0, 0);
    for i in 0..300 {
        let (m, p) = if i % 2 == 0 {
            (mutate(&model, &mut rng), params.clone())
        } else {
            (model.clone(), mutate(&params, &mut rng))
        };
        let x = x.clone();
        let r = std::panic::catch_unwind(move || -> Result<Vec<Tensor>, kayak::Error> {
            let mut pred = Predictor::new(Config::new().model_buffers(m, p))?;
            pred.run_with(&[x])
        });
        match r {
            Ok(Ok(_)) => loaded += 1,
            Ok(Err(e)) => {
                assert!(!e.to_string().is_empty());
                failed += 1;
            }
            Err(_) => panic!("mutation {i} panicked"),
        }
    }
    println!("{loaded} mutations still ran, {failed} gave typed errors");
    assert!(failed > 0);
}
