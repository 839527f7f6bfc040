// The console in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core) against
// a real natter with real clients producing traffic. Each page renders with live data, its numbers match
// the JSON endpoints, admin actions work for an admin and are refused to a readonly user, the page logs no
// error and asks no other origin for anything. Screenshots for the README: NATTER_CONSOLE_SCREENSHOTS=1
// writes them to docs/console/.
// Without /usr/bin/chromium (apt-get install chromium; .ci/run installs it) the tests skip with a message.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Browser, BrowserContext, Page } from "playwright-core";
import mqtt, { type MqttClient } from "mqtt";
import { getJson, startMonitored } from "../monitor/spawn.ts";
import { ADMIN, APP, VIEWER, postAs, signIn, startConsoleServer, type ConsoleServer } from "./fixture.ts";

const CHROMIUM = "/usr/bin/chromium";
/** expect.poll with room for a busy machine (vitest's default gives up after 1 s). */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 10_000 });
// The README's screenshots: written to docs/console/ only when asked (NATTER_CONSOLE_SCREENSHOTS=1), so a
// test run leaves the work tree as it was; otherwise to a temporary directory (still taken, still checked).
const KEEP_SHOTS = process.env.NATTER_CONSOLE_SCREENSHOTS === "1";
const SHOTS = KEEP_SHOTS
  ? path.resolve(import.meta.dirname, "../../docs/console")
  : mkdtempSync(path.join(os.tmpdir(), "natter-console-shots-"));
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`test/console/browser.test.ts: skipped, no ${CHROMIUM} (apt-get install -y chromium)`);

interface Varz {
  server_id: string;
  connections: number;
  subscriptions: number;
  in_msgs: number;
}

