//! [`DocName`]: a validated document name, safe to use as a store key and in a URL path.

use std::sync::Arc;

/// Longest document name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// A document's name: 1 to [`MAX_NAME_LEN`] bytes of ASCII letters, digits and `. _ - ~ : @ + /`,
/// not starting with `.` or `/` and without `//`. It never contains a NUL byte, which the key
/// layout relies on to keep one document's keys apart from another's. Cloning is cheap.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocName(Arc<str>);

/// Why a string is not a document name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The empty string.
    #[error("a document name cannot be empty")]
    Empty,
    /// Longer than [`MAX_NAME_LEN`](crate::MAX_NAME_LEN).
    #[error("a document name of {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// The name's length, in bytes.
        len: usize,
        /// The limit, in bytes.
        max: usize,
    },
    /// A character outside ASCII letters, digits and `. _ - ~ : @ + /`.
    #[error(
        "a document name cannot contain {found:?} (allowed: ASCII letters, digits and . _ - ~ : @ + /)"
    )]
    BadCharacter {
        /// The first character not allowed.
        found: char,
    },
    /// Starts with `.` or `/`, or contains `//`: not safe in a URL path.
    #[error("a document name cannot start with '.' or '/', nor contain '//'")]
    BadShape,
}

impl DocName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong {
                len: name.len(),
                max: MAX_NAME_LEN,
            });
        }
        if let Some(found) = name.chars().find(|c| !allowed(*c)) {
            return Err(NameError::BadCharacter { found });
        }
        if name.starts_with(['.', '/']) || name.contains("//") {
            return Err(NameError::BadShape);
        }
        Ok(Self(name.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '~' | ':' | '@' | '+' | '/')
}

impl std::str::FromStr for DocName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for DocName {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl AsRef<str> for DocName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DocName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for DocName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DocName({:?})", &*self.0)
    }
}

impl serde::Serialize for DocName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass_and_bad_ones_say_why() {
        for good in ["a", "notes/2024-05", "team:design@v2", "x.y_z~1+2"] {
            assert_eq!(DocName::new(good).expect(good).as_str(), good);
        }
        assert_eq!(DocName::new(""), Err(NameError::Empty));
        assert!(matches!(
            DocName::new(&"a".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong { .. })
        ));
        assert_eq!(
            DocName::new("a\0b"),
            Err(NameError::BadCharacter { found: '\0' })
        );
        assert!(matches!(
            DocName::new("é"),
            Err(NameError::BadCharacter { .. })
        ));
        for bad in ["../x", "/x", "a//b", ".hidden"] {
            assert_eq!(DocName::new(bad), Err(NameError::BadShape), "{bad}");
        }
    }
}
