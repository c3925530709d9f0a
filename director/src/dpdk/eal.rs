//! EAL (Environment Abstraction Layer) initialisation, once per process.
//!
//! DPDK allows `rte_eal_init` once per process (a second call fails even after cleanup) and it
//! pins the calling thread to the first lcore, a pinning every thread spawned later from it would
//! inherit. So [`init`] runs `rte_eal_init` on a short-lived dedicated thread, records success
//! behind a lock, and returns `Ok` for every later call.

use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::{c_string, DpdkError};

/// Serialises initialisation attempts.
static INIT_LOCK: Mutex<()> = Mutex::new(());
/// Set once `rte_eal_init` has succeeded.
static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The EAL arguments of [`test_init`]: one lcore, no hugepages, no PCI, no shared files (so
/// parallel test processes do not clash), no telemetry socket, quiet logs.
pub const TEST_ARGS: &[&str] = &[
    "director-test",
    "-l",
    "0",
    "--no-huge",
    "-m",
    "512",
    "--no-pci",
    "--no-shconf",
    "--no-telemetry",
    "--log-level=lib.eal:warning",
];

/// Initialises the EAL with `args`, given as a command line: `args[0]` is the program name,
/// then EAL options (`-l`, `--vdev=...`, ...), as for `rte_eal_init`.
///
/// Returns `Ok(())` at once if the EAL is already up in this process (`args` are then ignored).
/// A failed attempt returns the EAL's error (e.g. an unknown option gives `EINVAL`), never
/// aborts; DPDK may or may not allow a retry afterwards.
pub fn init(args: &[String]) -> Result<(), DpdkError> {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if INITIALISED.load(Ordering::Acquire) {
        return Ok(());
    }
    let cargs = args
        .iter()
        .map(|a| c_string("EAL argument", a))
        .collect::<Result<Vec<CString>, _>>()?;
    if cargs.is_empty() {
        return Err(DpdkError::InvalidArgument(
            "EAL arguments need at least the program name".into(),
        ));
    }
    let result = std::thread::Builder::new()
        .name("dpdk-eal-init".into())
        .spawn(move || eal_init_on_this_thread(cargs))
        .map_err(|e| DpdkError::InvalidArgument(format!("cannot spawn the EAL thread: {e}")))?
        .join()
        .map_err(|_| DpdkError::InvalidArgument("the EAL init thread panicked".into()))?;
    result?;
    INITIALISED.store(true, Ordering::Release);
    Ok(())
}

/// Runs `rte_eal_init` on the calling thread (which EAL pins to the main lcore).
fn eal_init_on_this_thread(cargs: Vec<CString>) -> Result<(), DpdkError> {
    // EAL may keep pointers into argv (e.g. the program name), so the strings live forever;
    // this happens once per process.
    let cargs: &'static [CString] = Vec::leak(cargs);
    let mut argv: Vec<*mut c_char> = cargs.iter().map(|c| c.as_ptr().cast_mut()).collect();
    let argc = argv.len() as c_int;
    argv.push(std::ptr::null_mut());
    // SAFETY: argv holds argc valid NUL-terminated strings followed by NULL, all alive for the
    // rest of the process; EAL may reorder the pointer array (getopt), which is ours to change.
    let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
    if ret < 0 {
        return Err(DpdkError::from_rte_errno(format!(
            "rte_eal_init({})",
            cargs
                .iter()
                .map(|c| c.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        )));
    }
    // Keep the argv array alive too: EAL may hold pointers into it after reordering.
    std::mem::forget(argv);
    Ok(())
}

/// [`init`] with [`TEST_ARGS`]: for tests and benches on virtual devices (add ports later with
/// `Port::probe_vdev` / `Port::from_rings`).
pub fn test_init() -> Result<(), DpdkError> {
    let args: Vec<String> = TEST_ARGS.iter().map(|s| s.to_string()).collect();
    init(&args)
}

/// Whether [`init`] has succeeded in this process.
pub fn is_initialised() -> bool {
    INITIALISED.load(Ordering::Acquire)
}

/// Fails with [`DpdkError::NotInitialised`] unless the EAL is up.
pub(crate) fn ensure() -> Result<(), DpdkError> {
    if is_initialised() {
        Ok(())
    } else {
        Err(DpdkError::NotInitialised)
    }
}

/// Registers the calling (non-EAL) thread with DPDK and returns its new lcore id, so that
/// mempool per-lcore caches work for it. Call once at the start of each worker thread; the
/// thread's CPU affinity is not changed.
pub fn register_thread() -> Result<u32, DpdkError> {
    ensure()?;
    if let Some(id) = lcore_id() {
        return Ok(id);
    }
    // SAFETY: the EAL is initialised; registering the current thread only touches its
    // per-thread lcore variables and the EAL's lcore table (internally locked).
    let ret = unsafe { dpdk_sys::rte_thread_register() };
    if ret < 0 {
        return Err(DpdkError::from_rte_errno("rte_thread_register"));
    }
    lcore_id().ok_or_else(|| DpdkError::Busy("no free lcore id for this thread".into()))
}

/// Gives the calling thread's lcore id back (when a registered worker thread ends; lcore
/// ids are limited to RTE_MAX_LCORE). Mbufs in that lcore's mempool caches stay there for the
/// next thread given the id. No effect on a thread that is not registered.
pub fn unregister_thread() {
    if is_initialised() && lcore_id().is_some() {
        // SAFETY: the EAL is up and the calling thread is registered; this only clears its
        // per-thread lcore variables and frees its slot in the EAL's (locked) lcore table.
        unsafe { dpdk_sys::rte_thread_unregister() }
    }
}

/// The calling thread's lcore id, `None` for a thread unknown to DPDK.
pub fn lcore_id() -> Option<u32> {
    // SAFETY: reads the calling thread's per-lcore variable; valid on any thread.
    let id = unsafe { dpdk_sys::shim_lcore_id() };
    (id != u32::MAX).then_some(id)
}
