// A leafnode connection to a hub over WebSocket (a ws:// remote), for edges that only reach the hub
// through an HTTP proxy or load balancer. As nats-server's leafNodeSolicitWSConnection: the upgrade
// request goes to `/leafnode` (plus the URL's path) on the hub's websocket port, which then treats the
// connection as a leaf node, not a client; after that the same byte stream as over TCP, in binary
// frames (a frame need not align with protocol ops).
//
// Bun's WebSocket client masks every frame (ws_no_masking is then simply not used: the hub accepts
// masked frames from anyone) and offers permessage-deflate only when ws_compression is set.
import type { Logger } from "../log.ts";
import type { LeafConnection, LeafSocket } from "./connection.ts";
import type { LeafUrl, RemoteLeafOptions } from "./options.ts";

/** nats-server's leafNodeWSPath. */
export const LEAF_WS_PATH = "/leafnode";

/** Bytes buffered in the WebSocket before the connection counts as blocked (it has no drain event). */
const HIGH_WATER = 8 * 1024 * 1024;

class WebSocketLeafSocket implements LeafSocket {
  readonly kind = "websocket";
  constructor(
    private readonly ws: WebSocket,
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {}

  write(buf: Buffer, start: number, end: number): number {
    if (this.ws.readyState !== WebSocket.OPEN) return 0;
    // send copies; the client WebSocket has no drain event, so a hub that does not read fills
    // bufferedAmount: past the high-water mark the connection is cut (max_pending does the same for TCP).
    this.ws.send(buf.subarray(start, end) as unknown as Uint8Array<ArrayBuffer>);
    if (this.ws.bufferedAmount > HIGH_WATER) {
      this.ws.close(1008, "slow hub");
    }
    return end - start;
  }

  end(): void {
    try {
      this.ws.close(1000);
    } catch {
      // already closing
    }
  }
}

export interface WsDialCallbacks {
  /** Upgraded: returns the connection reads go to (null: the dial was abandoned). */
  opened(socket: LeafSocket): LeafConnection | null;
  failed(why: string): void;
}

export function dialWebSocket(url: LeafUrl, options: RemoteLeafOptions, cb: WsDialCallbacks, log: Logger): void {
  const host = url.host.includes(":") ? `[${url.host}]` : url.host;
  const target = `ws://${host}:${url.port}${LEAF_WS_PATH}${url.path.replace(/^\//, "")}`;
  let ws: WebSocket;
  try {
    ws = new WebSocket(target, { perMessageDeflate: options.wsCompression === true } as unknown as string[]);
  } catch (error) {
    cb.failed((error as Error).message);
    return;
  }
  ws.binaryType = "nodebuffer" as BinaryType;
  let conn: LeafConnection | null = null;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    conn = cb.opened(new WebSocketLeafSocket(ws, url.host, url.port));
    if (conn === null) ws.close(1000);
  };
  ws.onmessage = (event: MessageEvent) => {
    const data = event.data as unknown;
    if (conn === null) return;
    if (typeof data === "string") conn.onRead(Buffer.from(data, "utf8"));
    else if (Buffer.isBuffer(data)) conn.onRead(data);
    else if (data instanceof ArrayBuffer) conn.onRead(Buffer.from(data));
  };
  ws.onerror = (event: Event) => {
    const message = (event as ErrorEvent).message || "websocket error";
    if (!opened) cb.failed(message);
    else log.debug(`Leafnode remote ${url.display}: websocket error: ${message}`);
  };
  ws.onclose = (event: CloseEvent) => {
    if (!opened) {
      cb.failed(`websocket closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`);
      return;
    }
    conn?.onSocketClosed();
  };
}
