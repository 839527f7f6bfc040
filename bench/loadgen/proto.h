// NATS client-side protocol: split a received byte stream into server ops (MSG, PING, PONG, ...).
#pragma once
#include <stddef.h>

typedef enum { OP_NEED_MORE, OP_MSG, OP_PING, OP_PONG, OP_OK, OP_INFO, OP_ERR, OP_BAD } op_kind;

typedef struct {
  op_kind kind;
  size_t total;         // bytes this op occupies in the buffer (control line + payload + CRLF)
  const char *subject;  // MSG only
  size_t subject_len;
  const char *sid;
  size_t sid_len;
  const char *reply;    // NULL when the MSG has no reply subject
  size_t reply_len;
  const char *payload;
  size_t size;
  const char *line;     // control line without CRLF (for error texts)
  size_t line_len;
} op_t;

// Parses the op at the start of buf. OP_NEED_MORE when it is incomplete.
void proto_next(const char *buf, size_t len, op_t *op);
