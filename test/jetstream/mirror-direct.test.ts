// mirror_direct (src/jetstream/stream.ts mirrorCaughtUp): a mirror that has caught up with its origin answers
// the origin's direct gets too, in the same `_sys_` queue group, from its own copy (the answer's Nats-Stream
// names it), as nats-server's does. Runs against nats-server too (NATTER_TEST_SERVER=nats-server).
import { describe, expect, test } from "vitest";
import { connectJs, enc, startJs, until } from "./helpers.ts";

describe("mirror_direct", () => {
  test("a caught-up mirror answers its origin's direct gets (by sequence and by subject) from its own copy", async () => {
    const server = await startJs();
    try {
      const { nc, js, jsm } = await connectJs(server);
      await jsm.streams.add({ name: "ORIG", subjects: ["o.>"], allow_direct: true });
      for (let i = 1; i <= 5; i++) await js.publish(`o.${i}`, enc(`v${i}`));
      await jsm.streams.add({ name: "MIR", mirror: { name: "ORIG" }, mirror_direct: true });
      await until(async () => (await jsm.streams.info("MIR")).state.last_seq === 5, 10_000, "the mirror up to 5");
      // Two local members of the queue group (the origin and the mirror): either answers, at random.
      const bySeq = new Set<string>();
      const bySubject = new Set<string>();
      await until(async () => {
        const m = await jsm.direct.getMessage("ORIG", { seq: 3 });
        expect({ subject: m?.subject, data: m?.string() }).toEqual({ subject: "o.3", data: "v3" });
        bySeq.add(m!.header.get("Nats-Stream"));
        const last = await jsm.direct.getMessage("ORIG", { last_by_subj: "o.4" });
        expect({ seq: last?.seq, data: last?.string() }).toEqual({ seq: 4, data: "v4" });
        bySubject.add(last!.header.get("Nats-Stream"));
        return bySeq.size === 2 && bySubject.size === 2;
      }, 10_000, "answers from the origin and from the mirror");
      expect([...bySeq].sort()).toEqual(["MIR", "ORIG"]);
      expect([...bySubject].sort()).toEqual(["MIR", "ORIG"]);
      await nc.close();
    } finally {
      await server.stop();
    }
  });
});
