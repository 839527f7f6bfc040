// Client connections: TCP or WebSocket, blocking setup, then reads into one growable buffer.
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "proto.h"

static void ensure_room(conn_t *c, size_t need) {
  if (c->cap - c->len >= need) return;
  size_t cap = c->cap ? c->cap : 2 * READ_CHUNK;
  while (cap - c->len < need) cap *= 2;
  c->buf = realloc(c->buf, cap);
  c->cap = cap;
}

void conn_set_timeout_ms(conn_t *c, int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

void conn_set_nonblocking(conn_t *c) {
  int fl = fcntl(c->fd, F_GETFL);
  fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
  c->nonblocking = 1;
}

// --placement, for servers of several processes on one port (natter --procs): the kernel picks the
// process of each connection; INFO's server_id tells which one it was. Subscriber-side connections
// (bench-sub-*, bench-responder) are one side, all others (publishers, requester, probes) the other.
// "same": every connection on the process the first one got; "cross": the two sides on different
// processes; "spread": each connection on another process than the one before (round-robin over
// two). A connection that lands on the wrong one is closed before CONNECT and opened again.
static int placement;         // 0: any, 1: same, 2: cross, 3: spread
static char prev_id[128];     // spread: the server_id of the connection before
static char side_id[2][128];  // the server_id each side is on ("" = not yet)
static char last_id[128];     // the server_id of the INFO conn_open_once just read

int conn_set_placement(const char *mode) {
  if (strcmp(mode, "same") == 0) placement = 1;
  else if (strcmp(mode, "cross") == 0) placement = 2;
  else if (strcmp(mode, "spread") == 0) placement = 3;
  else if (strcmp(mode, "any") == 0) placement = 0;
  else return -1;
  return 0;
}

static void info_server_id(const char *line, size_t len) {
  static const char key[] = "\"server_id\":\"";
  last_id[0] = 0;
  for (size_t i = 0; i + sizeof key - 1 < len; i++) {
    if (memcmp(line + i, key, sizeof key - 1) != 0) continue;
    size_t start = i + sizeof key - 1, n = 0;
    while (start + n < len && line[start + n] != '"' && n + 1 < sizeof last_id) n++;
    memcpy(last_id, line + start, n);
    last_id[n] = 0;
    return;
  }
}

// 1 when a connection of this side may stay on the server last_id names (and records it).
static int placement_ok(const char *name) {
  if (placement == 0) return 1;
  if (placement == 3) {
    if (strcmp(prev_id, last_id) == 0) return 0;
    snprintf(prev_id, sizeof prev_id, "%s", last_id);
    return 1;
  }
  int side = strncmp(name, "bench-sub", 9) == 0 || strcmp(name, "bench-responder") == 0;
  const char *mine = side_id[side], *other = side_id[1 - side];
  int ok;
  if (placement == 1) ok = (!*mine || strcmp(mine, last_id) == 0) && (!*other || strcmp(other, last_id) == 0);
  else ok = (!*mine || strcmp(mine, last_id) == 0) && (!*other || strcmp(other, last_id) != 0);
  if (ok && !*mine) snprintf(side_id[side], sizeof side_id[side], "%s", last_id);
  return ok;
}

static int conn_open_once(conn_t *c, const char *host, int port, int ws, const char *name, char *err, size_t errlen);

int conn_open(conn_t *c, const char *host, int port, int ws, const char *name, char *err, size_t errlen) {
  for (int attempt = 0; attempt < 500; attempt++) {
    int r = conn_open_once(c, host, port, ws, name, err, errlen);
    if (r != -2) return r;
    conn_close(c);
  }
  snprintf(err, errlen, "--placement: %s never landed on the wanted server process in 500 connections", name);
  return -1;
}

// Returns 0, -1 with err filled, or -2: landed on the wrong process for --placement.
static int conn_open_once(conn_t *c, const char *host, int port, int ws, const char *name, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  c->ws = ws;
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c->fd < 0) {
    snprintf(err, errlen, "socket: %s", strerror(errno));
    return -1;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // latency: no Nagle delay
  conn_set_timeout_ms(c, 10000);
  // A server that stops reading makes a blocking write fail after 10 s instead of hanging the run.
  struct timeval send_timeout = {10, 0};
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    snprintf(err, errlen, "bad host address %s (use an IPv4 address)", host);
    return -1;
  }
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    snprintf(err, errlen, "connect %s:%d: %s", host, port, strerror(errno));
    return -1;
  }
  ensure_room(c, READ_CHUNK);
  if (ws) {
    c->wsr.raw_cap = READ_CHUNK;
    c->wsr.raw = malloc(c->wsr.raw_cap);
    if (ws_upgrade(c->fd, host, port, &c->wsr, err, errlen) < 0) return -1;
    // The upgrade may have read the first frames already: deframe them now.
    ws_ctrl_t ctrl;
    while (ws_deframe(&c->wsr, c->buf, &c->len, &ctrl) == 1) {
    }
  }
  // Wait for INFO.
  for (;;) {
    op_t op;
    proto_next(c->buf, c->len, &op);
    if (op.kind == OP_INFO) {
      info_server_id(op.line, op.line_len);
      conn_consume(c, op.total);
      if (!placement_ok(name)) return -2;
      break;
    }
    if (op.kind != OP_NEED_MORE) {
      snprintf(err, errlen, "expected INFO, got: %.*s", (int)op.line_len, op.line);
      return -1;
    }
    ssize_t k = conn_fill(c);
    if (k < 0) {
      snprintf(err, errlen, "no INFO from server (%s)", k == -2 ? "timeout" : "closed");
      return -1;
    }
  }
  char connect[256];
  int n = snprintf(connect, sizeof connect,
                   "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"lang\":\"c\","
                   "\"version\":\"natter-bench\",\"name\":\"%s\",\"echo\":true}\r\n",
                   name);
  if (conn_write(c, connect, (size_t)n) < 0) {
    snprintf(err, errlen, "write CONNECT: %s", strerror(errno));
    return -1;
  }
  return 0;
}

