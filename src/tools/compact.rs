//! Compacting a store: a fresh copy of its trees, without the stale page copies sled keeps.
//!
//! sled writes every change to the end of its file and takes the space of stale copies back
//! only a segment at a time, so a store's file grows to several times what it holds and never
//! shrinks. A compacted store that takes logins and logouts again grows back
//! (benches/README.md, "How long a compaction lasts"), so this gives back what a burst of
//! writes left rather than keeping a busy store small.
//! `sessiongate compact`, run while the gateway is stopped, writes every tree key by key, in
//! order, into a new store, checks the copy against the original entry by entry, and only
//! then puts it in the original's place ([`compact_in_place`]) or leaves it where it was
//! asked for ([`compact_into`]).
//!
//! Nothing is lost on the way: the original is opened (and so locked against a gateway) for
//! the whole run and only read (sled itself writes some bookkeeping when it opens a store); a
//! copy that does not match it is thrown away; in place, the two directories are exchanged in
//! one atomic rename, so that at every instant the store's directory holds either the whole
//! original or the whole checked copy.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// Trees copied (sled's default tree among them).
    pub trees: usize,
    /// Keys copied, over all trees.
    pub entries: u64,
    /// Size of the store's files before.
    pub bytes_before: u64,
    /// Size of the copy's files.
    pub bytes_after: u64,
}

/// Why a compaction stopped. In every case the original store is as it was.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// There is no store in the directory (sled would have made an empty one).
    #[error("no session store in {0} (no sled `db` file there)")]
    NoStore(PathBuf),
    /// Another process (a running gateway) has the store open.
    #[error("the store in {0} is in use: stop the gateway first")]
    InUse(PathBuf),
    /// The target directory of [`compact_into`] holds files.
    #[error("{0} is not empty: compact into a new or empty directory")]
    NotEmpty(PathBuf),
    /// The copy read back differs from the original.
    #[error("the copy in {0} does not match the store: {1}")]
    Mismatch(PathBuf, String),
    /// The copy could not be put in place of the original.
    #[error(
        "could not put the copy in place of {dir}: {source}; the store is unchanged. \
         Compact into another directory with --to <dir>, then point data_dir at it"
    )]
    Swap {
        /// The store's directory.
        dir: PathBuf,
        /// What the exchange reported.
        source: io::Error,
    },
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// What it was done to.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// sled failed.
    #[error("session store: {0}")]
    Sled(#[from] sled::Error),
}

#[cfg(test)]
mod tests;

/// Keys written per sled batch while copying.
const COPY_BATCH: usize = 10_000;

/// Most trees copied, or read back, side by side.
const COPY_THREADS: usize = 4;

/// Compacts the store in `dir` into `to`, a new or empty directory, and leaves `dir` as it
/// was. Point `data_dir` at `to` afterwards to use the copy.
pub fn compact_into(dir: &Path, to: &Path) -> Result<Compacted, CompactError> {
    let bytes_before = disk_bytes(dir);
    let source = open_source(dir)?;
    if std::fs::read_dir(to).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(CompactError::NotEmpty(to.to_path_buf()));
    }
    let copied = copy_checked(&source, dir, to);
    if copied.is_err() {
        // What was written is of no use; `to` was new or empty.
        let _ = std::fs::remove_dir_all(to);
    }
    Ok(Compacted {
        bytes_before,
        ..copied?
    })
}

