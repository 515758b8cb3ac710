//! Test helper (not installed for users): writes snapshots of deterministic content into a
//! pool until killed, printing `COMMITTED <number> <seed>` after each commit. The crash test
//! kills it with SIGKILL at random moments and checks the pool afterwards.
//!
//! Usage: `pool-crash-writer DIR HOST FIRST_SEED COUNT GC_FIRST(0|1)`

#[path = "../../tests/common/gen.rs"]
mod generator;

use std::io::Write;

use hoard_pool::{GcOptions, Pool};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: pool-crash-writer DIR HOST FIRST_SEED COUNT GC_FIRST");
        std::process::exit(2);
    }
    let parse = |s: &str| {
        s.parse::<u64>()
            .unwrap_or_else(|_| panic!("not a number: {s}"))
    };
    let (dir, host, first, count, gc_first) = (
        &args[1],
        &args[2],
        parse(&args[3]),
        parse(&args[4]),
        parse(&args[5]),
    );
    let pool = match Pool::open_or_create(dir, generator::test_options()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot open pool: {e}");
            std::process::exit(1);
        }
    };
    if gc_first == 1 {
        let report = pool.gc(&GcOptions::default()).expect("gc");
        println!("GC {}", report.swept_objects);
    }
    let mut out = std::io::stdout();
    for seed in first..first + count {
        let info = generator::commit_seed(&pool, host, seed);
        writeln!(out, "COMMITTED {} {seed}", info.id.number)
            .and_then(|_| out.flush())
            .expect("stdout");
    }
}
