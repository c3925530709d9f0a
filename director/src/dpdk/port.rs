//! Ethernet ports (ethdev): creation, configuration, queues, statistics.
//!
//! A [`Port`] owns one ethdev port. Each rx/tx queue is handed out to one owner at a time, as
//! an [`RxQueue`]/[`TxQueue`] handle that a worker thread owns and polls. The port is stopped
//! and closed (and a virtual device we created removed) when the `Port` and every queue
//! handle are gone, so a queue can never poll a closed or reused port id.
//!
//! Closing a started port first drains its rx queues (bounded), so mbufs waiting in a ring
//! device return to their pool; a port stopped explicitly is closed without draining.

use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use dpdk_sys as sys;

use super::{c_string, check, eal, DpdkError, MbufBurst, MbufRing, Mempool, RingConsumer};

/// Options for [`Port::configure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortConf {
    /// Spread received packets over the rx queues by an RSS hash of IP addresses and TCP/UDP
    /// ports, where the device supports it (see [`ConfigOutcome::rss_enabled`]).
    pub rss: bool,
    /// MTU to set; `None` keeps the device default (1500).
    pub mtu: Option<u16>,
}

/// What [`Port::configure`] could set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigOutcome {
    /// Whether RSS is on (requested and supported for at least one IP/TCP/UDP hash type).
    pub rss_enabled: bool,
    /// The RSS hash types in use (`RTE_ETH_RSS_*` bits), 0 when RSS is off.
    pub rss_hf: u64,
    /// Most rx queues the device supports.
    pub max_rx_queues: u16,
    /// Most tx queues the device supports.
    pub max_tx_queues: u16,
}

/// Basic port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets dropped by the device because the rx queues were full.
    pub imissed: u64,
    /// Erroneous packets received.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// Receive mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// One slot per possible port id.
type Owned = [bool; sys::RTE_MAX_ETHPORTS as usize];

/// Port ids owned by a live `Port`, so no id gets two owners. The lock is held while a port
/// is created or closed: an id freed by a close cannot go to a new port before the close has
/// released it here.
static OWNED: Mutex<Owned> = Mutex::new([false; sys::RTE_MAX_ETHPORTS as usize]);

fn owned_ports() -> std::sync::MutexGuard<'static, Owned> {
    OWNED.lock().unwrap_or_else(|p| p.into_inner())
}

fn claim(owned: &mut Owned, id: u16, name: &str) -> Result<(), DpdkError> {
    let slot = owned
        .get_mut(id as usize)
        .ok_or_else(|| DpdkError::InvalidArgument(format!("port id {id} out of range")))?;
    if *slot {
        return Err(DpdkError::Busy(format!(
            "port {name} (id {id}) is already owned"
        )));
    }
    *slot = true;
    Ok(())
}

/// State shared by the `Port` and its queue handles; closing happens when it drops.
struct PortShared {
    id: u16,
    name: String,
    /// A virtual device this process created: removed (`rte_dev_remove`) after closing.
    remove_device: bool,
    state: Mutex<SharedState>,
    /// Which queues have a live handle (set when handed out, cleared when it drops).
    rx_taken: Vec<AtomicBool>,
    tx_taken: Vec<AtomicBool>,
    /// Ring-backed port: its rx rings' consumer role and its tx rings, kept alive.
    _rx_rings: Vec<RingConsumer>,
    _tx_rings: Vec<Arc<MbufRing>>,
}

#[derive(Default)]
struct SharedState {
    started: bool,
    /// Rx queues set up (drained before stopping).
    rx_ready: Vec<bool>,
    /// Pools the rx queues take buffers from: must outlive the port.
    pools: Vec<Mempool>,
}

/// An ethdev port. See the module documentation for its lifetime.
pub struct Port {
    shared: Arc<PortShared>,
    n_rxq: u16,
    n_txq: u16,
    tx_ready: Vec<bool>,
}

