// WebSocket framing for the load generator. Server frames may split NATS ops anywhere, so the
// deframer produces a plain byte stream that the ordinary NATS parser then reads.
#include "ws.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int ws_upgrade(int fd, const char *host, int port, ws_reader_t *r, char *err, size_t errlen) {
  char req[512];
  // The key is fixed: we do not check Sec-WebSocket-Accept, only the 101 status.
  int n = snprintf(req, sizeof req,
                   "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   host, port);
  if (write(fd, req, (size_t)n) != n) {
    snprintf(err, errlen, "websocket upgrade write: %s", strerror(errno));
    return -1;
  }
  char resp[4096];
  size_t len = 0;
  for (;;) {
    ssize_t k = read(fd, resp + len, sizeof resp - len);
    if (k <= 0) {
      snprintf(err, errlen, "websocket upgrade: %s", k == 0 ? "connection closed" : strerror(errno));
      return -1;
    }
    len += (size_t)k;
    char *end = memmem(resp, len, "\r\n\r\n", 4);
    if (!end) {
      if (len == sizeof resp) {
        snprintf(err, errlen, "websocket upgrade: response headers too long");
        return -1;
      }
      continue;
    }
    if (len < 12 || memcmp(resp + 9, "101", 3) != 0) {
      char *eol = memchr(resp, '\r', len);
      snprintf(err, errlen, "websocket upgrade refused: %.*s", (int)(eol ? eol - resp : 40), resp);
      return -1;
    }
    size_t head = (size_t)(end - resp) + 4;
    memcpy(r->raw + r->raw_len, resp + head, len - head);
    r->raw_len += len - head;
    return 0;
  }
}

size_t ws_encode(int opcode, const void *payload, size_t n, uint8_t *out) {
  static const uint8_t mask[4] = {0x5a, 0xc3, 0x3c, 0xa5};  // clients must mask; the value is free
  size_t h = 0;
  out[h++] = (uint8_t)(0x80 | opcode);
  if (n < 126) {
    out[h++] = (uint8_t)(0x80 | n);
  } else if (n < 65536) {
    out[h++] = 0x80 | 126;
    out[h++] = (uint8_t)(n >> 8);
    out[h++] = (uint8_t)n;
  } else {
    out[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) out[h++] = (uint8_t)((uint64_t)n >> (8 * i));
  }
  memcpy(out + h, mask, 4);
  h += 4;
  const uint8_t *p = payload;
  for (size_t i = 0; i < n; i++) out[h + i] = p[i] ^ mask[i & 3];
  return h + n;
}

int ws_deframe(ws_reader_t *r, char *out, size_t *out_len, ws_ctrl_t *ctrl) {
  size_t pos = 0;
  int result = 0;
  while (pos < r->raw_len) {
    size_t avail = r->raw_len - pos;
    if (r->remaining > 0) {
      size_t n = avail < r->remaining ? avail : (size_t)r->remaining;
      memcpy(out + *out_len, r->raw + pos, n);
      *out_len += n;
      r->remaining -= n;
      pos += n;
      continue;
    }
    if (avail < 2) break;
    uint8_t b0 = r->raw[pos], b1 = r->raw[pos + 1];
    int opcode = b0 & 0x0f;
    int masked = b1 & 0x80;
    uint64_t plen = b1 & 0x7f;
    size_t hdr = 2 + (plen == 126 ? 2 : plen == 127 ? 8 : 0) + (masked ? 4 : 0);
    if (masked) {
      result = -1;  // servers must not mask
      break;
    }
    if ((b0 & 0x70) != 0) {
      result = -1;  // RSV bits: compression was not negotiated
      break;
    }
    if (avail < hdr) break;
    if (plen == 126) {
      plen = ((uint64_t)r->raw[pos + 2] << 8) | r->raw[pos + 3];
    } else if (plen == 127) {
      plen = 0;
      for (int i = 0; i < 8; i++) plen = (plen << 8) | r->raw[pos + 2 + i];
    }
    if (opcode >= 0x8) {
      if (plen > 125) {
        result = -1;
        break;
      }
      if (avail < hdr + plen) break;  // wait for the whole control frame
      ctrl->opcode = opcode;
      ctrl->len = (size_t)plen;
      memcpy(ctrl->payload, r->raw + pos + hdr, (size_t)plen);
      pos += hdr + (size_t)plen;
      result = 1;
      break;
    }
    if (opcode != WS_OP_BINARY && opcode != WS_OP_TEXT && opcode != WS_OP_CONT) {
      result = -1;
      break;
    }
    r->remaining = plen;
    pos += hdr;
  }
  memmove(r->raw, r->raw + pos, r->raw_len - pos);
  r->raw_len -= pos;
  return result;
}
