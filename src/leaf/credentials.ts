// A remote's credentials file (`credentials: "user.creds"`), as `nsc` writes it and nats-server reads it
// (leafnode.go sendLeafConnect, credsRe): the user JWT and the user's nkey seed, each between dashed
// marker lines. The leaf sends the JWT in CONNECT `jwt` and signs the hub's INFO nonce with the seed
// (Ed25519, base64url without padding) in `sig`. The file is read again for every connection (a
// rotated file takes effect on the next reconnect), and the seed is wiped after signing.
import { nodeFs } from "../node-builtins.ts";

/**
 * @nats-io/nkeys, loaded at the first credentials file read: with its tweetnacl it costs ~6 MiB of RSS,
 * which a server without leaf credentials must not carry (issue 20, idle RSS). require() because
 * signing is synchronous here (the CONNECT is built in a socket handler).
 */
function nkeys(): typeof import("@nats-io/nkeys") {
  return require("@nats-io/nkeys") as typeof import("@nats-io/nkeys");
}

/** nats-server's credsRe: a marker line (---…---), the item, another marker line. */
const CREDS_RE = /\s*(?:(?:-{3,}.*-{3,}\r?\n)([\w\-.=]+)(?:\r?\n-{3,}.*-{3,}\r?\n))/g;

export interface SignedCredentials {
  jwt: string;
  sig: string;
}

/** Reads `path` and signs `nonce`; throws with a one-line reason (the file is unreadable or malformed). */
export function signWithCredentials(path: string, nonce: string): SignedCredentials {
  const contents = nodeFs().readFileSync(path);
  try {
    const items = [...contents.toString("latin1").matchAll(CREDS_RE)].map((m) => m[1]!);
    if (items.length < 2) throw new Error("Credentials file malformed");
    // The key pair keeps a reference to the seed bytes: wiped (kp.clear) only after signing.
    let kp;
    try {
      kp = nkeys().fromSeed(new TextEncoder().encode(items[1]!));
    } catch {
      throw new Error("Credentials file has malformed seed");
    }
    try {
      const sig = Buffer.from(kp.sign(new TextEncoder().encode(nonce))).toString("base64url");
      return { jwt: items[0]!, sig };
    } finally {
      kp.clear();
    }
  } finally {
    contents.fill(0);
  }
}

/** Checks a credentials file at start (readable, a JWT and a seed): throws with a one-line reason. */
export function checkCredentials(path: string): void {
  signWithCredentials(path, "check");
}