impl Port {
    /// Creates a virtual device from DPDK devargs (e.g. `net_ring_a`, `net_null0`,
    /// `net_af_packet0,iface=veth1`) and takes its port. The device is removed again when the
    /// port is closed.
    pub fn probe_vdev(devargs: &str) -> Result<Port, DpdkError> {
        eal::ensure()?;
        let name = devargs.split(',').next().unwrap_or("").trim();
        if name.is_empty() {
            return Err(DpdkError::InvalidArgument(format!(
                "devargs {devargs:?} has no device name"
            )));
        }
        let cargs = c_string("devargs", devargs)?;
        let mut owned = owned_ports();
        // SAFETY: cargs is a valid C string for the call; the EAL is up (probe is locked
        // internally).
        let ret = unsafe { sys::rte_dev_probe(cargs.as_ptr()) };
        check(|| format!("rte_dev_probe({devargs})"), ret)?;
        let id = port_id_by_name(name)?;
        Port::own(
            &mut owned,
            id,
            name.to_owned(),
            true,
            Vec::new(),
            Vec::new(),
        )
    }

    /// Takes an existing port by name (e.g. one created by an EAL `--vdev=` argument).
    pub fn by_name(name: &str) -> Result<Port, DpdkError> {
        eal::ensure()?;
        let mut owned = owned_ports();
        let id = port_id_by_name(name)?;
        Port::own(
            &mut owned,
            id,
            name.to_owned(),
            false,
            Vec::new(),
            Vec::new(),
        )
    }

    /// Creates a port over mbuf rings (`rte_eth_from_rings`): rx queue `i` dequeues from
    /// `rx_rings[i]` (the port becomes that ring's consumer), tx queue `i` enqueues into
    /// `tx_rings[i]`. The port is named `net_ring_<name>`. For tests and benches: another
    /// port's tx ring can be this port's rx ring, or a test can read a tx ring directly.
    pub fn from_rings(
        name: &str,
        rx_rings: &[Arc<MbufRing>],
        tx_rings: &[Arc<MbufRing>],
    ) -> Result<Port, DpdkError> {
        eal::ensure()?;
        if rx_rings.is_empty() || tx_rings.is_empty() {
            return Err(DpdkError::InvalidArgument(format!(
                "ring port {name} needs at least one rx and one tx ring"
            )));
        }
        let cname = c_string("port name", name)?;
        let consumers = rx_rings
            .iter()
            .map(|r| r.consumer())
            .collect::<Result<Vec<_>, _>>()?;
        let rx: Vec<*mut sys::rte_ring> = rx_rings.iter().map(|r| r.as_ptr()).collect();
        let tx: Vec<*mut sys::rte_ring> = tx_rings.iter().map(|r| r.as_ptr()).collect();
        let mut owned = owned_ports();
        // SAFETY: cname and both pointer arrays are valid for the call; the rings stay alive
        // (and rx rings unconsumed by others) as long as the port, which keeps their handles.
        let ret = unsafe {
            sys::rte_eth_from_rings(
                cname.as_ptr(),
                rx.as_ptr(),
                rx.len() as u32,
                tx.as_ptr(),
                tx.len() as u32,
                sys::rte_socket_id(),
            )
        };
        if ret < 0 {
            return Err(DpdkError::from_rte_errno(format!(
                "rte_eth_from_rings({name})"
            )));
        }
        Port::own(
            &mut owned,
            ret as u16,
            format!("net_ring_{name}"),
            true,
            consumers,
            tx_rings.to_vec(),
        )
    }

    fn own(
        owned: &mut Owned,
        id: u16,
        name: String,
        remove_device: bool,
        rx_rings: Vec<RingConsumer>,
        tx_rings: Vec<Arc<MbufRing>>,
    ) -> Result<Port, DpdkError> {
        claim(owned, id, &name)?;
        Ok(Port {
            shared: Arc::new(PortShared {
                id,
                name,
                remove_device,
                state: Mutex::new(SharedState::default()),
                rx_taken: Vec::new(),
                tx_taken: Vec::new(),
                _rx_rings: rx_rings,
                _tx_rings: tx_rings,
            }),
            n_rxq: 0,
            n_txq: 0,
            tx_ready: Vec::new(),
        })
    }

