//! ipvsadm compatibility: the command line ([`args`], [`restore`], [`usage`]), the listing
//! data ([`listing`]) and the output formats ([`mod@format`]), byte-identical to ipvsadm 1.31
//! (see docs/ARCHITECTURE.md).

pub mod args;
pub mod format;
pub mod libc_compat;
pub mod listing;
mod options;
mod popt;
pub mod restore;
pub mod usage;
