//! ipvsadm 1.31's command line: the same options, defaults, checks, messages and exit codes.
//!
//! The order of checks follows ipvsadm's `parse_options` / `process_options`: the first
//! option must be a command (else "Try `ipvsadm -h' ..." and exit 255); any later command
//! letter is an "invalid option" (so 1.31 never reaches its own "multiple commands
//! specified"); option errors are reported as they are met; then `--set` values, stray
//! arguments, `-b` flags, the command/option table, and the per-command checks.
//! Kernel-side checks (existing services, scheduler names, ...) are the table's.
//!
//! Deviations, each because our table cannot represent the setting: SCTP services, the sync
//! daemon, persistence engines, GUE/GRE tunnels and non-contiguous IPv4 persistence masks
//! are rejected with a clear message.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use super::libc_compat::{inet_aton, number_in, resolve_host_v4, service_port, strtol_full};
use super::options::{
    generic_opt_check, tunnel_opt_check, Cmd, Opt, TunType, C_CONNECTION, C_DAEMON, C_EXACT,
    C_FORWARD, C_LTHRESHOLD, C_MCAST, C_MCAST_GROUP, C_MCAST_PORT, C_MCAST_TTL, C_NETMASK,
    C_NOSORT, C_NUMERIC, C_ONEPACKET, C_PE, C_PERSISTENT, C_PERSISTENTCONN, C_RATE, C_SCHEDULER,
    C_SCHED_FLAGS, C_SERVER, C_SERVICE, C_STATS, C_SYNCID, C_SYNC_MAXLEN, C_THRESHOLDS, C_TIMEOUT,
    C_TUN_CSUM, C_TUN_INFO, C_TUN_NOCSUM, C_TUN_PORT, C_TUN_REMCSUM, C_TUN_TYPE, C_UTHRESHOLD,
    C_WEIGHT, OPTIONS, OPT_NAMES,
};
use super::popt::{Popt, PoptError};
use crate::control::table::Timeouts;
use crate::model::{DestConfig, ForwardMethod, Protocol, SchedFlags, ServiceConfig, ServiceKey};

/// ipvsadm's default scheduler.
pub const DEFAULT_SCHEDULER: &str = "wlc";
/// ipvsadm's default persistence timeout (`-p` without a value), in seconds.
pub const DEFAULT_PERSISTENCE: u32 = 360;
/// Largest timeout ipvsadm accepts (31 days).
pub const MAX_TIMEOUT: i64 = 86400 * 31;

/// What a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListWhat {
    /// All services (`-L`).
    #[default]
    All,
    /// One service (`-L -t addr:port`): no version header.
    Service(ServiceKey),
    /// Connection entries (`-L -c`).
    Connections,
    /// Timeouts (`-L --timeout`).
    Timeout,
    /// Sync daemon state (`-L --daemon`): director runs none, so it prints nothing.
    Daemon,
}

