// A user public key is checked without @nats-io/nkeys (src/auth/nkeys.ts): same verdicts as the library's
// fromPublic, as nats-server's nkeys.IsValidPublicUserKey.
import { createAccount, createUser, fromPublic } from "@nats-io/nkeys";
import { expect, test } from "vitest";
import { isValidPublicUserKey } from "../../src/auth/nkeys.ts";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function byLibrary(key: string): boolean {
  if (key.length !== 56 || key[0] !== "U") return false;
  try {
    fromPublic(key);
    return true;
  } catch {
    return false;
  }
}

test("user keys, keys with one character changed, account keys and random strings: the library's verdict", () => {
  const keys: string[] = [];
  for (let i = 0; i < 150; i++) {
    const user = createUser().getPublicKey();
    const at = 1 + (i % 55);
    keys.push(user, user.slice(0, at) + BASE32[(BASE32.indexOf(user[at]!) + 1 + (i % 31)) % 32] + user.slice(at + 1));
    keys.push(createAccount().getPublicKey(), `U${Array.from({ length: 55 }, (_, k) => BASE32[(i * 7 + k * 13) % 32]).join("")}`);
  }
  keys.push("", "U", `U${"A".repeat(55)}`, `U${"a".repeat(55)}`, `U${"1".repeat(55)}`, `${createUser().getPublicKey()}A`);
  const verdicts = keys.map((k) => isValidPublicUserKey(k));
  expect(verdicts).toEqual(keys.map(byLibrary));
  expect(verdicts.filter(Boolean).length).toBeGreaterThanOrEqual(150);
});
