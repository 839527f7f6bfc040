// Subscriber side of the throughput scenarios: parse, count, verify sequence numbers.
#include "sub.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cluster.h"
#include "common.h"
#include "proto.h"

static atomic_int g_stop;

int sub_open(sub_t *s, const opts_t *o, int index, char *err, size_t errlen) {
  char name[32];
  snprintf(name, sizeof name, "bench-sub-%d", index);
  if (conn_open(&s->conn, o->host, o->sub_ws ? o->ws_port : sub_port(o, index), o->sub_ws, name, err, errlen) < 0) return -1;
  s->index = index;
  s->queue = o->queue;
  s->size = (size_t)o->size;
  s->hdr_len = (size_t)snprintf(s->hdr, sizeof s->hdr, "MSG %s 1 %d\r\n", BENCH_SUBJECT, o->size);
  // The index-th entry of the comma list, round-robin.
  char subject[128];
  const char *list = o->sub_subjects ? o->sub_subjects : BENCH_SUBJECT;
  int entries = 1;
  for (const char *c = list; *c; c++) entries += *c == ',';
  const char *at = list;
  for (int k = index % entries; k > 0; k--) at = strchr(at, ',') + 1;
  size_t len = strcspn(at, ",");
  snprintf(subject, sizeof subject, "%.*s", (int)len, at);
  char cmd[192];
  int n = o->queue ? snprintf(cmd, sizeof cmd, "SUB %s bench-q 1\r\nPING\r\n", subject)
                   : snprintf(cmd, sizeof cmd, "SUB %s 1\r\nPING\r\n", subject);
  if (conn_write(&s->conn, cmd, (size_t)n) < 0) {
    snprintf(err, errlen, "subscriber %d: write SUB: %s", index, strerror(errno));
    return -1;
  }
  if (conn_wait_pong(&s->conn, err, errlen) < 0) return -1;
  conn_set_nonblocking(&s->conn);
  return 0;
}

// One received payload: check its sequence number (first 8 bytes, little endian). t_read is when
// the read that brought it completed (oneway latency).
static int deliver(sub_t *s, const char *payload, uint64_t t_read) {
  uint64_t seq;
  memcpy(&seq, payload, 8);
  if (s->lat && seq >= s->lat_from && seq < s->lat_to) {
    uint64_t sent;
    memcpy(&sent, payload + 8, 8);
    uint64_t d = t_read > sent ? t_read - sent : 1;
    s->lat[seq - s->lat_from] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
  }
  if (!s->queue) {
    if (seq != s->next_seq) {
      fail("subscriber %d: expected message #%llu, got #%llu (%s)", s->index, (unsigned long long)s->next_seq,
           (unsigned long long)seq, seq > s->next_seq ? "messages lost" : "duplicate or reordered");
      return -1;
    }
  } else {
    if (seq < s->next_seq) {
      fail("queue member %d: message #%llu after #%llu (duplicate or reordered)", s->index,
           (unsigned long long)seq, (unsigned long long)s->next_seq - 1);
      return -1;
    }
    s->hash += mix64(seq);
  }
  s->next_seq = seq + 1;
  s->count++;
  return 0;
}

