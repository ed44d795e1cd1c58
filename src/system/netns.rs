//! A network namespace as an owned file descriptor.
//!
//! Work inside another namespace never switches the calling thread: `Netns::run` starts a
//! short-lived thread, enters the namespace there and returns the closure's value. A thread
//! that has entered a namespace is never reused, so nothing else (the logger, a later
//! request) can accidentally run in the wrong namespace. Other code borrows the descriptor
//! (`AsFd`) and never owns or closes it.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

use super::{SysError, SysResult};

/// Why a namespace path could not be opened. DEL tells these apart: every one of them means
/// "nothing left to clean inside the pod", while ADD reports them to the runtime.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the namespace path is empty")]
    Empty,
    #[error("network namespace {0} does not exist")]
    Missing(PathBuf),
    /// A regular file where a namespace was bind-mounted: a half-deleted /run/netns entry.
    #[error("network namespace {0} is gone (nothing is mounted on it)")]
    Unmounted(PathBuf),
    /// Anything else that is no network namespace: a FIFO, a device, a directory, another
    /// kind of namespace. Never a pod's namespace, whatever the verb.
    #[error("{0} is not a network namespace")]
    NotANamespace(PathBuf),
    #[error("cannot open network namespace {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub struct Netns {
    file: File,
    path: PathBuf,
}

/// `NS_GET_NSTYPE` from <linux/nsfs.h>: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: nix::libc::c_ulong = 0xb703;

impl Netns {
    /// The namespace of the calling thread (for the plugin: the node's namespace).
    pub fn current() -> SysResult<Netns> {
        // thread-self, not self: a thread that has entered another namespace must see its own.
        let path = PathBuf::from("/proc/thread-self/ns/net");
        let file = File::open(&path).map_err(|e| {
            SysError::io(
                format!(
                    "cannot open the current network namespace {}",
                    path.display()
                ),
                e,
            )
        })?;
        Ok(Netns { file, path })
    }

    /// Opens the namespace at `path` (a bind mount such as /run/netns/x, or /proc/PID/ns/net).
    pub fn open(path: &Path) -> Result<Netns, OpenError> {
        if path.as_os_str().is_empty() {
            return Err(OpenError::Empty);
        }
        // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever, and a
        // device could wait for its hardware; a namespace file ignores the flag. O_NOCTTY: a
        // terminal never becomes the plugin's controlling terminal.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
            .open(path)
            .map_err(|source| match source.raw_os_error() {
                _ if source.kind() == std::io::ErrorKind::NotFound => {
                    OpenError::Missing(path.to_path_buf())
                }
                // A socket (ENXIO) or a device without its driver (ENODEV).
                Some(nix::libc::ENXIO | nix::libc::ENODEV) => {
                    OpenError::NotANamespace(path.to_path_buf())
                }
                _ => OpenError::Io {
                    path: path.to_path_buf(),
                    source,
                },
            })?;
        // A /run/netns entry whose bind mount is gone (a half-deleted namespace) is a plain
        // file on tmpfs: only nsfs proves that a namespace is behind the path.
        let statfs = nix::sys::statfs::fstatfs(&file).map_err(|errno| OpenError::Io {
            path: path.to_path_buf(),
            source: errno.into(),
        })?;
        if statfs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
            return Err(if file.metadata().is_ok_and(|m| m.is_file()) {
                OpenError::Unmounted(path.to_path_buf())
            } else {
                OpenError::NotANamespace(path.to_path_buf())
            });
        }
        // nsfs also holds mount, pid, user... namespaces (/proc/PID/ns/mnt); entering one of
        // those as a network namespace would only fail later, with a less helpful message.
        if namespace_type(file.as_fd()).is_some_and(|kind| kind != nix::libc::CLONE_NEWNET) {
            return Err(OpenError::NotANamespace(path.to_path_buf()));
        }
        Ok(Netns {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when both handles refer to the same namespace (same device and inode).
    pub fn is_same(&self, other: &Netns) -> SysResult<bool> {
        let stat = |ns: &Netns| {
            ns.file.metadata().map(|m| (m.dev(), m.ino())).map_err(|e| {
                SysError::io(
                    format!("cannot stat network namespace {}", ns.path.display()),
                    e,
                )
            })
        };
        Ok(stat(self)? == stat(other)?)
    }

    /// Runs `f` on a fresh thread that has entered this namespace, and returns its value.
    pub fn run<T, F>(&self, f: F) -> SysResult<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        // A scoped thread lets `f` borrow from the caller; the thread ends with `f`, so its
        // namespace never leaks into other work.
        let outcome = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    nix::sched::setns(&self.file, CloneFlags::CLONE_NEWNET)
                        .map_err(|errno| {
                            SysError::io(
                                format!("cannot enter network namespace {}", self.path.display()),
                                errno.into(),
                            )
                        })
                        .map(|()| f())
                })
                .join()
        });
        match outcome {
            Ok(result) => result,
            // A panic in `f` is a bug in the caller: let it surface as the panic it is.
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }
}

