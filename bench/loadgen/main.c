// natter bench load generator: drives a NATS server over raw sockets and prints one JSON line.
// Written in C so that the generator, not the server, is never what limits the numbers.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "common.h"
#include "opts.h"

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --mode throughput|latency --port P [options]\n"
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
          "  --samples FILE       latency: write round-trip samples (uint64 ns LE)\n");
  exit(1);
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
    else {
      fprintf(stderr, "unknown or incomplete option: %s\n", a);
      usage();
    }
#undef ARG
  }
  if (!o.mode || o.port <= 0 || o.size < 8 || (o.sub_ws && o.ws_port <= 0)) usage();
  if (o.sub_threads <= 0) o.sub_threads = o.subs < 2 ? 1 : 2;
  if (o.sub_threads > o.subs && o.subs > 0) o.sub_threads = o.subs;

  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_TIMERSLACK, 1000UL);  // short sleeps in flow control should be short (1 µs slack)

  if (strcmp(o.mode, "throughput") == 0) return run_throughput(&o);
  if (strcmp(o.mode, "latency") == 0) return run_latency(&o);
  usage();
  return 1;
}