    /// The DPDK port id.
    pub fn id(&self) -> u16 {
        self.shared.id
    }

    /// The port (device) name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Number of rx queues configured.
    pub fn n_rx_queues(&self) -> u16 {
        self.n_rxq
    }

    /// Number of tx queues configured.
    pub fn n_tx_queues(&self) -> u16 {
        self.n_txq
    }

    fn dev_info(&self) -> Result<sys::rte_eth_dev_info, DpdkError> {
        // SAFETY: rte_eth_dev_info is a plain C struct for which all-zero bytes are valid.
        let mut info: sys::rte_eth_dev_info = unsafe { std::mem::zeroed() };
        // SAFETY: info is a valid out-pointer; the port id is owned by self.
        let ret = unsafe { sys::rte_eth_dev_info_get(self.id(), &mut info) };
        check(|| format!("rte_eth_dev_info_get({})", self.name()), ret)?;
        Ok(info)
    }

    /// The driver's name (e.g. `net_ring`).
    pub fn driver_name(&self) -> Result<String, DpdkError> {
        let info = self.dev_info()?;
        if info.driver_name.is_null() {
            return Ok(String::new());
        }
        // SAFETY: driver_name points to the driver's static NUL-terminated name.
        Ok(unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned())
    }

    fn no_handles(&self, action: &str) -> Result<(), DpdkError> {
        let handles = Arc::strong_count(&self.shared) - 1;
        if handles > 0 {
            return Err(DpdkError::Busy(format!(
                "cannot {action} port {}: {handles} queue handle(s) still alive",
                self.name()
            )));
        }
        Ok(())
    }