/// The CLONE_NEW* type of the namespace behind `fd`; None when the kernel cannot tell.
fn namespace_type(fd: BorrowedFd<'_>) -> Option<nix::libc::c_int> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd, which the borrow keeps
    // open for the duration of the call.
    let kind = unsafe { nix::libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    (kind >= 0).then_some(kind)
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Throwaway network namespaces for root tests: every test builds its topology inside
/// namespaces of its own and never touches the machine's namespace.
#[cfg(test)]
pub(crate) mod test_support {
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::Netns;

    /// A named namespace under /run/netns, deleted on drop (also when the test panics).
    pub(crate) struct TempNetns {
        pub(crate) name: String,
        pub(crate) ns: Netns,
        _deleter: Deleter,
    }

    struct Deleter(String);

    impl Drop for Deleter {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }

    impl TempNetns {
        pub(crate) fn new(tag: &str) -> TempNetns {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("mvh-{tag}-{}-{n}", std::process::id());
            // A killed earlier run with the same pid may have left this name behind.
            let _ = Command::new("ip")
                .args(["netns", "del", &name])
                .stderr(std::process::Stdio::null())
                .status();
            let deleter = Deleter(name.clone());
            let status = Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .expect("run ip netns add");
            assert!(status.success(), "ip netns add {name} failed");
            let path = format!("/run/netns/{name}");
            let ns = Netns::open(path.as_ref()).expect("open the new namespace");
            TempNetns {
                name,
                ns,
                _deleter: deleter,
            }
        }

        /// `ip -n NAME ARGS...`; panics unless it succeeds, returns stdout.
        pub(crate) fn ip(&self, args: &[&str]) -> String {
            let output = Command::new("ip")
                .args(["-n", &self.name])
                .args(args)
                .output()
                .expect("run ip");
            assert!(
                output.status.success(),
                "ip -n {} {args:?}: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).expect("utf-8 output of ip")
        }

        /// `ip -j -n NAME ARGS...`, parsed.
        pub(crate) fn ip_json(&self, args: &[&str]) -> serde_json::Value {
            let mut all = vec!["-j"];
            all.extend_from_slice(args);
            let text = self.ip(&all);
            if text.trim().is_empty() {
                return serde_json::Value::Array(Vec::new());
            }
            serde_json::from_str(&text).expect("JSON from ip -j")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::TempNetns;
    use super::*;

    #[test]
    fn open_tells_apart_empty_missing_and_not_a_namespace() {
        assert!(matches!(Netns::open(Path::new("")), Err(OpenError::Empty)));

        let missing = PathBuf::from(format!("/run/netns/mvh-missing-{}", std::process::id()));
        match Netns::open(&missing) {
            Err(OpenError::Missing(path)) => assert_eq!(path, missing),
            other => panic!("expected Missing, got {:?}", other.err()),
        }

        let file = std::env::temp_dir().join(format!("mvh-not-a-netns-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let result = Netns::open(&file);
        std::fs::remove_file(&file).unwrap();
        match result {
            Err(OpenError::Unmounted(path)) => assert_eq!(path, file),
            other => panic!("expected Unmounted, got {:?}", other.err()),
        }

        // A FIFO without a writer: refused at once, not waited on.
        let fifo = std::env::temp_dir().join(format!("mvh-fifo-netns-{}", std::process::id()));
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let result = Netns::open(&fifo);
        std::fs::remove_file(&fifo).unwrap();
        assert!(matches!(result, Err(OpenError::NotANamespace(_))));
        assert!(matches!(
            Netns::open(Path::new("/tmp")),
            Err(OpenError::NotANamespace(_))
        ));

        // On nsfs, but a mount namespace.
        assert!(matches!(
            Netns::open(Path::new("/proc/self/ns/mnt")),
            Err(OpenError::NotANamespace(_))
        ));
        let message = Netns::open(&missing).err().unwrap().to_string();
        assert!(
            message.contains(&missing.display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn is_same_compares_namespaces_not_paths() {
        let a = TempNetns::new("same");
        let b = TempNetns::new("same");
        let a_again = Netns::open(a.ns.path()).unwrap();
        assert!(a.ns.is_same(&a_again).unwrap());
        assert!(!a.ns.is_same(&b.ns).unwrap());

        let current = Netns::current().unwrap();
        let process = Netns::open(Path::new("/proc/self/ns/net")).unwrap();
        assert!(current.is_same(&process).unwrap());
        assert!(!current.is_same(&a.ns).unwrap());
    }

    #[test]
    fn run_enters_the_namespace_on_another_thread_only() {
        let temp = TempNetns::new("run");
        let before = Netns::current().unwrap();
        let borrowed = String::from("borrowed from the caller");

        let (inside, devices, echoed) = temp
            .ns
            .run(|| {
                let here = Netns::current().unwrap();
                let devices = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
                (here.is_same(&temp.ns).unwrap(), devices, borrowed.len())
            })
            .unwrap();
        assert!(inside);
        assert_eq!(echoed, borrowed.len());
        // A fresh namespace has nothing but its loopback.
        let names: Vec<&str> = devices
            .lines()
            .skip(2)
            .filter_map(|line| line.split(':').next())
            .map(str::trim)
            .collect();
        assert_eq!(names, ["lo"]);

        let after = Netns::current().unwrap();
        assert!(before.is_same(&after).unwrap());
        assert!(!after.is_same(&temp.ns).unwrap());
    }
}
