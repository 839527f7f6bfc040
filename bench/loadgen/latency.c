// Request-reply round trip: a responder connection answers each request on its reply subject; the
// requester sends one request at a time with a unique reply subject under a wildcard inbox
// subscription (as the official clients do) and times each round trip.
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "common.h"
#include "conn.h"
#include "cpu.h"
#include "opts.h"
#include "proto.h"

#define REQ_SUBJECT "bench.req"
#define INBOX_PREFIX "bench.inbox."

static atomic_int g_stop;

typedef struct {
  conn_t conn;
  uint64_t answered;
} responder_t;

static void *responder_main(void *arg) {
  responder_t *r = arg;
  conn_t *c = &r->conn;
  size_t out_cap = 1 << 16;
  char *out = malloc(out_cap);
  while (!atomic_load(&g_stop) && !failed()) {
    ssize_t k = conn_fill(c);
    if (k == -2) continue;  // read timeout: look at the stop flag
    if (k < 0) {
      if (!atomic_load(&g_stop)) fail("responder: server closed the connection");
      break;
    }
    size_t p = 0, out_len = 0;
    for (;;) {
      op_t op;
      proto_next(c->buf + p, c->len - p, &op);
      if (op.kind == OP_NEED_MORE) break;
      if (op.kind == OP_MSG) {
        if (!op.reply) {
          fail("responder: request without a reply subject");
          break;
        }
        size_t need = op.reply_len + op.size + 64;
        if (out_len + need > out_cap) {
          while (out_len + need > out_cap) out_cap *= 2;
          out = realloc(out, out_cap);
        }
        out_len += (size_t)sprintf(out + out_len, "PUB %.*s %zu\r\n", (int)op.reply_len, op.reply, op.size);
        memcpy(out + out_len, op.payload, op.size);
        out_len += op.size;
        memcpy(out + out_len, "\r\n", 2);
        out_len += 2;
        if (op.reply_len != strlen(READY_INBOX) || memcmp(op.reply, READY_INBOX, op.reply_len) != 0) r->answered++;
      } else if (op.kind == OP_PING) {
        memcpy(out + out_len, "PONG\r\n", 6);  // out always has 64 spare bytes here
        out_len += 6;
      } else if (op.kind == OP_ERR || op.kind == OP_BAD) {
        fail("responder: %.*s", (int)(op.line_len > 80 ? 80 : op.line_len), op.line);
        break;
      }
      p += op.total;
    }
    conn_consume(c, p);
    if (out_len && conn_write(c, out, out_len) < 0) {
      fail("responder write: %s", strerror(errno));
      break;
    }
  }
  free(out);
  return NULL;
}

