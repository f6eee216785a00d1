//! A FAILOVER's state, as replication's shared state holds it (the steps are in
//! `failover.rs`).

/// Where a failover stands (INFO `master_failover_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// None running.
    #[default]
    Idle,
    /// Writes held; waiting for a replica to acknowledge the whole stream.
    WaitingForSync,
    /// This server follows the target and waits for its answer to `PSYNC ... FAILOVER`.
    InProgress,
}

impl Phase {
    /// INFO's word for it.
    pub fn word(self) -> &'static str {
        match self {
            Phase::Idle => "no-failover",
            Phase::WaitingForSync => "waiting-for-sync",
            Phase::InProgress => "failover-in-progress",
        }
    }
}

/// A failover under way.
#[derive(Debug, Clone, Default)]
pub struct Failover {
    /// Its phase.
    pub phase: Phase,
    /// The replica to switch to (TO host port), or the one found caught up.
    pub target: Option<(String, u16)>,
    /// Unix ms after which waiting gives up (TIMEOUT), if given.
    pub end_ms: Option<u64>,
    /// FORCE: switch at the timeout even if the target has not caught up.
    pub force: bool,
    /// How the target answered `PSYNC ... FAILOVER`, as the link reports it for the cron.
    pub answer: Option<Answer>,
}

/// The target's answer to `PSYNC replid offset FAILOVER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `+CONTINUE` or `+FULLRESYNC`: the switch is done.
    Accepted,
    /// Refused, or not sent: the failover is aborted, for this reason.
    Refused(&'static str),
}

/// What FAILOVER asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// TO host port.
    pub target: Option<(String, u16)>,
    /// TIMEOUT, milliseconds.
    pub timeout_ms: Option<u64>,
    /// FORCE.
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_read_as_redis_words_them() {
        assert_eq!(Phase::Idle.word(), "no-failover");
        assert_eq!(Phase::WaitingForSync.word(), "waiting-for-sync");
        assert_eq!(Phase::InProgress.word(), "failover-in-progress");
    }
}
