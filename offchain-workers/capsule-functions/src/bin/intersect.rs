//! The seed's demo function: the names that appear in both of two lists.
//!
//! Reads the two files in `/scratch/in` (one name per line; surrounding blanks and empty lines
//! ignored), writes the names common to both, sorted and each once, to
//! `/scratch/out/intersection`, and prints how many there are. Exits 2 with a message when the
//! inputs are not two UTF-8 lists.
use std::{collections::BTreeSet, fs, path::Path, process::ExitCode};

const INPUTS: &str = "/scratch/in";
const OUTPUT: &str = "/scratch/out/intersection";

fn names(text: &str) -> BTreeSet<&str> {
    text.lines()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect()
}

fn read_lists(dir: &Path) -> Result<(String, String), String> {
    let mut paths: Vec<_> = fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    paths.sort();
    let [first, second] = paths.as_slice() else {
        return Err(format!(
            "expected two input lists in {}, found {}",
            dir.display(),
            paths.len()
        ));
    };
    let read = |path: &Path| {
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    Ok((read(first)?, read(second)?))
}

fn main() -> ExitCode {
    let (first, second) = match read_lists(Path::new(INPUTS)) {
        Ok(lists) => lists,
        Err(message) => {
            eprintln!("intersect: {message}");
            return ExitCode::from(2);
        }
    };
    let (first, second) = (names(&first), names(&second));
    let common: Vec<&str> = first.intersection(&second).copied().collect();
    let mut text = common.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    if let Err(e) = fs::write(OUTPUT, text) {
        eprintln!("intersect: cannot write {OUTPUT}: {e}");
        return ExitCode::from(2);
    }
    println!("{} names in common", common.len());
    ExitCode::SUCCESS
}