/// Compacts the store in `dir` in place: the copy is made beside it, in `<dir>.compacting`
/// (which must be on the same file system, as it is unless `dir` is a mount point), and the
/// two directories are then exchanged (Linux's `renameat2(RENAME_EXCHANGE)`), and the original
/// removed. A `<dir>.compacting` left by an interrupted run is removed first: it holds either
/// an unchecked copy or an original already replaced.
pub fn compact_in_place(dir: &Path) -> Result<Compacted, CompactError> {
    // Through symbolic links (systemd's StateDirectory may be one), to the real directory.
    let dir = std::fs::canonicalize(dir).map_err(io_error(dir))?;
    let mut name = dir.file_name().unwrap_or_default().to_owned();
    name.push(".compacting");
    let beside = dir.with_file_name(name);
    let bytes_before = disk_bytes(&dir);
    let source = open_source(&dir)?;
    if beside.exists() {
        std::fs::remove_dir_all(&beside).map_err(io_error(&beside))?;
    }
    let copied = match copy_checked(&source, &dir, &beside) {
        Ok(copied) => copied,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&beside);
            return Err(error);
        }
    };
    // The original stays open, and so locked against a gateway, until it is out of the way.
    if let Err(source) = rustix::fs::renameat_with(
        rustix::fs::CWD,
        &beside,
        rustix::fs::CWD,
        &dir,
        rustix::fs::RenameFlags::EXCHANGE,
    ) {
        let _ = std::fs::remove_dir_all(&beside);
        return Err(CompactError::Swap {
            dir,
            source: source.into(),
        });
    }
    // The exchange is on disk once the directory holding both names is.
    let parent = dir.parent().unwrap_or(Path::new("/"));
    std::fs::File::open(parent)
        .and_then(|parent| parent.sync_all())
        .map_err(io_error(parent))?;
    drop(source);
    // sled may write a file of the original as it closes: not into a directory being removed.
    wait_released(&beside)?;
    std::fs::remove_dir_all(&beside).map_err(io_error(&beside))?;
    Ok(Compacted {
        bytes_before,
        ..copied
    })
}

/// Opens the store in `dir` for reading, refusing a directory with no store in it and a
/// store another process has open.
fn open_source(dir: &Path) -> Result<sled::Db, CompactError> {
    if !dir.join("db").is_file() {
        return Err(CompactError::NoStore(dir.to_path_buf()));
    }
    sled::Config::new().path(dir).open().map_err(|error| {
        if is_locked(&error) {
            CompactError::InUse(dir.to_path_buf())
        } else {
            CompactError::Sled(error)
        }
    })
}

/// sled's error for a store whose lock another handle holds (it has no kind of its own).
fn is_locked(error: &sled::Error) -> bool {
    error.to_string().contains("could not acquire lock")
}

/// Copies every tree of `source` into a new store in `to`, closes it, opens it again and
/// checks that it holds exactly what `source` holds. Trees are copied, and read back, on up
/// to [`COPY_THREADS`] threads side by side: sled's insert path is the cost, one core each.
fn copy_checked(
    source: &sled::Db,
    source_dir: &Path,
    to: &Path,
) -> Result<Compacted, CompactError> {
    let names = tree_names(source);
    let written = {
        let copy = sled::Config::new().path(to).open()?;
        let written = each_tree(&names, |name| {
            copy_tree(&source.open_tree(name)?, &copy.open_tree(name)?)
        })?;
        copy.flush()?;
        // sled syncs its files; the directory's entries for them are synced here.
        std::fs::File::open(to)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error(to))?;
        written
    };
    // Read back from disk, not from the handle that wrote it.
    wait_released(to)?;
    let copy = sled::Config::new().path(to).open()?;
    let copy_names = tree_names(&copy);
    let read = each_tree(&copy_names, |name| read_tree(&copy.open_tree(name)?))?;
    drop(copy);
    let mismatch = |what: String| Err(CompactError::Mismatch(to.to_path_buf(), what));
    if copy_names != names {
        return mismatch(format!(
            "{} trees written, {} read back",
            names.len(),
            copy_names.len()
        ));
    }
    for ((name, written), read) in names.iter().zip(&written).zip(&read) {
        if written != read {
            return mismatch(format!(
                "tree {}: {} keys written, {} read back, or their contents differ",
                String::from_utf8_lossy(name),
                written.entries,
                read.entries
            ));
        }
    }
    // The gateway must be able to open the copy: same owner and mode as the original
    // (compacting as root a store that a service user owns, say). sled may still be writing
    // a file of the copy as it closes.
    wait_released(to)?;
    match_owner(source_dir, to)?;
    Ok(Compacted {
        trees: names.len(),
        entries: written.iter().map(|tree| tree.entries).sum(),
        bytes_before: 0,
        bytes_after: disk_bytes(to),
    })
}