/// Listing format options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListFormat {
    /// `-n`. Addresses are always printed numerically (director has no resolver), so
    /// this only exists to be accepted.
    pub numeric: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--nosort`.
    pub nosort: bool,
    /// `--exact` / `-X`.
    pub exact: bool,
    /// `--tun-info`.
    pub tun_info: bool,
}

/// A listing request (`-L`/`-l`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListRequest {
    /// What to list.
    pub what: ListWhat,
    /// How.
    pub format: ListFormat,
}

/// A command for the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `-A`.
    AddService(ServiceConfig),
    /// `-E`.
    EditService(ServiceConfig),
    /// `-D`.
    DeleteService(ServiceKey),
    /// `-C`.
    Clear,
    /// `-a`.
    AddDest {
        /// The service.
        service: ServiceKey,
        /// The destination.
        dest: DestConfig,
    },
    /// `-e`.
    EditDest {
        /// The service.
        service: ServiceKey,
        /// The destination (identified by address and port).
        dest: DestConfig,
    },
    /// `-d`.
    DeleteDest {
        /// The service.
        service: ServiceKey,
        /// Destination address.
        addr: IpAddr,
        /// Destination port.
        port: u16,
    },
    /// `-Z [service]`.
    Zero(Option<ServiceKey>),
    /// `--set tcp tcpfin udp` (0 = unchanged).
    SetTimeouts(Timeouts),
    /// `-L`/`-l`.
    List(ListRequest),
    /// `-S`.
    Save,
}

/// The result of parsing one command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Send this command to the daemon.
    Run(Command),
    /// `-R`: read commands from stdin.
    Restore,
    /// `-h`: print the usage text to stdout, exit 0.
    Help,
    /// `-v`: print the version line to stdout, exit 0.
    Version,
}

/// A rejected command line: the message ipvsadm prints on stderr (without the final newline)
/// and its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Message.
    pub message: String,
    /// Exit status (2 for ipvsadm's `fail()`, 255 for "Try ..." and popt errors).
    pub exit_code: i32,
    /// Whether ipvsadm exits at once even inside `-R` (true for `fail()` and "Try ...";
    /// false for popt errors, after which `-R` goes on with the next line).
    pub aborts_restore: bool,
}

impl ParseError {
    fn fail(message: impl Into<String>) -> Self {
        ParseError {
            message: message.into(),
            exit_code: 2,
            aborts_restore: true,
        }
    }
    fn try_help(program: &str) -> Self {
        ParseError {
            message: format!("Try `{program} -h' or '{program} --help' for more information."),
            exit_code: 255,
            aborts_restore: true,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// Service protocol as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    None,
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    fn service_db_name(self) -> Option<&'static str> {
        match self {
            Proto::Tcp => Some("tcp"),
            Proto::Udp => Some("udp"),
            Proto::Sctp => Some("sctp"),
            Proto::None => None,
        }
    }
}

/// ipvsadm's `ipvs_command_entry` while options are read.
struct State {
    cmd: Cmd,
    options: u64,
    // service
    proto: Proto,
    svc_v6: Option<bool>,
    svc_addr: Option<IpAddr>,
    svc_port: u16,
    fwmark: u32,
    sched_name: String,
    persistent: Option<u32>,
    /// IPv4: the mask; IPv6: the prefix length (one field, as in ipvsadm).
    netmask: u32,
    one_packet: bool,
    pe_name: Option<String>,
    sched_flags_arg: Option<String>,
    // destination
    dest_v6: bool,
    dest_addr: Option<IpAddr>,
    dest_port: u16,
    forward: ForwardMethod,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    tun_type: TunType,
    // listing
    format: ListFormat,
    timeouts: Timeouts,
}

impl State {
    fn new(cmd: Cmd) -> Self {
        State {
            cmd,
            options: 0,
            proto: Proto::None,
            svc_v6: None,
            svc_addr: None,
            svc_port: 0,
            fwmark: 0,
            sched_name: String::new(),
            persistent: None,
            netmask: 0xffff_ffff,
            one_packet: false,
            pe_name: None,
            sched_flags_arg: None,
            dest_v6: false,
            dest_addr: None,
            dest_port: 0,
            forward: ForwardMethod::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: TunType::Ipip,
            format: ListFormat::default(),
            timeouts: Timeouts {
                tcp: 0,
                tcp_fin: 0,
                udp: 0,
            },
        }
    }

    fn has(&self, c: usize) -> bool {
        self.options & (1 << c) != 0
    }

    fn set_option(&mut self, c: usize) -> Result<(), ParseError> {
        if self.has(c) {
            return Err(ParseError::fail(format!(
                "multiple '{}' options specified",
                OPT_NAMES[c]
            )));
        }
        self.options |= 1 << c;
        Ok(())
    }
}

