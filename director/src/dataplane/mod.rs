//! The data plane: poll-mode workers, steering, connection tracking and forwarding.
pub mod conn;
pub mod neigh;
pub mod ratelimit;
pub mod route;
