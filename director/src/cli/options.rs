//! ipvsadm 1.31's option table and its command/option rules (`commands_v_options`,
//! `tunnel_types_v_options`), with the messages its checks print.

use super::popt::{ArgKind, OptSpec};
use ArgKind::{None as N, Optional as OPT, Required as R};

/// Tags of the option table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opt {
    Add,
    Edit,
    Delete,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masq,
    Ipip,
    Gatewaying,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
}

const fn o(long: &'static str, short: u8, arg: ArgKind, tag: Opt) -> OptSpec<Opt> {
    OptSpec {
        long,
        short: if short == 0 { None } else { Some(short) },
        arg,
        tag,
    }
}

/// ipvsadm 1.31's option table (long name, short name, argument).
pub(crate) const OPTIONS: &[OptSpec<Opt>] = &[
    o("add-service", b'A', N, Opt::Add),
    o("edit-service", b'E', N, Opt::Edit),
    o("delete-service", b'D', N, Opt::Delete),
    o("clear", b'C', N, Opt::Clear),
    o("list", b'L', N, Opt::List),
    o("list", b'l', N, Opt::List),
    o("zero", b'Z', N, Opt::Zero),
    o("add-server", b'a', N, Opt::AddServer),
    o("edit-server", b'e', N, Opt::EditServer),
    o("delete-server", b'd', N, Opt::DeleteServer),
    o("set", 0, N, Opt::Set),
    o("help", b'h', N, Opt::Help),
    o("version", b'v', N, Opt::Version),
    o("restore", b'R', N, Opt::Restore),
    o("save", b'S', N, Opt::Save),
    o("start-daemon", 0, R, Opt::StartDaemon),
    o("stop-daemon", 0, R, Opt::StopDaemon),
    o("tcp-service", b't', R, Opt::Tcp),
    o("udp-service", b'u', R, Opt::Udp),
    o("sctp-service", 0, R, Opt::Sctp),
    o("fwmark-service", b'f', R, Opt::Fwmark),
    o("scheduler", b's', R, Opt::Scheduler),
    o("persistent", b'p', OPT, Opt::Persistent),
    o("netmask", b'M', R, Opt::Netmask),
    o("real-server", b'r', R, Opt::RealServer),
    o("masquerading", b'm', N, Opt::Masq),
    o("ipip", b'i', N, Opt::Ipip),
    o("gatewaying", b'g', N, Opt::Gatewaying),
    o("weight", b'w', R, Opt::Weight),
    o("u-threshold", b'x', R, Opt::UThreshold),
    o("l-threshold", b'y', R, Opt::LThreshold),
    o("numeric", b'n', N, Opt::Numeric),
    o("connection", b'c', N, Opt::Connection),
    o("mcast-interface", 0, R, Opt::McastInterface),
    o("syncid", 0, R, Opt::SyncId),
    o("timeout", 0, N, Opt::Timeout),
    o("daemon", 0, N, Opt::Daemon),
    o("stats", 0, N, Opt::Stats),
    o("rate", 0, N, Opt::Rate),
    o("thresholds", 0, N, Opt::Thresholds),
    o("persistent-conn", 0, N, Opt::PersistentConn),
    o("nosort", 0, N, Opt::NoSort),
    o("sort", 0, N, Opt::Sort),
    o("exact", b'X', N, Opt::Exact),
    o("ipv6", b'6', N, Opt::Ipv6),
    o("ops", b'o', N, Opt::Ops),
    o("pe", 0, R, Opt::Pe),
    o("sched-flags", b'b', R, Opt::SchedFlags),
    o("mcast-group", 0, R, Opt::McastGroup),
    o("mcast-port", 0, R, Opt::McastPort),
    o("mcast-ttl", 0, R, Opt::McastTtl),
    o("sync-maxlen", 0, R, Opt::SyncMaxlen),
    o("tun-info", 0, N, Opt::TunInfo),
    o("tun-type", 0, R, Opt::TunType),
    o("tun-port", 0, R, Opt::TunPort),
    o("tun-nocsum", 0, N, Opt::TunNocsum),
    o("tun-csum", 0, N, Opt::TunCsum),
    o("tun-remcsum", 0, N, Opt::TunRemcsum),
];

