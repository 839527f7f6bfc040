// User and account public keys are checked without @nats-io/nkeys (src/auth/nkeys.ts): same verdicts as
// the library's fromPublic, as nats-server's nkeys.IsValidPublicUserKey / IsValidPublicAccountKey.
import { createAccount, createUser, fromPublic } from "@nats-io/nkeys";
import { expect, test } from "vitest";
import { isValidPublicAccountKey, isValidPublicUserKey } from "../../src/auth/nkeys.ts";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function byLibrary(key: string, prefix = "U"): boolean {
  if (key.length !== 56 || key[0] !== prefix) return false;
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
  expect(verdicts).toEqual(keys.map((k) => byLibrary(k)));
  expect(verdicts.filter(Boolean).length).toBeGreaterThanOrEqual(150);
});

test("account keys (nkeys.IsValidPublicAccountKey): the library's verdict, user keys refused", () => {
  const keys: string[] = [];
  for (let i = 0; i < 100; i++) {
    const account = createAccount().getPublicKey();
    const at = 1 + (i % 55);
    keys.push(account, account.slice(0, at) + BASE32[(BASE32.indexOf(account[at]!) + 1 + (i % 31)) % 32] + account.slice(at + 1), createUser().getPublicKey());
  }
  keys.push("", `A${"A".repeat(55)}`, `A${"7".repeat(55)}`);
  const verdicts = keys.map((k) => isValidPublicAccountKey(k));
  expect(verdicts).toEqual(keys.map((k) => byLibrary(k, "A")));
  expect(verdicts.filter(Boolean).length).toBeGreaterThanOrEqual(100);
});
