import type { Server as BunServer, ServerWebSocket } from "bun";
import type { Connection } from "../connection.ts";
import type { MqttConnection } from "../mqtt/connection.ts";
import type { Server } from "../server.ts";
import type { Transport } from "./transport.ts";
import { cookieCredentials, type CookieCredentials } from "../auth/authenticator.ts";
import { loadServerTls, type ServerTls } from "../auth/tls.ts";
import { joinHostPort } from "./listen-error.ts";
import { releaseRead } from "./read-memory.ts";

/** nats-server does not compress small payloads: deflate costs more than it saves. */
const COMPRESS_MIN_BYTES = 64;

/**
 * From this size a write is sampled before it is compressed: deflating a megabyte that does not shrink
 * (images, archives, encrypted or random bytes) costs tens of milliseconds for nothing. permessage-deflate
 * lets the server send any message uncompressed (RSV1 clear), so such a write goes out as it is.
 */
const SAMPLE_FROM_BYTES = 16 * 1024;
/** Bytes looked at: four 1 KB slices spread over the write. */
const SAMPLE_SLICE = 1024;
/**
 * Byte entropy (bits per byte) above which deflate is skipped. At 7.5 the best deflate could do is save
 * about 6%, and random data measures about 7.95 on a 4 KB sample; text and JSON are near 4 to 6.
 */
const INCOMPRESSIBLE_BITS_PER_BYTE = 7.5;

const byteCounts = new Uint32Array(256);

/** True when a sample of buf[start, end) says deflate would not shrink it worth the time. */
function looksIncompressible(buf: Buffer, start: number, end: number): boolean {
  const counts = byteCounts;
  counts.fill(0);
  const length = end - start;
  let sampled = 0;
  for (let slice = 0; slice < 4; slice++) {
    const from = start + Math.floor(((length - SAMPLE_SLICE) * slice) / 3);
    for (let i = from; i < from + SAMPLE_SLICE; i++) counts[buf[i]!]!++;
    sampled += SAMPLE_SLICE;
  }
  let bits = 0;
  for (let b = 0; b < 256; b++) {
    const n = counts[b]!;
    if (n > 0) bits -= n * Math.log2(n / sampled);
  }
  return bits / sampled > INCOMPRESSIBLE_BITS_PER_BYTE;
}

interface SocketData {
  /** A NATS client, or an MQTT client (the upgrade asked for the path `/mqtt`, as nats-server routes it). */
  connection: Connection | MqttConnection | null;
  mqtt: boolean;
  remoteAddress: string;
  remotePort: number;
  compress: boolean;
  /** From the configured auth cookies of the upgrade request (src/auth). */
  authCookies: CookieCredentials | undefined;
}

/**
 * A client over WebSocket (Bun.serve). Frames carry the same byte stream as TCP; a frame need
 * not align with protocol ops. The server sends binary frames only and accepts text or binary.
 */
class WebSocketTransport implements Transport {
  readonly kind = "websocket";
  blocked = false;

  constructor(private readonly socket: ServerWebSocket<SocketData>) {}

  get remoteAddress(): string {
    return this.socket.data.remoteAddress;
  }

  get remotePort(): number {
    return this.socket.data.remotePort;
  }

  get authCookies(): CookieCredentials | undefined {
    return this.socket.data.authCookies;
  }

  write(buf: Buffer, start: number, end: number): number {
    const length = end - start;
    const compress = this.socket.data.compress && length > COMPRESS_MIN_BYTES && (length < SAMPLE_FROM_BYTES || !looksIncompressible(buf, start, end));
    // sendBinary copies; -1 = taken but buffered (wait for drain), 0 = dropped (keep it, retry on drain).
    const status = this.socket.sendBinary(buf.subarray(start, end), compress);
    if (status === 0) {
      this.blocked = true;
      return 0;
    }
    if (status === -1) this.blocked = true;
    return length;
  }

  pauseReading(): void {
    // Bun.serve WebSockets cannot pause reads; a slow subscriber is still bounded by max_pending.
  }

  resumeReading(): void {}

  close(): void {
    this.socket.close();
  }
}

export interface WebSocketListener {
  readonly port: number;
  /** wss as loaded at start: Bun.serve's reload() takes new handlers, not a new certificate (restart-only). */
  readonly tls: ServerTls | null;
  stop(): void;
  /** Refuses new WebSocket clients and keeps the connected ones (lame duck mode). */
  stopAccepting(): void;
}

