// Byte-level mutations and split points, shared by the generators.
import type { Rng } from "./prng.ts";

/** Bytes the protocol is made of: mutations drawn from here hit the parser's decisions more often. */
const PROTOCOL_ALPHABET = Buffer.from("PUBSUBHPINGONCTQFMEKRpubsubhpingconnect \t\r\n\r\n0123456789.*>{}[]\":,-+'_$\x00\x7f\x80\xff", "latin1");

/** Fragments worth splicing in: op names, separators, sizes, header and JSON pieces. */
const DICTIONARY = [
  "PUB ", "HPUB ", "SUB ", "UNSUB ", "PING\r\n", "PONG\r\n", "CONNECT ", "CONNECT {}\r\n", "INFO {}\r\n", "+OK\r\n", "-ERR 'x'\r\n",
  "MSG ", "HMSG ", "\r\n", "\n", "\r", " ", "\t", "  ", " 0", " 1", " -1", " 65536", " 65537", " 99999999999999", " 999999999999999999",
  "NATS/1.0\r\n", "NATS/1.0 503\r\n\r\n", "\r\n\r\n", "Nats-Msg-Id: x\r\n", "fz.>", "fz.*", ">", "*", "..", "{", "}", "\"", "\\", "\\u0000",
  "\x00", "\xff\xfe", "\u00e9",
].map((s) => Buffer.from(s, "latin1"));

export function protocolByte(rng: Rng): number {
  return PROTOCOL_ALPHABET[rng.int(PROTOCOL_ALPHABET.length)]!;
}

/** Applies 1…max random byte-level mutations. */
export function mutateBytes(rng: Rng, input: Buffer, max = 4): Buffer {
  let b: Buffer = Buffer.from(input);
  const n = 1 + rng.int(max);
  for (let k = 0; k < n; k++) {
    const at = rng.int(b.length + 1);
    switch (rng.int(9)) {
      case 0: // flip a bit
        if (b.length > 0) b[Math.min(at, b.length - 1)] ^= 1 << rng.int(8);
        break;
      case 1: // overwrite with a protocol byte
        if (b.length > 0) b[Math.min(at, b.length - 1)] = protocolByte(rng);
        break;
      case 2: // insert protocol bytes
        b = Buffer.concat([b.subarray(0, at), rng.chance(0.5) ? Buffer.from([protocolByte(rng)]) : rng.fromAlphabet(PROTOCOL_ALPHABET, 1 + rng.int(8)), b.subarray(at)]);
        break;
      case 3: // insert a dictionary fragment
        b = Buffer.concat([b.subarray(0, at), rng.pick(DICTIONARY), b.subarray(at)]);
        break;
      case 4: { // delete a range
        const len = 1 + rng.small(16);
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + len))]);
        break;
      }
      case 5: { // duplicate a range
        const len = 1 + rng.small(64);
        const piece = b.subarray(at, Math.min(b.length, at + len));
        b = Buffer.concat([b.subarray(0, at), piece, piece, b.subarray(at + piece.length)]);
        break;
      }
      case 6: // truncate
        b = b.subarray(0, at);
        break;
      case 7: // random bytes
        b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.small(32)), b.subarray(at)]);
        break;
      case 8: { // replace a digit run with another number
        const s = b.toString("latin1");
        const m = [...s.matchAll(/\d+/g)];
        if (m.length > 0) {
          const hit = rng.pick(m);
          const num = rng.pick(["0", "1", "-1", "65536", "65537", "4294967296", "9007199254740993", "99999999999999999999", String(rng.int(200)), "00", "1e3", "0x10"]);
          b = Buffer.concat([b.subarray(0, hit.index!), Buffer.from(num, "latin1"), b.subarray(hit.index! + hit[0].length)]);
        }
        break;
      }
    }
  }
  return b;
}

/**
 * Cuts `data` into the writes that will carry it: one write, random cut points, byte by byte, or cuts
 * right around CR/LF/space (where the parser's carry logic decides things).
 */
export function splitChunks(rng: Rng, data: Buffer): Buffer[] {
  if (data.length <= 1) return [data];
  const mode = rng.weighted([[4, "one"], [3, "random"], [1, "bytes"], [2, "boundaries"]] as const);
  const cuts = new Set<number>();
  if (mode === "one") return [data];
  if (mode === "bytes" && data.length <= 400) {
    for (let i = 1; i < data.length; i++) cuts.add(i);
  } else if (mode === "boundaries") {
    for (let i = 0; i < data.length; i++) {
      const c = data[i]!;
      if ((c === 0x0d || c === 0x0a || c === 0x20) && rng.chance(0.5)) cuts.add(rng.chance(0.5) ? i : i + 1);
    }
  } else {
    const k = 1 + rng.int(8);
    for (let i = 0; i < k; i++) cuts.add(1 + rng.int(data.length - 1));
  }
  const sorted = [...cuts].filter((c) => c > 0 && c < data.length).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of sorted) {
    out.push(data.subarray(prev, c));
    prev = c;
  }
  out.push(data.subarray(prev));
  return out;
}
