// Cluster runs: subscribers on other servers than the publisher, and the readiness probes that make
// sure their interest has propagated before the run starts (see cluster.h).
#include "cluster.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "proto.h"

#define READY_DEADLINE_NS (20ull * 1000000000ull)
#define READY_SID "999999"

int sub_port(const opts_t *o, int index) {
  if (!o->sub_ports || !*o->sub_ports) return o->port;
  int entries = 1;
  for (const char *c = o->sub_ports; *c; c++) entries += *c == ',';
  const char *at = o->sub_ports;
  for (int k = index % entries; k > 0; k--) at = strchr(at, ',') + 1;
  return atoi(at);
}

// Reads what is there (waiting up to ms), answers PINGs, and reports whether a MSG on `subject`
// came (other MSGs on bench.ready.* are late probes: dropped). -1 on error.
static int poll_for(conn_t *c, const char *subject, int ms, int want_pong, char *err, size_t errlen) {
  struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
  int got = 0;
  if (poll(&pfd, 1, ms) > 0) {
    ssize_t k = conn_fill(c);
    if (k == -1 || k == -3) {
      snprintf(err, errlen, "readiness probe: %s", k == -1 ? "server closed the connection" : strerror(errno));
      return -1;
    }
  }
  size_t p = 0;
  for (;;) {
    op_t op;
    proto_next(c->buf + p, c->len - p, &op);
    if (op.kind == OP_NEED_MORE) break;
    if (op.kind == OP_MSG) {
      if (op.subject_len == strlen(subject) && memcmp(op.subject, subject, op.subject_len) == 0) got = 1;
      else if (!(op.subject_len > 12 && memcmp(op.subject, "bench.ready.", 12) == 0)) {
        snprintf(err, errlen, "unexpected MSG while probing: %.*s", (int)op.line_len, op.line);
        return -1;
      }
    } else if (op.kind == OP_PING) {
      if (conn_write(c, "PONG\r\n", 6) < 0) return -1;
    } else if (op.kind == OP_PONG) {
      if (want_pong) got = 1;
    } else if (op.kind == OP_ERR || op.kind == OP_BAD) {
      snprintf(err, errlen, "while probing: %.*s", (int)(op.line_len > 80 ? 80 : op.line_len), op.line);
      return -1;
    }
    p += op.total;
  }
  conn_consume(c, p);
  return got;
}

int cluster_subs_ready(const opts_t *o, sub_t **subs, int n, char *err, size_t errlen) {
  conn_t probe;
  if (conn_open(&probe, o->host, o->port, 0, "bench-probe", err, errlen) < 0) return -1;
  uint64_t deadline = now_ns() + READY_DEADLINE_NS;
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    conn_t *c = &subs[i]->conn;
    char subject[48], cmd[96];
    snprintf(subject, sizeof subject, "bench.ready.%d", i);
    int len = snprintf(cmd, sizeof cmd, "SUB %s " READY_SID "\r\n", subject);
    if (conn_write(c, cmd, (size_t)len) < 0) {
      snprintf(err, errlen, "subscriber %d: write SUB: %s", i, strerror(errno));
      rc = -1;
      break;
    }
    len = snprintf(cmd, sizeof cmd, "PUB %s 0\r\n\r\n", subject);
    int got = 0;
    while (!got) {
      if (now_ns() > deadline) {
        snprintf(err, errlen, "subscriber %d's interest did not reach the publisher's server within %llu s", i,
                 READY_DEADLINE_NS / 1000000000ull);
        rc = -1;
        break;
      }
      if (conn_write(&probe, cmd, (size_t)len) < 0) {
        snprintf(err, errlen, "probe write: %s", strerror(errno));
        rc = -1;
        break;
      }
      got = poll_for(c, subject, 20, 0, err, errlen);
      if (got < 0) rc = -1;
    }
    if (rc < 0) break;
    // Unsubscribe; probes still in flight are dropped until the PONG, and none can follow it.
    static const char unsub[] = "UNSUB " READY_SID "\r\nPING\r\n";
    if (conn_write(c, unsub, sizeof unsub - 1) < 0) {
      rc = -1;
      break;
    }
    int pong = 0;
    while (!pong && rc == 0) {
      if (now_ns() > deadline) {
        snprintf(err, errlen, "subscriber %d: no PONG after the readiness probe", i);
        rc = -1;
      } else if ((pong = poll_for(c, "-", 100, 1, err, errlen)) < 0) {
        rc = -1;
      }
    }
  }
  conn_close(&probe);
  return rc;
}

int cluster_requester_ready(conn_t *q, int size, char *err, size_t errlen) {
  char *req = malloc((size_t)size + 64);
  int n = sprintf(req, "PUB bench.req " READY_INBOX " %d\r\n", size);
  memset(req + n, 'r', (size_t)size);
  memcpy(req + n + size, "\r\n", 2);
  uint64_t deadline = now_ns() + READY_DEADLINE_NS;
  int got = 0;
  while (!got) {
    if (now_ns() > deadline) {
      snprintf(err, errlen, "no answer to a readiness probe within %llu s (interest did not propagate)",
               READY_DEADLINE_NS / 1000000000ull);
      break;
    }
    if (conn_write(q, req, (size_t)n + (size_t)size + 2) < 0) {
      snprintf(err, errlen, "probe write: %s", strerror(errno));
      break;
    }
    struct pollfd pfd = {.fd = q->fd, .events = POLLIN};
    if (poll(&pfd, 1, 20) <= 0) continue;
    ssize_t k = conn_fill(q);
    if (k == -1 || k == -3) {
      snprintf(err, errlen, "readiness probe: server closed the connection");
      break;
    }
    size_t p = 0;
    for (;;) {
      op_t op;
      proto_next(q->buf + p, q->len - p, &op);
      if (op.kind == OP_NEED_MORE) break;
      if (op.kind == OP_MSG && op.subject_len == strlen(READY_INBOX) && memcmp(op.subject, READY_INBOX, op.subject_len) == 0)
        got = 1;
      else if (op.kind == OP_PING && conn_write(q, "PONG\r\n", 6) < 0)
        break;
      p += op.total;
    }
    conn_consume(q, p);
  }
  free(req);
  return got ? 0 : -1;
}