/// Parse one ipvsadm command line (`argv[0]` is the program name, used in messages).
/// `reading_stdin` is true for lines read by `-R` (a nested `-R` is refused).
pub fn parse(argv: &[String], reading_stdin: bool) -> Result<Invocation, ParseError> {
    let program = argv.first().map(String::as_str).unwrap_or("ipvsadm");
    if argv.len() <= 1 {
        return Ok(Invocation::Run(Command::List(ListRequest::default())));
    }
    let mut popt = Popt::new(OPTIONS, argv);
    let (first, first_arg) = match popt.next_opt() {
        Some(Ok(o)) => o,
        _ => return Err(ParseError::try_help(program)),
    };
    let cmd = match first {
        Opt::Add => Cmd::Add,
        Opt::Edit => Cmd::Edit,
        Opt::Delete => Cmd::Del,
        Opt::AddServer => Cmd::AddDest,
        Opt::EditServer => Cmd::EditDest,
        Opt::DeleteServer => Cmd::DelDest,
        Opt::Clear => Cmd::Flush,
        Opt::List => Cmd::List,
        Opt::Zero => Cmd::Zero,
        Opt::Set => Cmd::Timeout,
        Opt::Restore => Cmd::Restore,
        Opt::Save => Cmd::Save,
        Opt::StartDaemon | Opt::StopDaemon => {
            let arg = first_arg.unwrap_or_default();
            if arg != "master" && arg != "backup" {
                return Err(ParseError::fail(if first == Opt::StartDaemon {
                    "illegal start-daemon parameter specified"
                } else {
                    "illegal start_daemon specified"
                }));
            }
            if first == Opt::StartDaemon {
                Cmd::StartDaemon
            } else {
                Cmd::StopDaemon
            }
        }
        Opt::Help => return Ok(Invocation::Help),
        Opt::Version => return Ok(Invocation::Version),
        _ => return Err(ParseError::try_help(program)),
    };
    let mut st = State::new(cmd);
    while let Some(next) = popt.next_opt() {
        match next {
            Ok((opt, arg)) => st.option(opt, arg, popt.bad_option())?,
            Err(e) => return Err(popt_error(popt.bad_option(), e)),
        }
    }
    if st.cmd == Cmd::Timeout {
        let a = popt.next_leftover();
        let b = popt.next_leftover();
        let c = popt.next_leftover();
        let (Some(a), Some(b), Some(c)) = (a, b, c) else {
            return Err(ParseError::fail("--set option requires 3 timeout values"));
        };
        st.timeouts = Timeouts {
            tcp: parse_timeout(&a, 0)?,
            tcp_fin: parse_timeout(&b, 0)?,
            udp: parse_timeout(&c, 0)?,
        };
    }
    if let Some(extra) = popt.next_leftover() {
        return Err(ParseError::fail(format!("unexpected argument {extra}")));
    }
    let flags = match st.sched_flags_arg.as_deref() {
        Some(arg) if !arg.is_empty() => parse_sched_flags(&st.sched_name, arg)?,
        _ => SchedFlags::default(),
    };
    generic_opt_check(st.cmd, st.options).map_err(ParseError::fail)?;
    finish(st, flags, reading_stdin, program)
}

fn popt_error(bad: &str, e: PoptError) -> ParseError {
    ParseError {
        message: format!("{bad}: {}", e.text()),
        exit_code: 255,
        aborts_restore: false,
    }
}