    /// Configures `n_rxq` rx and `n_txq` tx queues. Only while no queue handle is alive and
    /// the port is stopped. Queues must then be set up with [`Port::setup_rx_queue`] /
    /// [`Port::setup_tx_queue`] before [`Port::start`].
    pub fn configure(
        &mut self,
        n_rxq: u16,
        n_txq: u16,
        conf: &PortConf,
    ) -> Result<ConfigOutcome, DpdkError> {
        self.no_handles("configure")?;
        if self.lock_state().started {
            return Err(DpdkError::Busy(format!("port {} is started", self.name())));
        }
        let info = self.dev_info()?;
        if n_rxq == 0 || n_txq == 0 || n_rxq > info.max_rx_queues || n_txq > info.max_tx_queues {
            return Err(DpdkError::InvalidArgument(format!(
                "port {}: {n_rxq} rx / {n_txq} tx queues requested, device supports 1..={} / 1..={}",
                self.name(),
                info.max_rx_queues,
                info.max_tx_queues
            )));
        }
        // SAFETY: rte_eth_conf is a plain C struct; all-zero is DPDK's "defaults" value.
        let mut eth_conf: sys::rte_eth_conf = unsafe { std::mem::zeroed() };
        let mut rss_hf = 0;
        if conf.rss {
            // SAFETY: returns a constant.
            rss_hf = unsafe { sys::shim_eth_rss_ip_tcp_udp() } & info.flow_type_rss_offloads;
            if rss_hf != 0 {
                eth_conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
                eth_conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            }
        }
        if let Some(mtu) = conf.mtu {
            if mtu < info.min_mtu || mtu > info.max_mtu {
                return Err(DpdkError::InvalidArgument(format!(
                    "port {}: MTU {mtu} outside {}..={}",
                    self.name(),
                    info.min_mtu,
                    info.max_mtu
                )));
            }
            eth_conf.rxmode.mtu = mtu as u32;
        }
        // SAFETY: eth_conf is a valid, fully initialised configuration; the port is stopped
        // and no queue handle exists.
        let ret = unsafe { sys::rte_eth_dev_configure(self.id(), n_rxq, n_txq, &eth_conf) };
        check(|| format!("rte_eth_dev_configure({})", self.name()), ret)?;
        self.n_rxq = n_rxq;
        self.n_txq = n_txq;
        self.tx_ready = vec![false; n_txq as usize];
        let flags = |n: u16| (0..n).map(|_| AtomicBool::new(false)).collect::<Vec<_>>();
        let name = self.name().to_owned();
        let shared = Arc::get_mut(&mut self.shared)
            .ok_or_else(|| DpdkError::Busy(format!("port {name}: queue handles alive")))?;
        shared.rx_taken = flags(n_rxq);
        shared.tx_taken = flags(n_txq);
        shared
            .state
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .rx_ready = vec![false; n_rxq as usize];
        Ok(ConfigOutcome {
            rss_enabled: rss_hf != 0,
            rss_hf,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
        })
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, SharedState> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_queue(&self, kind: &str, q: u16, n: u16) -> Result<(), DpdkError> {
        if q >= n {
            return Err(DpdkError::InvalidArgument(format!(
                "port {}: {kind} queue {q} not configured ({n} configured)",
                self.name()
            )));
        }
        Ok(())
    }

    fn socket(&self) -> u32 {
        // SAFETY: pure lookup by port id.
        let s = unsafe { sys::rte_eth_dev_socket_id(self.id()) };
        // SOCKET_ID_ANY (-1) is passed through as DPDK expects it, as an unsigned value.
        s as u32
    }

    /// Sets up rx queue `q` with `nb_desc` descriptors (adjusted to the device limits),
    /// receiving into buffers from `pool` (kept alive as long as the port).
    pub fn setup_rx_queue(
        &mut self,
        q: u16,
        nb_desc: u16,
        pool: &Mempool,
    ) -> Result<(), DpdkError> {
        self.check_queue("rx", q, self.n_rxq)?;
        if self.shared.rx_taken[q as usize].load(Ordering::Acquire) {
            return Err(DpdkError::Busy(format!(
                "port {}: rx queue {q} is handed out",
                self.name()
            )));
        }
        let mut nb = nb_desc;
        // SAFETY: nb is a valid in/out pointer; NULL leaves the tx count alone.
        let ret = unsafe {
            sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id(), &mut nb, std::ptr::null_mut())
        };
        check(
            || format!("rte_eth_dev_adjust_nb_rx_tx_desc({})", self.name()),
            ret,
        )?;
        // Keep the pool referenced before the device can use it.
        let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        state.pools.push(pool.clone());
        // SAFETY: the port is configured with q < n_rxq, the queue is not handed out, and the
        // pool outlives the port (held in the shared state); NULL rx_conf means defaults.
        let ret = unsafe {
            sys::rte_eth_rx_queue_setup(
                self.shared.id,
                q,
                nb,
                self.socket(),
                std::ptr::null(),
                pool.as_ptr(),
            )
        };
        check(
            || format!("rte_eth_rx_queue_setup({} q{q})", self.shared.name),
            ret,
        )?;
        state.rx_ready[q as usize] = true;
        Ok(())
    }

