// nkey users: the server puts a random nonce in INFO, the client signs it with its seed and sends the
// signature (base64url, or standard base64) in CONNECT `sig` with its public key in `nkey`.
//
// Public keys are checked here as nats-server's nkeys.IsValidPublicUserKey does (prefix 'U', base32,
// CRC16), without @nats-io/nkeys: that library and its tweetnacl cost ~6 MiB of RSS when loaded, and a
// server without nkey users must not pay it at start. The signature itself is checked with node:crypto's
// native Ed25519 (BoringSSL in Bun): measured here at ~0.05 ms per verify against ~5-9 ms for tweetnacl,
// which would otherwise run on the event loop for every nkey CONNECT. node:crypto (~3 MiB) is loaded
// at the first configured nkey user, not at start.
import type { KeyObject } from "node:crypto";

/** nats-server's nonceRawLen: 11 random bytes, sent as 15 base64url characters. */
const NONCE_RAW_BYTES = 11;

export function newNonce(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(NONCE_RAW_BYTES))).toString("base64url");
}

/** A user public key (`U` + 55 base32 characters: prefix byte, 32 key bytes, valid CRC16)? */
export function isValidPublicUserKey(key: string): boolean {
  return isValidPublicKey(key, "U");
}

/** An account public key (`A` + 55 base32 characters, valid checksum), as nkeys.IsValidPublicAccountKey. */
export function isValidPublicAccountKey(key: string): boolean {
  return isValidPublicKey(key, "A");
}

/** A public key of the kind `prefix` names: its prefix byte is that letter's base32 value << 3 (U 160, A 0). */
function isValidPublicKey(key: string, prefix: "U" | "A"): boolean {
  if (key.length !== 56 || key[0] !== prefix) return false;
  const raw = decodeBase32(key);
  if (raw === null || raw[0] !== BASE32.indexOf(prefix) << 3) return false;
  return crc16(raw.subarray(0, 33)) === (raw[33]! | (raw[34]! << 8));
}

/** CRC-16/XMODEM (polynomial 0x1021, initial 0), the nkey checksum, stored little-endian after the key. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** The bytes of a base32 string (RFC 4648 alphabet, no padding), or null for a character outside it. */
function decodeBase32(text: string): Buffer | null {
  const out = Buffer.alloc(Math.floor((text.length * 5) / 8));
  let bits = 0;
  let value = 0;
  let at = 0;
  for (const ch of text) {
    const digit = BASE32.indexOf(ch);
    if (digit < 0) return null;
    value = ((value << 5) | digit) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[at++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}

/** The 32 raw Ed25519 bytes inside a public nkey (1 prefix byte, 32 key bytes, 2 CRC bytes, base32). */
function rawPublicKey(key: string): Buffer {
  return decodeBase32(key)!.subarray(1, 33);
}

/** node:crypto, loaded at the first use. */
function nodeCrypto(): typeof import("node:crypto") {
  return process.getBuiltinModule("node:crypto");
}

/** A configured nkey user's key, ready to verify signatures. Throws on an invalid key. */
export class NkeyVerifier {
  private readonly key: KeyObject;

  constructor(readonly publicKey: string) {
    if (!isValidPublicUserKey(publicKey)) throw new Error(`not a valid public nkey for a user: ${publicKey}`);
    this.key = nodeCrypto().createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: rawPublicKey(publicKey).toString("base64url") }, format: "jwk" });
  }

  /** Does `sig` (base64url or base64, as nats-server accepts) sign `nonce`? */
  verify(nonce: string, sig: string): boolean {
    const signature = decodeSignature(sig);
    if (signature === null || signature.length !== 64) return false;
    try {
      return nodeCrypto().verify(null, Buffer.from(nonce, "latin1"), this.key, signature);
    } catch {
      return false;
    }
  }
}

function decodeSignature(sig: string): Buffer | null {
  if (/^[A-Za-z0-9_-]+$/.test(sig)) return Buffer.from(sig, "base64url");
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(sig)) return Buffer.from(sig, "base64");
  return null;
}
