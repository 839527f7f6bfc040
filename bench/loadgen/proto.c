// General (slow-path) parser for server ops. Subscribers try a memcmp fast path first (see sub.c);
// this handles everything else: PING/PONG/+OK/INFO/-ERR and MSG lines of any shape.
#include "proto.h"

#include <string.h>

#define MAX_LINE 65536  // INFO can be long; anything longer is garbage

static int is_space(char c) { return c == ' ' || c == '\t'; }

static int starts_with_ci(const char *s, size_t n, const char *prefix) {
  size_t i = 0;
  for (; prefix[i]; i++) {
    if (i >= n) return 0;
    char c = s[i];
    if (c >= 'a' && c <= 'z') c -= 32;
    if (c != prefix[i]) return 0;
  }
  return 1;
}

void proto_next(const char *buf, size_t len, op_t *op) {
  memset(op, 0, sizeof *op);
  const char *nl = memchr(buf, '\n', len < MAX_LINE ? len : MAX_LINE);
  if (!nl) {
    op->kind = len >= MAX_LINE ? OP_BAD : OP_NEED_MORE;
    op->line = buf;
    op->line_len = len < 80 ? len : 80;
    return;
  }
  size_t line_len = (size_t)(nl - buf);
  if (line_len > 0 && buf[line_len - 1] == '\r') line_len--;
  op->line = buf;
  op->line_len = line_len;
  op->total = (size_t)(nl - buf) + 1;

  if (starts_with_ci(buf, line_len, "MSG ")) {
    // MSG <subject> <sid> [reply] <size>
    const char *tok[5];
    size_t tlen[5];
    int nt = 0;
    size_t i = 4;
    while (i < line_len && nt < 5) {
      while (i < line_len && is_space(buf[i])) i++;
      if (i >= line_len) break;
      size_t start = i;
      while (i < line_len && !is_space(buf[i])) i++;
      tok[nt] = buf + start;
      tlen[nt] = i - start;
      nt++;
    }
    if (nt < 3 || nt > 4) {
      op->kind = OP_BAD;
      return;
    }
    size_t size = 0;
    for (size_t k = 0; k < tlen[nt - 1]; k++) {
      char c = tok[nt - 1][k];
      if (c < '0' || c > '9') {
        op->kind = OP_BAD;
        return;
      }
      size = size * 10 + (size_t)(c - '0');
    }
    if (len < op->total + size + 2) {
      op->kind = OP_NEED_MORE;
      return;
    }
    const char *payload = buf + op->total;
    if (payload[size] != '\r' || payload[size + 1] != '\n') {
      op->kind = OP_BAD;
      return;
    }
    op->kind = OP_MSG;
    op->subject = tok[0];
    op->subject_len = tlen[0];
    op->sid = tok[1];
    op->sid_len = tlen[1];
    if (nt == 4) {
      op->reply = tok[2];
      op->reply_len = tlen[2];
    }
    op->payload = payload;
    op->size = size;
    op->total += size + 2;
    return;
  }
  if (starts_with_ci(buf, line_len, "PING")) op->kind = OP_PING;
  else if (starts_with_ci(buf, line_len, "PONG")) op->kind = OP_PONG;
  else if (starts_with_ci(buf, line_len, "+OK")) op->kind = OP_OK;
  else if (starts_with_ci(buf, line_len, "INFO")) op->kind = OP_INFO;
  else if (starts_with_ci(buf, line_len, "-ERR")) op->kind = OP_ERR;
  else op->kind = OP_BAD;
}
