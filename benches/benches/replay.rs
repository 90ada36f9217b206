//! Replay of recorded N-event histories by a fresh `RunMachine` (the deterministic core):
//! the cost a worker pays when a run is not in its cache.

use criterion::{BenchmarkId, Criterion, Throughput};

use benches::workloads::replay::{history_of, replay_once};

fn replay(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let mut group = c.benchmark_group("replay");
    for events in [1_000u64, 10_000] {
        let history = rt.block_on(history_of(events)).expect("a recorded history");
        group.throughput(Throughput::Elements(history.events.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(events), &history, |b, h| {
            b.iter(|| replay_once(h).expect("replay reproduces the run"))
        });
    }
    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, without their undocumented public fn.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    replay(&mut c);
    c.final_summary();
}
