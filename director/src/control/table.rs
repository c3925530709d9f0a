//! The IPVS configuration table: what `ipvsadm -A/-E/-D/-a/-e/-d/-C/--set` change, with the
//! kernel's checks (net/netfilter/ipvs/ip_vs_ctl.c) and ipvsadm's error texts
//! (libipvs `ipvs_strerror`).
//!
//! Services are kept in insertion order; a service's destinations newest first, as the
//! kernel's list_add() keeps them (schedulers walk them in that order). Every rejected call
//! leaves the table untouched. Each destination gets an id that is never reused while the
//! table lives, so the data plane can key its per-destination state on it.

use std::fmt;
use std::net::IpAddr;

use crate::cli::args::Command;
use crate::cli::listing::ListSnapshot;
use crate::model::{DestConfig, ForwardMethod, ServiceConfig, ServiceKey};

/// Stable identity of a destination, unique over the life of the table.
pub type DestId = u32;

/// The kernel's errors for table operations; `Display` is ipvsadm's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// EEXIST on add service.
    ServiceExists,
    /// ESRCH on edit/delete/zero/get service.
    NoSuchService,
    /// ESRCH on a destination command: the service does not exist.
    ServiceNotDefined,
    /// EEXIST on add destination.
    DestExists,
    /// ENOENT on edit/delete destination.
    NoSuchDest,
    /// ENOENT on add/edit service: unknown scheduler.
    SchedulerNotFound,
    /// ERANGE: weight below zero / above INT_MAX, or lower threshold above upper threshold.
    OutOfRange,
    /// EINVAL: bad netmask, destination address not unicast, family mismatch without tunnel.
    InvalidOperation,
    /// ENOMEM: the table's capacity ([`TableLimits`]) is exhausted.
    NoMemory,
}

impl TableError {
    /// ipvsadm's text for the error.
    pub fn message(self) -> &'static str {
        match self {
            TableError::ServiceExists => "Service already exists",
            TableError::NoSuchService => "No such service",
            TableError::ServiceNotDefined => "Service not defined",
            TableError::DestExists => "Destination already exists",
            TableError::NoSuchDest => "No such destination",
            TableError::SchedulerNotFound => "Scheduler or persistence engine not found",
            TableError::OutOfRange => "Numerical result out of range",
            TableError::InvalidOperation => {
                "Invalid operation.  Possibly wrong module version, address not unicast, ..."
            }
            TableError::NoMemory => "Memory allocation problem",
        }
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for TableError {}

/// Connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Established TCP connections (default 900).
    pub tcp: u32,
    /// TCP connections after a FIN (default 120).
    pub tcp_fin: u32,
    /// UDP "connections" (default 300).
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }
    }
}

/// Capacity of the table; going past it fails with [`TableError::NoMemory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLimits {
    /// Maximum number of services.
    pub max_services: usize,
    /// Maximum number of destinations over all services.
    pub max_dests: usize,
}

impl Default for TableLimits {
    fn default() -> Self {
        TableLimits {
            max_services: 4096,
            max_dests: 65536,
        }
    }
}

/// A destination (real server) of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    /// Stable id.
    pub id: DestId,
    /// Configuration.
    pub config: DestConfig,
}

/// A virtual service and its destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Configuration.
    pub config: ServiceConfig,
    /// Destinations, newest first.
    pub dests: Vec<Dest>,
}

/// The whole IPVS configuration.
#[derive(Debug, Clone)]
pub struct IpvsTable {
    services: Vec<Service>,
    timeouts: Timeouts,
    generation: u64,
    next_dest_id: DestId,
    limits: TableLimits,
}

impl Default for IpvsTable {
    fn default() -> Self {
        Self::new()
    }
}

impl IpvsTable {
    /// An empty table with default timeouts and limits.
    pub fn new() -> Self {
        Self::with_limits(TableLimits::default())
    }

    /// An empty table with the given capacity.
    pub fn with_limits(limits: TableLimits) -> Self {
        IpvsTable {
            services: Vec::new(),
            timeouts: Timeouts::default(),
            generation: 0,
            next_dest_id: 1,
            limits,
        }
    }

