// A port natter cannot bind ends the start with one line naming the listener and its address, in the
// words nats-server uses for that listener (server.go, monitor.go, websocket.go, route.go, leafnode.go),
// and the cause as Go's net package words it (`listen tcp 0.0.0.0:4222: bind: address already in use`):
// people and scripts grep for those lines.
export type ListenerKind = "client" | "websocket" | "monitor" | "route" | "leafnode" | "mqtt";

/** A listener could not be opened; the message is the whole line (without natter's `natter: ` prefix). */
export class ListenError extends Error {}

/** host:port as Go's net.JoinHostPort writes it (an IPv6 host in brackets). */
export function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Go's words for the bind errors people meet; anything else keeps its own message. */
const BIND_CAUSES: Record<string, string> = {
  EADDRINUSE: "address already in use",
  EACCES: "permission denied",
  EADDRNOTAVAIL: "cannot assign requested address",
};

/** The line nats-server logs when `kind`'s listener cannot bind host:port (port as asked: 0 for a random one). */
export function listenError(kind: ListenerKind, host: string, port: number, error: unknown): ListenError {
  const code = (error as NodeJS.ErrnoException).code ?? "";
  const hostPort = joinHostPort(host, port);
  const cause = code in BIND_CAUSES ? `listen tcp ${hostPort}: bind: ${BIND_CAUSES[code]}` : (error as Error).message;
  switch (kind) {
    case "client":
      return new ListenError(`Error listening on port: ${hostPort}, ${JSON.stringify(cause)}`);
    case "monitor":
      return new ListenError(`Can't start monitoring: can't listen to the monitor port: ${cause}`);
    case "websocket":
      return new ListenError(`Unable to listen for websocket connections: ${cause}`);
    case "route":
      return new ListenError(`Error listening on router port: ${port} - ${cause}`);
    case "leafnode":
      return new ListenError(`Error listening on leafnode port: ${port} - ${cause}`);
    case "mqtt":
      return new ListenError(`Unable to listen for MQTT connections: ${cause}`);
  }
}

/** Runs `bind` (which opens `kind`'s listener on host:port); a socket error becomes the ListenError line. */
export function bindListener<T>(kind: ListenerKind, host: string, port: number, bind: () => T): T {
  try {
    return bind();
  } catch (error) {
    // Errors with an errno code come from the socket; others (a bad setting found on the way) stay as they are.
    if (/^E[A-Z]+$/.test((error as NodeJS.ErrnoException).code ?? "")) throw listenError(kind, host, port, error);
    throw error;
  }
}

/**
 * Throws the ListenError line if host:port cannot be bound right now (a listener opened later, such as the
 * route and leaf node ones, is checked before the server announces itself). Port 0 (random) always can.
 */
export function checkPortFree(kind: ListenerKind, host: string, port: number): void {
  if (port <= 0) return;
  bindListener(kind, host, port, () => {
    const listener = Bun.listen({ hostname: host, port, socket: { data() {} } });
    listener.stop(true);
  });
}
