//! The IPVS TCP state machine (net/netfilter/ipvs/ip_vs_proto_tcp.c) and protocol timeouts.
//!
//! IPVS sees at most both halves of a connection and only tracks them loosely: one state per
//! connection, moved by the first of RST > SYN > FIN > ACK set in a segment, through one of three
//! tables: INPUT (client to server), OUTPUT (server to client, NAT only) and INPUT_ONLY (DR/TUN
//! connections, whose replies bypass the director). A segment with none of those flags moves
//! the connection to CLOSE, as in the kernel.

/// IPVS TCP connection state (`IP_VS_TCP_S_*`), in the kernel's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum TcpState {
    /// No segment seen yet.
    #[default]
    None = 0,
    /// ESTABLISHED.
    Established,
    /// SYN_SENT.
    SynSent,
    /// SYN_RECV.
    SynRecv,
    /// FIN_WAIT.
    FinWait,
    /// TIME_WAIT.
    TimeWait,
    /// CLOSE.
    Close,
    /// CLOSE_WAIT.
    CloseWait,
    /// LAST_ACK.
    LastAck,
    /// LISTEN.
    Listen,
    /// SYNACK.
    SynAck,
}

impl TcpState {
    /// Number of states.
    pub const COUNT: usize = 11;
    /// Every state, in the kernel's order (index = discriminant).
    pub const ALL: [TcpState; TcpState::COUNT] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// Name as `ipvsadm -L -c` prints it ("ESTABLISHED", "SYN_RECV", ...).
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// Whether a connection in this state counts as an active connection (ActiveConn)
    /// rather than an inactive one (InActConn).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck
        )
    }

    /// The state with discriminant `v`; out-of-range values read as CLOSE.
    pub(crate) fn from_u8(v: u8) -> TcpState {
        TcpState::ALL
            .get(usize::from(v))
            .copied()
            .unwrap_or(TcpState::Close)
    }
}

/// TCP header flag bits, as in the TCP header's flags byte.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// Direction of a packet relative to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to virtual service (IPVS's INPUT).
    Input,
    /// Real server to client, seen only for NAT (IPVS's OUTPUT).
    Output,
}

/// Which transition table moves a connection (IPVS's state offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateTable {
    /// Client-to-server segment of a connection whose replies pass the director.
    Input = 0,
    /// Server-to-client segment (NAT).
    Output = 1,
    /// Client-to-server segment of a connection whose replies bypass the director (DR/TUN).
    InputOnly = 2,
}

// Short names so the tables below read like the kernel's (NONE and SYNACK are never a
// next state in these tables; SYNACK is only reached by the kernel's secure_tcp tables).
const ES: TcpState = TcpState::Established;
const SS: TcpState = TcpState::SynSent;
const SR: TcpState = TcpState::SynRecv;
const FW: TcpState = TcpState::FinWait;
const TW: TcpState = TcpState::TimeWait;
const CL: TcpState = TcpState::Close;
const CW: TcpState = TcpState::CloseWait;
const LA: TcpState = TcpState::LastAck;
const LI: TcpState = TcpState::Listen;

/// Event row of a segment: which flag decided the transition.
const SYN_ROW: usize = 0;
const FIN_ROW: usize = 1;
const ACK_ROW: usize = 2;
const RST_ROW: usize = 3;