/// ipvsadm's commands, in its order (names as its messages spell them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
}

impl Cmd {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::Timeout => "set",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
        }
    }
}

/// Option classes checked against commands, in ipvsadm's bit order (its messages name them).
pub(crate) const OPT_NAMES: [&str; 34] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

pub(crate) const C_NUMERIC: usize = 0;
pub(crate) const C_CONNECTION: usize = 1;
pub(crate) const C_SERVICE: usize = 2;
pub(crate) const C_SCHEDULER: usize = 3;
pub(crate) const C_PERSISTENT: usize = 4;
pub(crate) const C_NETMASK: usize = 5;
pub(crate) const C_SERVER: usize = 6;
pub(crate) const C_FORWARD: usize = 7;
pub(crate) const C_WEIGHT: usize = 8;
pub(crate) const C_UTHRESHOLD: usize = 9;
pub(crate) const C_LTHRESHOLD: usize = 10;
pub(crate) const C_MCAST: usize = 11;
pub(crate) const C_TIMEOUT: usize = 12;
pub(crate) const C_DAEMON: usize = 13;
pub(crate) const C_STATS: usize = 14;
pub(crate) const C_RATE: usize = 15;
pub(crate) const C_THRESHOLDS: usize = 16;
pub(crate) const C_PERSISTENTCONN: usize = 17;
pub(crate) const C_NOSORT: usize = 18;
pub(crate) const C_SYNCID: usize = 19;
pub(crate) const C_EXACT: usize = 20;
pub(crate) const C_ONEPACKET: usize = 21;
pub(crate) const C_PE: usize = 22;
pub(crate) const C_SCHED_FLAGS: usize = 23;
pub(crate) const C_MCAST_GROUP: usize = 24;
pub(crate) const C_MCAST_PORT: usize = 25;
pub(crate) const C_MCAST_TTL: usize = 26;
pub(crate) const C_SYNC_MAXLEN: usize = 27;
pub(crate) const C_TUN_INFO: usize = 28;
pub(crate) const C_TUN_TYPE: usize = 29;
pub(crate) const C_TUN_PORT: usize = 30;
pub(crate) const C_TUN_NOCSUM: usize = 31;
pub(crate) const C_TUN_CSUM: usize = 32;
pub(crate) const C_TUN_REMCSUM: usize = 33;

/// How a command treats an option class (ipvsadm's commands_v_options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Must be given ('+').
    Required,
    /// May be given (' ').
    Allowed,
    /// At most one of the exclusive ones ('1').
    Exclusive,
    /// Must not be given ('x').
    Illegal,
}

fn rule(cmd: Cmd, opt: usize) -> Rule {
    use Rule::*;
    match cmd {
        Cmd::Add | Cmd::Edit => match opt {
            C_SERVICE => Required,
            C_SCHEDULER | C_PERSISTENT | C_NETMASK | C_ONEPACKET | C_PE | C_SCHED_FLAGS => Allowed,
            _ => Illegal,
        },
        Cmd::Del => match opt {
            C_SERVICE => Required,
            _ => Illegal,
        },
        Cmd::List => match opt {
            C_NUMERIC | C_STATS | C_RATE | C_THRESHOLDS | C_PERSISTENTCONN | C_NOSORT
            | C_SYNCID | C_EXACT | C_TUN_INFO => Allowed,
            C_CONNECTION | C_SERVICE | C_TIMEOUT | C_DAEMON => Exclusive,
            _ => Illegal,
        },
        Cmd::AddDest | Cmd::EditDest => match opt {
            C_SERVICE | C_SERVER => Required,
            C_FORWARD | C_WEIGHT | C_UTHRESHOLD | C_LTHRESHOLD | C_TUN_TYPE | C_TUN_PORT
            | C_TUN_NOCSUM | C_TUN_CSUM | C_TUN_REMCSUM => Allowed,
            _ => Illegal,
        },
        Cmd::DelDest => match opt {
            C_SERVICE | C_SERVER => Required,
            _ => Illegal,
        },
        Cmd::StartDaemon => match opt {
            C_MCAST | C_SYNCID | C_MCAST_GROUP | C_MCAST_PORT | C_MCAST_TTL | C_SYNC_MAXLEN => {
                Allowed
            }
            _ => Illegal,
        },
        Cmd::StopDaemon => match opt {
            C_SYNCID => Allowed,
            _ => Illegal,
        },
        Cmd::Save => match opt {
            C_NUMERIC => Allowed,
            _ => Illegal,
        },
        Cmd::Zero => match opt {
            C_SERVICE => Allowed,
            _ => Illegal,
        },
        Cmd::Flush | Cmd::Timeout | Cmd::Restore => Illegal,
    }
}