// Sends request #i and waits for its reply. Returns the round trip in ns, 0 on failure.
static uint64_t round_trip(conn_t *q, uint64_t i, int size, char *req, const char *payload) {
  char inbox[48];
  int inbox_len = snprintf(inbox, sizeof inbox, INBOX_PREFIX "%" PRIu64, i);
  int n = sprintf(req, "PUB " REQ_SUBJECT " %s %d\r\n", inbox, size);
  memcpy(req + n, payload, (size_t)size);
  memcpy(req + n, &i, 8);  // the request number, so a reply can be matched to its request
  memcpy(req + n + size, "\r\n", 2);
  uint64_t t = now_ns();
  if (conn_write(q, req, (size_t)n + (size_t)size + 2) < 0) {
    fail("requester write: %s", strerror(errno));
    return 0;
  }
  for (;;) {
    op_t op;
    proto_next(q->buf, q->len, &op);
    switch (op.kind) {
      case OP_NEED_MORE: {
        ssize_t k = conn_fill(q);
        if (k < 0) {
          fail("requester: %s", k == -2 ? "no reply within 10 s" : "server closed the connection");
          return 0;
        }
        continue;
      }
      case OP_MSG: {
        uint64_t dt = now_ns() - t;
        if (op.subject_len == strlen(READY_INBOX) && memcmp(op.subject, READY_INBOX, op.subject_len) == 0) {
          conn_consume(q, op.total);  // a late answer to a cluster readiness probe
          continue;
        }
        if (op.subject_len != (size_t)inbox_len || memcmp(op.subject, inbox, op.subject_len) != 0) {
          fail("requester: reply on %.*s while waiting for %s", (int)op.subject_len, op.subject, inbox);
          return 0;
        }
        if (op.size != (size_t)size || memcmp(op.payload, &i, 8) != 0) {
          fail("requester: reply payload differs from the request");
          return 0;
        }
        conn_consume(q, op.total);
        return dt ? dt : 1;
      }
      case OP_PING:
        conn_consume(q, op.total);
        if (conn_write(q, "PONG\r\n", 6) < 0) return 0;
        continue;
      case OP_OK:
      case OP_INFO:
      case OP_PONG:
        conn_consume(q, op.total);
        continue;
      default:
        fail("requester: %.*s", (int)(op.line_len > 80 ? 80 : op.line_len), op.line);
        return 0;
    }
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int run_latency(const opts_t *o) {
  char err[256];
  responder_t resp = {0};
  conn_t q;
  const char *rsub = "SUB " REQ_SUBJECT " 1\r\nPING\r\n";
  if (conn_open(&resp.conn, o->host, sub_port(o, 0), 0, "bench-responder", err, sizeof err) < 0 ||
      conn_write(&resp.conn, rsub, strlen(rsub)) < 0 ||
      conn_wait_pong(&resp.conn, err, sizeof err) < 0) {
    fail("responder setup: %s", err);
    print_failure_json(o->mode);
    return 0;
  }
  const char *sub = "SUB " INBOX_PREFIX "* 1\r\nPING\r\n";
  if (conn_open(&q, o->host, o->port, 0, "bench-requester", err, sizeof err) < 0 ||
      conn_write(&q, sub, strlen(sub)) < 0 || conn_wait_pong(&q, err, sizeof err) < 0) {
    fail("requester setup: %s", err);
    print_failure_json(o->mode);
    return 0;
  }
  conn_set_timeout_ms(&resp.conn, 200);  // so the responder notices the stop flag
  pthread_t tid;
  pthread_create(&tid, NULL, responder_main, &resp);
  if (o->sub_ports && cluster_requester_ready(&q, o->size, err, sizeof err) < 0) fail("cluster: %s", err);

  char *req = malloc((size_t)o->size + 128);
  char *payload = malloc((size_t)o->size);
  memset(payload, 'x', (size_t)o->size);
  uint64_t i = 0;
  uint64_t end = now_ns() + o->warmup_ms * 1000000ull;
  while (!failed() && now_ns() < end) round_trip(&q, i++, o->size, req, payload);

  size_t cap = 1 << 16, n = 0;
  uint64_t *samples = malloc(cap * sizeof *samples);
  cpu_sample_t ca, cb;
  cpu_sample(&ca, &tid, 1, o->server_pid);
  uint64_t t0 = now_ns();
  struct timespec wall0;  // the timed phase's start on the wall clock, for lining samples up with a server's log
  clock_gettime(CLOCK_REALTIME, &wall0);
  end = t0 + o->duration_ms * 1000000ull;
  while (!failed() && now_ns() < end) {
    uint64_t dt = round_trip(&q, i++, o->size, req, payload);
    if (!dt) break;
    if (n == cap) samples = realloc(samples, (cap *= 2) * sizeof *samples);
    samples[n++] = dt;
  }
  uint64_t t1 = now_ns();
  cpu_sample(&cb, &tid, 1, o->server_pid);
  atomic_store(&g_stop, 1);
  pthread_join(tid, NULL);
  if (!failed() && resp.answered != i) fail("responder answered %" PRIu64 " of %" PRIu64 " requests", resp.answered, i);
  if (failed()) {
    print_failure_json(o->mode);
    return 0;
  }
  if (o->samples) {
    FILE *f = fopen(o->samples, "wb");
    if (!f || fwrite(samples, sizeof *samples, n, f) != n) {
      fprintf(stderr, "cannot write %s\n", o->samples);
      return 1;
    }
    fclose(f);
    char start_file[4096];
    snprintf(start_file, sizeof start_file, "%s.start", o->samples);
    FILE *g = fopen(start_file, "w");
    if (g) {
      fprintf(g, "%lld%09ld\n", (long long)wall0.tv_sec, wall0.tv_nsec);
      fclose(g);
    }
  }
  double sum = 0;
  for (size_t k = 0; k < n; k++) sum += (double)samples[k];
  qsort(samples, n, sizeof *samples, cmp_u64);
#define PCT(p) ((double)samples[(size_t)((double)(n - 1) * (p))] / 1000.0)
  double secs = (double)(t1 - t0) / 1e9;
  cpu_percent_t cpu = cpu_percent(&ca, &cb, t1 - t0);
  printf("{\"ok\":true,\"mode\":\"latency\",\"size\":%d,\"requests\":%zu,\"seconds\":%.6f,\"req_per_sec\":%.1f,"
         "\"mean_us\":%.3f,\"min_us\":%.3f,\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,\"max_us\":%.3f,"
         "\"cpu\":{\"pub\":%.1f,\"subs\":%.1f,\"user\":%.1f,\"sys\":%.1f,\"server\":%.1f,\"other\":%.1f,\"steal\":%.1f}}\n",
         o->size, n, secs, (double)n / secs, n ? sum / (double)n / 1000.0 : 0, n ? PCT(0) : 0, n ? PCT(0.5) : 0,
         n ? PCT(0.99) : 0, n ? PCT(0.999) : 0, n ? PCT(1.0) : 0, cpu.main, cpu.others, cpu.user, cpu.sys,
         cpu.server, cpu.other_load, cpu.steal);
  return 0;
}
