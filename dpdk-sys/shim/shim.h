/*
 * dpdk-sys shim: non-inline wrappers (prefixed shim_) for DPDK's static inline fast-path
 * functions, its macros and the per-thread rte_errno, which bindgen cannot bind directly.
 * This header is also the bindgen entry point: it pulls in every DPDK header the crate binds.
 */
#ifndef DPDK_SYS_SHIM_H
#define DPDK_SYS_SHIM_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_config.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

/* ethdev burst I/O */
uint16_t shim_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts,
			   uint16_t nb_pkts);
uint16_t shim_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts,
			   uint16_t nb_pkts);
/* RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP (a macro expression bindgen cannot evaluate) */
uint64_t shim_eth_rss_ip_tcp_udp(void);

/* mbuf allocation */
struct rte_mbuf *shim_pktmbuf_alloc(struct rte_mempool *mp);
int shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count);
void shim_pktmbuf_free(struct rte_mbuf *m);
void shim_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count);

/* mbuf data and length manipulation */
void *shim_pktmbuf_mtod(struct rte_mbuf *m);
char *shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
char *shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
int shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t shim_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t shim_pktmbuf_tailroom(const struct rte_mbuf *m);
uint32_t shim_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t shim_pktmbuf_data_len(const struct rte_mbuf *m);
uint16_t shim_pktmbuf_data_room_size(struct rte_mempool *mp);

/* mbuf metadata */
uint32_t shim_mbuf_rss_hash(const struct rte_mbuf *m);
uint16_t shim_mbuf_port(const struct rte_mbuf *m);
void shim_mbuf_set_port(struct rte_mbuf *m, uint16_t port);
uint64_t shim_mbuf_ol_flags(const struct rte_mbuf *m);
void shim_mbuf_set_ol_flags(struct rte_mbuf *m, uint64_t flags);

/* lcore, time, errno, prefetch */
unsigned int shim_lcore_id(void);
uint64_t shim_rdtsc(void);
uint64_t shim_get_tsc_hz(void);
int shim_errno(void);
void shim_prefetch0(const void *p);

/* rings of object pointers */
unsigned int shim_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned int n);
unsigned int shim_ring_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned int n);
unsigned int shim_ring_count(const struct rte_ring *r);

#endif /* DPDK_SYS_SHIM_H */