export function listenWebSocket(server: Server, hostname: string, port: number): WebSocketListener {
  const options = server.options;
  const allowed = new Set(options.wsAllowedOrigins.map(normalizeOrigin));
  const tls = options.wsTls ? loadServerTls(options.wsTls) : null;
  const bunServer: BunServer<SocketData> = Bun.serve<SocketData>({
    hostname,
    port,
    reusePort: options.procs > 1, // --procs (src/workers/): every worker binds this port
    // wss (src/auth/tls.ts): Bun.serve does the handshake; with verify a client certificate is required.
    ...(tls !== null ? { tls: tls.bun } : {}),
    fetch(request, srv) {
      // nats-server's handshake checks, in its order; each refusal is an error line in its words.
      const address = srv.requestIP(request);
      const origin = request.headers.get("origin");
      const refusal = handshakeRefusal(request) ?? (origin === null ? null : originRefusal(origin, request, allowed, options.wsSameOrigin));
      if (refusal !== null) {
        const from = address === null ? "" : joinHostPort(address.address, address.port);
        server.log.error(`${from} - websocket handshake error: ${refusal.reason}`);
        return new Response(refusal.body, { status: refusal.status });
      }
      const offered = request.headers.get("sec-websocket-extensions") ?? "";
      // MQTT over WebSocket: the path ends in /mqtt (nats-server's mqttWSPath); the answer names the `mqtt` subprotocol.
      const mqtt = new URL(request.url).pathname.endsWith("/mqtt");
      if (mqtt && server.mqtt === null) {
        server.log.error(`${address === null ? "" : joinHostPort(address.address, address.port)} - websocket handshake error: MQTT is not configured`);
        return new Response("natter: MQTT is not configured on this server\n", { status: 400 });
      }
      const data: SocketData = {
        connection: null,
        mqtt,
        remoteAddress: address?.address ?? "",
        remotePort: address?.port ?? 0,
        compress: options.wsCompression && offered.includes("permessage-deflate"),
        authCookies: cookieCredentials(request.headers.get("cookie"), server.options.websocketAuth), // read live: a reload may change the cookie names
      };
      if (srv.upgrade(request, { data, ...(mqtt ? { headers: { "Sec-WebSocket-Protocol": "mqtt" } } : {}) })) return undefined;
      return new Response("natter: this port speaks NATS over WebSocket\n", { status: 400 });
    },
    websocket: {
      // Shared compressor = no context takeover on either side, as nats-server answers.
      perMessageDeflate: options.wsCompression ? { compress: "shared", decompress: "shared" } : false,
      // A frame may hold many ops; bound it so one client cannot make the server buffer without limit.
      maxPayloadLength: options.maxPayload + options.maxControlLine + 16 * 1024 * 1024,
      backpressureLimit: 1024 * 1024,
      closeOnBackpressureLimit: false,
      idleTimeout: 0,
      sendPings: false,
      open(ws) {
        const transport = new WebSocketTransport(ws);
        ws.data.connection = ws.data.mqtt ? server.mqtt!.accept(transport) : server.accept(transport);
      },
      message(ws, message) {
        const bytes = typeof message === "string" ? Buffer.from(message) : (message as Buffer);
        // A NATS client's read that nothing kept is freed at once (an MQTT connection's onRead says nothing).
        if (ws.data.connection?.onRead(bytes) === true) releaseRead(bytes);
      },
      drain(ws) {
        ws.data.connection?.onDrain();
      },
      close(ws) {
        ws.data.connection?.onTransportClosed();
      },
    },
  });
  return {
    port: bunServer.port ?? port,
    tls,
    stop: () => void bunServer.stop(true),
    stopAccepting: () => void bunServer.stop(false),
  };
}

function normalizeOrigin(origin: string): string {
  try {
    const url = new URL(origin);
    return `${url.protocol}//${url.host}`.toLowerCase();
  } catch {
    return origin.toLowerCase();
  }
}

interface Refusal {
  status: number;
  /** nats-server's reason (logged as `websocket handshake error: <reason>`). */
  reason: string;
  body: string;
}

/** A header holds `token` (comma-separated values, case-insensitive), as nats-server's wsHeaderContains. */
function headerContains(request: Request, name: string, token: string): boolean {
  const value = request.headers.get(name);
  return value !== null && value.split(",").some((v) => v.trim().toLowerCase() === token.toLowerCase());
}

/** RFC 6455 section 4.2.1 points 1 to 6, checked as nats-server's wsUpgrade checks them; null = an upgrade. */
function handshakeRefusal(request: Request): Refusal | null {
  const bad = (reason: string): Refusal => ({ status: 400, reason, body: "natter: this port speaks NATS over WebSocket\n" });
  if (request.method !== "GET") return { status: 405, reason: "request method must be GET", body: "request method must be GET\n" };
  if (!request.headers.get("host")) return bad("'Host' missing in request");
  if (!headerContains(request, "upgrade", "websocket")) return bad("invalid value for header 'Upgrade'");
  if (!headerContains(request, "connection", "upgrade")) return bad("invalid value for header 'Connection'");
  if (!request.headers.get("sec-websocket-key")) return bad("key missing");
  if (!headerContains(request, "sec-websocket-version", "13")) return bad("invalid version");
  return null;
}

/** Why `origin` may not open a WebSocket (nats-server's checkOrigin reasons), or null when it may. */
function originRefusal(origin: string, request: Request, allowed: Set<string>, sameOrigin: boolean): Refusal | null {
  const refused = (why: string): Refusal => ({ status: 403, reason: `origin not allowed: ${why}`, body: "origin not allowed\n" });
  const normalized = normalizeOrigin(origin);
  if (sameOrigin) {
    const host = request.headers.get("host");
    let originHost = "";
    try {
      originHost = new URL(origin).host;
    } catch {
      return refused(`parse ${JSON.stringify(origin)}: invalid URI for request`);
    }
    if (host === null || originHost.toLowerCase() !== host.toLowerCase()) return refused("not same origin");
  }
  return allowed.size === 0 || allowed.has(normalized) ? null : refused("not in the allowed list");
}
