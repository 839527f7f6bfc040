// WebSocket: the NATS byte stream (valid or hostile, from the protocol generators) carried in frames
// split at random points (binary and text, fragmented, with control frames between), and frames that
// break RFC 6455 (bad opcodes, reserved bits, unmasked, fragmented or oversized control frames, lying
// or huge lengths, continuation without a start, compressed frames with and without negotiation, bad
// deflate data, deflate bombs, bad close frames), and hostile upgrade requests.
import type { Expectation, FuzzCase } from "./cases.ts";
import { cleanOptions, genProtocol, type GenContext } from "./gen-protocol.ts";
import { genConnect } from "./gen-connect.ts";
import { splitChunks } from "./mutate.ts";
import type { Rng } from "./prng.ts";
import { deflateBody, encodeWsFrame, Op, type FrameSpec } from "./wire.ts";

/** Splits `data` into data frames (first binary or text, then continuations), maybe with control frames in between. */
function carry(rng: Rng, data: Buffer, compress: boolean): FrameSpec[] {
  const frames: FrameSpec[] = [];
  const messages = rng.chance(0.5) ? [data] : splitChunks(rng, data);
  for (const msg of messages) {
    // A text frame must carry valid UTF-8 (the server closes otherwise), so only such messages go as text.
    const opcode = rng.chance(0.2) && Buffer.from(msg.toString("utf8")).equals(msg) ? Op.text : Op.binary;
    const deflate = compress && rng.chance(0.7);
    const body = deflate ? deflateBody(msg) : msg;
    const pieces = rng.chance(0.7) ? [body] : splitChunks(rng, body);
    pieces.forEach((p, i) => {
      frames.push({ opcode: i === 0 ? opcode : Op.cont, payload: p, fin: i === pieces.length - 1, rsv1: deflate && i === 0, lengthForm: rng.chance(0.05) ? rng.pick(["16", "64"] as const) : "auto" });
      if (rng.chance(0.1)) frames.push({ opcode: rng.pick([Op.ping, Op.pong]), payload: rng.bytes(rng.int(126)) });
    });
  }
  return frames;
}

/** One frame that breaks the RFC. */
function hostileFrame(rng: Rng, negotiated: boolean): FrameSpec[] {
  const p = Buffer.from("PING\r\n");
  switch (rng.int(17)) {
    case 0: return [{ opcode: rng.pick([3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]), payload: p }];
    case 1: return [{ opcode: Op.binary, payload: p, rsv1: true }]; // compressed bit: without negotiation an error; with it, bad deflate
    case 2: return [{ opcode: Op.binary, payload: p, rsv2: rng.chance(0.5), rsv3: true }];
    case 3: return [{ opcode: Op.binary, payload: p, masked: false }];
    case 4: return [{ opcode: rng.pick([Op.ping, Op.pong, Op.close]), payload: Buffer.from("x"), fin: false }];
    case 5: return [{ opcode: rng.pick([Op.ping, Op.pong]), payload: rng.bytes(rng.pick([126, 200, 70_000])) }];
    case 6: return [{ opcode: Op.cont, payload: p }];
    case 7: return [{ opcode: Op.binary, payload: Buffer.from("PI"), fin: false }, { opcode: Op.binary, payload: Buffer.from("NG\r\n") }];
    case 8: return [{ opcode: Op.binary, payload: p, declaredLength: rng.pick([1n << 63n, (1n << 64n) - 1n, 1n << 40n, 20_000_000n, 2n ** 31n]) }];
    case 9: return [{ opcode: Op.binary, payload: p, declaredLength: p.length + 1 + rng.int(100) }]; // waits for bytes that are the next frame's
    case 10: return [{ opcode: Op.binary, payload: p, truncateTo: rng.int(8) }];
    case 11: return [{ opcode: Op.close, payload: rng.pick([Buffer.from([0x03]), Buffer.from([0x03, 0xe7]), Buffer.from([0x03, 0xed]), Buffer.from([0x13, 0x88]), Buffer.from([0x03, 0xe8, 0xff, 0xfe]), Buffer.alloc(0)]) }];
    case 12: return [{ opcode: Op.text, payload: Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x0d, 0x0a]) }];
    case 13: // a fragmented message over the size limit (~16 MB + max_payload)
      return Array.from({ length: 18 }, (_, i) => ({ opcode: i === 0 ? Op.binary : Op.cont, payload: Buffer.alloc(1 << 20, 0x20), fin: i === 17 }));
    case 14: // a deflate bomb: a few KB that inflate to tens of MB
      return [{ opcode: Op.binary, payload: deflateBody(Buffer.alloc(rng.pick([1 << 20, 20 << 20, 40 << 20]), rng.pick([0x20, 0x0a, 0x41]))), rsv1: true }];
    case 15: // bad deflate data
      return [{ opcode: Op.binary, payload: rng.bytes(1 + rng.int(64)), rsv1: true }];
    default: // compressed continuation with rsv1 set (only the first frame may set it)
      return negotiated
        ? [{ opcode: Op.binary, payload: deflateBody(Buffer.from("PING\r\n")).subarray(0, 2), fin: false, rsv1: true }, { opcode: Op.cont, payload: Buffer.from([1, 2, 3]), rsv1: true }]
        : [{ opcode: Op.ping, payload: Buffer.alloc(0) }];
  }
}