    /// Sets up tx queue `q` with `nb_desc` descriptors (adjusted to the device limits).
    pub fn setup_tx_queue(&mut self, q: u16, nb_desc: u16) -> Result<(), DpdkError> {
        self.check_queue("tx", q, self.n_txq)?;
        if self.shared.tx_taken[q as usize].load(Ordering::Acquire) {
            return Err(DpdkError::Busy(format!(
                "port {}: tx queue {q} is handed out",
                self.name()
            )));
        }
        let mut nb = nb_desc;
        // SAFETY: nb is a valid in/out pointer; NULL leaves the rx count alone.
        let ret = unsafe {
            sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id(), std::ptr::null_mut(), &mut nb)
        };
        check(
            || format!("rte_eth_dev_adjust_nb_rx_tx_desc({})", self.name()),
            ret,
        )?;
        // SAFETY: the port is configured with q < n_txq and the queue is not handed out;
        // NULL tx_conf means defaults.
        let ret = unsafe {
            sys::rte_eth_tx_queue_setup(self.id(), q, nb, self.socket(), std::ptr::null())
        };
        check(
            || format!("rte_eth_tx_queue_setup({} q{q})", self.name()),
            ret,
        )?;
        self.tx_ready[q as usize] = true;
        Ok(())
    }

    /// Starts the port (all configured queues must be set up).
    pub fn start(&mut self) -> Result<(), DpdkError> {
        // SAFETY: the port id is owned by self; DPDK validates the configuration.
        let ret = unsafe { sys::rte_eth_dev_start(self.id()) };
        check(|| format!("rte_eth_dev_start({})", self.name()), ret)?;
        self.lock_state().started = true;
        Ok(())
    }

    /// Stops the port. Refused (`Busy`) while queue handles are alive: the workers polling
    /// them must stop and drop them first.
    pub fn stop(&mut self) -> Result<(), DpdkError> {
        self.no_handles("stop")?;
        // SAFETY: no queue handle exists, so no thread is polling the port.
        let ret = unsafe { sys::rte_eth_dev_stop(self.id()) };
        check(|| format!("rte_eth_dev_stop({})", self.name()), ret)?;
        self.lock_state().started = false;
        Ok(())
    }

    /// Stops and closes the port now (and removes the virtual device it was created with).
    /// Refused (`Busy`) while queue handles are alive; the port is then closed when the last
    /// handle is dropped.
    pub fn close(self) -> Result<(), DpdkError> {
        self.no_handles("close")
        // Dropping self drops the last Arc, which closes the port (PortShared::drop).
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6], DpdkError> {
        let mut addr = sys::rte_ether_addr { addr_bytes: [0; 6] };
        // SAFETY: addr is a valid out-pointer; the port id is owned by self.
        let ret = unsafe { sys::rte_eth_macaddr_get(self.id(), &mut addr) };
        check(|| format!("rte_eth_macaddr_get({})", self.name()), ret)?;
        Ok(addr.addr_bytes)
    }

    /// Turns promiscuous mode on or off (fails with `ENOTSUP` where the driver has none).
    pub fn set_promiscuous(&mut self, on: bool) -> Result<(), DpdkError> {
        // SAFETY: the port id is owned by self; control-path call.
        let ret = unsafe {
            if on {
                sys::rte_eth_promiscuous_enable(self.id())
            } else {
                sys::rte_eth_promiscuous_disable(self.id())
            }
        };
        let call = if on { "enable" } else { "disable" };
        check(
            || format!("rte_eth_promiscuous_{call}({})", self.name()),
            ret,
        )?;
        Ok(())
    }

    /// Whether promiscuous mode is on.
    pub fn promiscuous(&self) -> bool {
        // SAFETY: pure query by port id.
        unsafe { sys::rte_eth_promiscuous_get(self.id()) == 1 }
    }

    /// Whether the link is up right now (no waiting).
    pub fn link_up(&self) -> bool {
        // SAFETY: rte_eth_link is a plain C struct; all-zero is valid.
        let mut link: sys::rte_eth_link = unsafe { std::mem::zeroed() };
        // SAFETY: link is a valid out-pointer; the port id is owned by self.
        let ret = unsafe { sys::rte_eth_link_get_nowait(self.id(), &mut link) };
        ret == 0 && link.link_status() as u32 == sys::RTE_ETH_LINK_UP
    }

    /// Basic counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        // SAFETY: rte_eth_stats is a plain C struct; all-zero is valid.
        let mut s: sys::rte_eth_stats = unsafe { std::mem::zeroed() };
        // SAFETY: s is a valid out-pointer; the port id is owned by self.
        let ret = unsafe { sys::rte_eth_stats_get(self.id(), &mut s) };
        check(|| format!("rte_eth_stats_get({})", self.name()), ret)?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Resets the basic counters.
    pub fn reset_stats(&mut self) -> Result<(), DpdkError> {
        // SAFETY: the port id is owned by self.
        let ret = unsafe { sys::rte_eth_stats_reset(self.id()) };
        check(|| format!("rte_eth_stats_reset({})", self.name()), ret)?;
        Ok(())
    }

    /// Extended driver counters, by name (e.g. `rx_good_packets`).
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, DpdkError> {
        let what = || format!("rte_eth_xstats_get({})", self.name());
        // SAFETY: a NULL array with size 0 asks for the number of counters.
        let n = unsafe { sys::rte_eth_xstats_get_names(self.id(), std::ptr::null_mut(), 0) };
        let n = check(what, n)? as usize;
        let mut names = vec![sys::rte_eth_xstat_name { name: [0; 64] }; n];
        let mut values = vec![sys::rte_eth_xstat { id: 0, value: 0 }; n];
        // SAFETY: both arrays hold n entries, the size passed.
        let got_names =
            unsafe { sys::rte_eth_xstats_get_names(self.id(), names.as_mut_ptr(), n as u32) };
        // SAFETY: as above.
        let got_values =
            unsafe { sys::rte_eth_xstats_get(self.id(), values.as_mut_ptr(), n as u32) };
        let got = check(what, got_names)?.min(check(what, got_values)?) as usize;
        Ok(values[..got.min(n)]
            .iter()
            .filter_map(|v| {
                let name = names.get(v.id as usize)?;
                // SAFETY: DPDK writes NUL-terminated names into the 64-byte arrays.
                let name = unsafe { CStr::from_ptr(name.name.as_ptr() as *const c_char) };
                Some((name.to_string_lossy().into_owned(), v.value))
            })
            .collect())
    }

    /// Takes rx queue `q` (it must be set up). One handle per queue at a time: `Busy` while
    /// another is alive. The handle keeps the port open.
    pub fn rx_queue(&mut self, q: u16) -> Result<RxQueue, DpdkError> {
        self.check_queue("rx", q, self.n_rxq)?;
        let ready = self.lock_state().rx_ready[q as usize];
        if !ready {
            return Err(DpdkError::InvalidArgument(format!(
                "port {}: rx queue {q} is not set up",
                self.name()
            )));
        }
        if self.shared.rx_taken[q as usize].swap(true, Ordering::AcqRel) {
            return Err(DpdkError::Busy(format!(
                "port {}: rx queue {q} already taken",
                self.name()
            )));
        }
        Ok(RxQueue {
            port: self.id(),
            queue: q,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Takes tx queue `q` (it must be set up). One handle per queue at a time: `Busy` while
    /// another is alive. The handle keeps the port open.
    pub fn tx_queue(&mut self, q: u16) -> Result<TxQueue, DpdkError> {
        self.check_queue("tx", q, self.n_txq)?;
        if !self.tx_ready[q as usize] {
            return Err(DpdkError::InvalidArgument(format!(
                "port {}: tx queue {q} is not set up",
                self.name()
            )));
        }
        if self.shared.tx_taken[q as usize].swap(true, Ordering::AcqRel) {
            return Err(DpdkError::Busy(format!(
                "port {}: tx queue {q} already taken",
                self.name()
            )));
        }
        Ok(TxQueue {
            port: self.id(),
            queue: q,
            shared: Arc::clone(&self.shared),
        })
    }
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("n_rxq", &self.n_rxq)
            .field("n_txq", &self.n_txq)
            .finish()
    }
}

fn port_id_by_name(name: &str) -> Result<u16, DpdkError> {
    let cname = c_string("port name", name)?;
    let mut id = 0u16;
    // SAFETY: cname is a valid C string and id a valid out-pointer.
    let ret = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
    check(|| format!("rte_eth_dev_get_port_by_name({name})"), ret)?;
    Ok(id)
}

/// Bursts drained from each rx queue before stopping (bounded: some devices, like net_null,
/// never run dry).
const DRAIN_BURSTS: usize = 64;

impl Drop for PortShared {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        let id = self.id;
        if state.started {
            // Free what still waits in the rx queues (e.g. mbufs in a ring device), so the
            // pools can be freed too.
            let mut burst = MbufBurst::new();
            for (q, _) in state.rx_ready.iter().enumerate().filter(|(_, &r)| r) {
                for _ in 0..DRAIN_BURSTS {
                    // SAFETY: no queue handle exists any more (this is the last reference),
                    // so this thread is the only one polling; q was set up.
                    let n = unsafe {
                        sys::shim_eth_rx_burst(
                            id,
                            q as u16,
                            burst.spare_ptr(),
                            burst.spare() as u16,
                        )
                    };
                    // SAFETY: rx_burst wrote n owned mbufs into the spare slots.
                    unsafe { burst.commit(n as usize) };
                    burst.clear();
                    if n == 0 {
                        break;
                    }
                }
            }
            // SAFETY: nobody polls the port any more.
            unsafe { sys::rte_eth_dev_stop(id) };
        }
        let mut owned = owned_ports();
        let mut device: *mut sys::rte_device = std::ptr::null_mut();
        if self.remove_device {
            // SAFETY: rte_eth_dev_info is a plain C struct; all-zero is valid.
            let mut info: sys::rte_eth_dev_info = unsafe { std::mem::zeroed() };
            // SAFETY: info is a valid out-pointer for the still open port.
            if unsafe { sys::rte_eth_dev_info_get(id, &mut info) } == 0 {
                device = info.device;
            }
        }
        // SAFETY: the port is stopped and nothing refers to it any more.
        unsafe { sys::rte_eth_dev_close(id) };
        if !device.is_null() {
            // SAFETY: device is the virtual device this process created for the port, still
            // registered on its bus after the ethdev close; removing it frees its name.
            unsafe { sys::rte_dev_remove(device) };
        }
        owned[id as usize] = false;
        // Fields drop after this: pools and rings outlive the closed port.
    }
}

