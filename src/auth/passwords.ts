// Password and token checks as nats-server's comparePasswords (server/auth.go): a configured value that
// looks like a bcrypt hash is verified as one, anything else is compared as plain text.
//
// bcrypt is verified with Bun.password.verify, which runs on Bun's thread pool: a check takes ~100 ms
// at cost 11, and doing it on the event loop (verifySync) would stall every client for that long per
// CONNECT, so one client sending wrong passwords could freeze the server. Plain values are compared in
// constant time (over SHA-256 digests, so the length does not leak either).

/** nats-server's validBcryptPrefix: `$2a$`, `$2b$`, `$2x$`, `$2y$` and a two-digit cost. */
const BCRYPT = /^\$2[abxy]\$\d{2}\$.*/;

export function isBcrypt(value: string): boolean {
  return value.startsWith("$") && BCRYPT.test(value);
}

function digest(value: string): Buffer {
  return new Bun.CryptoHasher("sha256").update(value, "utf8").digest();
}

/** Constant-time equality of two plain strings. */
export function plainEquals(configured: string, given: string): boolean {
  return crypto.timingSafeEqual(digest(configured), digest(given));
}

/**
 * Whether `given` matches the configured password or token: a boolean at once for plain values, a
 * promise for bcrypt hashes (resolved off the event loop). A malformed hash never matches.
 */
export function comparePassword(configured: string, given: string): boolean | Promise<boolean> {
  if (!isBcrypt(configured)) return plainEquals(configured, given);
  // $2y$ (PHP's name) is the same algorithm as $2b$; Bun only knows the latter spellings.
  const hash = configured.startsWith("$2y$") ? `$2b$${configured.slice(4)}` : configured;
  return Bun.password.verify(given, hash, "bcrypt").catch(() => false);
}