impl State {
    /// One option after the command (ipvsadm's second switch).
    fn option(&mut self, opt: Opt, given: Option<String>, bad: &str) -> Result<(), ParseError> {
        let arg = given.clone().unwrap_or_default();
        match opt {
            Opt::Tcp | Opt::Udp | Opt::Sctp => {
                self.set_option(C_SERVICE)?;
                self.proto = match opt {
                    Opt::Tcp => Proto::Tcp,
                    Opt::Udp => Proto::Udp,
                    _ => Proto::Sctp,
                };
                let (addr, port) = parse_service(&arg, self.proto).ok_or_else(|| {
                    ParseError::fail("illegal virtual server address[:port] specified")
                })?;
                self.svc_addr = Some(addr);
                self.svc_v6 = Some(addr.is_ipv6());
                if addr.is_ipv6() {
                    self.netmask = 128;
                }
                if let Some(p) = port {
                    self.svc_port = p;
                }
            }
            Opt::Fwmark => {
                self.set_option(C_SERVICE)?;
                self.svc_v6 = Some(false);
                self.proto = Proto::Tcp;
                self.fwmark = match strtol_full(&arg) {
                    Some(v) if (1..=i64::from(u32::MAX)).contains(&v) => v as u32,
                    _ => {
                        return Err(ParseError::fail(format!(
                            "invalid fwmark value `{arg}' specified"
                        )))
                    }
                };
            }
            Opt::Scheduler => {
                self.set_option(C_SCHEDULER)?;
                // IP_VS_SCHEDNAME_MAXLEN - 1 bytes, as ipvsadm's strncpy.
                self.sched_name = arg.chars().take(15).collect();
            }
            Opt::Persistent => {
                self.set_option(C_PERSISTENT)?;
                self.persistent = Some(match given {
                    None => DEFAULT_PERSISTENCE,
                    Some(t) => parse_timeout(&t, 1)?,
                });
            }
            Opt::Netmask => {
                self.set_option(C_NETMASK)?;
                if self.svc_v6 == Some(true) {
                    // atoi(): leading digits, anything else is 0.
                    let digits: String = arg
                        .trim_start()
                        .chars()
                        .take_while(|c| c.is_ascii_digit())
                        .collect();
                    let plen = digits.parse::<u32>().unwrap_or(0);
                    if !(1..=128).contains(&plen) {
                        return Err(ParseError::fail("illegal ipv6 netmask specified"));
                    }
                    self.netmask = plen;
                } else {
                    let mask = inet_aton(&arg)
                        .or_else(|| resolve_name(&arg))
                        .ok_or_else(|| {
                            ParseError::fail("illegal virtual server persistent mask specified")
                        })?;
                    self.netmask = u32::from(mask);
                }
            }
            Opt::RealServer => {
                self.set_option(C_SERVER)?;
                let (addr, port) = parse_service(&arg, self.proto).ok_or_else(|| {
                    ParseError::fail("illegal real server address[:port] specified")
                })?;
                self.dest_addr = Some(addr);
                self.dest_v6 = addr.is_ipv6();
                // No port: the service port as known at this point.
                self.dest_port = port.unwrap_or(self.svc_port);
            }
            Opt::Ipip | Opt::Gatewaying | Opt::Masq => {
                self.set_option(C_FORWARD)?;
                self.forward = match opt {
                    Opt::Ipip => ForwardMethod::Tunnel,
                    Opt::Gatewaying => ForwardMethod::Route,
                    _ => ForwardMethod::Masq,
                };
            }
            Opt::Weight => {
                self.set_option(C_WEIGHT)?;
                self.weight = number_in(&arg, 0, 65535)
                    .ok_or_else(|| ParseError::fail("illegal weight specified"))?
                    as u32;
            }
            Opt::UThreshold => {
                self.set_option(C_UTHRESHOLD)?;
                self.u_threshold = number_in(&arg, 0, i64::from(i32::MAX))
                    .ok_or_else(|| ParseError::fail("illegal u_threshold specified"))?
                    as u32;
            }
            Opt::LThreshold => {
                self.set_option(C_LTHRESHOLD)?;
                self.l_threshold = number_in(&arg, 0, i64::from(i32::MAX))
                    .ok_or_else(|| ParseError::fail("illegal l_threshold specified"))?
                    as u32;
            }
            Opt::Connection => self.set_option(C_CONNECTION)?,
            Opt::Numeric => {
                self.set_option(C_NUMERIC)?;
                self.format.numeric = true;
            }
            Opt::McastInterface => self.set_option(C_MCAST)?,
            Opt::SyncId => {
                self.set_option(C_SYNCID)?;
                number_in(&arg, 0, 255)
                    .ok_or_else(|| ParseError::fail("illegal syncid specified"))?;
            }
            Opt::Timeout => self.set_option(C_TIMEOUT)?,
            Opt::Daemon => self.set_option(C_DAEMON)?,
            Opt::Stats => {
                self.set_option(C_STATS)?;
                self.format.stats = true;
            }
            Opt::Rate => {
                self.set_option(C_RATE)?;
                self.format.rate = true;
            }
            Opt::Thresholds => {
                self.set_option(C_THRESHOLDS)?;
                self.format.thresholds = true;
            }
            Opt::PersistentConn => {
                self.set_option(C_PERSISTENTCONN)?;
                self.format.persistent_conn = true;
            }
            Opt::NoSort => {
                self.set_option(C_NOSORT)?;
                self.format.nosort = true;
            }
            Opt::Sort => {}
            Opt::Exact => {
                self.set_option(C_EXACT)?;
                self.format.exact = true;
            }
            Opt::Ipv6 => {
                if self.fwmark == 0 {
                    return Err(ParseError::fail("-6 used before -f\n"));
                }
                self.svc_v6 = Some(true);
                self.netmask = 128;
            }
            Opt::Ops => {
                self.set_option(C_ONEPACKET)?;
                self.one_packet = true;
            }
            Opt::Pe => {
                self.set_option(C_PE)?;
                self.pe_name = Some(arg);
            }
            Opt::SchedFlags => {
                self.set_option(C_SCHED_FLAGS)?;
                self.sched_flags_arg = Some(arg);
            }
            Opt::McastGroup => {
                self.set_option(C_MCAST_GROUP)?;
                let ok = if arg.contains(':') {
                    arg.parse::<std::net::Ipv6Addr>()
                        .is_ok_and(|a| a.is_multicast())
                } else {
                    arg.parse::<Ipv4Addr>().is_ok_and(|a| a.is_multicast())
                };
                if !ok {
                    let fam = if arg.contains(':') { "IPv6" } else { "IPv4" };
                    return Err(ParseError::fail(format!(
                        "invalid {fam} mcast-group `{arg}'"
                    )));
                }
            }
            Opt::McastPort => {
                self.set_option(C_MCAST_PORT)?;
                number_in(&arg, 1, 65535)
                    .ok_or_else(|| ParseError::fail("illegal mcast-port specified"))?;
            }
            Opt::McastTtl => {
                self.set_option(C_MCAST_TTL)?;
                number_in(&arg, 1, 255)
                    .ok_or_else(|| ParseError::fail("illegal mcast-ttl specified"))?;
            }
            Opt::SyncMaxlen => {
                self.set_option(C_SYNC_MAXLEN)?;
                number_in(&arg, 1, 65535 - 20 - 8)
                    .ok_or_else(|| ParseError::fail("illegal sync-maxlen specified"))?;
            }
            Opt::TunInfo => {
                self.set_option(C_TUN_INFO)?;
                self.format.tun_info = true;
            }
            Opt::TunType => {
                self.set_option(C_TUN_TYPE)?;
                self.tun_type = match arg.as_str() {
                    "ipip" => TunType::Ipip,
                    "gue" => TunType::Gue,
                    "gre" => TunType::Gre,
                    _ => return Err(ParseError::fail("illegal tunnel type specified")),
                };
            }
            Opt::TunPort => {
                self.set_option(C_TUN_PORT)?;
                number_in(&arg, 1, 65535)
                    .ok_or_else(|| ParseError::fail("illegal tunnel port specified"))?;
            }
            Opt::TunNocsum => self.set_option(C_TUN_NOCSUM)?,
            Opt::TunCsum => self.set_option(C_TUN_CSUM)?,
            Opt::TunRemcsum => self.set_option(C_TUN_REMCSUM)?,
            // Commands after the first option, -h and -v: ipvsadm's default branch.
            _ => return Err(ParseError::fail(format!("invalid option `{bad}'"))),
        }
        Ok(())
    }
}

