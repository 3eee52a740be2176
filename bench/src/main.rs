//! `rocketcore-bench produce|consume|e2e|compare`; see `--help`.

use std::process::ExitCode;

use clap::Parser;
use rocketcore_bench::args::{Cli, Command};
use rocketcore_bench::report;
use rocketcore_bench::run::{run, Kind};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Produce(a) => run(Kind::Produce, a).map(|_| ()),
        Command::Consume(a) => run(Kind::Consume, a).map(|_| ()),
        Command::E2e(a) => run(Kind::E2e, a).map(|_| ()),
        Command::Compare { a, b } => report::load_summary(&a).and_then(|sa| {
            let sb = report::load_summary(&b)?;
            println!("{}", report::compare_text(&sa, &sb));
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rocketcore-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