/// An rx queue of a port, owned by one worker (`Send`, not `Clone`). Dropping it gives the
/// queue back to the port.
pub struct RxQueue {
    port: u16,
    queue: u16,
    shared: Arc<PortShared>,
}

impl RxQueue {
    /// Receives up to `out.spare()` packets, appended to `out`; returns how many. Returns 0
    /// while the port is not started (DPDK then logs "not ready port" once per queue).
    #[inline]
    pub fn rx_burst(&mut self, out: &mut MbufBurst) -> usize {
        let want = out.spare();
        if want == 0 {
            return 0;
        }
        // SAFETY: this handle is the queue's only user (&mut self, handed out once); the port
        // stays open while the handle lives; the spare slots take up to `want` mbufs, whose
        // ownership commit() gives to the burst.
        unsafe {
            let n = sys::shim_eth_rx_burst(self.port, self.queue, out.spare_ptr(), want as u16)
                as usize;
            out.commit(n);
            n
        }
    }

    /// The port id.
    pub fn port_id(&self) -> u16 {
        self.port
    }

    /// The queue index.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }
}

/// A tx queue of a port, owned by one worker (`Send`, not `Clone`). Dropping it gives the
/// queue back to the port.
pub struct TxQueue {
    port: u16,
    queue: u16,
    shared: Arc<PortShared>,
}

impl TxQueue {
    /// Sends the packets of `pkts` from the front; returns how many the device accepted.
    /// Those not accepted (queue full) stay in `pkts`, in order: retry them later or drop them
    /// with [`MbufBurst::clear`].
    #[inline]
    pub fn tx_burst(&mut self, pkts: &mut MbufBurst) -> usize {
        let n = pkts.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: this handle is the queue's only user; the first n pointers are owned mbufs,
        // of which the device takes the first `sent`, which consume_front forgets.
        unsafe {
            let sent =
                sys::shim_eth_tx_burst(self.port, self.queue, pkts.as_mut_ptr(), n as u16) as usize;
            pkts.consume_front(sent);
            sent
        }
    }

    /// The port id.
    pub fn port_id(&self) -> u16 {
        self.port
    }

    /// The queue index.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        self.shared.rx_taken[self.queue as usize].store(false, Ordering::Release);
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        self.shared.tx_taken[self.queue as usize].store(false, Ordering::Release);
    }
}

impl std::fmt::Debug for RxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RxQueue(port {}, queue {})", self.port, self.queue)
    }
}

impl std::fmt::Debug for TxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TxQueue(port {}, queue {})", self.port, self.queue)
    }
}