/// Copies `from` into the empty `into`, key by key in order, in batches; what it copied.
fn copy_tree(from: &sled::Tree, into: &sled::Tree) -> Result<TreeDigest, CompactError> {
    let mut digest = TreeDigest::default();
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    for entry in from.iter() {
        let (key, value) = entry?;
        digest.add(&key, &value);
        batch.insert(key, value);
        in_batch += 1;
        if in_batch == COPY_BATCH {
            into.apply_batch(std::mem::take(&mut batch))?;
            in_batch = 0;
        }
    }
    into.apply_batch(batch)?;
    Ok(digest)
}

/// What `tree` holds.
fn read_tree(tree: &sled::Tree) -> Result<TreeDigest, CompactError> {
    let mut digest = TreeDigest::default();
    for entry in tree.iter() {
        let (key, value) = entry?;
        digest.add(&key, &value);
    }
    Ok(digest)
}

/// Runs `work` for each tree name, on up to [`COPY_THREADS`] threads; the results in the
/// names' order, or the first error (once every tree was worked on).
fn each_tree<T: Send>(
    names: &[sled::IVec],
    work: impl Fn(&sled::IVec) -> Result<T, CompactError> + Sync,
) -> Result<Vec<T>, CompactError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, COPY_THREADS)
        .min(names.len());
    let next = AtomicUsize::new(0);
    let done: Vec<Mutex<Option<Result<T, CompactError>>>> =
        names.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = names.get(i) else { break };
                    let result = work(name);
                    *done[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
                }
            });
        }
    });
    done.into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .expect("every tree was worked on")
        })
        .collect()
}

/// Gives `copy`, and everything in it, the owner of `original`, and `copy` itself the
/// permissions of `original`.
fn match_owner(original: &Path, copy: &Path) -> Result<(), CompactError> {
    use std::os::unix::fs::MetadataExt;
    let wanted = std::fs::metadata(original).map_err(io_error(original))?;
    fn chown_all(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(path)?;
        if (meta.uid(), meta.gid()) != (uid, gid) {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(path)? {
                chown_all(&entry?.path(), uid, gid)?;
            }
        }
        Ok(())
    }
    chown_all(copy, wanted.uid(), wanted.gid()).map_err(io_error(copy))?;
    std::fs::set_permissions(copy, wanted.permissions()).map_err(io_error(copy))
}

/// A store's tree names in order (sled keeps them in a hash map).
fn tree_names(db: &sled::Db) -> Vec<sled::IVec> {
    let mut names = db.tree_names();
    names.sort();
    names
}

/// Waits (up to 5 s) until no handle holds the lock of the store in `dir`: sled's threads
/// may hold it a moment after this process dropped its last handle, and write files
/// meanwhile.
fn wait_released(dir: &Path) -> Result<(), CompactError> {
    let path = dir.join("db");
    let file = std::fs::File::open(&path).map_err(io_error(&path))?;
    for _ in 0..500 {
        match file.try_lock() {
            Ok(()) => return file.unlock().map_err(io_error(&path)),
            Err(std::fs::TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(10)),
            Err(std::fs::TryLockError::Error(error)) => return Err(io_error(&path)(error)),
        }
    }
    Err(io_error(&path)(io::Error::other(
        "the store's lock is still held after 5 s",
    )))
}

/// What one tree holds: how many keys, and a digest of its keys and values, each with its
/// length, so that two different trees do not give the same one.
#[derive(Default)]
struct TreeDigest {
    entries: u64,
    hash: Sha256,
}

impl TreeDigest {
    fn add(&mut self, key: &[u8], value: &[u8]) {
        self.entries += 1;
        for field in [key, value] {
            self.hash.update((field.len() as u64).to_be_bytes());
            self.hash.update(field);
        }
    }
}

impl PartialEq for TreeDigest {
    fn eq(&self, other: &TreeDigest) -> bool {
        self.entries == other.entries
            && self.hash.clone().finalize() == other.hash.clone().finalize()
    }
}

/// Turns an I/O error about `path` into a [`CompactError`].
fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CompactError + use<> {
    let path = path.to_path_buf();
    move |source| CompactError::Io { path, source }
}

/// Total size of the files under `dir`, in bytes (what `du -sb` says, less directories); 0
/// for a directory that cannot be read.
pub fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}
