//! Where [`Mnist::load_default`](super::Mnist::load_default) looks for the
//! files: `$MNIST_DIR` alone when it is set, else a few default places.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{MnistError, FILES};

/// The directories [`Mnist::load_default`](super::Mnist::load_default) tries,
/// in order: just `$MNIST_DIR` when it is set (and not empty); otherwise
/// `data/mnist` in the current directory, then at the workspace root, then
/// `../shared/data/mnist` from the current directory and from the workspace
/// root.
pub fn default_dirs() -> Vec<PathBuf> {
    dirs_for(std::env::var_os("MNIST_DIR"))
}

/// The directory to load from: `$MNIST_DIR` if set, and then it must hold the
/// files; else the first default place that holds them.
pub(super) fn locate() -> Result<PathBuf, MnistError> {
    if let Some(dir) = explicit(std::env::var_os("MNIST_DIR")) {
        check_explicit(&dir)?;
        return Ok(dir);
    }
    let searched = dirs_for(None);
    match searched.iter().find(|d| missing_files(d).is_empty()) {
        Some(dir) => Ok(dir.clone()),
        None => Err(MnistError::NotFound { searched }),
    }
}

/// Where the file `name` may be in `dir`: plain, then gzipped.
fn candidates(dir: &Path, name: &str) -> [PathBuf; 2] {
    [dir.join(name), dir.join(format!("{name}.gz"))]
}

/// The file `name` in `dir`, plain or `.gz` (plain first).
pub(super) fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    candidates(dir, name).into_iter().find(|p| p.is_file())
}

/// `dir/name` or `dir/name.gz` when it exists but is not a file.
pub(super) fn not_a_file(dir: &Path, name: &str) -> Option<PathBuf> {
    (candidates(dir, name).into_iter()).find(|p| p.exists() && !p.is_file())
}

/// An empty `MNIST_DIR` counts as unset, as in `MNIST_DIR= cargo run`.
fn explicit(env: Option<OsString>) -> Option<PathBuf> {
    env.filter(|d| !d.is_empty()).map(PathBuf::from)
}

fn dirs_for(env: Option<OsString>) -> Vec<PathBuf> {
    if let Some(dir) = explicit(env) {
        return vec![dir];
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    vec![
        PathBuf::from("data/mnist"),
        workspace.join("data/mnist"),
        PathBuf::from("../shared/data/mnist"),
        workspace.join("../shared/data/mnist"),
    ]
}

fn missing_files(dir: &Path) -> Vec<&'static str> {
    FILES
        .into_iter()
        .filter(|f| find(dir, f).is_none())
        .collect()
}

/// A directory named on purpose must hold the files; falling back to another
/// copy would hide the mistake.
fn check_explicit(dir: &Path) -> Result<(), MnistError> {
    let problem = if !dir.exists() {
        "it does not exist".to_string()
    } else if !dir.is_dir() {
        "it is not a directory".to_string()
    } else {
        let missing = missing_files(dir);
        if missing.is_empty() {
            return Ok(());
        }
        // A directory under a file's name is no missing file.
        let (odd, absent): (Vec<&str>, Vec<&str>) = missing
            .into_iter()
            .partition(|f| not_a_file(dir, f).is_some());
        let odd = odd.iter().map(|f| format!("{f} (there, but not a file)"));
        format!(
            "it lacks {}",
            absent
                .iter()
                .map(|f| f.to_string())
                .chain(odd)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(MnistError::BadMnistDir {
        dir: dir.to_path_buf(),
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Through `dirs_for`, not by setting `MNIST_DIR`: the environment is
    // shared by every test thread.
    #[test]
    fn mnist_dir_alone_when_set_else_the_documented_order() {
        assert_eq!(
            dirs_for(Some("/custom/mnist".into())),
            [PathBuf::from("/custom/mnist")]
        );
        for unset in [None, Some(OsString::new())] {
            let d = dirs_for(unset);
            assert_eq!(d.len(), 4);
            assert_eq!(d[0], PathBuf::from("data/mnist"));
            assert!(d[1].ends_with("data/mnist") && d[1].is_absolute());
            assert_eq!(d[2], PathBuf::from("../shared/data/mnist"));
            assert!(d[3].ends_with("shared/data/mnist") && d[3].is_absolute());
        }
    }

    #[test]
    fn a_wrong_explicit_directory_is_an_error_naming_it() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let odd = std::env::temp_dir().join(format!("nn-mnist-odd-{}", std::process::id()));
        std::fs::create_dir_all(odd.join("t10k-labels-idx1-ubyte.gz")).unwrap();
        for f in &FILES[..3] {
            std::fs::write(odd.join(f), b"").unwrap();
        }
        let cases = [
            (odd.clone(), "it lacks t10k-labels-idx1-ubyte (there, but not a file)"),
            (here.join("no-such-dir"), "it does not exist"),
            (here.join("Cargo.toml"), "it is not a directory"),
            (here.to_path_buf(), "it lacks train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"),
        ];
        for (dir, problem) in cases {
            let msg = check_explicit(&dir).unwrap_err().to_string();
            assert!(
                msg.starts_with(&format!(
                    "MNIST_DIR is set to {}, but {problem};",
                    dir.display()
                )),
                "{msg}"
            );
        }
        std::fs::remove_dir_all(&odd).unwrap();
    }
}
