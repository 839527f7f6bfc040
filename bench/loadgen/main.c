// natter bench load generator: drives a NATS server over raw sockets and prints one JSON line.
// Written in C so that the generator, not the server, is never what limits the numbers.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "common.h"
#include "cpu.h"
#include "conn.h"
#include "opts.h"

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --mode throughput|latency|oneway|trie|conns --port P [options]\n"
          "  --host ADDR          server address (127.0.0.1)\n"
          "  --ws-port P          WebSocket port, for --sub-ws\n"
          "  --subs N             subscribers (0 = pub-only)            throughput\n"
          "  --queue              subscribers form one queue group      throughput\n"
          "  --sub-ws             subscribers connect over WebSocket    throughput\n"
          "  --sub-threads N      epoll threads for subscribers (min(subs,2))\n"
          "  --size B             payload bytes (>= 8: carries the sequence number)\n"
          "  --warmup-ms MS       untimed warm-up phase (500)\n"
          "  --duration-ms MS     timed phase (2000)\n"
          "  --window-msgs N      max messages the publisher runs ahead of the slowest subscriber (65536)\n"
          "  --window-bytes B     ... and max frame bytes in flight over all subscribers (8 MiB)\n"
          "  --batch-bytes B      PUB bytes per write (65536)\n"
          "  --server-pid PID     report the server's CPU use\n"
          "  --samples FILE       latency/oneway: write samples (uint64 ns LE); latency: FILE.start, the timed phase's start (ns since the epoch)\n"
          "  --pubs N             publisher connections (pub-only: more than 1 allowed)   throughput\n"
          "  --sub-subject A,B    subscription subjects, round-robin (bench.tp)           throughput/oneway\n"
          "  --sub-ports P1,P2    subscribers / responder on these servers (a cluster), round-robin\n"
          "  --placement MODE     one port, several server processes (natter --procs), by INFO server_id:\n"
          "                       same|cross: subscribers/responder on the publisher's process or another;\n"
          "                       spread: each connection on another process than the one before\n"
          "  --server-pids A,B    more server processes counted in the server CPU (a cluster's other nodes)\n"
          "  --noise-subs N       unrelated subscriptions on an extra connection          throughput\n"
          "  --relay              the server is bench/relay.ts: publish MSG frames        throughput\n"
          "  --rate R             oneway: messages per second, paced (20000)\n"
          "  --interval-ms MS     oneway: per-interval p50/p99 and server RSS (soak)\n"
          "  --trie-subs N        trie: subscriptions in the trie (1000)\n"
          "  --trie-kind K        trie: literal | wildcard\n"
          "  --sub-conns N        trie: connections holding the subscriptions (1)\n"
          "  --conns N            conns: idle connections to open\n"
          "  --hold-ms MS         conns: how long to hold them (2000)\n");
  exit(1);
}

// Thousands of connections need descriptors: raise the soft limit to the hard one.
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char **argv) {
  opts_t o = {
      .mode = NULL,
      .host = "127.0.0.1",
      .sub_threads = 0,
      .size = 128,
      .warmup_ms = 500,
      .duration_ms = 2000,
      .window_msgs = 65536,
      .window_bytes = 8u << 20,
      .batch_bytes = 65536,
      .pubs = 1,
      .sub_subjects = "bench.tp",
      .rate = 20000,
      .trie_subs = 1000,
      .sub_conns = 1,
      .hold_ms = 2000,
  };
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) usage();
    else if (ARG("--mode")) o.mode = v;
    else if (ARG("--host")) o.host = v;
    else if (ARG("--port")) o.port = atoi(v);
    else if (ARG("--ws-port")) o.ws_port = atoi(v);
    else if (ARG("--subs")) o.subs = atoi(v);
    else if (strcmp(a, "--queue") == 0) o.queue = 1;
    else if (strcmp(a, "--sub-ws") == 0) o.sub_ws = 1;
    else if (ARG("--sub-threads")) o.sub_threads = atoi(v);
    else if (ARG("--size")) o.size = atoi(v);
    else if (ARG("--warmup-ms")) o.warmup_ms = strtoull(v, NULL, 10);
    else if (ARG("--duration-ms")) o.duration_ms = strtoull(v, NULL, 10);
    else if (ARG("--window-msgs")) o.window_msgs = strtoull(v, NULL, 10);
    else if (ARG("--window-bytes")) o.window_bytes = strtoull(v, NULL, 10);
    else if (ARG("--batch-bytes")) o.batch_bytes = strtoull(v, NULL, 10);
    else if (ARG("--server-pid")) o.server_pid = atoi(v);
    else if (ARG("--samples")) o.samples = v;
    else if (ARG("--pubs")) o.pubs = atoi(v);
    else if (ARG("--sub-subject")) o.sub_subjects = v;
    else if (ARG("--sub-ports")) o.sub_ports = v;
    else if (ARG("--placement")) {
      if (conn_set_placement(v) < 0) usage();
    }
    else if (ARG("--server-pids")) cpu_add_server_pids(v);
    else if (ARG("--noise-subs")) o.noise_subs = atoi(v);
    else if (strcmp(a, "--relay") == 0) o.relay = 1;
    else if (ARG("--rate")) o.rate = atof(v);
    else if (ARG("--interval-ms")) o.interval_ms = strtoull(v, NULL, 10);
    else if (ARG("--trie-subs")) o.trie_subs = strtoull(v, NULL, 10);
    else if (ARG("--trie-kind")) o.trie_wild = strcmp(v, "wildcard") == 0;
    else if (ARG("--sub-conns")) o.sub_conns = atoi(v);
    else if (ARG("--conns")) o.conns = atoi(v);
    else if (ARG("--hold-ms")) o.hold_ms = strtoull(v, NULL, 10);
    else {
      fprintf(stderr, "unknown or incomplete option: %s\n", a);
      usage();
    }
#undef ARG
  }
  if (!o.mode || o.port <= 0 || o.size < 8 || (o.sub_ws && o.ws_port <= 0)) usage();
  if (o.sub_threads <= 0) o.sub_threads = o.subs < 2 ? 1 : 2;
  if (o.sub_threads > o.subs && o.subs > 0) o.sub_threads = o.subs;

  if (o.pubs < 1 || o.sub_conns < 1 || o.rate <= 0) usage();
  if (o.pubs > 1 && o.subs > 0) {
    fprintf(stderr, "--pubs > 1 is for pub-only runs (--subs 0)\n");
    return 1;
  }
  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_TIMERSLACK, 1000UL);  // short sleeps in flow control should be short (1 µs slack)

  if (strcmp(o.mode, "throughput") == 0) return o.pubs > 1 ? run_pub_multi(&o) : run_throughput(&o);
  if (strcmp(o.mode, "oneway") == 0) return run_oneway(&o);
  if (strcmp(o.mode, "trie") == 0) return run_trie(&o);
  if (strcmp(o.mode, "conns") == 0) return run_conns(&o);
  if (strcmp(o.mode, "latency") == 0) return run_latency(&o);
  usage();
  return 1;
}