/// `TRANSITIONS[table][event][current state]` = next state (the kernel's `tcp_states`).
/// Columns: NO ES SS SR FW TW CL CW LA LI SA.
#[rustfmt::skip]
const TRANSITIONS: [[[TcpState; TcpState::COUNT]; 4]; 3] = [
    // INPUT
    [
        /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // OUTPUT
    [
        /* syn */ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT_ONLY
    [
        /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// The state a segment with `flags` moves a connection in `state` to, through `table`.
/// Flags are checked in the kernel's order RST > SYN > FIN > ACK; none of them gives CLOSE.
pub fn next_state(table: StateTable, flags: u8, state: TcpState) -> TcpState {
    let row = if flags & tcp_flags::RST != 0 {
        RST_ROW
    } else if flags & tcp_flags::SYN != 0 {
        SYN_ROW
    } else if flags & tcp_flags::FIN != 0 {
        FIN_ROW
    } else if flags & tcp_flags::ACK != 0 {
        ACK_ROW
    } else {
        return TcpState::Close;
    };
    TRANSITIONS[table as usize][row][state as usize]
}

/// Timeouts in seconds, per TCP state and for UDP (IPVS's per-protocol timeout tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    tcp: [u32; TcpState::COUNT],
    udp: u32,
}

impl Default for Timeouts {
    /// The kernel's defaults: ESTABLISHED 900 s, FIN_WAIT 120 s, UDP 300 s, ...
    fn default() -> Self {
        let mut tcp = [0u32; TcpState::COUNT];
        for s in TcpState::ALL {
            tcp[s as usize] = match s {
                TcpState::None => 2,
                TcpState::Established => 15 * 60,
                TcpState::SynSent => 2 * 60,
                TcpState::SynRecv => 60,
                TcpState::FinWait => 2 * 60,
                TcpState::TimeWait => 2 * 60,
                TcpState::Close => 10,
                TcpState::CloseWait => 60,
                TcpState::LastAck => 30,
                TcpState::Listen => 2 * 60,
                TcpState::SynAck => 120,
            };
        }
        Timeouts { tcp, udp: 5 * 60 }
    }
}

impl Timeouts {
    /// How long a persistence template that still controls connections lives on after its
    /// own timeout runs out (the kernel re-arms it for 60 s, again and again).
    pub const TEMPLATE_REARM: u32 = 60;

    /// Timeout of a TCP connection in `state`.
    #[inline]
    pub fn tcp(&self, state: TcpState) -> u32 {
        self.tcp[state as usize]
    }

    /// Timeout of a UDP connection.
    #[inline]
    pub fn udp(&self) -> u32 {
        self.udp
    }

    /// Sets the timeout of one TCP state.
    pub fn set_tcp(&mut self, state: TcpState, secs: u32) {
        self.tcp[state as usize] = secs;
    }

    /// Sets the UDP timeout.
    pub fn set_udp(&mut self, secs: u32) {
        self.udp = secs;
    }

    /// `ipvsadm --set tcp tcpfin udp`: ESTABLISHED, FIN_WAIT and UDP timeouts; 0 leaves a
    /// value unchanged. (Range checks are ipvsadm's, done before this.)
    pub fn apply_set(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        if tcp != 0 {
            self.set_tcp(TcpState::Established, tcp);
        }
        if tcpfin != 0 {
            self.set_tcp(TcpState::FinWait, tcpfin);
        }
        if udp != 0 {
            self.udp = udp;
        }
    }

    /// The `(tcp, tcpfin, udp)` triple `ipvsadm -L --timeout` shows.
    pub fn ipvsadm_view(&self) -> (u32, u32, u32) {
        (
            self.tcp(TcpState::Established),
            self.tcp(TcpState::FinWait),
            self.udp,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::tcp_flags::*;
    use super::*;

    #[test]
    fn an_ack_keeps_established_in_every_table() {
        // ConnTable's step takes this shortcut without the tables (PSH, URG, ECE, CWR may
        // ride along).
        for table in [StateTable::Input, StateTable::Output, StateTable::InputOnly] {
            for extra in [0u8, 0x08, 0x20, 0x28, 0x40, 0x80] {
                assert_eq!(
                    next_state(table, tcp_flags::ACK | extra, TcpState::Established),
                    TcpState::Established,
                    "{table:?} flags {extra:#x}"
                );
            }
        }
    }

    #[test]
    fn flag_priority_is_rst_syn_fin_ack() {
        let t = StateTable::Input;
        // RST wins over everything.
        assert_eq!(
            next_state(t, RST | SYN | FIN | ACK, TcpState::Established),
            TcpState::Close
        );
        // SYN over FIN/ACK: SYN from ESTABLISHED stays ESTABLISHED, FIN would give CLOSE_WAIT.
        assert_eq!(
            next_state(t, SYN | FIN | ACK, TcpState::Established),
            TcpState::Established
        );
        // FIN over ACK.
        assert_eq!(
            next_state(t, FIN | ACK, TcpState::Established),
            TcpState::CloseWait
        );
        assert_eq!(next_state(t, ACK, TcpState::SynRecv), TcpState::Established);
        // No relevant flag: CLOSE.
        assert_eq!(
            next_state(t, 0x08 /* PSH */, TcpState::Established),
            TcpState::Close
        );
    }

    #[test]
    fn direction_tables_differ_on_fin() {
        assert_eq!(
            next_state(StateTable::Input, FIN, TcpState::Established),
            TcpState::CloseWait
        );
        assert_eq!(
            next_state(StateTable::Output, FIN, TcpState::Established),
            TcpState::FinWait
        );
        assert_eq!(
            next_state(StateTable::InputOnly, FIN, TcpState::Established),
            TcpState::FinWait
        );
        assert_eq!(
            next_state(StateTable::Output, FIN, TcpState::CloseWait),
            TcpState::TimeWait
        );
        assert_eq!(
            next_state(StateTable::Output, SYN, TcpState::None),
            TcpState::SynSent
        );
    }

    #[test]
    fn active_states() {
        let active: Vec<_> = TcpState::ALL
            .iter()
            .filter(|s| s.is_active())
            .map(|s| s.name())
            .collect();
        assert_eq!(active, ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "SYNACK"]);
        for (i, s) in TcpState::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
            assert_eq!(TcpState::from_u8(i as u8), *s);
        }
        assert_eq!(TcpState::from_u8(200), TcpState::Close);
    }

    #[test]
    fn timeouts_defaults_and_set() {
        let mut t = Timeouts::default();
        assert_eq!(t.ipvsadm_view(), (900, 120, 300));
        assert_eq!(t.tcp(TcpState::None), 2);
        assert_eq!(t.tcp(TcpState::Close), 10);
        assert_eq!(t.tcp(TcpState::TimeWait), 120);
        t.apply_set(3600, 0, 30);
        assert_eq!(t.ipvsadm_view(), (3600, 120, 30));
        assert_eq!(t.udp(), 30);
    }
}
