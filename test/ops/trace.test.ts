// The protocol trace (-DV) in nats-server's format: one `[TRC] ip:port - cid:N - <<- [OP args]` line per op
// read, `->> [OP args]` per op sent (a MSG's control line), `<<- MSG_PAYLOAD: [%q]` for payloads (Go's
// quoting), `<-> [DELSUB sid]` when a subscription goes. The lines of a scripted session are the ones
// nats-server 2.9.10 writes for it (checked with NATTER_TEST_SERVER=nats-server).
import { expect, test } from "vitest";
import { startServer } from "../harness/server.ts";
import { connectRaw, waitFor } from "../harness/raw.ts";

const SESSION = Buffer.from(
  'CONNECT {"verbose":true,"pedantic":false,"user":"a","pass":"secret","headers":true}\r\n' +
    "PING\r\nSUB foo 1\r\nSUB bar q 2\r\n" +
    "PUB foo 5\r\nhello\r\n" +
    'PUB foo r 2\r\n\x01"\r\n' +
    "HPUB foo 12 17\r\nNATS/1.0\r\n\r\nhello\r\n" +
    "pub  foo\t6\r\n\xc3\xa9\xff\xc2\xa0\x7f\r\n" +
    "UNSUB 1 \r\nUNSUB 2 3\r\nPONG\r\nBOGUS\r\n",
  "latin1",
);

/** What nats-server 2.9.10 traces for SESSION, after the `[TRC] 127.0.0.1:<port> - cid:<n> - ` prefix. */
const EXPECTED = [
  '<<- [CONNECT {"verbose":true,"pedantic":false,"user":"a","pass":"[REDACTED]","headers":true}]',
  "->> [OK]",
  "<<- [PING]",
  "->> [PONG]",
  "<<- [SUB foo 1]",
  "->> [OK]",
  "<<- [SUB bar q 2]",
  "->> [OK]",
  "<<- [PUB foo 5]",
  '<<- MSG_PAYLOAD: ["hello"]',
  "->> [OK]",
  "->> [MSG foo 1 5]",
  "<<- [PUB foo r 2]",
  '<<- MSG_PAYLOAD: ["\\x01\\""]',
  "->> [OK]",
  "->> [MSG foo 1 r 2]",
  "<<- [HPUB foo 12 17]",
  '<<- MSG_PAYLOAD: ["NATS/1.0\\r\\n\\r\\nhello"]',
  "->> [OK]",
  "->> [HMSG foo 1 12 17]",
  "<<- [PUB foo\t6]",
  '<<- MSG_PAYLOAD: ["é\\xff\\u00a0\\x7f"]',
  "->> [OK]",
  "->> [MSG foo 1 6]",
  "<<- [UNSUB 1 ]",
  "->> [OK]",
  "<-> [DELSUB 1]",
  "<<- [UNSUB 2 3]",
  "->> [OK]",
  "<<- [PONG]",
  "->> [-ERR Unknown Protocol Operation]",
  "<-> [DELSUB 2]",
];

test("a scripted session is traced line for line as nats-server traces it", async () => {
  const server = await startServer({ args: ["-DV"] });
  const client = await connectRaw(server.port, { autoPong: false });
  client.send(SESSION);
  const prefix = /^\[\d+\] \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\.\d{6} \[TRC\] 127\.0\.0\.1:(\d+) - cid:\d+ - (.*)$/;
  const traced = () => server.log().split("\n").filter((l) => l.includes("[TRC]"));
  await waitFor(() => traced().some((l) => l.endsWith("[DELSUB 2]")), 10_000, "the session's last trace line");
  const lines = traced();
  for (const line of lines) expect(line).toMatch(prefix);
  expect(lines.map((l) => prefix.exec(l)![2])).toEqual(EXPECTED);
  expect(new Set(lines.map((l) => prefix.exec(l)![1])).size).toBe(1); // one client, one address
});
