//! Exponential backoff with jitter.

use crate::config::RetryConfig;
use rand::Rng as _;
use std::time::Duration;

/// Delays for one unit of work that keeps failing: `initial * 2^n`, capped at
/// `max`, each drawn uniformly from `[d/2, d]` ("equal jitter") so that many
/// nodes retrying at once spread out.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    config: RetryConfig,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(config: RetryConfig) -> Self {
        Backoff { config, attempt: 0 }
    }

    /// The upper bound of the next delay, without jitter.
    pub(crate) fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(30)).unwrap_or(u32::MAX);
        self.config
            .initial_backoff
            .saturating_mul(factor)
            .min(self.config.max_backoff)
    }

    /// The next delay; each call doubles the ceiling up to `max_backoff`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let jitter =
            rand::rng().random_range(0..=ceiling.as_nanos().saturating_sub(half.as_nanos()) as u64);
        half + Duration::from_nanos(jitter)
    }

    /// Back to `initial_backoff` after progress.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter() {
        let mut b = Backoff::new(RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        });
        let expected = [100u64, 200, 400, 800, 1000, 1000];
        for ceiling in expected {
            let d = b.next_delay();
            assert!(d <= Duration::from_millis(ceiling), "{d:?} > {ceiling}ms");
            assert!(
                d >= Duration::from_millis(ceiling / 2),
                "{d:?} < {ceiling}/2 ms"
            );
        }
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.ceiling(), Duration::from_secs(1));
    }
}