/// Tunnel types as ipvsadm names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TunType {
    Ipip,
    Gue,
    Gre,
}

impl TunType {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TunType::Ipip => "ipip",
            TunType::Gue => "gue",
            TunType::Gre => "gre",
        }
    }
    /// ipvsadm's tunnel_types_v_options for --tun-port, --tun-nocsum, --tun-csum,
    /// --tun-remcsum.
    fn rules(self) -> [Rule; 4] {
        use Rule::*;
        match self {
            TunType::Ipip => [Illegal; 4],
            TunType::Gue => [Required, Exclusive, Exclusive, Exclusive],
            TunType::Gre => [Illegal, Exclusive, Exclusive, Illegal],
        }
    }
}

/// ipvsadm's `generic_opt_check`: the command/option table, in option order.
pub(crate) fn generic_opt_check(command: Cmd, options: u64) -> Result<(), String> {
    let cmd = command.name();
    let has = |j: usize| options & (1 << j) != 0;
    let mut first_exclusive: Option<usize> = None;
    for (j, name) in OPT_NAMES.iter().enumerate() {
        let r = rule(command, j);
        if !has(j) {
            if r == Rule::Required {
                return Err(format!(
                    "You need to supply the '{name}' option for the '{cmd}' command"
                ));
            }
            continue;
        }
        match r {
            Rule::Illegal => {
                return Err(format!("Illegal '{name}' option with the '{cmd}' command"))
            }
            Rule::Exclusive => match first_exclusive {
                None => first_exclusive = Some(j),
                Some(last) => {
                    return Err(format!(
                        "The option '{name}' conflicts with the '{}' option in the '{cmd}' command",
                        OPT_NAMES[last]
                    ))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// ipvsadm's `tunnel_opt_check`.
pub(crate) fn tunnel_opt_check(tun_type: TunType, options: u64) -> Result<(), String> {
    let tun = tun_type.name();
    let has = |k: usize| options & (1 << k) != 0;
    let opts = [C_TUN_PORT, C_TUN_NOCSUM, C_TUN_CSUM, C_TUN_REMCSUM];
    let mut first_exclusive: Option<usize> = None;
    for (r, &k) in tun_type.rules().iter().zip(opts.iter()) {
        let name = OPT_NAMES[k];
        if !has(k) {
            if *r == Rule::Required {
                return Err(format!(
                    "You need to supply the '{name}' option for the '{tun}' tunnel type"
                ));
            }
            continue;
        }
        match r {
            Rule::Illegal => {
                return Err(format!(
                    "Illegal '{name}' option with the '{tun}' tunnel type"
                ))
            }
            Rule::Exclusive => match first_exclusive {
                None => first_exclusive = Some(k),
                Some(last) => {
                    return Err(format!(
                    "The option '{name}' conflicts with the '{}' option in the '{tun}' tunnel type",
                    OPT_NAMES[last]
                ))
                }
            },
            _ => {}
        }
    }
    Ok(())
}
