//! Where `chunkcast get` writes, decided before any network work.
//!
//! Without `-o` the file is named after the last component of the name the
//! *user* asked for, never a name the server sends back (a hostile server
//! could otherwise answer `../../.bashrc`); names that would not make a
//! plain, visible file are refused with a hint to pass `-o`. With `-o`:
//! - `-` streams the verified bytes to standard output, in order;
//! - an existing directory receives the file under that default name;
//! - a device or a named pipe is written straight through, in order (it is
//!   never replaced: renaming a part file over `/dev/null` would destroy it);
//! - a regular file goes through `PATH.part` and is renamed at the end. An
//!   existing one is only replaced with `--force` (or when it already is
//!   this version of the file; see `super::download::get`).

use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};

use super::error::ClientError;

/// Where the verified bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A regular file, through `PATH.part` (resumable); `exists` says a file
    /// is already there.
    File { path: PathBuf, exists: bool },
    /// A character or block device or a FIFO: written in order, no part
    /// file, no resume.
    Stream(PathBuf),
    /// Standard output (`-o -`): in order, no resume.
    Stdout,
}

impl Output {
    /// Decides the output for `-o arg` (or none) and the requested `name`.
    pub fn resolve(arg: Option<&Path>, name: &str) -> Result<Output, ClientError> {
        let path = match arg {
            Some(p) if p.as_os_str() == "-" => return Ok(Output::Stdout),
            Some(p) => p.to_owned(),
            None => default_output(name)?,
        };
        match Self::of_path(&path)? {
            Some(out) => Ok(out),
            // A directory: save inside it under the default name.
            None => {
                let inside = path.join(default_output(name)?);
                Self::of_path(&inside)?.ok_or_else(|| ClientError::Output(inside, "is a directory".into()))
            }
        }
    }

    /// What `path` is: `None` for an existing directory.
    fn of_path(path: &Path) -> Result<Option<Output>, ClientError> {
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
                // `-o folder/` names a folder to save in, which must exist.
                if path.as_os_str().as_encoded_bytes().ends_with(b"/") {
                    let folder = path.components().as_path().display().to_string();
                    return Err(ClientError::Output(
                        path.to_owned(),
                        format!("cannot save there: the folder {folder} does not exist"),
                    ));
                }
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                if !parent.is_dir() {
                    let why = if parent.exists() {
                        format!("cannot be created: {} is not a folder", parent.display())
                    } else {
                        format!("cannot be created: the folder {} does not exist", parent.display())
                    };
                    return Err(ClientError::Output(path.to_owned(), why));
                }
                return Ok(Some(Output::File { path: path.to_owned(), exists: false }));
            }
            Err(e) => return Err(ClientError::file(path.to_owned(), e)),
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            Ok(None)
        } else if kind.is_file() {
            Ok(Some(Output::File { path: path.to_owned(), exists: true }))
        } else if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() {
            Ok(Some(Output::Stream(path.to_owned())))
        } else {
            Err(ClientError::Output(path.to_owned(), "is neither a regular file, a device nor a named pipe".into()))
        }
    }

    /// Whether bytes must be written in order, with no part file.
    pub fn ordered(&self) -> bool {
        !matches!(self, Output::File { .. })
    }

    /// The path for messages: "standard output" for `-`.
    pub fn display(&self) -> String {
        match self {
            Output::File { path, .. } | Output::Stream(path) => path.display().to_string(),
            Output::Stdout => "standard output".into(),
        }
    }
}

/// The output path for `args.name`, or why it cannot be one.
pub fn default_output(requested: &str) -> Result<PathBuf, ClientError> {
    let base = requested.rsplit('/').next().unwrap_or(requested);
    let refuse = |why: &'static str| ClientError::OutputName(requested.to_owned(), why);
    if base.is_empty() {
        return Err(refuse("it has no file name"));
    }
    if base == "." || base == ".." {
        return Err(refuse("it names a directory"));
    }
    if base.starts_with('.') {
        return Err(refuse("it would be a hidden file"));
    }
    if base.contains('\\') {
        return Err(refuse("it contains a path separator"));
    }
    if base.chars().any(char::is_control) {
        return Err(refuse("it contains control characters"));
    }
    Ok(PathBuf::from(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_component_of_a_plain_name_is_used() {
        assert_eq!(default_output("report.pdf").unwrap(), PathBuf::from("report.pdf"));
        assert_eq!(default_output("a/b/report.pdf").unwrap(), PathBuf::from("report.pdf"));
        assert_eq!(default_output("été 2026.txt").unwrap(), PathBuf::from("été 2026.txt"));
    }

    #[test]
    fn a_directory_receives_the_file_and_specials_are_streamed() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("report.pdf");
        assert_eq!(
            Output::resolve(Some(dir.path()), "a/report.pdf").unwrap(),
            Output::File { path: inside.clone(), exists: false }
        );
        std::fs::write(&inside, b"x").unwrap();
        assert_eq!(Output::resolve(Some(&inside), "z").unwrap(), Output::File { path: inside, exists: true });
        assert_eq!(Output::resolve(Some(Path::new("-")), "z").unwrap(), Output::Stdout);
        assert_eq!(Output::resolve(Some(Path::new("/dev/null")), "z").unwrap(), Output::Stream("/dev/null".into()));
        let missing = dir.path().join("no/such/dir/f");
        assert!(matches!(Output::resolve(Some(&missing), "z"), Err(ClientError::Output(..))));
    }

    #[test]
    fn names_that_are_not_a_plain_visible_file_are_refused() {
        for bad in ["", "/", "dir/", ".", "..", "a/..", ".bashrc", "a/.ssh", "x\\y", "a\nb", "e\u{1b}[2J", "t\u{7f}"] {
            assert!(matches!(default_output(bad), Err(ClientError::OutputName(..))), "{bad:?}");
        }
    }
}
