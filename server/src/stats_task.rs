//! The 100 ms tick of INFO's sampled figures: the instantaneous rates and the memory peak
//! (Redis samples them in its server cron at the same period).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::state::Shared;

/// Time between samples.
const TICK: Duration = Duration::from_millis(100);

/// Samples every [`TICK`] until shutdown begins.
pub async fn run(shared: Arc<Shared>) {
    let stopping = shared.stopping();
    tokio::pin!(stopping);
    shared
        .used_memory_startup
        .store(crate::info::used_memory().0, Ordering::Relaxed);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stopping => return,
            _ = tick.tick() => {}
        }
        let s = &shared.stats;
        shared.instant.sample(
            Instant::now(),
            [
                shared.command_stats.processed(),
                s.net_input_bytes.total(),
                s.net_output_bytes.total(),
            ],
        );
        // The memory task's reading of this tick or the last: a second epoch advance
        // would cost as much again.
        shared
            .instant
            .note_memory(crate::mem_report::latest_reading());
        crate::access::tick();
    }
}
