// Cluster runs (--sub-ports P1,P2,...): the publisher (or requester) talks to one server of a cluster
// (--port), the subscribers (or the responder) to others, round-robin over the list. Before anything is
// timed, the interest those subscribers created must have reached the publisher's server, or its first
// messages would find no subscriber there and the sequence checks would fail for the wrong reason.
#pragma once
#include <stddef.h>

#include "conn.h"
#include "opts.h"
#include "sub.h"

// The reply subject of readiness probes in latency runs: under the requester's wildcard inbox
// (bench.inbox.*), answered by the responder but not counted as a request.
#define READY_INBOX "bench.inbox.ready"

// The port subscriber `index` (or the responder, index 0) connects to: --sub-ports round-robin, else --port.
int sub_port(const opts_t *o, int index);

// For each subscriber: subscribes it to bench.ready.<i> too (after its bench.tp SUB, so the interest
// reaches other servers after that one), publishes probes on bench.ready.<i> from a connection to the
// publisher's server until one arrives, then unsubscribes. Call before the subscriber threads start.
int cluster_subs_ready(const opts_t *o, sub_t **subs, int n, char *err, size_t errlen);

// Latency: sends probe requests (reply READY_INBOX) until one is answered, i.e. the responder's
// interest reached the requester's server and the requester's inbox interest reached the responder's.
int cluster_requester_ready(conn_t *q, int size, char *err, size_t errlen);
