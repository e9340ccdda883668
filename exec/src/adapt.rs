//! Whether a plan's runs dispatch their steps' tasks across the pool or run them all on the
//! calling thread, chosen by measuring both.
//!
//! A parallel step pays for a fork-join and for its data crossing between cores. On a VM
//! whose vCPUs sit on different core complexes that can cost more than the second core
//! saves, for the whole model: this machine alternates, minutes apart, between an 80 ns
//! and a 340 ns cache-line round trip between its two vCPUs, and in the slow periods
//! MobileNetV3 ran 2.2–2.4 ms at 2 threads against 1.6 ms at 1. No static cost model
//! knows which machine it is on, so a [`crate::RunState`] with more than one thread
//! measures: in a probe window of [`PROBE`] runs (a plan's first runs, then every
//! [`EVERY`] runs, to follow the machine) runs alternate between the two ways and are
//! timed whole; after the window the plan keeps the way with the lower median.
//!
//! Whole runs, not steps: timed step by step, with neighbouring steps run the other way,
//! a parallel step read its input from the wrong core, and the per-step choices made
//! MobileNetV3 7% slower than all-parallel in a fast period.
//!
//! Both ways produce the same bits: an inline run keeps the pool's thread count, so the
//! kernels cut their work into the same tasks and only where they run changes
//! ([`kayak_kernels::ThreadPool::set_inline`]).

/// Runs per probe window (each way gets half).
pub(crate) const PROBE: u64 = 8;
/// A probe window starts every this many runs of a plan.
pub(crate) const EVERY: u64 = 1024;
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
    runs: u64,
    /// Runs go inline (all tasks on the caller).
    inline: bool,
    /// This window's run times in ns, per way (0 parallel, 1 inline).
    samples: [[u64; (PROBE / 2) as usize]; 2],
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
                    samples: [[0; (PROBE / 2) as usize]; 2],
                });
                self.plans.len() - 1
            }
        };
        &mut self.plans[at]
    }
}

impl Choice {
    /// Whether this run is timed (it is in a probe window).
    pub(crate) fn probing(&self) -> bool {
        self.runs % EVERY < PROBE
    }

    /// Whether this run goes inline.
    pub(crate) fn inline(&self) -> bool {
        if self.probing() {
            self.runs % 2 == 1
        } else {
            self.inline
        }
    }

    /// Ends a run that took `ns` (read only in a probe window); at the end of a window,
    /// the plan takes the faster way.
    pub(crate) fn end_run(&mut self, ns: u64) {
        if self.probing() {
            let r = self.runs % EVERY;
            self.samples[(r % 2) as usize][(r / 2) as usize] = ns;
        }
        self.runs += 1;
        if self.runs % EVERY == PROBE {
            self.inline = median(self.samples[1]) < median(self.samples[0]);
        }
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

    /// Runs one probe window with `cost(inline)` per run; returns how many runs went
    /// each way.
    fn window(a: &mut Adapt, id: u64, mut cost: impl FnMut(bool) -> u64) -> [u64; 2] {
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
            c.probing() && !c.inline(),
            "plan 1 should have been forgotten"
        );
    }

    #[test]
    fn median_of_an_even_count_averages_the_middle_two() {
        assert_eq!(median([5, 1, 9, 3]), 4);
        assert_eq!(median([7, 7, 7, 1000]), 7);
    }
}
