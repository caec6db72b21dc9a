#![allow(dead_code)]
//! A tiny `--flag value` parser shared by the examples (no dependencies).

use std::collections::HashMap;
use std::str::FromStr;

/// Parsed flags; `--help` prints `usage` and exits.
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses `std::env::args()`, accepting only the flags named in `usage`.
    pub fn parse(usage: &str) -> Args {
        let mut values = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            if arg == "--help" || arg == "-h" {
                println!("{usage}");
                std::process::exit(0);
            }
            let Some(name) = arg.strip_prefix("--") else {
                fail(usage, &format!("unexpected argument `{arg}`"))
            };
            let flag = name.split_once('=').map_or(name, |(n, _)| n);
            if !usage.contains(&format!("--{flag} ")) {
                fail(usage, &format!("unknown flag --{flag}"));
            }
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None if is_switch(usage, name) => (name.to_string(), String::new()),
                None => (
                    name.to_string(),
                    it.next()
                        .unwrap_or_else(|| fail(usage, &format!("--{name} needs a value"))),
                ),
            };
            // Numbers are checked now, not once the data has loaded.
            let number = match placeholder(usage, &name) {
                Some("N") => value.parse::<usize>().is_ok(),
                Some("X") => value.parse::<f64>().is_ok_and(f64::is_finite),
                _ => true,
            };
            if !number {
                fail(usage, &format!("--{name}: cannot parse `{value}`"));
            }
            values.insert(name, value);
        }
        Args { values }
    }

    /// The flag's value parsed as `V`, or `default`.
    pub fn get<V: FromStr>(&self, name: &str, default: V) -> V {
        match self.values.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                eprintln!("error: --{name}: cannot parse `{v}`");
                std::process::exit(2)
            }),
        }
    }

    /// The flag's whole number, or `default`; 0 is refused with `why` (what
    /// needs at least one).
    pub fn positive(&self, name: &str, default: usize, why: &str) -> usize {
        let n = self.get(name, default);
        if n == 0 {
            eprintln!("error: --{name} must be at least 1 ({why})");
            std::process::exit(2)
        }
        n
    }

    /// Whether a switch (a flag without a value, `--distributed`) was given.
    pub fn switch(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The flag's raw value, if given.
    pub fn opt(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

fn fail(usage: &str, message: &str) -> ! {
    eprintln!("error: {message}\n\n{usage}");
    std::process::exit(2)
}

/// The value's name after `--name` in `usage` (`N` for a whole number, `X`
/// for a real one, `DIR`, `NAME`).
fn placeholder<'u>(usage: &'u str, name: &str) -> Option<&'u str> {
    let flag = format!("--{name} ");
    let at = usage.find(&flag)? + flag.len();
    usage[at..].split_whitespace().next()
}

/// Whether `usage` lists `--name` as a switch: followed by two spaces (its
/// description), where a flag taking a value has one and the value's name.
fn is_switch(usage: &str, name: &str) -> bool {
    usage.contains(&format!("--{name}  "))
}
