//! ipvsadm 1.31 command-line parsing: accepted forms with their defaults, and rejected ones
//! with ipvsadm's exact message and exit status (read from ipvsadm.c's checks and popt).

use std::net::IpAddr;

use director::cli::args::{
    parse, Command, Invocation, ListFormat, ListRequest, ListWhat, ParseError,
};
use director::control::table::Timeouts;
use director::model::{DestConfig, ForwardMethod, Protocol, SchedFlags, ServiceConfig, ServiceKey};

fn argv(line: &str) -> Vec<String> {
    std::iter::once("ipvsadm")
        .chain(line.split_whitespace())
        .map(String::from)
        .collect()
}

fn ok(line: &str) -> Command {
    match parse(&argv(line), false) {
        Ok(Invocation::Run(c)) => c,
        other => panic!("ipvsadm {line}: {other:?}"),
    }
}

fn err(line: &str) -> ParseError {
    match parse(&argv(line), false) {
        Err(e) => e,
        other => panic!("ipvsadm {line} was accepted: {other:?}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: ip(addr),
        port,
    }
}

fn udp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: ip(addr),
        port,
    }
}

fn svc(key: ServiceKey, sched: &str) -> ServiceConfig {
    let v6 = match key {
        ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
        ServiceKey::Fwmark { ipv6, .. } => ipv6,
    };
    ServiceConfig {
        key,
        scheduler: sched.into(),
        flags: SchedFlags::default(),
        persistence: None,
        netmask_prefix: if v6 { 128 } else { 32 },
        one_packet: false,
    }
}

