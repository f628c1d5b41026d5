//! Provider entries of a kind the application can check, checked before they are stored.
//!
//! A provider entry is its publisher's signed claim; what the value *means* is the
//! application's business. An application that can check the meaning registers a
//! [`ProviderValidator`] in [`crate::Config::validators`] (the signaling layer checks that a
//! presence entry carries the peer's own signature naming the publishing node), and every
//! node applies it when it stores, reloads or receives entries.
//!
//! A key that holds an entry a validator accepted is *typed*: entries no validator vouches for
//! are refused there, and those already held are dropped, so unprovable claims cannot fill
//! the slots of a provable kind. Only validated values may be larger than
//! [`crate::MAX_PROVIDER_VALUE_LEN`] (up to [`crate::MAX_VALIDATED_PROVIDER_VALUE_LEN`]).
//!
//! What it is not: a way to accept entries whose signature does not verify. The publisher's
//! signature is checked first, always.

use std::fmt;
use std::sync::Arc;

use crate::record::{MAX_PROVIDER_VALUE_LEN, ProviderRecord, RecordError};

/// A validator's answer about one provider entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not an entry of the validator's kind.
    NotMine,
    /// Of its kind, and it checks out.
    Valid,
    /// Of its kind, valid, but only in place of its publisher's entry under the key (a
    /// withdrawal): it never takes a slot of its own, so it cannot be used to fill a key.
    ReplacesOnly,
    /// Of its kind, and wrong: refused, with the reason.
    Invalid(String),
}

/// Checks one kind of provider entry (whose publisher signature already verified).
///
/// ```
/// use pqnode_dht::{ProviderRecord, ProviderValidator, Verdict};
///
/// /// Entries whose value starts with `b"even:"` must have an even length.
/// #[derive(Debug)]
/// struct Even;
///
/// impl ProviderValidator for Even {
///     fn validate(&self, entry: &ProviderRecord) -> Verdict {
///         match entry.value().strip_prefix(b"even:") {
///             None => Verdict::NotMine,
///             Some(rest) if rest.len() % 2 == 0 => Verdict::Valid,
///             Some(_) => Verdict::Invalid("odd length".into()),
///         }
///     }
/// }
/// let config = pqnode_dht::Config::default().with_validator(Even);
/// # let _ = config;
/// ```
pub trait ProviderValidator: Send + Sync + fmt::Debug + 'static {
    /// Judges one entry: [`Verdict::NotMine`] lets the next validator look at it. Called on every
    /// store, reload and receipt, so it should be cheap and must not block.
    fn validate(&self, entry: &ProviderRecord) -> Verdict;
}

/// Whether a stored entry was vouched for by a validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typing {
    /// No validator vouches for it: its value is at most [`MAX_PROVIDER_VALUE_LEN`] bytes, and it
    /// cannot be stored under a typed key.
    Untyped,
    /// A validator accepted it: its key becomes typed and holds validated entries only.
    Validated,
    /// Validated, and stored only in place of the publisher's existing entry.
    Replacement,
}

/// The validators a node applies, in order: the first that recognises an entry decides.
#[derive(Clone, Default)]
pub struct Validators(Vec<Arc<dyn ProviderValidator>>);

impl Validators {
    /// Adds a validator after those already registered (which take precedence).
    pub fn push(&mut self, validator: impl ProviderValidator) {
        self.0.push(Arc::new(validator));
    }

    /// How an entry whose signature verified may be stored: validated, untyped (small values
    /// only), or refused.
    pub fn classify(&self, entry: &ProviderRecord) -> Result<Typing, RecordError> {
        for validator in &self.0 {
            match validator.validate(entry) {
                Verdict::NotMine => continue,
                Verdict::Valid => return Ok(Typing::Validated),
                Verdict::ReplacesOnly => return Ok(Typing::Replacement),
                Verdict::Invalid(reason) => return Err(RecordError::Refused(reason)),
            }
        }
        if entry.value().len() > MAX_PROVIDER_VALUE_LEN {
            return Err(RecordError::ValueTooLong(entry.value().len()));
        }
        Ok(Typing::Untyped)
    }
}

impl fmt::Debug for Validators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pqnode_crypto::{Identity, NodeId};

    use super::*;

    #[derive(Debug)]
    struct Tagged;

    impl ProviderValidator for Tagged {
        fn validate(&self, entry: &ProviderRecord) -> Verdict {
            match entry.value().strip_prefix(b"tag:") {
                None => Verdict::NotMine,
                Some(b"good") => Verdict::Valid,
                Some(_) => Verdict::Invalid("bad tag".into()),
            }
        }
    }

    fn entry(value: &[u8]) -> ProviderRecord {
        let me = Identity::from_seed(&[3; 32]).unwrap();
        let key = NodeId::from_bytes([9; 20]);
        ProviderRecord::sign(&me, key, value, 1, Duration::from_secs(60)).unwrap()
    }

    #[test]
    fn the_first_validator_that_knows_an_entry_decides() {
        let mut validators = Validators::default();
        validators.push(Tagged);
        assert_eq!(
            validators.classify(&entry(b"tag:good")),
            Ok(Typing::Validated)
        );
        assert_eq!(
            validators.classify(&entry(b"tag:evil")),
            Err(RecordError::Refused("bad tag".into()))
        );
        assert_eq!(validators.classify(&entry(b"plain")), Ok(Typing::Untyped));
    }

    #[test]
    fn only_validated_values_may_be_large() {
        let big = [b"tag:".as_slice(), &[0u8; 2000]].concat();
        let none = Validators::default();
        assert_eq!(
            none.classify(&entry(&big)),
            Err(RecordError::ValueTooLong(big.len()))
        );
        assert_eq!(none.classify(&entry(&[1; 1024])), Ok(Typing::Untyped));
    }
}
