//! A plan cannot be broken by safe code: its fields are private (see the `compile_fail`
//! doctests on `kayak_exec::Plan`), and whatever a caller feeds a run — inputs that change
//! between the checks and the run, tensors in another layout, another backend's state — the
//! run answers with an error or the right outputs, never a wild read or write.
#![forbid(unsafe_code)]

use kayak::exec::{ExecState, Inputs, Plan, RunState};
use kayak::{Config, Predictor, Tensor};
use std::cell::Cell;

fn cls() -> Predictor {
    let dir = kayak_tests::repo_root().join("assets/ppocr_cls");
    Predictor::new(Config::new().model_dir(dir)).unwrap()
}

fn line() -> Tensor {
    kayak::npy::read(kayak_tests::repo_root().join("assets/text_line.npy")).unwrap()
}

/// Inputs that answer the run's checks with one tensor and then, every later call,
/// another.
struct Shifty {
    good: Tensor,
    bad: Tensor,
    calls: Cell<usize>,
}

impl Inputs for Shifty {
    fn input(&self, _: usize) -> Option<&Tensor> {
        self.calls.set(self.calls.get() + 1);
        Some(if self.calls.get() == 1 {
            &self.good
        } else {
            &self.bad
        })
    }
    fn count(&self) -> usize {
        1
    }
}

#[test]
fn inputs_that_change_under_the_run_are_an_error() {
    let p = cls();
    let x = line();
    let plan = p
        .plan_as::<Plan>(&[x.shape().to_vec()])
        .unwrap()
        .expect("a CPU plan");
    let mut state = RunState::new(1);
    // A smaller tensor after the checks: the run must not read past it.
    let shifty = Shifty {
        good: x.clone(),
        bad: Tensor::zeros(kayak::DType::F32, &[1]),
        calls: Cell::new(0),
    };
    assert!(plan.run(&shifty, &mut state).is_err());
    // The same inputs, honest: the run works on the same state afterwards.
    plan.run(&vec![x.clone()], &mut state).unwrap();
    assert_eq!(state.outputs()[0].shape(), &[1, 2]);
}

#[test]
fn inputs_in_another_layout_or_of_another_type_are_errors() {
    let p = cls();
    let x = line();
    let plan = p.plan_as::<Plan>(&[x.shape().to_vec()]).unwrap().unwrap();
    let mut state = RunState::new(1);
    // A transposed view: the right shape, not row-major.
    let t = match &x {
        Tensor::F32(a) => {
            let mut a = a.clone();
            a.swap_axes(2, 3);
            let mut b = a.as_standard_layout().into_owned();
            b.swap_axes(2, 3);
            Tensor::F32(b)
        }
        _ => unreachable!("the line is f32"),
    };
    assert_eq!(t.shape(), x.shape());
    assert!(plan.run(&vec![t], &mut state).is_err());
    let wrong_dtype = Tensor::zeros(kayak::DType::F64, x.shape());
    assert!(plan.run(&vec![wrong_dtype], &mut state).is_err());
    let wrong_shape = Tensor::zeros(kayak::DType::F32, &[1, 3, 48, 96]);
    assert!(plan.run(&vec![wrong_shape], &mut state).is_err());
    assert!(plan.run(&Vec::<Tensor>::new(), &mut state).is_err());
}

/// A state of some other backend.
struct Foreign(Vec<Tensor>);
impl ExecState for Foreign {
    fn outputs(&self) -> &[Tensor] {
        &self.0
    }
}

#[test]
fn a_plan_refuses_another_backends_state() {
    let p = cls();
    let x = line();
    let plan = p.plan_for(&[x.shape().to_vec()]).unwrap();
    let mut other = Foreign(vec![]);
    let err = plan.run(&vec![x], &mut other, None).unwrap_err();
    assert!(err.to_string().contains("CPU run state"), "{err}");
}

#[test]
fn step_times_of_another_length_are_an_error() {
    let p = cls();
    let x = line();
    let plan = p.plan_for(&[x.shape().to_vec()]).unwrap();
    let mut state: Box<dyn ExecState> = p.backend().new_state().unwrap();
    let mut times = vec![0u64; plan.step_count() + 1];
    assert!(plan
        .run(&vec![x.clone()], state.as_mut(), Some(&mut times))
        .is_err());
    let mut times = vec![0u64; plan.step_count()];
    plan.run(&vec![x], state.as_mut(), Some(&mut times))
        .unwrap();
    assert!(times.iter().sum::<u64>() > 0);
}

#[test]
fn every_plan_of_the_bundled_model_passes_its_own_checks() {
    let p = cls();
    for w in [48, 96, 192, 320] {
        let plan = p.plan_as::<Plan>(&[vec![1, 3, 48, w]]).unwrap().unwrap();
        plan.check_memory().unwrap();
        assert!(plan.graph().nodes.len() >= plan.step_count());
    }
}
