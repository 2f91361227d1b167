//! What the core's benchmarks share: the instruction-count mode `bench/instructions.sh` runs
//! them in under callgrind, where each does a small fixed amount of work (instruction counts
//! of a fixed workload do not move with the machine's noise, so CI can compare them).

/// How many times to repeat a benchmark's loop: `full` when timed, `counted` when the
/// environment names the instruction-count mode (`VANTAGE_BENCH_COUNT`).
pub fn repeat(full: usize, counted: usize) -> usize {
    if std::env::var_os("VANTAGE_BENCH_COUNT").is_some() {
        counted
    } else {
        full
    }
}
