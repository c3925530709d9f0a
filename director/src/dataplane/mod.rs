//! The data plane: poll-mode workers, steering, connection tracking and forwarding.
pub mod conn;
pub mod drop;
mod egress_cache;
mod fastpath;
mod forward;
mod local;
pub mod neigh;
pub mod netstate;
pub mod packet;
pub mod pipeline;
pub mod ratelimit;
pub mod route;
pub mod snapshot;
pub mod steering;
pub mod worker;
