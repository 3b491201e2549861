//! Worktree names: the slug rules of the VibeTrees server, and the safety checks run before
//! anything on disk or in git is touched.
//!
//! The slug is the branch name lower-cased; every character outside `[a-z0-9/._-]` becomes `-`;
//! runs of `-` collapse to one; leading and trailing `-` are trimmed; then `/` becomes `-`.
//! It names both the new branch and the folder `<root>/.worktrees/<slug>`.
//! Pure functions: must not touch the disk or git.

use crate::{Error, Result};

/// Longest slug accepted, in bytes: a folder name must fit in 255 bytes, and a little room is
/// kept for the suffixes of trash and staging folders (`<slug>-<timestamp>-<pid>`).
pub const MAX_SLUG_LEN: usize = 200;

/// The slug of a branch name, by the server's rules, without any check.
///
/// `"Feature/Add Login"` -> `"feature-add-login"`; `"Café"` -> `"caf"`.
pub fn slugify(branch: &str) -> String {
    let lowered = branch.to_lowercase();
    let mut out = String::with_capacity(lowered.len());
    for c in lowered.chars() {
        let c =
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '/' | '.' | '_' | '-') {
                c
            } else {
                '-'
            };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.trim_matches('-').replace('/', "-")
}

/// Checks that `slug` (made from the caller's `input`) is safe as a folder under `.worktrees/`
/// and valid as a branch name. The error names the input and says why.
pub fn validate_slug(input: &str, slug: &str) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::InvalidArgument(format!(
            "branch name {input:?} (worktree name {slug:?}) {why}"
        )))
    };
    if slug.is_empty() {
        return refuse("is empty once slugged");
    }
    if slug == "." || slug == ".." {
        return refuse("would escape the .worktrees folder");
    }
    if slug.starts_with('.') {
        return refuse("starts with '.'");
    }
    if slug.starts_with('-') {
        return refuse("starts with '-'");
    }
    if slug.len() > MAX_SLUG_LEN {
        return refuse(&format!("is longer than {MAX_SLUG_LEN} characters"));
    }
    if slug.contains('/') || slug.contains('\0') {
        return refuse("contains a path separator");
    }
    if slug.ends_with(".lock") {
        return refuse("ends with '.lock'");
    }
    if !git2::Reference::is_valid_name(&format!("refs/heads/{slug}")) {
        return refuse("is not a valid git branch name");
    }
    Ok(())
}

/// The worktree name for `branch`: its slug, checked by [`validate_slug`].
pub fn worktree_name(branch: &str) -> Result<String> {
    let slug = slugify(branch);
    validate_slug(branch, &slug)?;
    Ok(slug)
}

/// Checks a `from` ref name: non-empty, no NUL, a valid reference name once under `refs/heads/`
/// or as written (`refs/...`, `origin/main`). It is only ever used as a ref name, never as an
/// option or in a shell, so this check is about clear errors, not safety.
pub fn validate_from(from: &str) -> Result<()> {
    if from.is_empty() {
        return Err(Error::InvalidArgument("'from' ref name is empty".into()));
    }
    if from.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "'from' ref name {from:?} contains a NUL byte"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_rules_of_the_server() {
        assert_eq!(slugify("Feature/Add Login"), "feature-add-login");
        assert_eq!(slugify("  spaces  here "), "spaces-here");
        assert_eq!(slugify("UPPER_case.v2"), "upper_case.v2");
        assert_eq!(slugify("Café crème"), "caf-cr-me");
        assert_eq!(slugify("a--b---c"), "a-b-c");
        assert_eq!(slugify("feat/x/y"), "feat-x-y");
        // trimming happens before '/' becomes '-', as in the server
        assert_eq!(slugify("/lead"), "-lead");
        assert_eq!(slugify("日本"), "");
    }

    #[test]
    fn bad_names_are_refused_with_the_input_named() {
        for bad in [
            "", "..", ".", "---", "a..b", ".hidden", "/lead", "日本", "x.lock",
        ] {
            let err = worktree_name(bad).unwrap_err();
            assert_eq!(err.code(), "INVALID_ARGUMENT", "{bad:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        let long = "a".repeat(300);
        assert!(worktree_name(&long).is_err());
        assert_eq!(
            worktree_name(&"a".repeat(MAX_SLUG_LEN)).unwrap().len(),
            MAX_SLUG_LEN
        );
    }

    #[test]
    fn good_names_pass() {
        assert_eq!(
            worktree_name("Feature/Login Page").unwrap(),
            "feature-login-page"
        );
        assert_eq!(worktree_name("fix-123").unwrap(), "fix-123");
        assert_eq!(worktree_name("v1.2").unwrap(), "v1.2");
    }
}
