//! Whether a plan's runs dispatch their steps' tasks across the pool or run them all on the
//! calling thread, chosen by measuring both.
//!
//! A parallel step pays for a fork-join and for its data crossing between cores. On a VM
//! whose vCPUs sit on different core complexes that can cost more than the second core
//! saves, for the whole model: this machine alternates, minutes apart, between an 80 ns
//! and a 340 ns cache-line round trip between its two vCPUs, and in the slow periods
//! MobileNetV3 ran 2.2–2.4 ms at 2 threads against 1.6 ms at 1. No static cost model
//! knows which machine it is on, so a [`crate::RunState`] with more than one thread
//! measures: in a probe window of [`PROBE`] runs (after a plan's first [`WARM`] runs,
//! then every [`EVERY`] runs, to follow the machine) runs alternate between the two ways
//! and are timed whole (each way's runs in a row); after the window the plan keeps the
//! way with the lower median.
//! Runs between windows are timed too, in groups of [`WATCH`]: a group whose median
//! drifted a quarter past the chosen way's opens the next window at once (a phase change
//! of the machine, or a window that caught a stall, is then not kept for 1024 runs).
//!
//! Whole runs, not steps: timed step by step, with neighbouring steps run the other way,
//! a parallel step read its input from the wrong core, and the per-step choices made
//! MobileNetV3 7% slower than all-parallel in a fast period.
//!
//! Both ways produce the same bits: an inline run keeps the pool's thread count, so the
//! kernels cut their work into the same tasks and only where they run changes
//! ([`kayak_kernels::ThreadPool::set_inline`]).

/// Runs per probe window: half each way, one way's runs together (the first of each
/// half not counted: it reads what the other way left in the other core's cache).
/// Alternating the ways run by run made every inline run read its inputs from the
/// other core, and in this VM's far periods inline runs measured slower than
/// dispatched ones (2.0 ms) though they ran 1.7 ms in a row.
pub(crate) const PROBE: u64 = 10;
/// Samples per way in a window.
const HALF: usize = (PROBE / 2) as usize - 1;
/// A probe window starts every this many runs of a plan.
pub(crate) const EVERY: u64 = 1024;
/// Runs before a plan's first probe window, dispatched and not timed: a plan's first runs
/// also fault in its arena and start the workers, and timed in the window they made the
/// parallel way look slow (MobileNetV3 then ran inline at 1.86 ms where dispatched runs
/// took 1.0).
pub(crate) const WARM: u64 = 4;
/// Runs between windows are timed in groups of this many; a group whose median is
/// [`DRIFT`] times the chosen way's median in the window (the machine changed, or the
/// window caught a stall) starts a window at once instead of waiting for the next.
pub(crate) const WATCH: usize = 8;
/// See [`WATCH`]: 5/4.
const DRIFT: (u64, u64) = (5, 4);
/// Plans whose choice a run state remembers (the most recently run ones).
const PLANS: usize = 8;

/// The choices for the plans a run state has run.
#[derive(Debug, Default)]
pub(crate) struct Adapt {
    plans: Vec<Choice>,
}

/// One plan's choice and the probe samples being gathered.
#[derive(Debug)]
pub(crate) struct Choice {
    plan: u64,
    /// Runs since the current schedule started: windows at `WARM..WARM + PROBE` of it,
    /// and again every [`EVERY`] runs.
    runs: u64,
    /// Runs go inline (all tasks on the caller).
    inline: bool,
    /// This window's run times in ns, per way (0 parallel, 1 inline).
    samples: [[u64; HALF]; 2],
    /// The chosen way's median in the last window.
    chosen: u64,
    /// The current group of run times between windows ([`WATCH`]).
    recent: [u64; WATCH],
    filled: usize,
}

impl Adapt {
    /// The choice for plan `id`, made fresh (parallel, probing first) the first time, or
    /// if the plan has been forgotten since.
    pub(crate) fn plan(&mut self, id: u64) -> &mut Choice {
        let at = match self.plans.iter().position(|c| c.plan == id) {
            Some(at) => at,
            None => {
                if self.plans.len() == PLANS {
                    self.plans.remove(0);
                }
                self.plans.push(Choice {
                    plan: id,
                    runs: 0,
                    inline: false,
                    samples: [[0; HALF]; 2],
                    chosen: 0,
                    recent: [0; WATCH],
                    filled: 0,
                });
                self.plans.len() - 1
            }
        };
        &mut self.plans[at]
    }
}

impl Choice {
    /// Where this run falls in the probe schedule: `Some(k)` for the k-th run of a window.
    fn window_run(&self) -> Option<u64> {
        let r = self.runs % EVERY;
        (self.runs >= WARM && (WARM..WARM + PROBE).contains(&r)).then(|| r - WARM)
    }

    /// Whether this run is in a probe window.
    #[cfg(test)]
    fn probing(&self) -> bool {
        self.window_run().is_some()
    }

    /// Whether this run goes inline.
    pub(crate) fn inline(&self) -> bool {
        match self.window_run() {
            Some(k) => k >= PROBE / 2,
            None => self.inline && self.runs >= WARM,
        }
    }

