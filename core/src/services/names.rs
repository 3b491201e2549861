//! What a compose file may name: service names and images are checked before they reach a
//! command line (`up`, `pull`, `image inspect`) or a `.env` variable name. A hostile compose
//! file (a name starting with `-`, holding a newline, a space or a shell character) is refused
//! with a clear error naming it; nothing runs for it.

use crate::services::containers::ContainerOutcome;
use crate::{Error, Result};

impl ContainerOutcome {
    /// The outcome of a command refused before it ran (`ok: false`, no exit code).
    pub fn refused(action: &str, items: &[String], message: String) -> Self {
        Self {
            action: action.into(),
            services: items.to_vec(),
            ok: false,
            exit_code: None,
            message,
            output_tail: Vec::new(),
            duration_ms: 0.0,
        }
    }
}

/// True for a compose-valid service name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid_service_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// True for an image reference that can only be read as one (`registry:5000/org/name:tag@digest`):
/// an alphanumeric first character, then alphanumerics and `_ . - : / @`, at most 512 bytes.
/// Never an option (`-`), never whitespace or a control character.
pub fn valid_image(image: &str) -> bool {
    let mut chars = image.chars();
    image.len() <= 512
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/' | '@'))
}

/// True for a `.env` variable name: `[A-Za-z0-9_][A-Za-z0-9_.-]*` (what a compose-valid service
/// name upper-cased can give; no `=`, no whitespace, no newline).
pub fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Checks a service's name and image; the error names the file (`what`) and the value.
pub fn check_service(what: &str, name: &str, image: Option<&str>) -> Result<()> {
    if !valid_service_name(name) {
        return Err(Error::InvalidArgument(format!(
            "{what}: service name {name:?} is not valid (compose names are \
             [a-zA-Z0-9][a-zA-Z0-9_.-]*): refused, no container command runs for it"
        )));
    }
    if let Some(image) = image
        && !valid_image(image)
    {
        return Err(Error::InvalidArgument(format!(
            "{what}: image {image:?} of service {name} is not a valid image reference: refused"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_images_and_env_names() {
        for ok in ["db", "api-gateway", "web_1", "x.y", "0"] {
            assert!(valid_service_name(ok), "{ok}");
        }
        for bad in [
            "", "-d", "--rm", "a b", "a\nb", ".x", "_x", "a;b", "a/b", "ü",
        ] {
            assert!(!valid_service_name(bad), "{bad:?}");
        }
        for ok in [
            "postgres:16",
            "ghcr.io/org/app:1.2@sha256:abc",
            "localhost:5000/x",
        ] {
            assert!(valid_image(ok), "{ok}");
        }
        for bad in ["", "--privileged", "a b", "x\n", "$(id)"] {
            assert!(!valid_image(bad), "{bad:?}");
        }
        assert!(valid_env_name("POSTGRES_PORT") && valid_env_name("_X"));
        for bad in ["", "-X", "A\nB", "A=B", "A B"] {
            assert!(!valid_env_name(bad), "{bad:?}");
        }
    }
}