    /// Bumped by every successful change (add/edit/delete/clear/set timeouts).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Services in insertion order.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The service with this key.
    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.services.iter().find(|s| s.config.key == *key)
    }

    /// Current timeouts.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    fn bump(&mut self) {
        self.generation += 1;
    }

    fn index_of(&self, key: &ServiceKey) -> Option<usize> {
        self.services.iter().position(|s| s.config.key == *key)
    }

    fn dest_count(&self) -> usize {
        self.services.iter().map(|s| s.dests.len()).sum()
    }

    /// `ipvsadm -A`: add a service.
    pub fn add_service(&mut self, config: ServiceConfig) -> Result<(), TableError> {
        if self.index_of(&config.key).is_some() {
            return Err(TableError::ServiceExists);
        }
        check_service(&config)?;
        if self.services.len() >= self.limits.max_services {
            return Err(TableError::NoMemory);
        }
        self.services.push(Service {
            config,
            dests: Vec::new(),
        });
        self.bump();
        Ok(())
    }

    /// `ipvsadm -E`: replace a service's settings (scheduler, flags, persistence, ...).
    pub fn edit_service(&mut self, config: ServiceConfig) -> Result<(), TableError> {
        let i = self
            .index_of(&config.key)
            .ok_or(TableError::NoSuchService)?;
        check_service(&config)?;
        self.services[i].config = config;
        self.bump();
        Ok(())
    }

    /// `ipvsadm -D`: delete a service and its destinations.
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), TableError> {
        let i = self.index_of(key).ok_or(TableError::NoSuchService)?;
        self.services.remove(i);
        self.bump();
        Ok(())
    }

    /// `ipvsadm -C`: delete every service.
    pub fn clear(&mut self) {
        self.services.clear();
        self.bump();
    }

    /// `ipvsadm -a`: add a destination (at the head of the service's list); returns its id.
    pub fn add_dest(&mut self, key: &ServiceKey, dest: DestConfig) -> Result<DestId, TableError> {
        let i = self.index_of(key).ok_or(TableError::ServiceNotDefined)?;
        check_dest(key, &dest)?;
        let svc = &self.services[i];
        if svc
            .dests
            .iter()
            .any(|d| d.config.addr == dest.addr && d.config.port == dest.port)
        {
            return Err(TableError::DestExists);
        }
        if self.dest_count() >= self.limits.max_dests || self.next_dest_id == DestId::MAX {
            return Err(TableError::NoMemory);
        }
        let id = self.next_dest_id;
        self.next_dest_id += 1;
        self.services[i].dests.insert(0, Dest { id, config: dest });
        self.bump();
        Ok(id)
    }

    /// `ipvsadm -e`: change a destination's forwarding method, weight and thresholds.
    pub fn edit_dest(&mut self, key: &ServiceKey, dest: DestConfig) -> Result<(), TableError> {
        let i = self.index_of(key).ok_or(TableError::ServiceNotDefined)?;
        check_dest(key, &dest)?;
        let d = self.services[i]
            .dests
            .iter_mut()
            .find(|d| d.config.addr == dest.addr && d.config.port == dest.port)
            .ok_or(TableError::NoSuchDest)?;
        d.config = dest;
        self.bump();
        Ok(())
    }

    /// `ipvsadm -d`: delete a destination.
    pub fn delete_dest(
        &mut self,
        key: &ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), TableError> {
        let i = self.index_of(key).ok_or(TableError::ServiceNotDefined)?;
        let dests = &mut self.services[i].dests;
        let j = dests
            .iter()
            .position(|d| d.config.addr == addr && d.config.port == port)
            .ok_or(TableError::NoSuchDest)?;
        dests.remove(j);
        self.bump();
        Ok(())
    }

    /// `ipvsadm -Z [service]`: checks the service exists. Counters are not kept here (see
    /// `metrics`): the caller zeroes them when this succeeds. Does not change the generation.
    pub fn zero(&self, key: Option<&ServiceKey>) -> Result<(), TableError> {
        match key {
            Some(k) if self.index_of(k).is_none() => Err(TableError::NoSuchService),
            _ => Ok(()),
        }
    }

    /// `ipvsadm --set tcp tcpfin udp`: a 0 leaves that timeout unchanged.
    pub fn set_timeouts(&mut self, t: Timeouts) {
        let keep = |new: u32, old: u32| if new == 0 { old } else { new };
        self.timeouts = Timeouts {
            tcp: keep(t.tcp, self.timeouts.tcp),
            tcp_fin: keep(t.tcp_fin, self.timeouts.tcp_fin),
            udp: keep(t.udp, self.timeouts.udp),
        };
        self.bump();
    }

    /// Apply a table-changing command. Listing, saving and zeroing change nothing and
    /// return `Ok`; zeroing still reports a missing service.
    pub fn apply(&mut self, cmd: &Command) -> Result<(), TableError> {
        match cmd {
            Command::AddService(c) => self.add_service(c.clone()),
            Command::EditService(c) => self.edit_service(c.clone()),
            Command::DeleteService(k) => self.delete_service(k),
            Command::Clear => {
                self.clear();
                Ok(())
            }
            Command::AddDest { service, dest } => self.add_dest(service, dest.clone()).map(drop),
            Command::EditDest { service, dest } => self.edit_dest(service, dest.clone()),
            Command::DeleteDest {
                service,
                addr,
                port,
            } => self.delete_dest(service, *addr, *port),
            Command::Zero(k) => self.zero(k.as_ref()),
            Command::SetTimeouts(t) => {
                self.set_timeouts(*t);
                Ok(())
            }
            Command::List(_) | Command::Save => Ok(()),
        }
    }

    /// The table as `ipvsadm -S -n` prints it (sorted, numeric, no header).
    pub fn save(&self) -> String {
        crate::cli::format::render_save(&ListSnapshot::from_table(self))
    }
}