// Parses everything complete in the connection's buffer.
static int sub_parse(sub_t *s, gate_t *gate, uint64_t t_read) {
  conn_t *c = &s->conn;
  const char *b = c->buf;
  size_t len = c->len, p = 0;
  const size_t frame = s->hdr_len + s->size + 2;
  int rc = 0;
  while (p < len) {
    // Fast path: the control line is exactly the one we expect.
    if (len - p >= s->hdr_len && memcmp(b + p, s->hdr, s->hdr_len) == 0) {
      if (len - p < frame) break;
      const char *payload = b + p + s->hdr_len;
      if (payload[s->size] != '\r' || payload[s->size + 1] != '\n') {
        fail("subscriber %d: payload not followed by CRLF", s->index);
        rc = -1;
        break;
      }
      if (deliver(s, payload, t_read) < 0) {
        rc = -1;
        break;
      }
      p += frame;
      continue;
    }
    op_t op;
    proto_next(b + p, len - p, &op);
    if (op.kind == OP_NEED_MORE) break;
    switch (op.kind) {
      case OP_MSG:  // e.g. different spacing: accept if subject and size are right
        if ((!s->any_subject &&
             (op.subject_len != strlen(BENCH_SUBJECT) || memcmp(op.subject, BENCH_SUBJECT, op.subject_len) != 0)) ||
            op.size != s->size) {
          fail("subscriber %d: unexpected MSG: %.*s", s->index, (int)op.line_len, op.line);
          rc = -1;
        } else {
          rc = deliver(s, op.payload, t_read);
        }
        break;
      case OP_PING:
        if (conn_write(c, "PONG\r\n", 6) < 0) {
          fail("subscriber %d: write PONG: %s", s->index, strerror(errno));
          rc = -1;
        }
        break;
      case OP_PONG:  // publish the count first: whoever sees the PONG must see every MSG before it
        atomic_store_explicit(&s->received, s->count, memory_order_release);
        atomic_fetch_add(&s->pongs, 1);
        break;
      case OP_OK:
      case OP_INFO:
        break;
      case OP_ERR:
        fail("subscriber %d: server error: %.*s", s->index, (int)op.line_len, op.line);
        rc = -1;
        break;
      default:
        fail("subscriber %d: cannot parse: %.*s", s->index, (int)(op.line_len > 80 ? 80 : op.line_len), op.line);
        rc = -1;
    }
    if (rc < 0) break;
    p += op.total;
  }
  conn_consume(c, p);
  atomic_store_explicit(&s->received, s->count, memory_order_release);
  gate_notify(gate, s->count);
  return rc;
}

static void *sub_thread_main(void *arg) {
  sub_thread_t *t = arg;
  struct epoll_event evs[64];
  while (!atomic_load(&g_stop) && !failed()) {
    int n = epoll_wait(t->epfd, evs, 64, 200);
    for (int i = 0; i < n; i++) {
      sub_t *s = evs[i].data.ptr;
      if (!s) {  // wake-up: stop, or send PINGs
        uint64_t v;
        if (read(t->evfd, &v, 8) != 8) continue;
        if (atomic_load(&g_stop)) return NULL;
        for (int k = 0; k < t->n; k++) {
          if (conn_write(&t->subs[k]->conn, "PING\r\n", 6) < 0) fail("subscriber %d: write PING", t->subs[k]->index);
        }
        continue;
      }
      ssize_t r = conn_fill(&s->conn);
      uint64_t t_read = s->lat ? now_ns() : 0;
      if (r == -2) continue;
      if (r < 0) {
        fail("subscriber %d: %s", s->index,
             r == -1 ? "server closed the connection (slow consumer?)" : strerror(errno));
        return NULL;
      }
      if (sub_parse(s, t->gate, t_read) < 0) return NULL;
    }
  }
  return NULL;
}

int sub_thread_start(sub_thread_t *t, sub_t **subs, int n, gate_t *gate) {
  t->subs = subs;
  t->gate = gate;
  t->n = n;
  t->epfd = epoll_create1(0);
  t->evfd = eventfd(0, EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &ev);
  for (int i = 0; i < n; i++) {
    ev.data.ptr = subs[i];
    epoll_ctl(t->epfd, EPOLL_CTL_ADD, subs[i]->conn.fd, &ev);
  }
  return pthread_create(&t->tid, NULL, sub_thread_main, t);
}

void sub_thread_ping(sub_thread_t *t) {
  uint64_t one = 1;
  if (write(t->evfd, &one, 8) != 8) fail("eventfd write: %s", strerror(errno));
}

void sub_thread_stop(sub_thread_t *t) {
  atomic_store(&g_stop, 1);
  uint64_t one = 1;
  if (write(t->evfd, &one, 8) != 8) {
  }
  pthread_join(t->tid, NULL);
  close(t->epfd);
  close(t->evfd);
}