fn dest(addr: &str, port: u16, forward: ForwardMethod, weight: u32) -> DestConfig {
    DestConfig {
        addr: ip(addr),
        port,
        forward,
        weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

#[test]
fn service_commands_and_defaults() {
    assert_eq!(
        ok("-A -t 10.1.1.200:80 -s rr"),
        Command::AddService(svc(tcp("10.1.1.200", 80), "rr"))
    );
    assert_eq!(
        ok("-A -t 10.0.0.1:80"),
        Command::AddService(svc(tcp("10.0.0.1", 80), "wlc"))
    );
    assert_eq!(
        ok("-E -u 10.0.0.1:53"),
        Command::EditService(svc(udp("10.0.0.1", 53), "wlc"))
    );
    let mut p = svc(tcp("10.0.0.1", 80), "wlc");
    p.persistence = Some(300);
    p.netmask_prefix = 16;
    assert_eq!(
        ok("-A -t 10.0.0.1:80 -p 300 -M 255.255.0.0"),
        Command::AddService(p)
    );
    // -p with no value (next word is an option, or nothing) is 360 s.
    let mut p = svc(tcp("10.0.0.1", 0), "rr");
    p.persistence = Some(360);
    assert_eq!(
        ok("-A -t 10.0.0.1 -p -s rr"),
        Command::AddService(p.clone())
    );
    assert_eq!(ok("-A -t 10.0.0.1 -s rr -p"), Command::AddService(p));
    let mut f = svc(
        ServiceKey::Fwmark {
            mark: 5,
            ipv6: true,
        },
        "wlc",
    );
    f.persistence = Some(360);
    f.netmask_prefix = 64;
    assert_eq!(ok("-A -f 5 -6 -p -M 64"), Command::AddService(f));
    let mut o = svc(udp("10.0.0.1", 53), "sh");
    o.one_packet = true;
    o.flags = SchedFlags {
        flag1: true,
        flag2: true,
        flag3: false,
    };
    assert_eq!(
        ok("-A -u 10.0.0.1:53 -o -s sh -b sh-port,sh-fallback"),
        Command::AddService(o)
    );
    // -b is checked after all options, against the final scheduler.
    let mut b = svc(tcp("10.0.0.1", 80), "rr");
    b.flags = SchedFlags {
        flag1: true,
        flag2: false,
        flag3: true,
    };
    assert_eq!(
        ok("-A -t 10.0.0.1:80 -b flag-1,flag-3 -s rr"),
        Command::AddService(b)
    );
    assert_eq!(
        ok("-A -t [2001:db8::1]:80"),
        Command::AddService(svc(tcp("2001:db8::1", 80), "wlc"))
    );
    assert_eq!(
        ok("-D -f 7"),
        Command::DeleteService(ServiceKey::Fwmark {
            mark: 7,
            ipv6: false
        })
    );
    assert_eq!(ok("-C"), Command::Clear);
}

#[test]
fn popt_forms_long_glued_and_bundled() {
    let mut p = svc(tcp("10.0.0.1", 80), "rr");
    p.persistence = Some(100);
    assert_eq!(
        ok("--add-service --tcp-service=10.0.0.1:80 --scheduler=rr --persistent=100"),
        Command::AddService(p.clone())
    );
    assert_eq!(
        ok("-At10.0.0.1:80 -srr -p100"),
        Command::AddService(p.clone())
    );
    assert_eq!(
        ok("-A --tcp-service 10.0.0.1:80 -s=rr --persistent 100"),
        Command::AddService(p)
    );
    // Addresses as inet_aton reads them, ports as /etc/services names.
    assert_eq!(
        ok("-A -t 0x0a000001:http -s rr"),
        Command::AddService(svc(tcp("10.0.0.1", 80), "rr"))
    );
    assert_eq!(
        ok("-A -t 10.1:80 -s rr"),
        Command::AddService(svc(tcp("10.0.0.1", 80), "rr"))
    );
}

#[test]
fn destination_commands_and_port_rules() {
    let key = tcp("10.0.0.1", 80);
    let add = |d| Command::AddDest {
        service: key,
        dest: d,
    };
    // -g (the default) and -i force the service port; -m keeps the given one.
    assert_eq!(
        ok("-a -t 10.0.0.1:80 -r 192.0.2.1:8080"),
        add(dest("192.0.2.1", 80, ForwardMethod::Route, 1))
    );
    assert_eq!(
        ok("-a -t 10.0.0.1:80 -r 192.0.2.1:8080 -i -w 0"),
        add(dest("192.0.2.1", 80, ForwardMethod::Tunnel, 0))
    );
    assert_eq!(
        ok("-a -t 10.0.0.1:80 -r 192.0.2.1:8080 -m -w 65535"),
        add(dest("192.0.2.1", 8080, ForwardMethod::Masq, 65535))
    );
    assert_eq!(
        ok("-a -t 10.0.0.1:80 -r 192.0.2.1 -m"),
        add(dest("192.0.2.1", 80, ForwardMethod::Masq, 1))
    );
    // ipvsadm copies the service port known when -r is read: none yet here.
    assert_eq!(
        ok("-a -r 192.0.2.1 -t 10.0.0.1:80 -m"),
        add(dest("192.0.2.1", 0, ForwardMethod::Masq, 1))
    );
    let mut t = dest("192.0.2.1", 8080, ForwardMethod::Masq, 1);
    (t.u_threshold, t.l_threshold) = (100, 50);
    assert_eq!(
        ok("-e -t 10.0.0.1:80 -r 192.0.2.1:8080 -m -x 100 -y 50"),
        Command::EditDest {
            service: key,
            dest: t
        }
    );
    // fwmark services keep the destination port for every method.
    assert_eq!(
        ok("-a -f 1 -r 192.0.2.1:99 -g"),
        Command::AddDest {
            service: ServiceKey::Fwmark {
                mark: 1,
                ipv6: false
            },
            dest: dest("192.0.2.1", 99, ForwardMethod::Route, 1)
        }
    );
    // A tunnel may cross address families.
    assert_eq!(
        ok("-a -t 10.0.0.1:80 -r 2001:db8::5 -i --tun-type ipip"),
        add(dest("2001:db8::5", 80, ForwardMethod::Tunnel, 1))
    );
    assert_eq!(
        ok("-d -t 10.0.0.1:80 -r 192.0.2.1"),
        Command::DeleteDest {
            service: key,
            addr: ip("192.0.2.1"),
            port: 80
        }
    );
}

#[test]
fn other_commands() {
    assert_eq!(ok("-Z"), Command::Zero(None));
    assert_eq!(
        ok("-Z -u 10.0.0.1:53"),
        Command::Zero(Some(udp("10.0.0.1", 53)))
    );
    assert_eq!(
        ok("--set 900 0 60"),
        Command::SetTimeouts(Timeouts {
            tcp: 900,
            tcp_fin: 0,
            udp: 60
        })
    );
    assert_eq!(ok("-S -n"), Command::Save);
    assert_eq!(
        ok("-L -t 10.0.0.1:80 --stats --exact"),
        Command::List(ListRequest {
            what: ListWhat::Service(tcp("10.0.0.1", 80)),
            format: ListFormat {
                stats: true,
                exact: true,
                ..ListFormat::default()
            }
        })
    );
    assert_eq!(
        ok("-lnc"),
        Command::List(ListRequest {
            what: ListWhat::Connections,
            format: ListFormat {
                numeric: true,
                ..ListFormat::default()
            }
        })
    );
    assert_eq!(
        parse(&argv(""), false),
        Ok(Invocation::Run(Command::List(ListRequest::default())))
    );
    assert_eq!(parse(&argv("-R"), false), Ok(Invocation::Restore));
    assert_eq!(parse(&argv("-h"), false), Ok(Invocation::Help));
    assert_eq!(parse(&argv("--help"), false), Ok(Invocation::Help));
    assert_eq!(parse(&argv("-v"), false), Ok(Invocation::Version));
    assert_eq!(parse(&argv("--version"), false), Ok(Invocation::Version));
}

/// (command line, stderr text, exit status)
const REJECTED: &[(&str, &str, i32)] = &[
    // The first option must be a command.
    (
        "-t 10.0.0.1:80",
        "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
        255,
    ),
    (
        "-n -L",
        "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
        255,
    ),
    (
        "foo",
        "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
        255,
    ),
    (
        "-q",
        "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
        255,
    ),
    // A second command is not an option of the first (1.31 never reaches its
    // "multiple commands specified").
    ("-A -t 10.0.0.1:80 -L", "invalid option `-L'", 2),
    ("-LC", "invalid option `-LC'", 2),
    ("-L -h", "invalid option `-h'", 2),
    (
        "-A -t 10.0.0.1:80 --start-daemon master",
        "invalid option `master'",
        2,
    ),
    // popt errors.
    ("-A -t 10.0.0.1:80 -q", "-q: unknown option", 255),
    (
        "-A -t 10.0.0.1:80 --sched rr",
        "--sched: unknown option",
        255,
    ),
    ("-A -t", "-t: missing argument", 255),
    (
        "-L --stats=1",
        "--stats=1: option does not take an argument",
        255,
    ),
    // Option values.
    (
        "-A -t 10.0.0.300:80",
        "illegal virtual server address[:port] specified",
        2,
    ),
    (
        "-A -t 10.0.0.1:65536",
        "illegal virtual server address[:port] specified",
        2,
    ),
    (
        "-A -t 80",
        "illegal virtual server address[:port] specified",
        2,
    ),
    (
        "-A -t 10.0.0.1:",
        "illegal virtual server address[:port] specified",
        2,
    ),
    (
        "-A -t [2001:db8::1]",
        "illegal virtual server address[:port] specified",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1:x1",
        "illegal real server address[:port] specified",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1 -w 65536",
        "illegal weight specified",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1 -w -1",
        "illegal weight specified",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1 -w 1x",
        "illegal weight specified",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1 -x -1",
        "illegal u_threshold specified",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1 -y 2147483648",
        "illegal l_threshold specified",
        2,
    ),
    (
        "-A -t 10.0.0.1:80 -p 0",
        "invalid timeout value `0' specified",
        2,
    ),
    (
        "-A -t 10.0.0.1:80 -p 2678401",
        "invalid timeout value `2678401' specified",
        2,
    ),
    ("-A -f 0", "invalid fwmark value `0' specified", 2),
    (
        "-A -f 4294967296",
        "invalid fwmark value `4294967296' specified",
        2,
    ),
    ("-A -t 10.0.0.1:80 -6", "-6 used before -f\n", 2),
    (
        "-A -t 10.0.0.1:80 -t 10.0.0.2:80",
        "multiple 'service-address' options specified",
        2,
    ),
    (
        "-A -t 10.0.0.1:80 -f 1",
        "multiple 'service-address' options specified",
        2,
    ),
    (
        "-A -t 10.0.0.1:80 -s rr -s wlc",
        "multiple 'scheduler' options specified",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1 -g -m",
        "multiple 'forwarding-method' options specified",
        2,
    ),
    (
        "-A -t [2001:db8::1]:80 -p -M 129",
        "illegal ipv6 netmask specified",
        2,
    ),
    (
        "-A -t 10.0.0.1:80 -p -M 255.0.255.0",
        "illegal virtual server persistent mask specified",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1 -i --tun-type vxlan",
        "illegal tunnel type specified",
        2,
    ),
    // --set and stray words.
    ("--set 1 2", "--set option requires 3 timeout values", 2),
    ("--set 1 2 x", "invalid timeout value `x' specified", 2),
    ("--set 1 2 3 4", "unexpected argument 4", 2),
    ("-L extra", "unexpected argument extra", 2),
    ("-A -t 10.0.0.1:80 -s rr -- -x", "unexpected argument -x", 2),
    // Scheduler flags.
    (
        "-A -t 10.0.0.1:80 -b sh-port",
        "incompatible scheduler flag `sh-port'",
        2,
    ),
    (
        "-A -t 10.0.0.1:80 -s sh -b mh-port",
        "incompatible scheduler flag `mh-port'",
        2,
    ),
    (
        "-A -t 10.0.0.1:80 -s sh -b bogus",
        "invalid scheduler flag `bogus'",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1 -b bogus",
        "invalid scheduler flag `bogus'",
        2,
    ),
    // The command/option table.
    (
        "-a -t 10.0.0.1:80",
        "You need to supply the 'real-server' option for the 'add-server' command",
        2,
    ),
    (
        "-d -r 192.0.2.1",
        "You need to supply the 'service-address' option for the 'delete-server' command",
        2,
    ),
    (
        "-A -s rr",
        "You need to supply the 'service-address' option for the 'add-service' command",
        2,
    ),
    (
        "-A -t 10.0.0.1:80 -r 192.0.2.1",
        "Illegal 'real-server' option with the 'add-service' command",
        2,
    ),
    (
        "-C -n",
        "Illegal 'numeric' option with the 'flush' command",
        2,
    ),
    (
        "-S -c",
        "Illegal 'connection' option with the 'save' command",
        2,
    ),
    (
        "-Z -n",
        "Illegal 'numeric' option with the 'zero' command",
        2,
    ),
    (
        "-D -t 10.0.0.1:80 -s rr",
        "Illegal 'scheduler' option with the 'delete-service' command",
        2,
    ),
    (
        "-e -t 10.0.0.1:80 -r 192.0.2.1 -p",
        "Illegal 'persistent' option with the 'edit-server' command",
        2,
    ),
    (
        "--set 1 2 3 -n",
        "Illegal 'numeric' option with the 'set' command",
        2,
    ),
    (
        "-L -c -t 10.0.0.1:80",
        "The option 'service-address' conflicts with the 'connection' option in the 'list' command",
        2,
    ),
    (
        "-L --timeout --daemon",
        "The option 'daemon' conflicts with the 'timeout' option in the 'list' command",
        2,
    ),
    ("-L -c --stats", "options conflicts in the list command", 2),
    (
        "-L --timeout --persistent-conn",
        "options conflicts in the list command",
        2,
    ),
    // Per-command checks.
    (
        "-A -t 10.0.0.1",
        "Zero port specified for non-persistent service",
        2,
    ),
    (
        "-E -t 10.0.0.1:0 -s rr",
        "Zero port specified for non-persistent service",
        2,
    ),
    (
        "-A -t ::1:80",
        "Zero port specified for non-persistent service",
        2,
    ),
    (
        "-A -t 10.0.0.1:80 -o",
        "One-Packet Scheduling is only for UDP virtual services",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 2001:db8::1 -m",
        "Different address family is allowed only for tunneling servers",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1 -m --tun-type ipip",
        "Tunnel options conflict with forward method",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1 -i --tun-port 1",
        "Illegal 'tun-port' option with the 'ipip' tunnel type",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1 -i --tun-type gue",
        "You need to supply the 'tun-port' option for the 'gue' tunnel type",
        2,
    ),
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1 -i --tun-type gue --tun-port 6080 --tun-csum --tun-nocsum",
        "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type",
        2,
    ),
    (
        "--start-daemon foo",
        "illegal start-daemon parameter specified",
        2,
    ),
    ("--stop-daemon foo", "illegal start_daemon specified", 2),
    // What director cannot represent.
    (
        "-a -t 10.0.0.1:80 -r 192.0.2.1 -i --tun-type gue --tun-port 6080",
        "Tunnel type gue is not supported by director",
        2,
    ),
    (
        "-A --sctp-service 10.0.0.1:80",
        "SCTP services are not supported by director",
        2,
    ),
    (
        "--start-daemon master --syncid 3",
        "The connection synchronisation daemon is not supported by director",
        2,
    ),
    (
        "-A -t 10.0.0.1:80 -p --pe sip",
        "Scheduler or persistence engine not found",
        255,
    ),
];

#[test]
fn rejected_command_lines() {
    for (line, message, code) in REJECTED {
        let e = err(line);
        assert_eq!(
            (e.message.as_str(), e.exit_code),
            (*message, *code),
            "ipvsadm {line}"
        );
    }
}

#[test]
fn restore_refuses_nested_restore_and_popt_errors_do_not_abort_it() {
    let e = parse(&argv("-R"), true).unwrap_err();
    assert_eq!(
        (e.message.as_str(), e.exit_code, e.aborts_restore),
        (
            "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
            255,
            true
        )
    );
    assert!(!err("-A -t 10.0.0.1:80 -q").aborts_restore);
    assert!(err("-A -t 10.0.0.1").aborts_restore);
}

#[test]
fn program_name_in_messages_is_argv0() {
    let args: Vec<String> = ["/usr/sbin/ipvsadm", "-n"].map(String::from).to_vec();
    assert_eq!(
        parse(&args, false).unwrap_err().message,
        "Try `/usr/sbin/ipvsadm -h' or '/usr/sbin/ipvsadm --help' for more information."
    );
}
