// The warm-up's request-reply over real sockets.
//
// The warm-up's synthetic traffic (src/warm-up.ts) goes through plain-object sockets: the TCP read handler
// and the write saw only those objects, and the parser only Buffers made in JavaScript. Optimized code
// keeps the shapes and types it saw, so the first clients' reads (Bun's own socket objects, Bun's own read
// Buffers) failed its checks: under the first request-reply load, readPlainSocket exited 101 times
// (BadCache, `socket.data`), TcpTransport.write 101–201 and writeQueued 11–201 (BadCache, `socket.write`),
// and all three were compiled again, up to FTL, 0.3–1.5 s into the load (bench/jit-timeline.ts --settle
// 1500; onPub's BadType exit, in about half the runs, is another matter: README, "The warm-up over loopback
// sockets"). So the rig also exchanges requests and replies over two loopback TCP connections to its
// private server, 8 in each of its first rounds, between the synthetic reads: the code's first tiers
// profile both kinds of socket and Buffer, and the optimizing tiers compile from those profiles.
//
// The listener (127.0.0.1, a port the kernel picks) is closed once both connections are open (a few ms);
// the connections are the rig's private server's, so nothing of them reaches the real server.
import type { Socket } from "bun";
import type { Server } from "./server.ts";
import { listenTcp } from "./transport/tcp.ts";

const SUBJECT = "warm.loopback";
/** A batch takes well under 1 ms a exchange; this long means a connection is gone (or the machine stalled). */
const BATCH_TIMEOUT_MS = 2000;
/** Reply subjects: nats.js's kind, and a prefix of the client's own (the bench's load generator has one). */
const INBOXES = ["_INBOX.loopback.", "loopback.inbox."];

/** One end of a loopback connection, the client's: counts what it received of what it waits for. */
interface End {
  socket: Socket<undefined>;
  /** Bytes received since the last wait began. */
  received: number;
  /** Bytes that end the current wait (a PONG, a MSG of known length). */
  expected: number;
  /** Called once `expected` bytes have arrived. */
  onComplete: (() => void) | null;
  /** Set by the handshake: the text received so far, until PONG. */
  text: string | null;
}

/** Two loopback client connections to the rig's server, a requester and a responder. */
export class LoopbackExchange {
  private id = 0;
  private remaining = 0;
  private batchDone: (() => void) | null = null;
  /** A batch timed out: the connections are closed. */
  broken = false;
  private closed = false;
  private readonly payload: string;

  private constructor(
    private readonly requester: End,
    private readonly responder: End,
    size: number,
  ) {
    this.payload = "l".repeat(size);
  }

  /**
   * Opens the listener and both connections (SUBs acknowledged by PONG), then closes the listener; null if
   * it cannot listen or connect within BATCH_TIMEOUT_MS (then the synthetic traffic goes on alone).
   */
  static async open(server: Server, size: number): Promise<LoopbackExchange | null> {
    let listener: ReturnType<typeof listenTcp>;
    try {
      listener = listenTcp(server, "127.0.0.1", 0);
    } catch {
      return null; // no loopback (a sandbox)
    }
    const opened: End[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const [requester, responder] = await Promise.race([
        Promise.all([
          connect(listener.port, INBOXES.map((inbox, k) => `SUB ${inbox}* ${k + 1}\r\n`).join(""), opened),
          connect(listener.port, `SUB ${SUBJECT} 1\r\n`, opened),
        ]),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("timeout")), BATCH_TIMEOUT_MS);
        }),
      ]);
      return new LoopbackExchange(requester, responder, size);
    } catch {
      for (const end of opened) end.socket.end();
      return null;
    } finally {
      clearTimeout(timer);
      listener.stop();
    }
  }

  /**
   * `count` exchanges, one at a time, as a client makes them; resolves after the last reply, or after
   * BATCH_TIMEOUT_MS with the connections closed (`broken`): the warm-up goes on without them.
   */
  exchanges(count: number): Promise<void> {
    return new Promise((resolve) => {
      const timeout = setTimeout(() => {
        this.broken = true;
        this.close();
        this.batchDone = null;
        resolve();
      }, BATCH_TIMEOUT_MS);
      this.remaining = count;
      this.batchDone = () => {
        clearTimeout(timeout);
        resolve();
      };
      this.next();
    });
  }

  private next(): void {
    if (this.batchDone === null) return; // timed out
    if (this.remaining-- <= 0) {
      const done = this.batchDone;
      this.batchDone = null;
      done();
      return;
    }
    const id = this.id++;
    const inbox = `${INBOXES[id % INBOXES.length]}${id}`;
    const size = this.payload.length;
    const delivered = `MSG ${SUBJECT} 1 ${inbox} ${size}\r\n${this.payload}\r\n`.length;
    const replied = `MSG ${inbox} ${(id % INBOXES.length) + 1} ${size}\r\n${this.payload}\r\n`.length;
    awaitBytes(this.responder, delivered, () => {
      awaitBytes(this.requester, replied, () => this.next());
      this.responder.socket.write(`PUB ${inbox} ${size}\r\n${this.payload}\r\n`);
    });
    this.requester.socket.write(`PUB ${SUBJECT} ${inbox} ${size}\r\n${this.payload}\r\n`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.requester.socket.end();
    this.responder.socket.end();
  }
}

function awaitBytes(end: End, bytes: number, then: () => void): void {
  end.received = 0;
  end.expected = bytes;
  end.onComplete = then;
}

/** A client connection: CONNECT, the SUB, PING; resolves at the PONG. `opened` gets it once open (to close it on failure). */
function connect(port: number, sub: string, opened: End[]): Promise<End> {
  return new Promise((resolve, reject) => {
    const end: End = { socket: null as unknown as Socket<undefined>, received: 0, expected: Infinity, onComplete: null, text: "" };
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(socket) {
          socket.setNoDelay(true);
          end.socket = socket;
          opened.push(end);
          socket.write(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}\r\n${sub}PING\r\n`);
        },
        data(_socket, data) {
          if (end.text !== null) {
            end.text += data.toString("latin1");
            if (end.text.endsWith("PONG\r\n")) {
              end.text = null;
              resolve(end);
            }
            return;
          }
          end.received += data.length;
          if (end.received >= end.expected && end.onComplete !== null) {
            const then = end.onComplete;
            end.onComplete = null;
            then();
          }
        },
        error(_socket, error) {
          reject(error);
        },
        close() {
          if (end.text !== null) reject(new Error("closed before PONG"));
        },
      },
    }).catch(reject);
  });
}
