//! EAL error paths, in their own process: before a successful init nothing works, and a bad
//! EAL argument is an error value (no abort, no panic). One test function, so the order of
//! these steps is fixed.

use director::dpdk::{eal, DpdkError, MbufRing, Mempool, Port};

#[test]
fn bad_eal_argument_is_an_error_and_nothing_runs_before_init() {
    assert!(!eal::is_initialised());
    assert_eq!(director::dpdk::tsc_hz(), 0);
    assert!(matches!(
        Mempool::new("p_early", 16, 0, 2176),
        Err(DpdkError::NotInitialised)
    ));
    assert!(matches!(
        Port::probe_vdev("net_null0"),
        Err(DpdkError::NotInitialised)
    ));
    assert!(matches!(
        MbufRing::new("r_early", 4),
        Err(DpdkError::NotInitialised)
    ));
    assert!(matches!(
        eal::register_thread(),
        Err(DpdkError::NotInitialised)
    ));

    let bad: Vec<String> = ["director-test", "--no-such-eal-option", "--no-shconf"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let err = eal::init(&bad).expect_err("unknown EAL option");
    match &err {
        DpdkError::Call { what, errno } => {
            assert!(what.starts_with("rte_eal_init("), "{what}");
            assert_eq!(*errno, libc::EINVAL);
        }
        other => panic!("unexpected error {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("--no-such-eal-option") && msg.contains("Invalid argument"),
        "{msg}"
    );
    assert!(!eal::is_initialised());

    let nul = vec!["director-test".to_string(), "-l\0".to_string()];
    assert!(matches!(
        eal::init(&nul),
        Err(DpdkError::InvalidArgument(_))
    ));
    assert!(matches!(eal::init(&[]), Err(DpdkError::InvalidArgument(_))));
}
