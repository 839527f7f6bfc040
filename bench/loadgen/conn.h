// One client connection to the server over TCP or WebSocket: connect + handshake, write, read into
// a protocol byte buffer. The rest of the generator sees the same byte stream either way.
#pragma once
#include <stddef.h>
#include <sys/types.h>

#include "ws.h"

#define READ_CHUNK (256 * 1024)

typedef struct {
  int fd;
  int ws;     // 1: WebSocket transport (frames in and out)
  int nonblocking;
  char *buf;  // received NATS protocol bytes not yet parsed
  size_t len, cap;
  ws_reader_t wsr;
} conn_t;

// Connects, upgrades to WebSocket if ws, reads INFO and sends CONNECT (verbose off).
// Blocking socket with a receive timeout, TCP_NODELAY set. Returns 0, or -1 with err filled.
int conn_open(conn_t *c, const char *host, int port, int ws, const char *name, char *err, size_t errlen);
void conn_close(conn_t *c);

// --placement same|cross|any: which server process connections must land on (see conn.c). -1: bad mode.
int conn_set_placement(const char *mode);

// Writes all of data (as one frame when ws). Returns 0, or -1 on error.
int conn_write(conn_t *c, const void *data, size_t n);

// One read from the socket appended to c->buf (deframed when ws; WebSocket pings answered here).
// Returns bytes appended (may be 0 after a control frame), -1 on EOF/close, -2 on timeout/EAGAIN,
// -3 on error.
ssize_t conn_fill(conn_t *c);

// Drops the first n bytes of c->buf (they were parsed).
void conn_consume(conn_t *c, size_t n);

// Blocking: reads until a PONG, answering PINGs; any MSG seen meanwhile is an error. Returns 0 or -1.
int conn_wait_pong(conn_t *c, char *err, size_t errlen);

void conn_set_nonblocking(conn_t *c);
void conn_set_timeout_ms(conn_t *c, int ms);
