//! Size caps, checked before anything reaches the store or the index.

use crate::SearchError;

/// Longest text indexed for one document, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Longest document id, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest query, in bytes.
pub const MAX_QUERY_BYTES: usize = 1024;
/// Most results one search returns.
pub const MAX_K: usize = 100;

pub(crate) fn check_id(id: &str) -> Result<(), SearchError> {
    if id.is_empty() {
        return Err(SearchError::EmptyId);
    }
    if id.len() > MAX_ID_BYTES {
        return Err(SearchError::IdTooLong {
            len: id.len(),
            max: MAX_ID_BYTES,
        });
    }
    if id.chars().any(char::is_control) {
        return Err(SearchError::InvalidId);
    }
    Ok(())
}

pub(crate) fn check_text(text: &str) -> Result<(), SearchError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(SearchError::TextTooLarge {
            len: text.len(),
            max: MAX_TEXT_BYTES,
        });
    }
    Ok(())
}

pub(crate) fn check_query(query: &str, k: usize) -> Result<(), SearchError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(SearchError::QueryTooLong {
            len: query.len(),
            max: MAX_QUERY_BYTES,
        });
    }
    if k == 0 || k > MAX_K {
        return Err(SearchError::InvalidK { k, max: MAX_K });
    }
    Ok(())
}
