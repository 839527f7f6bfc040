// WebSocket client framing (RFC 6455) just far enough for NATS over WebSocket:
// HTTP upgrade, masked client frames, and a streaming deframer for the server's unmasked frames.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define WS_OP_CONT 0x0
#define WS_OP_TEXT 0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xA

typedef struct {
  uint8_t *raw;  // received frame bytes not yet deframed
  size_t raw_len, raw_cap;
  uint64_t remaining;  // payload bytes still to come for the current data frame
} ws_reader_t;

typedef struct {
  int opcode;  // WS_OP_PING / WS_OP_CLOSE / WS_OP_PONG
  uint8_t payload[125];
  size_t len;
} ws_ctrl_t;

// Sends the HTTP upgrade request on fd and reads the 101 response. Bytes after the response headers
// (the first frames) are left in r->raw. Returns 0, or -1 with err filled.
int ws_upgrade(int fd, const char *host, int port, ws_reader_t *r, char *err, size_t errlen);

// Writes one masked client frame for payload into out (room for n + 14 bytes); returns its length.
size_t ws_encode(int opcode, const void *payload, size_t n, uint8_t *out);

// Moves data-frame payload bytes from r->raw into out (which has room for r->raw_len bytes),
// adding to *out_len. Stops at a complete control frame and returns 1 with ctrl filled (call again
// after handling it), returns 0 when r->raw holds no more complete work, -1 on a protocol error.
int ws_deframe(ws_reader_t *r, char *out, size_t *out_len, ws_ctrl_t *ctrl);
