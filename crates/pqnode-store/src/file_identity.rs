//! Which file a path names, so the store can tell when its database file is deleted or
//! replaced while the node runs (redb keeps writing to the open file, unaware).

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
        let metadata = std::fs::metadata(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(Self {
                device: metadata.dev(),
                inode: metadata.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            Ok(Self {})
        }
    }
}

/// What is wrong with the file at `path`, if it is no longer the file `opened`: a write
/// acknowledged into a deleted or replaced file would be gone at the next start.
pub(crate) fn changed(path: &Path, opened: FileIdentity) -> Option<String> {
    let shown = path.display();
    match FileIdentity::of(path) {
        Ok(file) if file == opened => None,
        Ok(_) => Some(format!(
            "database file {shown} was replaced while the store had it open; nothing more is \
             written to either file (reopen to use the new one)"
        )),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Some(format!(
            "database file {shown} was deleted while the store had it open; nothing more is \
             written (restore the file from a backup, or re-create it, and reopen)"
        )),
        Err(error) => Some(format!("cannot check database file {shown}: {error}")),
    }
}
