// The JetStream API audit advisory (src/jetstream/api-audit.ts; nats-server's sendJetStreamAPIAuditAdvisory):
// each answer to an API request is also published on `$JS.EVENT.ADVISORY.API` with the server's name, the
// requester's ClientInfo, the request's subject and body and the answer as the client got it. A message
// found by STREAM.MSG.GET, pull requests and direct gets have none. Also against nats-server
// (NATTER_TEST_SERVER=nats-server); the 3-node case is in test/cluster/js-meta.test.ts.
import { describe, expect, test } from "vitest";
import { collectJson, connectJs, dec, enc, startJs, until } from "./helpers.ts";

describe("API audit advisory", () => {
  test("one per answered request, with the request, the answer and the requester; none for a message got, a pull request, a direct get", async () => {
    const server = await startJs();
    try {
      const { nc, js } = await connectJs(server);
      const serverName = nc.info!.server_name;
      const audits = collectJson(nc, "$JS.EVENT.ADVISORY.API");
      await nc.flush();
      const sent: { subject: string; request: string; response: string }[] = [];
      const request = async (subject: string, body = "", audited = true): Promise<string> => {
        const response = dec((await nc.request(subject, enc(body), { timeout: 5000, noMux: true })).data); // (a pull answer has the message's subject: no muxed inbox)
        if (audited) sent.push({ subject, request: body, response });
        return response;
      };

      await request("$JS.API.STREAM.CREATE.AUD", JSON.stringify({ name: "AUD", subjects: ["aud.>"], allow_direct: true }));
      await request("$JS.API.STREAM.INFO.AUD");
      await request("$JS.API.STREAM.INFO.NOPE"); // an error answer too
      await js.publish("aud.1", enc("one"));
      await request("$JS.API.STREAM.MSG.GET.AUD", JSON.stringify({ seq: 1 }), false); // found: no audit
      await request("$JS.API.STREAM.MSG.GET.AUD", JSON.stringify({ seq: 9 })); // not found: audited
      await request("$JS.API.DIRECT.GET.AUD", JSON.stringify({ seq: 1 }), false);
      await request("$JS.API.CONSUMER.CREATE.AUD.PULL", JSON.stringify({ stream_name: "AUD", config: { name: "PULL", ack_policy: "explicit" } }));
      await request("$JS.API.CONSUMER.MSG.NEXT.AUD.PULL", JSON.stringify({ batch: 1 }), false);
      await request("$JS.API.STREAM.DELETE.AUD");

      await until(() => audits.length >= sent.length, 10_000, "an audit advisory per request");
      await nc.flush();
      expect(audits.map((a) => a.subject)).toEqual(sent.map((s) => s.subject));
      for (const [k, audit] of audits.entries()) {
        expect(Object.keys(audit).filter((key) => key !== "request")).toEqual(["type", "id", "timestamp", "server", "client", "subject", "response"]);
        expect(audit.type).toBe("io.nats.jetstream.advisory.v1.api_audit");
        expect(typeof audit.id).toBe("string");
        expect(Number.isNaN(Date.parse(audit.timestamp))).toBe(false);
        expect(audit.server).toBe(serverName);
        // Through the system account's service import: the account, the RTT, the client's server.
        expect(audit.client).toMatchObject({ acc: "$G", server: serverName });
        expect(Object.keys(audit.client).filter((key) => key !== "rtt")).toEqual(["acc", "server"]);
        // An empty request is left out (omitempty); the answer is the one the client got, byte for byte.
        expect(audit.request).toBe(sent[k]!.request === "" ? undefined : sent[k]!.request);
        expect(audit.response).toBe(sent[k]!.response);
      }
      await nc.close();
    } finally {
      await server.stop();
    }
  });
});