void conn_close(conn_t *c) {
  if (c->fd > 0) close(c->fd);
  free(c->buf);
  free(c->wsr.raw);
  memset(c, 0, sizeof *c);
}

static int write_all(conn_t *c, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t k = write(c->fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN && c->nonblocking) {  // a subscriber's PING/PONG: tiny, just retry
        sleep_ns(20000);
        continue;
      }
      if (errno == EAGAIN) errno = ETIMEDOUT;  // blocking socket: SO_SNDTIMEO expired
      return -1;
    }
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

int conn_write(conn_t *c, const void *data, size_t n) {
  if (!c->ws) return write_all(c, data, n);
  uint8_t small[512];
  uint8_t *frame = n + 14 <= sizeof small ? small : malloc(n + 14);
  size_t flen = ws_encode(WS_OP_BINARY, data, n, frame);
  int r = write_all(c, frame, flen);
  if (frame != small) free(frame);
  return r;
}

static ssize_t read_result(ssize_t k) {
  if (k == 0) return -1;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return -2;
  return -3;
}

ssize_t conn_fill(conn_t *c) {
  if (!c->ws) {
    ensure_room(c, READ_CHUNK);
    ssize_t k = read(c->fd, c->buf + c->len, READ_CHUNK);
    if (k <= 0) return read_result(k);
    c->len += (size_t)k;
    return k;
  }
  ssize_t k = read(c->fd, c->wsr.raw + c->wsr.raw_len, c->wsr.raw_cap - c->wsr.raw_len);
  if (k <= 0) return read_result(k);
  c->wsr.raw_len += (size_t)k;
  size_t before = c->len;
  for (;;) {
    ensure_room(c, c->wsr.raw_len);
    ws_ctrl_t ctrl;
    int r = ws_deframe(&c->wsr, c->buf, &c->len, &ctrl);
    if (r == 0) break;
    if (r < 0) {
      errno = EPROTO;
      return -3;
    }
    if (ctrl.opcode == WS_OP_CLOSE) return -1;
    if (ctrl.opcode == WS_OP_PING) {
      uint8_t frame[140];
      size_t flen = ws_encode(WS_OP_PONG, ctrl.payload, ctrl.len, frame);
      if (write_all(c, frame, flen) < 0) return -3;
    }
  }
  return (ssize_t)(c->len - before);
}

void conn_consume(conn_t *c, size_t n) {
  if (n == 0) return;
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

int conn_wait_pong(conn_t *c, char *err, size_t errlen) {
  for (;;) {
    op_t op;
    proto_next(c->buf, c->len, &op);
    switch (op.kind) {
      case OP_NEED_MORE: {
        ssize_t k = conn_fill(c);
        if (k < 0) {
          snprintf(err, errlen, "waiting for PONG: %s",
                   k == -1 ? "server closed the connection" : k == -2 ? "timeout" : strerror(errno));
          return -1;
        }
        continue;
      }
      case OP_PONG:
        conn_consume(c, op.total);
        return 0;
      case OP_PING:
        conn_consume(c, op.total);
        if (conn_write(c, "PONG\r\n", 6) < 0) return -1;
        continue;
      case OP_OK:
      case OP_INFO:
        conn_consume(c, op.total);
        continue;
      case OP_ERR:
        snprintf(err, errlen, "server error: %.*s", (int)op.line_len, op.line);
        return -1;
      default:
        snprintf(err, errlen, "unexpected while waiting for PONG: %.*s", (int)(op.line_len > 80 ? 80 : op.line_len),
                 op.line);
        return -1;
    }
  }
}
