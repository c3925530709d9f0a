//! Connection tracking (see docs/ARCHITECTURE.md): one [`ConnTable`] per worker.
//!
//! - [`key`]: the address type ([`ConnAddr`]: IPv4 now, IPv6 later) and [`FlowKey`].
//! - [`tcp_state`]: the IPVS TCP state machine, [`Direction`], [`Timeouts`].
//! - [`timer`]: the hashed timer wheel threaded through the table's entries.
//! - [`entry`]: one entry, [`Conn`] (62 bytes of fields for IPv4 in a 64-byte line), and
//!   [`ConnIdx`].
//! - [`table`]: [`ConnTable`] (slab + key index + wheel), [`KeyHash`] for staged lookups.
//! - `pending`: the NAT reply keys of the newest connections, on their way into the index.
//! - [`persist`]: persistence templates.
//!
//! Per packet the worker does: `lookup_in` / `lookup_reply`, or for a plain frame
//! `lookup_packet` (either direction in one probe run: a tuple's inbound and reply keys hash
//! alike); for a burst staged so that the cache misses overlap: `hash_in` and
//! `prefetch_index` for every frame, then `prefetch_entry` a few frames ahead of the lookup,
//! whose candidate entry it checks first, as `Pipeline::process_burst` does (`lookup_burst`
//! does the same for a slice of keys);
//! for a TCP SYN `reuse_on_syn`, then `on_packet`, applying the returned [`LoadChange`] to the
//! destination's counters. A new connection is created by `insert_first` in the state its
//! first packet gives it, and bound once with the class that comes back; its NAT reply key
//! is parked for a few inserts while its index slot loads (`pending`), found by lookups all
//! the same. A few times a second it calls `advance(now, max, ..)` and unbinds each expired
//! entry per its [`LoadClass`]. Nothing locks and nothing allocates after construction.
//!
//! Times are whole seconds from any monotonic origin the worker chooses (`u32`).
//!
//! Memory: a 64-byte IPv4 entry (one cache line: a lookup loads one line of it) plus 32
//! bytes of index (four 8-byte slots per entry: both keys of a NAT connection at a load of
//! one half) come to 96-98 bytes per connection at 1M capacity, on 2 MiB pages
//! (`tests/conn_memory.rs`).

mod check;
pub mod entry;
mod index;
pub mod key;
mod pending;
pub mod persist;
pub mod table;
pub mod tcp_state;
pub mod timer;

pub use entry::{Conn, ConnIdx, ConnState, LoadClass};
pub use key::{ConnAddr, FlowKey};
pub use persist::{NewTemplate, TemplateKey};
pub use table::{
    AdvanceStats, Candidate, ConnTable, InsertError, KeyHash, LoadChange, NewConn, StateChange,
};
pub use tcp_state::{tcp_flags, Direction, StateTable, TcpState, Timeouts};
