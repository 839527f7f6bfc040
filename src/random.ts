// Random bytes from Web Crypto's getRandomValues (Bun's native CSPRNG, as node:crypto's randomBytes
// draws from): importing node:crypto costs ~3 MiB of RSS at start, this costs nothing.

/** `n` cryptographically random bytes (n ≤ 65536, getRandomValues' limit). */
export function randomBytes(n: number): Buffer<ArrayBuffer> {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(n)).buffer);
}
