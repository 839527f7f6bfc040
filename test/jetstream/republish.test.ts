// A stream's republish and subject transform (src/jetstream/republish.ts), as nats-server 2.10 does them.
// The republish test runs against nats-server 2.9.10 too (it has republish, without Nats-Time-Stamp);
// the subject transform is 2.10's (2.9.10 drops the field): natter only unless NATS_SERVER_210 is set.
import type { Msg } from "@nats-io/nats-core";
import { describe, expect, test } from "vitest";
import { serverKind } from "../harness/server.ts";
import { api, connectJs, enc, startJs, until } from "./helpers.ts";

const test210 = test.skipIf(serverKind === "nats-server" && !process.env.NATS_SERVER_210);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe("republish and subject transform", () => {
  test("republish: the stored message again on dest, with its headers and the stream's; headers_only without the payload", async () => {
    const server = await startJs();
    try {
      const { nc, js, jsm } = await connectJs(server);
      await jsm.streams.add({ name: "R", subjects: ["orders.>"], republish: { src: "orders.*", dest: "rp.{{wildcard(1)}}" } });
      await jsm.streams.add({ name: "H", subjects: ["h.>"], republish: { src: ">", dest: "rph.>", headers_only: true } });
      const got: Msg[] = [];
      nc.subscribe("rp.>", { callback: (_e, m) => { got.push(m); } });
      nc.subscribe("rph.>", { callback: (_e, m) => { got.push(m); } });
      await nc.flush();
      await js.publish("orders.a", enc("one"));
      const h = (await import("@nats-io/nats-core")).headers();
      h.set("X-Mine", "yes");
      await js.publish("orders.a", enc("two"), { headers: h });
      await js.publish("orders.b.deep", enc("not matched"));
      await js.publish("h.x", enc("12345"));
      await until(() => got.length >= 3, 5000, "3 republished messages");
      await nc.flush();
      const [one, two, ho] = got;
      expect(one!.subject).toBe("rp.a");
      expect(dec(one!.data)).toBe("one");
      expect(one!.headers!.get("Nats-Stream")).toBe("R");
      expect(one!.headers!.get("Nats-Subject")).toBe("orders.a");
      expect(one!.headers!.get("Nats-Sequence")).toBe("1");
      expect(one!.headers!.get("Nats-Last-Sequence")).toBe("0");
      expect(two!.headers!.get("X-Mine")).toBe("yes");
      expect(two!.headers!.get("Nats-Sequence")).toBe("2");
      expect(two!.headers!.get("Nats-Last-Sequence")).toBe("1");
      expect(ho!.subject).toBe("rph.h.x");
      expect(ho!.data.length).toBe(0);
      expect(ho!.headers!.get("Nats-Msg-Size")).toBe("5");
      if (serverKind === "natter") expect(one!.headers!.get("Nats-Time-Stamp")).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(got.length).toBe(3);
      // A destination the stream captures would loop: refused.
      const bad = await api(nc, "$JS.API.STREAM.CREATE.C", { name: "C", subjects: ["c.>"], republish: { src: ">", dest: "c.x" } });
      expect(bad.error).toEqual({ code: 500, err_code: 10052, description: "stream configuration for republish destination forms a cycle" });
      await nc.close();
    } finally {
      await server.stop();
    }
  });

  test210("subject_transform: captured subjects stored under the transformed subject", async () => {
    const server = await startJs();
    try {
      const { nc, js, jsm } = await connectJs(server);
      await api(nc, "$JS.API.STREAM.CREATE.T", { name: "T", subjects: ["in.>"], subject_transform: { src: "in.*.*", dest: "out.{{wildcard(2)}}.{{wildcard(1)}}" } });
      await js.publish("in.a.b", enc("x"));
      await js.publish("in.c", enc("y"));
      expect((await jsm.streams.getMessage("T", { seq: 1 }))!.subject).toBe("out.b.a");
      expect((await jsm.streams.getMessage("T", { seq: 2 }))!.subject).toBe("in.c");
      const info = await api(nc, "$JS.API.STREAM.INFO.T");
      expect(info.config.subject_transform).toEqual({ src: "in.*.*", dest: "out.{{wildcard(2)}}.{{wildcard(1)}}" });
      await nc.close();
    } finally {
      await server.stop();
    }
  });
});