describe.skipIf(!haveChromium)("the console in Chromium", () => {
  let server: ConsoleServer;
  let browser: Browser;
  const clients: NatsConnection[] = [];
  let meter: MqttClient | null = null;
  let publishing: ReturnType<typeof setInterval> | null = null;
  /** What went wrong in any page: console errors, uncaught exceptions, requests to another origin, a secret in an answer. */
  const problems: string[] = [];
  let responses = 0;

  function startTraffic(pub: NatsConnection) {
    let n = 0;
    publishing = setInterval(() => {
      for (let i = 0; i < 20; i++) pub.publish(`orders.${n++ % 5}`, `{"n":${n}}`);
    }, 20);
  }
  function stopTraffic() {
    if (publishing !== null) clearInterval(publishing);
    publishing = null;
  }

  beforeAll(async () => {
    server = await startConsoleServer("users");
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: process.getuid?.() === 0 ? ["--no-sandbox"] : [] });
    const sub = await connect({ servers: server.hostport, name: "order-worker", ...APP });
    sub.subscribe("orders.>", { queue: "workers" });
    sub.subscribe("audit.*");
    const pub = await connect({ servers: server.hostport, name: "order-publisher", ...APP });
    const victim = await connect({ servers: server.hostport, name: "victim", reconnect: false, ...APP });
    clients.push(sub, pub, victim);
    // An MQTT client: the Connections page marks it (protocol MQTT) and names it by its client id.
    const mqttPort = (await getJson<{ mqtt: { port: number } }>(server, "/varz")).mqtt.port;
    meter = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: "meter-7", username: APP.user, password: APP.pass, protocolVersion: 4, reconnectPeriod: 0 });
    await meter.subscribeAsync("meters/7/#");
    startTraffic(pub);
    mkdirSync(SHOTS, { recursive: true });
  }, 30_000);

  afterAll(async () => {
    stopTraffic();
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await meter?.endAsync(true).catch(() => {});
    await browser?.close();
    await server?.stop();
    if (!KEEP_SHOTS) rmSync(SHOTS, { recursive: true, force: true });
  });

  async function openAs(who: { user: string; password: string }, opts: { width?: number; height?: number; dark?: boolean } = {}): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: opts.width ?? 1280, height: opts.height ?? 800 }, colorScheme: opts.dark ? "dark" : "light" });
    const page = await context.newPage();
    const origin = new URL(server.base).origin;
    page.on("request", (r) => {
      if (!r.url().startsWith(`${origin}/`)) problems.push(`request to another origin: ${r.url()}`);
    });
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console error: ${m.text()} (${m.location().url})`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    // Every answer the page gets, scanned for the config's secrets (passwords, the token, the nkey seed).
    page.on("response", async (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()} from ${r.url()}`);
      const text = await r.text().catch(() => "");
      responses++;
      for (const secret of server.secrets) if (text.includes(secret)) problems.push(`${r.url()} holds the secret ${secret}`);
    });
    page.on("dialog", (d) => void d.accept());
    await page.goto(`${server.base}/console`);
    await page.getByLabel("User").fill(who.user);
    await page.getByLabel("Password").fill(who.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("header .who").getByText(`${who.user} (`).waitFor();
    return { context, page };
  }

  it("Overview: identity, counters that match /varz, and charts filled from the server's history", async () => {
    // History first: the ring buffer has samples from before the page was opened.
    const before = await fetch(`${server.base}/console/api/series?since=0`, { headers: { Cookie: (await signIn(server, VIEWER)).cookie } });
    expect(((await before.json()) as { t: number[] }).t.length).toBeGreaterThan(0);

    const { context, page } = await openAs(VIEWER);
    const varz = await getJson<Varz>(server, "/varz");
    await poll(() => page.locator('[data-field="server_id"]').textContent()).toBe(varz.server_id);
    await poll(() => page.locator('[data-stat="connections"]').textContent()).toBe(String(varz.connections));
    await poll(() => page.locator('[data-stat="subscriptions"]').textContent()).toBe(String(varz.subscriptions));
    expect(await page.locator("figure.chart canvas").count()).toBe(6);
    // Live: the in-message counter moves while the publisher runs.
    const first = await page.locator('[data-stat="in_msgs"]').textContent();
    await poll(() => page.locator('[data-stat="in_msgs"]').textContent()).not.toBe(first);
    // The messages chart has points above zero (uPlot's data, read back from the page's own chart).
    await poll(async () => (await fetch(`${server.base}/varz`).then((r) => r.json()) as Varz).in_msgs).toBeGreaterThan(100);
    // An alert fires (the fixture's leaf remote never connects): the banner is on the page.
    await poll(() => page.getByRole("alert").textContent()).toContain("leaf_down (leafnodes)");
    // Traffic stopped: the page's total equals /varz's, to the message.
    stopTraffic();
    await clients[1]!.flush();
    const settled = await getJson<Varz>(server, "/varz");
    await poll(() => page.locator('[data-stat="in_msgs"]').textContent()).toBe(settled.in_msgs.toLocaleString("en-US"));
    startTraffic(clients[1]!);
    await context.close();
  }, 30_000);

  it("Connections: the /connz table, sortable and filterable, a connection's subscriptions; readonly cannot close", async () => {
    const { context, page } = await openAs(VIEWER);
    await page.getByRole("link", { name: "Connections" }).click();
    const connz = await getJson<{ num_connections: number; connections: { cid: number; name?: string; mqtt_client?: string }[] }>(server, "/connz");
    const rows = page.locator('table[data-table="connections"] tbody tr');
    await poll(() => rows.count()).toBe(connz.num_connections);
    await poll(() => page.locator('[data-field="num_connections"]').textContent()).toBe(String(connz.num_connections));
    const worker = connz.connections.find((c) => c.name === "order-worker")!;
    // Live rates: the worker receives messages, so its out msgs/s shows more than zero.
    const workerRow = page.locator(`tr[data-cid="${worker.cid}"]`);
    await poll(async () => Number(((await workerRow.locator("td").nth(8).textContent()) ?? "0").replace(/[^\d.]/g, ""))).toBeGreaterThan(0);
    // Sort by name, descending then ascending.
    await page.getByRole("button", { name: /^Name/ }).click();
    const names = async () => (await rows.locator("td:nth-child(2)").allTextContents()).filter(Boolean);
    await poll(names).toEqual(["meter-7 (MQTT client id)", "order-publisher", "order-worker", "victim"]);
    await page.getByRole("button", { name: /^Name/ }).click();
    await poll(names).toEqual(["victim", "order-worker", "order-publisher", "meter-7 (MQTT client id)"]);
    // The MQTT client: protocol MQTT, its client id as /connz's mqtt_client has it, in its detail too.
    const meterConn = connz.connections.find((c) => c.mqtt_client === "meter-7")!;
    const meterRow = page.locator(`tr[data-cid="${meterConn.cid}"]`);
    expect(await meterRow.locator("td:nth-child(5)").textContent()).toBe("MQTT");
    await meterRow.getByRole("button", { name: String(meterConn.cid) }).click();
    await poll(() => page.locator(`[data-detail="${meterConn.cid}"] [data-field="mqtt_client"]`).textContent()).toBe("meter-7");
    await poll(() => page.locator(`[data-detail="${meterConn.cid}"] tbody td.mono`).allTextContents()).toEqual(expect.arrayContaining(["meters.7.>"]));
    await meterRow.getByRole("button", { name: String(meterConn.cid) }).click();
    // Filter.
    await page.getByLabel("Filter").fill("worker");
    await poll(() => rows.count()).toBe(1);
    // Detail: its subscriptions, as /connz?subs=detail lists them.
    await workerRow.getByRole("button", { name: String(worker.cid) }).click();
    const detail = page.locator(`[data-detail="${worker.cid}"]`);
    await poll(() => detail.locator("tbody td.mono").allTextContents()).toEqual(expect.arrayContaining(["orders.>", "audit.*"]));
    expect(await detail.getByText("workers").count()).toBe(1);
    await page.getByLabel("Filter").fill(""); // every connection in the screenshot, the MQTT one too
    await poll(() => rows.count()).toBe(connz.num_connections);
    await page.screenshot({ path: path.join(SHOTS, "connections.png"), fullPage: true });
    // A readonly user has no Close button, and the API refuses the POST even when forged from the page.
    expect(await page.getByRole("button", { name: "Close connection" }).count()).toBe(0);
    const status = await page.evaluate(async (cid) => {
      const me = await (await fetch("/console/api/session")).json();
      const r = await fetch("/console/api/connections/close", { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf }, body: JSON.stringify({ cid }) });
      return r.status;
    }, worker.cid);
    expect(status).toBe(403);

    await context.close();
  }, 30_000);

  it("an admin closes a connection from the page; it moves to the closed ones with reason Kicked", async () => {
    const { context, page } = await openAs(ADMIN, { width: 390, height: 844, dark: true });
    await page.goto(`${server.base}/console#/connections`);
    const connz = await getJson<{ connections: { cid: number; name?: string }[] }>(server, "/connz");
    const victim = connz.connections.find((c) => c.name === "victim")!;
    await page.locator(`tr[data-cid="${victim.cid}"]`).getByRole("button", { name: String(victim.cid) }).click();
    await page.getByRole("button", { name: "Close connection" }).click();
    await page.getByRole("status").getByText(`Connection ${victim.cid} closed.`).waitFor();
    await poll(() => page.locator(`table[data-table="connections"] tr[data-cid="${victim.cid}"]`).count()).toBe(0);
    await poll(() => page.locator(`table[data-table="closed"] tr[data-cid="${victim.cid}"] td:nth-child(4)`).textContent()).toBe("Kicked");
    await clients[2]!.closed(); // the client saw its connection end
    await page.screenshot({ path: path.join(SHOTS, "connections-phone-dark.png"), fullPage: true });
    const audit = server.audit().find((e) => e.type === "console_action" && e.allowed === true);
    expect(audit).toMatchObject({ console_user: ADMIN.user, action: "close_connection", cid: victim.cid });
    await context.close();
  }, 30_000);

  it("Subjects: the busiest subjects (sampled) and the interest tree of /subsz, wildcards and queue groups shown", async () => {
    const { context, page } = await openAs(VIEWER);
    await page.getByRole("link", { name: "Subjects" }).click();
    // The publisher spreads its messages over orders.0 … orders.4: all five are among the busiest.
    const top = page.locator('table[data-table="top-subjects"] tbody tr');
    await poll(async () => (await top.locator("td:first-child").allTextContents()).sort())
      .toEqual(expect.arrayContaining(["orders.0", "orders.1", "orders.2", "orders.3", "orders.4"]));
    // Accuracy: the sampled rates add up to the server's measured in-rate, within the documented noise.
    const v1 = await getJson<Varz>(server, "/varz");
    const t1 = performance.now();
    await new Promise((r) => setTimeout(r, 3_000));
    const v2 = await getJson<Varz>(server, "/varz");
    const measured = (v2.in_msgs - v1.in_msgs) / ((performance.now() - t1) / 1000);
    const sampled = (await (await fetch(`${server.base}/console/api/subjects`, { headers: { Cookie: (await signIn(server, VIEWER)).cookie } })).json() as { top: { msgs_per_sec: number }[] }).top
      .reduce((sum, t) => sum + t.msgs_per_sec, 0);
    expect(sampled).toBeGreaterThan(measured * 0.6);
    expect(sampled).toBeLessThan(measured * 1.4);
    const subsz = await getJson<{ num_subscriptions: number }>(server, "/subsz");
    await poll(() => page.locator('[data-field="num_subscriptions"]').textContent()).toBe(String(subsz.num_subscriptions));
    const tree = page.locator('[data-tree="interest"]');
    await poll(() => tree.locator('li[data-subject="orders.>"]').textContent()).toContain("queue workers");
    expect(await tree.locator('li[data-subject="audit.*"] .wildcard').textContent()).toBe("*");
    await page.screenshot({ path: path.join(SHOTS, "subjects.png"), fullPage: true });
    await context.close();
  }, 30_000);

  it("Streams: messages, limits and consumer lag as /jsz has them; the message browser; readonly cannot purge", async () => {
    const nc = clients[0]!;
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"], max_msgs: 1_000_000 });
    await jsm.consumers.add("ORDERS", { durable_name: "billing", ack_policy: AckPolicy.Explicit, filter_subject: "orders.0" });
    const js = jetstream(nc);
    await js.publish("orders.json", JSON.stringify({ n: 1 }));
    await js.publish("orders.bin", new Uint8Array([0, 1, 2, 255]));
    // Five messages taken and not acknowledged: ack pending 5.
    const billing = await js.consumers.get("ORDERS", "billing");
    const batch = await billing.fetch({ max_messages: 5, expires: 2_000 });
    for await (const _ of batch) { /* received, never acked */ }
    stopTraffic();
    await clients[1]!.flush();

    const { context, page } = await openAs(VIEWER);
    await page.getByRole("link", { name: "Streams" }).click();
    type StreamJsz = { account_details: { stream_detail: { name: string; state: { messages: number }; consumer_detail: { name: string; num_pending: number; num_ack_pending: number }[] }[] }[] };
    const jsz = await getJson<StreamJsz>(server, "/jsz?streams=1&consumers=1");
    const orders = jsz.account_details[0]!.stream_detail.find((s) => s.name === "ORDERS")!;
    const billingJsz = orders.consumer_detail.find((c) => c.name === "billing")!;
    const section = page.locator('[data-stream="ORDERS"]');
    await poll(() => section.locator('[data-stat="messages"]').textContent()).toBe(orders.state.messages.toLocaleString("en-US"));
    const row = section.locator('tr[data-consumer="billing"]');
    await poll(() => row.locator('[data-stat="num_pending"]').textContent()).toBe(billingJsz.num_pending.toLocaleString("en-US"));
    expect(await row.locator('[data-stat="num_ack_pending"]').textContent()).toBe("5");
    // The backlog over time: the server samples each consumer once a second (15 minutes kept).
    await row.getByRole("button", { name: "billing" }).click();
    await poll(() => section.locator('[data-backlog="billing"] canvas').count()).toBe(1);
    const cookie = (await signIn(server, VIEWER)).cookie;
    const backlog = async () => (await (await fetch(`${server.base}/console/api/backlog?account=$G&stream=ORDERS&consumer=billing`, { headers: { Cookie: cookie } })).json()) as { num_pending: number[]; num_ack_pending: number[] };
    await poll(async () => { const b = await backlog(); return [b.num_pending.at(-1), b.num_ack_pending.at(-1)]; }).toEqual([billingJsz.num_pending, 5]);
    // The message browser: a JSON payload pretty-printed, a binary one as hex (found by its subject).
    await section.getByRole("button", { name: "Browse messages" }).click();
    const browser = section.locator('[data-browser="ORDERS"]');
    await browser.getByLabel("Subject filter").fill("orders.json");
    await browser.getByRole("button", { name: "Show", exact: true }).click();
    await poll(() => browser.locator('[data-field="msg-payload"]').textContent()).toBe('{\n  "n": 1\n}');
    await browser.getByLabel("Subject filter").fill("orders.bin");
    await browser.getByRole("button", { name: "Show", exact: true }).click();
    await poll(() => browser.locator('[data-field="msg-subject"]').textContent()).toBe("orders.bin");
    expect(await browser.locator('[data-field="msg-payload"]').textContent()).toBe("000000  00 01 02 ff");
    // By time: the first message at or after a moment (a binary search over the sequences, server side).
    await browser.getByLabel("Subject filter").fill("");
    await browser.getByLabel("From time").fill("2000-01-01T00:00:00");
    await browser.getByRole("button", { name: "Show from time" }).click();
    await poll(() => browser.locator(".message").getAttribute("data-seq")).toBe(String((await jsm.streams.info("ORDERS")).state.first_seq));
    const mark = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    const late = await js.publish("orders.late", "late");
    const atMark = (await (await fetch(`${server.base}/console/api/streams/msg?stream=ORDERS&time=${new Date(mark).toISOString()}`, { headers: { Cookie: (await signIn(server, VIEWER)).cookie } })).json()) as { seq: number; subject: string };
    expect(atMark).toMatchObject({ seq: late.seq, subject: "orders.late" });
    await page.screenshot({ path: path.join(SHOTS, "streams.png"), fullPage: true });
    expect(await page.getByRole("button", { name: "Purge" }).count()).toBe(0);
    expect(await page.getByRole("button", { name: /^Edit consumer/ }).count()).toBe(0);
    const status = await page.evaluate(async () => {
      const me = await (await fetch("/console/api/session")).json();
      return (await fetch("/console/api/streams/purge", { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf }, body: JSON.stringify({ account: "$G", name: "ORDERS" }) })).status;
    });
    expect(status).toBe(403);

    await context.close();
  }, 30_000);

  it("an admin creates, purges and deletes streams from the page (through the JetStream API)", async () => {
    const { context, page } = await openAs(ADMIN);
    await page.goto(`${server.base}/console#/streams`);
    const form = page.getByRole("form", { name: "Create a stream" });
    await form.getByLabel("Name").fill("AUDIT");
    await form.getByLabel("Subjects").fill("audit.>");
    await form.getByRole("button", { name: "Create stream" }).click();
    await page.getByRole("status").getByText("Stream AUDIT created.").waitFor();
    const jsm = await jetstreamManager(clients[0]!);
    expect((await jsm.streams.info("AUDIT")).config.subjects).toEqual(["audit.>"]);
    await page.locator('[data-stream="ORDERS"]').getByRole("button", { name: "Purge" }).click();
    await page.getByRole("status").getByText("Stream ORDERS purged.").waitFor();
    expect((await jsm.streams.info("ORDERS")).state.messages).toBe(0);
    // Edit the stream, and create a consumer on it.
    const audit = page.locator('[data-stream="AUDIT"]');
    await audit.getByRole("button", { name: "Edit" }).click();
    const edit = page.getByRole("form", { name: "Edit AUDIT" });
    await edit.getByLabel("Max msgs").fill("500");
    await edit.getByLabel("Subjects").fill("audit.>, login.*");
    await edit.getByRole("button", { name: "Save" }).click();
    await page.getByRole("status").getByText("Stream AUDIT updated.").waitFor();
    const edited = (await jsm.streams.info("AUDIT")).config;
    expect([edited.max_msgs, edited.subjects]).toEqual([500, ["audit.>", "login.*"]]);
    const create = page.getByRole("form", { name: "Create a consumer on AUDIT" });
    await create.getByLabel("Consumer").fill("auditor");
    await create.getByLabel("Filter subject").fill("login.failed");
    await create.getByLabel("Max deliver").fill("3");
    await create.getByRole("button", { name: "Create consumer" }).click();
    await page.getByRole("status").getByText("Consumer auditor created on AUDIT.").waitFor();
    const auditor = (await jsm.consumers.info("AUDIT", "auditor")).config;
    expect([auditor.durable_name, auditor.filter_subject, auditor.max_deliver, auditor.ack_policy]).toEqual(["auditor", "login.failed", 3, "explicit"]);
    await poll(() => audit.locator('tr[data-consumer="auditor"]').count()).toBe(1);
    // Edit the consumer: nats-server's own refusal first (max deliver not above the backoff's length), then
    // a change it accepts, both audited.
    await audit.getByRole("button", { name: "Edit consumer auditor" }).click();
    const editConsumer = page.getByRole("form", { name: "Edit consumer auditor" });
    expect(await editConsumer.getByLabel("Max ack pending").inputValue()).toBe(String(auditor.max_ack_pending));
    await editConsumer.getByLabel("Description").fill("failed logins");
    await editConsumer.getByLabel("Backoff").fill("1s, 5s, 1m");
    await editConsumer.getByLabel("Max deliver").fill("2");
    await editConsumer.getByLabel("Max ack pending").fill("50");
    await editConsumer.getByLabel("Headers only").check();
    await editConsumer.getByLabel("Metadata").fill("team=security\ntier=gold");
    await editConsumer.getByRole("button", { name: "Save consumer" }).click();
    await page.getByRole("status").getByText("Could not update auditor: max deliver is required to be > length of backoff values").waitFor();
    await editConsumer.getByLabel("Max deliver").fill("4");
    await editConsumer.getByRole("button", { name: "Save consumer" }).click();
    await page.getByRole("status").getByText("Consumer auditor updated (description, backoff, max_deliver, max_ack_pending, headers_only, metadata).").waitFor();
    // Saved, the form closes; reopened, it shows the config as the server has it (the backoff set ack_wait).
    await poll(() => editConsumer.count()).toBe(0);
    await audit.getByRole("button", { name: "Edit consumer auditor" }).click();
    await poll(() => editConsumer.getByLabel("Ack wait").inputValue()).toBe("1s");
    const updated = (await jsm.consumers.info("AUDIT", "auditor")).config;
    expect(updated).toMatchObject({ description: "failed logins", backoff: [1e9, 5e9, 60e9], ack_wait: 1e9, max_deliver: 4, max_ack_pending: 50, headers_only: true, metadata: { team: "security", tier: "gold" }, filter_subject: "login.failed" });
    // A value that is not one is refused before any request: the console's words, naming the field.
    const bad = await postAs(server, await signIn(server, ADMIN), "/console/api/consumers/update", { stream: "AUDIT", name: "auditor", ack_wait: "3x" });
    expect([bad.status, await bad.json()]).toEqual([400, { account: "$G", stream: "AUDIT", consumer: "auditor", error: 'Ack wait: "3x" is not a duration (e.g. 30s, 1m30s, 500ms)' }]);
    await poll(() => server.audit().filter((e) => e.action === "consumer_update").map((e) => [e.name ?? e.consumer, e.error ?? (e.changed as string[]).length]))
      .toEqual([["auditor", "max deliver is required to be > length of backoff values"], ["auditor", 6], ["auditor", 'Ack wait: "3x" is not a duration (e.g. 30s, 1m30s, 500ms)']]);
    await page.locator('[data-stream="AUDIT"]').getByRole("button", { name: "Delete stream" }).click();
    await page.getByRole("status").getByText("Stream AUDIT deleted.").waitFor();
    await poll(() => page.locator('[data-stream="AUDIT"]').count()).toBe(0);
    await expect(jsm.streams.info("AUDIT")).rejects.toThrow(/stream not found/);
    const actions = server.audit().filter((e) => e.type === "console_action" && e.allowed === true).map((e) => `${e.action} ${e.stream}`);
    expect(actions).toEqual(expect.arrayContaining(["stream_create AUDIT", "stream_purge ORDERS", "stream_delete AUDIT"]));
    await context.close();
    startTraffic(clients[1]!);
  }, 30_000);

  it("an admin replays a range to another subject, and redrives a dead letter to its original subject", async () => {
    stopTraffic();
    const nc = clients[0]!;
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    // Dead letters: a consumer that terminates what it gets, its dead_letter_subject kept by stream DLQ.
    await jsm.streams.add({ name: "DLQ", subjects: ["dlq.>"] });
    await jsm.consumers.add("ORDERS", { durable_name: "shipping", ack_policy: AckPolicy.Explicit, filter_subject: "orders.ship", dead_letter_subject: "dlq.orders" } as never);
    await js.publish("orders.ship", JSON.stringify({ parcel: 7 }));
    const shipping = await js.consumers.get("ORDERS", "shipping");
    const got = await shipping.next({ expires: 2_000 });
    got!.term("bad address");
    await poll(async () => (await jsm.streams.info("DLQ")).state.messages).toBe(1);
    // Replay: the last five messages of ORDERS, republished to replay.orders.
    for (let i = 0; i < 5; i++) await js.publish("orders.r", `r${i}`);
    const last = (await jsm.streams.info("ORDERS")).state.last_seq;
    const replayed: string[] = [];
    nc.subscribe("replay.orders", { callback: (_e, m) => void replayed.push(m.string()) });
    const redriven: string[] = [];
    nc.subscribe("orders.ship", { callback: (_e, m) => void redriven.push(m.string()) });
    await nc.flush();

    const { context, page } = await openAs(ADMIN);
    await page.goto(`${server.base}/console#/streams`);
    const form = page.getByRole("form", { name: "Replay ORDERS" });
    await form.getByLabel("From seq").fill(String(last - 4));
    await form.getByLabel("To seq").fill(String(last));
    await form.getByLabel("To subject").fill("replay.orders");
    await form.getByRole("button", { name: "Replay" }).click();
    await page.getByRole("status").getByText("Replayed 5 messages of ORDERS to replay.orders.").waitFor();
    await poll(() => replayed).toEqual(["r0", "r1", "r2", "r3", "r4"]);

    const letter = page.locator('[data-dlq="shipping"] tr[data-seq="1"]');
    await poll(() => letter.locator('[data-field="reason"]').textContent()).toBe("terminated: bad address");
    expect(await letter.locator("td:nth-child(2)").textContent()).toMatch(/^orders\.ship #\d+$/);
    await page.screenshot({ path: path.join(SHOTS, "streams-admin.png"), fullPage: true });
    await letter.getByRole("button", { name: "Redrive" }).click();
    await page.getByRole("status").getByText("Dead letter 1 redriven to orders.ship.").waitFor();
    await poll(() => redriven).toEqual(['{"parcel":7}']);
    expect((await jsm.streams.info("DLQ")).state.messages).toBe(0);
    // The audit log is written within ~100 ms.
    await poll(() => server.audit().filter((e) => e.type === "console_action" && e.allowed === true).map((e) => e.action))
      .toEqual(expect.arrayContaining(["stream_replay", "dead_letter_redrive", "stream_update", "consumer_create"]));
    await context.close();
    startTraffic(clients[1]!);
  }, 30_000);

  it("Latency: /latz's histograms by percentile, delivery and per service subject, and percentiles over time", async () => {
    const nc = clients[0]!;
    const responder = nc.subscribe("svc.price", { callback: (_e, m) => void m.respond("42") });
    for (let i = 0; i < 40; i++) await nc.request("svc.price", "?", { timeout: 5_000 });
    stopTraffic();
    await clients[1]!.flush();
    type Latz = { delivery: { count: number }; services: Record<string, { count: number }> };
    await poll(async () => (await getJson<Latz>(server, "/latz")).services["svc.price"]?.count ?? 0).toBeGreaterThan(0);
    const latz = await getJson<Latz>(server, "/latz");
    const { context, page } = await openAs(VIEWER);
    await page.getByRole("link", { name: "Latency" }).click();
    await poll(() => page.locator('tr[data-histogram="delivery"] [data-stat="count"]').textContent()).toBe(latz.delivery.count.toLocaleString("en-US"));
    await poll(() => page.locator('tr[data-histogram="svc.price"] [data-stat="count"]').textContent()).toBe(latz.services["svc.price"]!.count.toLocaleString("en-US"));
    await poll(() => page.locator("figure.chart canvas").count()).toBe(2);
    expect(await page.locator('figure[aria-label="Latency by percentile"] .u-legend').textContent()).toContain("svc.price");
    await page.screenshot({ path: path.join(SHOTS, "latency.png"), fullPage: true });
    responder.unsubscribe();
    startTraffic(clients[1]!);
    await context.close();
  }, 30_000);

  it("Accounts: users (names only) with their permissions, and the server's answer to 'may U publish to S?'", async () => {
    const { context, page } = await openAs(VIEWER);
    await page.getByRole("link", { name: "Accounts" }).click();
    const g = page.locator('[data-account="$G"]');
    await poll(() => g.locator('tr[data-user="billing"] td:nth-child(2)').textContent()).toBe("allow billing.>, $JS.API.>; deny billing.secret");
    expect(await g.locator('[data-stat="connections"]').textContent()).toBe(String((await getJson<{ connections: number }>(server, "/varz")).connections));
    const checker = page.getByRole("form", { name: "Permission checker" });
    const ask = async (op: string, subject: string) => {
      await checker.getByLabel("User").selectOption("billing");
      await checker.getByLabel("Action").selectOption(op);
      await checker.getByLabel("Subject").fill(subject);
      await checker.getByRole("button", { name: "Check" }).click();
      await page.getByRole("status").getByText(subject).waitFor();
      return page.getByRole("status").getAttribute("data-answer");
    };
    expect(await ask("pub", "billing.eu")).toBe("allowed");
    expect(await ask("pub", "billing.secret")).toBe("denied");
    expect(await ask("sub", "orders.eu")).toBe("allowed");
    expect(await ask("sub", "orders.eu.new")).toBe("denied");
    await page.screenshot({ path: path.join(SHOTS, "accounts.png"), fullPage: true });
    // The same answers the server gives a real client signed in as billing.
    const billing = await connect({ servers: server.hostport, user: "billing", pass: "billing-SECRET-pw" });
    try {
      const errors: string[] = [];
      void (async () => { for await (const s of billing.status()) if (s.type === "error") errors.push(String(s.error)); })();
      billing.publish("billing.secret", "x");
      await billing.flush().catch(() => {});
      await poll(() => errors.join(" ")).toMatch(/Permissions Violation for Publish to "billing.secret"/);
    } finally {
      await billing.close().catch(() => {});
    }
    await context.close();
  }, 30_000);

  it("Audit: the audit log newest first, filtered by event and by user, as the file has it", async () => {
    const { context, page } = await openAs(VIEWER);
    await page.getByRole("link", { name: "Audit" }).click();
    const filter = page.getByRole("form", { name: "Audit filter" });
    await filter.getByLabel("Event").selectOption("console_action");
    const rows = page.locator('table[data-table="audit"] tbody tr');
    const inFile = () => server.audit().filter((e) => e.type === "console_action");
    await poll(async () => [await rows.count(), inFile().length]).toEqual([inFile().length, inFile().length]);
    expect(await rows.first().locator("td:nth-child(4)").textContent()).toContain(`action=${String(inFile().at(-1)!.action)}`); // newest first
    await filter.getByLabel("User").fill(VIEWER.user);
    const refused = inFile().filter((e) => e.console_user === VIEWER.user);
    expect(refused.length).toBeGreaterThan(0);
    await poll(() => rows.count()).toBe(refused.length);
    expect(await rows.locator("td:nth-child(4)").allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining("allowed=false")]));
    await filter.getByLabel("User").fill("");
    await filter.getByLabel("Event").selectOption("");
    await page.screenshot({ path: path.join(SHOTS, "audit.png") });
    await context.close();
  }, 30_000);

  it("Alerts: the banner on every page, the firing alerts and their history, as the API has them", async () => {
    const { context, page } = await openAs(VIEWER);
    for (const name of ["Connections", "Subjects", "Streams", "Latency", "Cluster", "Accounts", "Audit"]) {
      await page.getByRole("link", { name, exact: true }).click();
      await poll(() => page.getByRole("alert").textContent()).toContain("leaf_down");
    }
    await page.getByRole("link", { name: "Alerts", exact: true }).click();
    await poll(() => page.locator('table[data-table="active-alerts"] tr[data-rule="leaf_down"] td:nth-child(3)').textContent()).toBe("1 leaf remote not connected");
    expect(await page.locator('table[data-table="alert-history"] tr[data-rule="leaf_down"][data-state="firing"]').count()).toBe(1);
    expect(await page.locator('[data-field="rules"]').textContent()).toBe("Rules: leaf_down · consumer_lag above 1000000 for 10s (ORDERS above 2000000, SCRATCH off)");
    await page.screenshot({ path: path.join(SHOTS, "alerts.png") });
    // The Overview's screenshot last, when the charts have the whole run's history.
    await page.getByRole("link", { name: "Overview", exact: true }).click();
    await poll(() => page.locator("figure.chart canvas").count()).toBe(6);
    await page.screenshot({ path: path.join(SHOTS, "overview.png"), fullPage: true });
    await context.close();
  }, 30_000);

  // Last: when node-b stops, the meta group it joined has no quorum, and JetStream requests get no answer.
  it("Cluster and edge: a member as the gossip sees it, its route, a leaf link with its account, the meta leader and a stream's replicas", async () => {
    const varz = await getJson<{ server_name: string; cluster: { cluster_port: number }; leaf: { port: number } }>(server, "/varz");
    // node-b runs JetStream too: the two form one JetStream (the meta group, which this node founded alone
    // long ago and now grows), and a stream with two replicas has a leader and a follower.
    const storeB = mkdtempSync(path.join(os.tmpdir(), "natter-console-js-b-"));
    const nodeB = await startMonitored("natter", ["-n", "node-b", "-js", "--store_dir", storeB, "--cluster", "nats://127.0.0.1:-1", "--routes", `nats://127.0.0.1:${varz.cluster.cluster_port}`]);
    const edge = await startMonitored("natter", ["-n", "edge-1", "--leafnode_remote", `nats-leaf://${APP.user}:${APP.pass}@127.0.0.1:${varz.leaf.port}`]);
    try {
      type Meta = { meta_cluster?: { leader: string; cluster_size: number } };
      await poll(async () => (await getJson<Meta>(server, "/jsz")).meta_cluster?.cluster_size).toBe(2);
      const jsm = await jetstreamManager(clients[0]!);
      const r2 = await jsm.streams.add({ name: "R2", subjects: ["r2.>"], num_replicas: 2 });
      const leader = r2.cluster!.leader!;
      const follower = [varz.server_name, "node-b"].find((n) => n !== leader)!;
      const { context, page } = await openAs(VIEWER);
      await page.getByRole("link", { name: "Cluster" }).click();
      const member = page.locator('table[data-table="members"] tr', { hasText: "node-b" });
      await poll(() => member.locator('[data-field="state"]').textContent()).toBe("alive");
      await poll(() => page.locator('table[data-table="routes"] tr[data-route="node-b"]').count()).toBe(1);
      const routez = await getJson<{ num_routes: number }>(server, "/routez");
      await poll(() => page.locator('[data-field="num_routes"]').textContent()).toBe(String(routez.num_routes));
      const leaf = page.locator('table[data-table="leafs"] tr[data-leaf="edge-1"]');
      await poll(() => leaf.locator("td:nth-child(2)").textContent()).toBe("$G");
      const leafz = await getJson<{ leafnodes: number }>(server, "/leafz");
      await poll(() => page.locator('[data-field="leafnodes"]').textContent()).toBe(String(leafz.leafnodes));
      // JetStream: the meta group's leader as /jsz has it, and R2's leader and its other replica, current.
      const meta = (await getJson<Meta>(server, "/jsz")).meta_cluster!;
      await poll(() => page.locator('[data-field="meta_leader"]').textContent()).toBe(meta.leader);
      const r2row = page.locator('table[data-table="stream-replicas"] tr[data-stream="R2"]');
      await poll(() => r2row.locator('[data-field="leader"]').textContent()).toBe(leader);
      expect(await r2row.locator("td:nth-child(3)").textContent()).toBe("2");
      await poll(() => r2row.locator(`[data-replica="${follower}"]`).textContent()).toBe(`${follower}: current`);
      await page.screenshot({ path: path.join(SHOTS, "cluster.png"), fullPage: true });
      await context.close();
    } finally {
      await Promise.all([nodeB.stop(), edge.stop()]);
      rmSync(storeB, { recursive: true, force: true });
    }
  }, 40_000);

  it("no page logged an error, asked another origin for anything or got a secret", () => {
    expect(responses).toBeGreaterThan(20);
    // The readonly user's forged admin POSTs were refused (403) on purpose; the browser logs those.
    const forged = /403.*\/console\/api\/(connections\/close|streams\/purge)|\/console\/api\/(connections\/close|streams\/purge).*403/;
    // So was the consumer edit that nats-server's rules refuse (max deliver against the backoff).
    const refusedEdit = /400.*\/console\/api\/consumers\/update|\/console\/api\/consumers\/update.*400/;
    expect(problems.filter((p) => !forged.test(p) && !refusedEdit.test(p))).toEqual([]);
  });
});
