// Idle connections: opens N client connections (INFO, CONNECT, PING/PONG each), holds them, and
// reports the server's RSS before, once all are connected, and while they are held.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "conn.h"
#include "cpu.h"
#include "opts.h"

int run_conns(const opts_t *o) {
  char err[256];
  int n = o->conns;
  conn_t *cs = calloc((size_t)(n > 0 ? n : 1), sizeof *cs);
  sleep_ns(300000000ull);
  uint64_t rss0 = process_rss_kb(o->server_pid);
  uint64_t t0 = now_ns();
  for (int i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "bench-idle-%d", i);
    if (conn_open(&cs[i], o->host, o->port, 0, name, err, sizeof err) < 0 || conn_write(&cs[i], "PING\r\n", 6) < 0 ||
        conn_wait_pong(&cs[i], err, sizeof err) < 0) {
      fail("connection %d of %d: %s", i + 1, n, err);
      print_failure_json(o->mode);
      return 0;
    }
    free(cs[i].buf);  // the generator's own memory: keep only the socket
    cs[i].buf = NULL;
    cs[i].len = cs[i].cap = 0;
  }
  double connect_secs = (double)(now_ns() - t0) / 1e9;
  sleep_ns(500000000ull);
  uint64_t rss1 = process_rss_kb(o->server_pid);
  // Hold: sample RSS; the lowest late sample is what the connections cost once garbage is collected.
  uint64_t samples = o->hold_ms / 250 + 1, rss_min = rss1, rss_last = rss1;
  for (uint64_t k = 0; k < samples; k++) {
    sleep_ns(250000000ull);
    rss_last = process_rss_kb(o->server_pid);
    if (rss_last < rss_min) rss_min = rss_last;
  }
  // Still connected? A PING on a few of them must be answered.
  for (int i = 0; i < n; i += n / 10 + 1) {
    cs[i].cap = 0;
    if (conn_write(&cs[i], "PING\r\n", 6) < 0 || conn_wait_pong(&cs[i], err, sizeof err) < 0) {
      fail("connection %d after holding: %s", i, err);
      break;
    }
  }
  for (int i = 0; i < n; i++) conn_close(&cs[i]);
  if (failed()) {
    print_failure_json(o->mode);
    return 0;
  }
  printf("{\"ok\":true,\"mode\":\"conns\",\"conns\":%d,\"connect_seconds\":%.3f,\"rss_before_kb\":%" PRIu64
         ",\"rss_connected_kb\":%" PRIu64 ",\"rss_held_min_kb\":%" PRIu64 ",\"rss_held_last_kb\":%" PRIu64 "}\n",
         n, connect_secs, rss0, rss1, rss_min, rss_last);
  return 0;
}