/// `parse_timeout(buf, min, MAX_TIMEOUT)`.
fn parse_timeout(s: &str, min: i64) -> Result<u32, ParseError> {
    number_in(s, min, MAX_TIMEOUT)
        .map(|v| v as u32)
        .ok_or_else(|| ParseError::fail(format!("invalid timeout value `{s}' specified")))
}

/// glibc's gethostbyname answers a digits-and-dots name itself (no DNS query), so only
/// other names go to the resolver.
fn resolve_name(name: &str) -> Option<Ipv4Addr> {
    if name.is_empty() || name.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    resolve_host_v4(name)
}

/// ipvsadm's `parse_service`: `host[:port]`, `[v6addr]:port` or a bare IPv6 address.
/// `None` is SERVICE_NONE (an error for the caller); the port is `None` when not given.
fn parse_service(buf: &str, proto: Proto) -> Option<(IpAddr, Option<u16>)> {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (host, mut port) = match buf.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']')?;
            (inside, Some(after.strip_prefix(':')?))
        }
        None => (buf, None),
    };
    let addr = if let Ok(v6) = host.parse::<std::net::Ipv6Addr>() {
        IpAddr::V6(v6)
    } else {
        let (h, p) = match host.rfind(':') {
            Some(i) => (&host[..i], Some(&host[i + 1..])),
            None => (host, None),
        };
        // In the bracketed form ipvsadm looks for the port again inside the brackets.
        port = p;
        IpAddr::V4(inet_aton(h).or_else(|| resolve_name(h))?)
    };
    let port = match port {
        None => None,
        Some(p) => Some(match number_in(p, 0, 65535) {
            Some(n) => n as u16,
            None => service_port(p, proto.service_db_name()?)?,
        }),
    };
    Some((addr, port))
}