const HOSTILE_UPGRADES = [
  "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", // no key
  "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
  "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n\r\n",
  "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
  "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
  "GET / HTTP/1.0\r\n\r\n",
  "PING\r\n",
  "CONNECT {}\r\n",
  "\r\n\r\n",
  "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=0; server_max_window_bits=99\r\n\r\n",
  "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: \xff\xfe://\r\nCookie: =; ;;=a\r\n\r\n",
  `GET /${"a".repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  `GET / HTTP/1.1\r\nHost: x\r\n${"X-A: b\r\n".repeat(3_000)}\r\n`,
  "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", // never ends
];

export function genWebSocket(rng: Rng, index: number, ctx: GenContext): FuzzCase {
  if (rng.chance(0.08)) {
    const raw = Buffer.from(rng.pick(HOSTILE_UPGRADES), "latin1");
    return { family: "websocket", index, note: "websocket hostile upgrade", transport: "ws", chunks: [], expect: { kind: "any" }, ws: { raw, wellFramed: false, compressed: false } };
  }
  const offer = rng.chance(0.4);
  const extensions = offer ? rng.pick(["permessage-deflate", "permessage-deflate; client_max_window_bits", "permessage-deflate; server_no_context_takeover; client_no_context_takeover"]) : undefined;
  // The server compresses only when it offered deflate back; the client may compress only then.
  const negotiated = offer;
  const style = rng.weighted([[4, "valid"], [3, "protocol"], [2, "connect"], [3, "frames"]] as const);
  let data: Buffer;
  let expect: Expectation;
  let note = `websocket ${style}${offer ? " deflate" : ""}`;
  if (style === "valid") {
    const opts = cleanOptions(rng);
    data = Buffer.from(`CONNECT ${JSON.stringify(opts)}\r\nSUB fz.a 1\r\nPUB fz.a ${rng.int(50)}\r\n`, "latin1");
    const n = Number(/PUB fz.a (\d+)/.exec(data.toString("latin1"))![1]);
    data = Buffer.concat([data, rng.bytes(n), Buffer.from("\r\nPING\r\n")]);
    expect = { kind: "alive", pongs: 2 };
  } else if (style === "protocol" || style === "connect") {
    const inner = style === "protocol" ? genProtocol(rng, index, ctx) : genConnect(rng, index, ctx);
    data = Buffer.concat(inner.chunks);
    expect = inner.expect;
    note += ` (${inner.note})`;
  } else {
    data = Buffer.from(`CONNECT {"verbose":false}\r\nPING\r\n`);
    expect = { kind: "any" };
  }
  const frames = carry(rng, data, negotiated);
  if (style === "frames") {
    const n = 1 + rng.small(3);
    for (let i = 0; i < n; i++) frames.splice(rng.int(frames.length + 1), 0, ...hostileFrame(rng, negotiated));
  }
  const bytes = Buffer.concat(frames.map((f) => encodeWsFrame(f, rng)));
  // Frames are a byte stream too: cut the raw bytes at random points.
  const chunks = bytes.length > 4 << 20 ? [bytes] : splitChunks(rng, bytes);
  const compressed = frames.some((f) => f.rsv1);
  return { family: "websocket", index, note, transport: "ws", chunks, expect, ws: { extensions, wellFramed: style !== "frames", compressed } };
}
