//! Which file a path names, so the store can tell when its database file is deleted,
//! replaced or truncated while the node runs (redb keeps writing to the open file, unaware).

use std::io;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    #[cfg(unix)]
    device: u64,
    #[cfg(unix)]
    inode: u64,
}

impl FileIdentity {
    /// The identity of the file at `path` now. Off Unix only existence is checked.
    pub(crate) fn of(path: &Path) -> io::Result<Self> {
        Ok(Self::from_metadata(&std::fs::metadata(path)?))
    }

    fn from_metadata(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Self {
                device: metadata.dev(),
                inode: metadata.ino(),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            Self {}
        }
    }
}

/// What is wrong with the file at `path`, if it is no longer the file `opened`: a write
/// acknowledged into a deleted or replaced file would be gone at the next start.
pub(crate) fn changed(path: &Path, opened: FileIdentity) -> Option<String> {
    check(path, opened, 0).err()
}

/// Like [`changed`], and also fails if the file is now shorter than `committed_len`, the
/// length it had after the store's last commit (only the store writes to it, so it never
/// shrinks between two of its commits). Returns the current length.
pub(crate) fn check(path: &Path, opened: FileIdentity, committed_len: u64) -> Result<u64, String> {
    let shown = path.display();
    // One stat: it runs before and after every commit.
    let now = std::fs::metadata(path)
        .map(|metadata| (FileIdentity::from_metadata(&metadata), metadata.len()));
    match now {
        Ok((file, _)) if file != opened => Err(format!(
            "database file {shown} was replaced while the store had it open; nothing more is \
             written to either file (reopen to use the new one)"
        )),
        Ok((_, len)) if len < committed_len => Err(format!(
            "database file {shown} was truncated from {committed_len} to {len} bytes while the \
             store had it open; nothing more is written (check it with the node stopped)"
        )),
        Ok((_, len)) => Ok(len),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(format!(
            "database file {shown} was deleted while the store had it open; nothing more is \
             written (restore the file from a backup, or re-create it, and reopen)"
        )),
        Err(error) => Err(format!("cannot check database file {shown}: {error}")),
    }
}