/// ipvsadm's `parse_sched_flags`: comma-separated flag names checked against the scheduler.
fn parse_sched_flags(sched: &str, arg: &str) -> Result<SchedFlags, ParseError> {
    let sched = if sched.is_empty() {
        DEFAULT_SCHEDULER
    } else {
        sched
    };
    let mut flags = SchedFlags::default();
    let mut any = false;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        any = true;
        let (bit, only_for) = match flag {
            "flag-1" => (1, None),
            "flag-2" => (2, None),
            "flag-3" => (3, None),
            "sh-fallback" => (1, Some("sh")),
            "sh-port" => (2, Some("sh")),
            "mh-fallback" => (1, Some("mh")),
            "mh-port" => (2, Some("mh")),
            _ => return Err(ParseError::fail(format!("invalid scheduler flag `{flag}'"))),
        };
        match bit {
            1 => flags.flag1 = true,
            2 => flags.flag2 = true,
            _ => flags.flag3 = true,
        }
        if only_for.is_some_and(|s| s != sched) {
            return Err(ParseError::fail(format!(
                "incompatible scheduler flag `{flag}'"
            )));
        }
    }
    if !any {
        // ipvsadm's strtok loop would dereference NULL here; refuse it cleanly.
        return Err(ParseError::fail(format!("invalid scheduler flag `{arg}'")));
    }
    Ok(flags)
}

fn unsupported(what: &str) -> ParseError {
    ParseError::fail(format!("{what} not supported by director"))
}