/// The kernel's checks on a service's settings (ip_vs_add_service / ip_vs_edit_service).
fn check_service(c: &ServiceConfig) -> Result<(), TableError> {
    if !sched::SCHEDULER_NAMES.contains(&c.scheduler.as_str()) {
        return Err(TableError::SchedulerNotFound);
    }
    let ipv6 = match c.key {
        ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
        ServiceKey::Fwmark { ipv6, mark } => {
            if mark == 0 {
                return Err(TableError::InvalidOperation);
            }
            ipv6
        }
    };
    let prefix_ok = if ipv6 {
        (1..=128).contains(&c.netmask_prefix)
    } else {
        c.netmask_prefix <= 32
    };
    if !prefix_ok {
        return Err(TableError::InvalidOperation);
    }
    Ok(())
}

/// The kernel's checks on a destination (ip_vs_add_dest / ip_vs_edit_dest / ip_vs_new_dest).
fn check_dest(key: &ServiceKey, d: &DestConfig) -> Result<(), TableError> {
    if d.weight > i32::MAX as u32 || d.l_threshold > d.u_threshold {
        return Err(TableError::OutOfRange);
    }
    let svc_v6 = match key {
        ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
        ServiceKey::Fwmark { ipv6, .. } => *ipv6,
    };
    if d.addr.is_ipv6() != svc_v6 && d.forward != ForwardMethod::Tunnel {
        return Err(TableError::InvalidOperation);
    }
    let unicast = match d.addr {
        IpAddr::V4(a) => !(a.octets()[0] == 0 || a.is_broadcast() || a.is_multicast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    };
    if !unicast {
        return Err(TableError::InvalidOperation);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Protocol, SchedFlags};

    fn tcp(addr: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: addr.parse().unwrap(),
            port,
        }
    }

    fn svc(key: ServiceKey, sched: &str) -> ServiceConfig {
        ServiceConfig {
            key,
            scheduler: sched.into(),
            flags: SchedFlags::default(),
            persistence: None,
            netmask_prefix: 32,
            one_packet: false,
        }
    }

    fn dest(addr: &str, port: u16) -> DestConfig {
        DestConfig {
            addr: addr.parse().unwrap(),
            port,
            forward: ForwardMethod::Masq,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        }
    }

    #[test]
    fn services_keep_insertion_order_and_dests_newest_first() {
        let mut t = IpvsTable::new();
        let a = tcp("10.0.0.2", 80);
        let b = tcp("10.0.0.1", 80);
        t.add_service(svc(a, "rr")).unwrap();
        t.add_service(svc(b, "wlc")).unwrap();
        let id1 = t.add_dest(&a, dest("192.0.2.1", 80)).unwrap();
        let id2 = t.add_dest(&a, dest("192.0.2.2", 80)).unwrap();
        assert_ne!(id1, id2);
        let keys: Vec<_> = t.services().iter().map(|s| s.config.key).collect();
        assert_eq!(keys, vec![a, b]);
        let ids: Vec<_> = t.service(&a).unwrap().dests.iter().map(|d| d.id).collect();
        assert_eq!(ids, vec![id2, id1]);
    }

    #[test]
    fn kernel_errors_and_no_change_on_error() {
        let mut t = IpvsTable::new();
        let a = tcp("10.0.0.1", 80);
        assert_eq!(t.edit_service(svc(a, "rr")), Err(TableError::NoSuchService));
        assert_eq!(t.delete_service(&a), Err(TableError::NoSuchService));
        assert_eq!(t.zero(Some(&a)), Err(TableError::NoSuchService));
        assert_eq!(
            t.add_dest(&a, dest("192.0.2.1", 80)),
            Err(TableError::ServiceNotDefined)
        );
        assert_eq!(
            t.add_service(svc(a, "nosuch")),
            Err(TableError::SchedulerNotFound)
        );
        assert_eq!(t.generation(), 0);
        t.add_service(svc(a, "rr")).unwrap();
        assert_eq!(t.generation(), 1);
        assert_eq!(t.add_service(svc(a, "wlc")), Err(TableError::ServiceExists));
        assert_eq!(
            t.edit_service(svc(a, "bogus")),
            Err(TableError::SchedulerNotFound)
        );
        t.add_dest(&a, dest("192.0.2.1", 80)).unwrap();
        assert_eq!(
            t.add_dest(&a, dest("192.0.2.1", 80)),
            Err(TableError::DestExists)
        );
        assert_eq!(
            t.edit_dest(&a, dest("192.0.2.9", 80)),
            Err(TableError::NoSuchDest)
        );
        assert_eq!(
            t.delete_dest(&a, "192.0.2.1".parse().unwrap(), 81),
            Err(TableError::NoSuchDest)
        );
        let mut bad = dest("192.0.2.3", 80);
        bad.l_threshold = 5;
        assert_eq!(t.add_dest(&a, bad), Err(TableError::OutOfRange));
        for addr in ["0.0.0.0", "224.0.0.1", "255.255.255.255"] {
            assert_eq!(
                t.add_dest(&a, dest(addr, 80)),
                Err(TableError::InvalidOperation)
            );
        }
        assert_eq!(
            t.add_dest(&a, dest("2001:db8::1", 80)),
            Err(TableError::InvalidOperation)
        );
        assert_eq!(t.generation(), 2);
        assert_eq!(t.service(&a).unwrap().config.scheduler, "rr");
        assert_eq!(t.service(&a).unwrap().dests.len(), 1);
    }

    #[test]
    fn ids_are_not_reused_and_edit_keeps_id() {
        let mut t = IpvsTable::new();
        let a = tcp("10.0.0.1", 80);
        t.add_service(svc(a, "rr")).unwrap();
        let id = t.add_dest(&a, dest("192.0.2.1", 80)).unwrap();
        let mut d = dest("192.0.2.1", 80);
        d.weight = 7;
        t.edit_dest(&a, d).unwrap();
        assert_eq!(t.service(&a).unwrap().dests[0].id, id);
        assert_eq!(t.service(&a).unwrap().dests[0].config.weight, 7);
        t.delete_dest(&a, "192.0.2.1".parse().unwrap(), 80).unwrap();
        let id2 = t.add_dest(&a, dest("192.0.2.1", 80)).unwrap();
        assert!(id2 > id);
        t.clear();
        t.add_service(svc(a, "rr")).unwrap();
        assert!(t.add_dest(&a, dest("192.0.2.1", 80)).unwrap() > id2);
    }

    #[test]
    fn timeouts_zero_means_unchanged() {
        let mut t = IpvsTable::new();
        assert_eq!(t.timeouts(), Timeouts::default());
        t.set_timeouts(Timeouts {
            tcp: 0,
            tcp_fin: 30,
            udp: 0,
        });
        assert_eq!(
            t.timeouts(),
            Timeouts {
                tcp: 900,
                tcp_fin: 30,
                udp: 300
            }
        );
    }

    #[test]
    fn limits_give_memory_allocation_problem() {
        let mut t = IpvsTable::with_limits(TableLimits {
            max_services: 1,
            max_dests: 1,
        });
        let a = tcp("10.0.0.1", 80);
        t.add_service(svc(a, "rr")).unwrap();
        assert_eq!(
            t.add_service(svc(tcp("10.0.0.2", 80), "rr")),
            Err(TableError::NoMemory)
        );
        t.add_dest(&a, dest("192.0.2.1", 80)).unwrap();
        assert_eq!(
            t.add_dest(&a, dest("192.0.2.2", 80)),
            Err(TableError::NoMemory)
        );
        assert_eq!(
            TableError::NoMemory.to_string(),
            "Memory allocation problem"
        );
    }
}