    /// Ends a run that took `ns` (runs before the first window are not read). At the end
    /// of a window the plan takes the faster way; between windows, a group of runs that
    /// drifted starts the next window at once.
    pub(crate) fn end_run(&mut self, ns: u64) {
        if let Some(k) = self.window_run() {
            let (way, i) = ((k >= PROBE / 2) as usize, (k % (PROBE / 2)) as usize);
            if i > 0 {
                self.samples[way][i - 1] = ns;
            }
            if k + 1 == PROBE {
                let (par, inl) = (median(self.samples[0]), median(self.samples[1]));
                self.inline = inl < par;
                self.chosen = par.min(inl);
                self.filled = 0;
            }
        } else if self.runs >= WARM + PROBE {
            self.recent[self.filled] = ns;
            self.filled += 1;
            if self.filled == WATCH {
                self.filled = 0;
                if median(self.recent) * DRIFT.1 > self.chosen * DRIFT.0 {
                    // The next run opens a window (and the schedule restarts there).
                    self.runs = WARM - 1;
                }
            }
        }
        self.runs += 1;
    }
}

/// The median of the samples (the mean of the middle two).
fn median<const N: usize>(mut s: [u64; N]) -> u64 {
    s.sort_unstable();
    (s[(N - 1) / 2] + s[N / 2]) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs up to the next probe window (dispatched), then the window with
    /// `cost(inline)` per run; returns how many runs of the window went each way.
    fn window(a: &mut Adapt, id: u64, mut cost: impl FnMut(bool) -> u64) -> [u64; 2] {
        while !a.plan(id).probing() {
            let c = a.plan(id);
            assert!(c.runs < WARM, "only the warm-up runs precede a window here");
            assert!(!c.inline(), "warm-up runs are dispatched");
            c.end_run(1);
        }
        let mut ways = [0; 2];
        for _ in 0..PROBE {
            let c = a.plan(id);
            assert!(c.probing());
            let inline = c.inline();
            ways[usize::from(inline)] += 1;
            c.end_run(cost(inline));
        }
        ways
    }

    /// A probe window times both ways equally often; afterwards the plan keeps the faster
    /// way until the next window, which can change it back; one slow outlier run does not
    /// decide.
    #[test]
    fn a_plan_keeps_the_way_that_measured_faster() {
        let mut a = Adapt::default();
        assert!(!a.plan(7).inline(), "starts parallel");
        assert_eq!(
            window(&mut a, 7, |i| if i { 10 } else { 30 }),
            [PROBE / 2; 2]
        );
        for _ in PROBE..EVERY {
            let c = a.plan(7);
            assert!(!c.probing() && c.inline());
            c.end_run(0);
        }
        // The next window finds parallel faster, despite one stalled parallel run.
        let mut n = 0;
        window(&mut a, 7, |i| {
            n += 1;
            match (i, n) {
                (false, 2) => 1_000_000,
                (false, _) => 20,
                (true, _) => 50,
            }
        });
        assert!(!a.plan(7).probing() && !a.plan(7).inline());
    }

    /// A window runs each way's runs in a row and does not count the first of each: a
    /// way's first run pays for the other way's cache placement.
    #[test]
    fn a_window_runs_each_way_together_and_skips_its_first_run() {
        let mut a = Adapt::default();
        let mut order = Vec::new();
        window(&mut a, 5, |i| {
            order.push(i);
            match (i, order.iter().filter(|&&w| w == i).count()) {
                (true, 1) => 1_000_000, // the first inline run, not counted
                (true, _) => 10,
                (false, 1) => 1, // the first dispatched run, not counted
                (false, _) => 30,
            }
        });
        let half = (PROBE / 2) as usize;
        assert_eq!(order, [vec![false; half], vec![true; half]].concat());
        assert!(a.plan(5).inline());
    }

    /// A state keeps the choices of its most recent plans apart, and forgets the oldest.
    #[test]
    fn plans_are_kept_apart_and_the_oldest_forgotten() {
        let mut a = Adapt::default();
        window(&mut a, 1, |i| if i { 1 } else { 9 });
        window(&mut a, 2, |i| if i { 9 } else { 1 });
        assert!(a.plan(1).inline() && !a.plan(2).inline());
        for id in 10..10 + PLANS as u64 {
            a.plan(id);
        }
        let c = a.plan(1);
        assert!(
            c.runs == 0 && !c.inline(),
            "plan 1 should have been forgotten"
        );
    }

    /// Between windows, a group of runs whose median drifted a quarter past what the
    /// chosen way measured opens a window at once (which can then choose the other way);
    /// a group with one slow run, or runs just inside the margin, does not.
    #[test]
    fn a_drifting_plan_probes_again_at_once() {
        let mut a = Adapt::default();
        window(&mut a, 3, |i| if i { 100 } else { 300 });
        assert!(a.plan(3).inline());
        let group = |a: &mut Adapt, ns: &dyn Fn(usize) -> u64| {
            for k in 0..WATCH {
                let c = a.plan(3);
                assert!(!c.probing() && c.inline());
                c.end_run(ns(k));
            }
        };
        group(&mut a, &|k| if k == 3 { 10_000 } else { 100 });
        group(&mut a, &|_| 124);
        assert!(!a.plan(3).probing(), "no drift yet");
        group(&mut a, &|_| 200);
        assert!(a.plan(3).probing(), "a drifted group opens a window");
        // The machine changed: dispatched runs are now the faster.
        window(&mut a, 3, |i| if i { 200 } else { 150 });
        assert!(!a.plan(3).probing() && !a.plan(3).inline());
    }

    #[test]
    fn median_of_an_even_count_averages_the_middle_two() {
        assert_eq!(median([5, 1, 9, 3]), 4);
        assert_eq!(median([7, 7, 7, 1000]), 7);
    }
}