/// The per-command checks after the table check, then the [`Command`].
fn finish(
    mut st: State,
    flags: SchedFlags,
    reading_stdin: bool,
    program: &str,
) -> Result<Invocation, ParseError> {
    if matches!(st.cmd, Cmd::Add | Cmd::Edit) {
        if st.fwmark == 0 && st.svc_port == 0 && st.persistent.is_none() {
            return Err(ParseError::fail(
                "Zero port specified for non-persistent service",
            ));
        }
        if st.one_packet && st.fwmark == 0 && st.proto != Proto::Udp {
            return Err(ParseError::fail(
                "One-Packet Scheduling is only for UDP virtual services",
            ));
        }
        if st.sched_name.is_empty() {
            st.sched_name = DEFAULT_SCHEDULER.to_owned();
        }
    }
    if matches!(st.cmd, Cmd::AddDest | Cmd::EditDest) {
        if st.fwmark == 0 && matches!(st.forward, ForwardMethod::Tunnel | ForwardMethod::Route) {
            st.dest_port = st.svc_port;
        }
        if st.dest_v6 != (st.svc_v6 == Some(true)) && st.forward != ForwardMethod::Tunnel {
            return Err(ParseError::fail(
                "Different address family is allowed only for tunneling servers",
            ));
        }
        let tun_opts = [
            C_TUN_TYPE,
            C_TUN_PORT,
            C_TUN_NOCSUM,
            C_TUN_CSUM,
            C_TUN_REMCSUM,
        ];
        if tun_opts.iter().any(|&c| st.has(c)) && st.forward != ForwardMethod::Tunnel {
            return Err(ParseError::fail(
                "Tunnel options conflict with forward method",
            ));
        }
        tunnel_opt_check(st.tun_type, st.options).map_err(ParseError::fail)?;
        if st.tun_type != TunType::Ipip {
            return Err(unsupported(&format!(
                "Tunnel type {} is",
                st.tun_type.name()
            )));
        }
    }
    if st.cmd == Cmd::List {
        let listing_only = st.has(C_CONNECTION) || st.has(C_TIMEOUT) || st.has(C_DAEMON);
        let counters = st.has(C_STATS) || st.has(C_RATE) || st.has(C_THRESHOLDS);
        let time_or_daemon = st.has(C_TIMEOUT) || st.has(C_DAEMON);
        if (listing_only && counters) || (time_or_daemon && st.has(C_PERSISTENTCONN)) {
            return Err(ParseError::fail("options conflicts in the list command"));
        }
    }
    if st.proto == Proto::Sctp && st.has(C_SERVICE) {
        return Err(unsupported("SCTP services are"));
    }
    let command = match st.cmd {
        Cmd::Restore if reading_stdin => return Err(ParseError::try_help(program)),
        Cmd::Restore => return Ok(Invocation::Restore),
        Cmd::StartDaemon | Cmd::StopDaemon => {
            return Err(unsupported("The connection synchronisation daemon is"))
        }
        Cmd::Add | Cmd::Edit => {
            if st.pe_name.as_deref().is_some_and(|p| !p.is_empty()) {
                // Director has no persistence engines: the kernel's answer to an unknown one.
                return Err(ParseError {
                    message: "Scheduler or persistence engine not found".into(),
                    exit_code: 255,
                    aborts_restore: false,
                });
            }
            let cfg = service_config(&st, flags)?;
            if st.cmd == Cmd::Add {
                Command::AddService(cfg)
            } else {
                Command::EditService(cfg)
            }
        }
        Cmd::Del => Command::DeleteService(service_key(&st)),
        Cmd::Flush => Command::Clear,
        Cmd::AddDest | Cmd::EditDest => {
            let dest = DestConfig {
                addr: st.dest_addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                port: st.dest_port,
                forward: st.forward,
                weight: st.weight,
                u_threshold: st.u_threshold,
                l_threshold: st.l_threshold,
            };
            let service = service_key(&st);
            if st.cmd == Cmd::AddDest {
                Command::AddDest { service, dest }
            } else {
                Command::EditDest { service, dest }
            }
        }
        Cmd::DelDest => Command::DeleteDest {
            service: service_key(&st),
            addr: st.dest_addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            port: st.dest_port,
        },
        Cmd::Zero => Command::Zero(st.has(C_SERVICE).then(|| service_key(&st))),
        Cmd::Timeout => Command::SetTimeouts(st.timeouts),
        Cmd::Save => Command::Save,
        Cmd::List => {
            let what = if st.has(C_CONNECTION) {
                ListWhat::Connections
            } else if st.has(C_SERVICE) {
                ListWhat::Service(service_key(&st))
            } else if st.has(C_TIMEOUT) {
                ListWhat::Timeout
            } else if st.has(C_DAEMON) {
                ListWhat::Daemon
            } else {
                ListWhat::All
            };
            Command::List(ListRequest {
                what,
                format: st.format,
            })
        }
    };
    Ok(Invocation::Run(command))
}

fn service_key(st: &State) -> ServiceKey {
    if st.fwmark != 0 {
        ServiceKey::Fwmark {
            mark: st.fwmark,
            ipv6: st.svc_v6 == Some(true),
        }
    } else {
        ServiceKey::Addr {
            proto: if st.proto == Proto::Udp {
                Protocol::Udp
            } else {
                Protocol::Tcp
            },
            addr: st.svc_addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            port: st.svc_port,
        }
    }
}

fn service_config(st: &State, flags: SchedFlags) -> Result<ServiceConfig, ParseError> {
    let key = service_key(st);
    let v6 = match key {
        ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
        ServiceKey::Fwmark { ipv6, .. } => ipv6,
    };
    let netmask_prefix = if v6 {
        st.netmask.min(128) as u8
    } else {
        // The model keeps a prefix length: a mask with holes cannot be represented.
        let m = st.netmask;
        if m.leading_ones() + m.trailing_zeros() != 32 {
            return Err(ParseError::fail(
                "illegal virtual server persistent mask specified",
            ));
        }
        m.leading_ones() as u8
    };
    Ok(ServiceConfig {
        key,
        scheduler: st.sched_name.clone(),
        flags,
        persistence: st.persistent,
        netmask_prefix,
        one_packet: st.one_packet,
    })
}
