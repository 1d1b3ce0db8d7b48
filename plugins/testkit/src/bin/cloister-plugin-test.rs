//! Runs a plugin's scenarios under the real runtime with the scripted model:
//! the test step of `cargo xtask test-plugin`, for a plugin in any language.
//!
//! `cloister-plugin-test NAME --scenarios DIR --policies DIR --components DIR`
//! prints one line per scenario and exits 1 if any failed.

use std::path::PathBuf;
use std::process::ExitCode;

use cloister_plugin_testkit::TestKit;
use cloister_plugin_testkit::scenario::run_dir;

const USAGE: &str =
    "usage: cloister-plugin-test NAME --scenarios DIR --policies DIR --components DIR";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut name, mut scenarios, mut policies, mut components) = (None, None, None, None);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--scenarios" => &mut scenarios,
            "--policies" => &mut policies,
            "--components" => &mut components,
            _ if !arg.starts_with('-') && name.is_none() => {
                name = Some(arg);
                continue;
            }
            _ => {
                eprintln!("unexpected argument `{arg}`\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        *slot = args.next().map(PathBuf::from);
    }
    let (Some(name), Some(scenarios), Some(policies), Some(components)) =
        (name, scenarios, policies, components)
    else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run_dir(&scenarios, || {
        TestKit::for_plugin_in(&policies, &components, &name)
    }) {
        Ok(report) => {
            print!("{name}: {report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}
