//! Where `chunkcast get` writes when no `-o` is given: the last component of
//! the name the *user* asked for, never a name the server sends back (a
//! hostile server could otherwise answer `../../.bashrc`). Names that would
//! not make a plain, visible file in the current directory are refused
//! before any network work, with a hint to pass `-o`.

use std::path::PathBuf;

use super::ClientError;

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
    fn names_that_are_not_a_plain_visible_file_are_refused() {
        for bad in ["", "/", "dir/", ".", "..", "a/..", ".bashrc", "a/.ssh", "x\\y", "a\nb", "e\u{1b}[2J", "t\u{7f}"] {
            assert!(matches!(default_output(bad), Err(ClientError::OutputName(..))), "{bad:?}");
        }
    }
}
