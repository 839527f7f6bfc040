// Command-line options of the load generator (see usage() in main.c).
#pragma once
#include <stdint.h>
#include <sys/types.h>

typedef struct {
  const char *mode;  // "throughput" or "latency"
  const char *host;
  int port;          // NATS TCP port (publisher, requester, responder, TCP subscribers)
  int ws_port;       // WebSocket port (subscribers when sub_ws)
  int subs;          // 0 = pub-only
  int queue;         // subscribers form one queue group
  int sub_ws;        // subscribers connect over WebSocket
  int sub_threads;   // epoll threads sharing the subscriber connections
  int size;          // payload bytes
  uint64_t warmup_ms, duration_ms;
  uint64_t window_msgs;   // publisher may run at most this many messages ahead of the slowest subscriber
  uint64_t window_bytes;  // ... and at most this many frame bytes ahead
  uint64_t batch_bytes;   // bytes of PUB frames per write()
  pid_t server_pid;       // for server CPU%
  const char *samples;    // latency / oneway: write the samples (uint64 ns, little endian) here
  int pubs;               // publisher connections (throughput; more than one only for pub-only)
  const char *sub_subjects;  // comma list of subscription subjects, round-robin over subscribers (bench.tp)
  const char *sub_ports;  // cluster runs: ports of the subscribers' / responder's servers, round-robin (cluster.h)
  int noise_subs;         // unrelated subscriptions on an extra connection that must receive nothing
  int relay;              // the peer is bench/relay.ts: publish MSG frames, no PING/PONG at the end
  double rate;            // oneway: messages per second, paced
  uint64_t interval_ms;   // oneway: per-interval statistics (soak), 0 = none
  uint64_t trie_subs;     // trie: subscriptions in the trie
  int trie_wild;          // trie: wildcard subscriptions (else literal + one catch-all)
  int sub_conns;          // trie: connections holding the subscriptions
  int conns;              // conns: idle connections to open
  uint64_t hold_ms;       // conns: how long to hold them (RSS sampled meanwhile)
} opts_t;

int run_throughput(const opts_t *o);
int run_latency(const opts_t *o);
int run_pub_multi(const opts_t *o);
int run_oneway(const opts_t *o);
int run_trie(const opts_t *o);
int run_conns(const opts_t *o);
