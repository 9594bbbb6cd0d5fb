//! Whether an assistant that stopped without being asked is started again.
//!
//! The orchestrator only ends when told to, or when its audio source ended; an end the
//! owner did not ask for is a fault (a bug, a capture thread gone). The owner starts a new
//! assistant and tells the user, but not for ever: one that stops again and again soon
//! after each start is given up on, with a message, until the user changes something.
//! Clock-free: the owner says how long each assistant ran.

use std::time::Duration;

/// An assistant that ran this long was working: the count of quick stops starts over.
pub const STEADY: Duration = Duration::from_secs(60);

/// How many quick stops in a row are restarted before giving up.
pub const MAX_QUICK_RESTARTS: u32 = 3;

/// What to do about an assistant that stopped unasked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again (the `n`th quick restart in a row, from 1).
    Restart(u32),
    /// It keeps stopping: leave it stopped and tell the user.
    GiveUp,
}

/// Counts the quick stops in a row.
#[derive(Debug, Default)]
pub struct Restarts {
    /// Unasked stops, each within [`STEADY`] of its start, since the last steady run.
    quick: u32,
}

impl Restarts {
    /// The assistant stopped unasked after running for `ran_for`.
    pub fn stopped_after(&mut self, ran_for: Duration) -> Decision {
        if ran_for >= STEADY {
            self.quick = 0;
        }
        self.quick += 1;
        if self.quick > MAX_QUICK_RESTARTS {
            Decision::GiveUp
        } else {
            Decision::Restart(self.quick)
        }
    }

    /// The user changed something (new settings): whatever stopped it may be gone.
    pub fn forgive(&mut self) {
        self.quick = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_stops_are_restarted_three_times_then_given_up_on() {
        let mut restarts = Restarts::default();
        let quick = Duration::from_secs(5);
        assert_eq!(restarts.stopped_after(quick), Decision::Restart(1));
        assert_eq!(restarts.stopped_after(quick), Decision::Restart(2));
        assert_eq!(restarts.stopped_after(quick), Decision::Restart(3));
        assert_eq!(restarts.stopped_after(quick), Decision::GiveUp);
        assert_eq!(restarts.stopped_after(quick), Decision::GiveUp);
        // New settings: another try.
        restarts.forgive();
        assert_eq!(restarts.stopped_after(quick), Decision::Restart(1));
    }

    #[test]
    fn a_stop_after_a_steady_run_starts_the_count_over() {
        let mut restarts = Restarts::default();
        for _ in 0..3 {
            assert!(matches!(
                restarts.stopped_after(Duration::from_secs(1)),
                Decision::Restart(_)
            ));
        }
        assert_eq!(restarts.stopped_after(STEADY), Decision::Restart(1));
        // A tray app that hits a rare fault once a day restarts every time.
        for _ in 0..10 {
            assert_eq!(
                restarts.stopped_after(Duration::from_secs(86_400)),
                Decision::Restart(1)
            );
        }
    }
}
