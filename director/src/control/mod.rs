//! The control plane: the IPVS table ([`table`]), the socket protocol ([`protocol`]), its
//! server ([`server`]) and client ([`client`]). See docs/ARCHITECTURE.md.
//!
//! The daemon implements [`ControlHandler`]; [`TableHandler`] is the table-only
//! implementation (no data plane, zero counters) used by tests and as the daemon's core:
//! the daemon can call [`execute`] with its own snapshot builder that adds live counters.
//! A daemon handler is typically:
//!
//! ```text
//! fn handle(&self, cmd: Command) -> Response {
//!     let mut table = self.table.lock();
//!     let before = table.generation();
//!     let r = execute(&mut table, &cmd, |t| self.listing_with_counters(t));
//!     if table.generation() != before { self.publish_snapshot(&table) }   // config changed
//!     if let (true, Command::Zero(which)) = (r.ok, &cmd) { self.zero_counters(which) }
//!     r
//! }
//! ```
//! and it serves it with `ControlServer::bind(path, Arc::new(handler))`.

pub mod client;
pub mod config;
pub mod daemon;
pub mod protocol;
pub mod server;
pub mod table;

use std::sync::{Mutex, PoisonError};

use crate::cli::args::Command;
use crate::cli::format::render_list;
use crate::cli::listing::ListSnapshot;
use protocol::Response;
use table::{IpvsTable, TableError};

/// What the control server calls for each request.
pub trait ControlHandler: Send + Sync {
    /// Execute `cmd` and say what to print and which exit status to use.
    fn handle(&self, cmd: Command) -> Response;
}

/// Exit status of ipvsadm when the kernel refuses a change (`return -1` from main).
pub const EXIT_KERNEL_ERROR: i32 = 255;
/// Exit status of ipvsadm when a listing fails (`exit(1)`).
pub const EXIT_LIST_ERROR: i32 = 1;

/// Run `cmd` against `table`: changes are applied (all or nothing), listings rendered from
/// `snapshot(table)`. Errors carry ipvsadm's message and exit status.
pub fn execute(
    table: &mut IpvsTable,
    cmd: &Command,
    snapshot: impl FnOnce(&IpvsTable) -> ListSnapshot,
) -> Response {
    let result = match cmd {
        Command::List(req) => {
            return match render_list(&snapshot(table), req) {
                Ok(text) => Response::success(text),
                Err(e) => Response::failure(e.to_string(), EXIT_LIST_ERROR),
            }
        }
        Command::Save => return Response::success(table.save()),
        other => table.apply(other),
    };
    match result {
        Ok(()) => Response::success(""),
        Err(e) => kernel_error(e),
    }
}

fn kernel_error(e: TableError) -> Response {
    Response::failure(e.to_string(), EXIT_KERNEL_ERROR)
}

/// An [`IpvsTable`] behind a mutex, serving every command with zero counters. Control
/// plane only: the lock is never taken on the packet path.
#[derive(Default)]
pub struct TableHandler {
    table: Mutex<IpvsTable>,
}

impl TableHandler {
    /// Serve `table`.
    pub fn new(table: IpvsTable) -> Self {
        TableHandler {
            table: Mutex::new(table),
        }
    }

    /// Run `f` on the table (e.g. to read its generation or build a data-plane snapshot).
    pub fn with_table<R>(&self, f: impl FnOnce(&IpvsTable) -> R) -> R {
        f(&self.table.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ControlHandler for TableHandler {
    fn handle(&self, cmd: Command) -> Response {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        execute(&mut table, &cmd, ListSnapshot::from_table)
    }
}
