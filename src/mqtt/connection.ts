// One MQTT client connection: bytes → packets (src/mqtt/decode.ts) → the spec's state machine
// (CONNECT first, then PUBLISH/SUBSCRIBE/…, keepalive), published into the account's subject space
// the way a NATS client's PUB is (deliverToMatches), and delivered through its session (session.ts).
// Packets leave through the outbound buffer of a link (src/link.ts), written once per tick like a NATS connection's.
import { randomBytes } from "../random.ts";
import { TransportLink } from "../link.ts";
import type { Server } from "../server.ts";
import type { Transport } from "../transport/transport.ts";
import type { Account } from "../accounts/account.ts";
import { ClientPermissions } from "../auth/permissions.ts";
import { comparePassword } from "../auth/passwords.ts";
import type { AuthenticatedUser } from "../auth/authenticator.ts";
import type { PublishBucket } from "../auth/ratelimit.ts";
import { isValidPublishSubject, isValidSubscribeSubject } from "../subjects/subject.ts";
import { PacketFramer, decodePacket } from "./decode.ts";
import { encodePacket } from "./encode.ts";
import {
  ConnackCode311, MQTT_311, MQTT_5, MqttProtocolError, PACKET_NAMES, PacketType, ReasonCode, SUBACK_FAILURE_311, protocolError,
  type ConnectPacket, type Packet, type PublishPacket, type SubscribePacket, type UnsubscribePacket, type Will,
} from "./packets.ts";
import type { Properties } from "./properties.ts";
import { propertiesToHeaders } from "./headers.ts";

/** What a client sent while its CONNECT was being settled: packets already framed, reads not yet; reading paused or not. */
interface HeldInput {
  packets: { first: number; body: Buffer }[];
  reads: Buffer[];
  bytes: number;
  paused: boolean;
}

/** Held this much while its session is being stored, a client's reading pauses. */
const HELD_BEFORE_PAUSE = 64 * 1024;

/** A 3.1.1 PUBLISH has no properties. */
const NO_PROPERTIES: Properties = {};
import { varintSize, writeVarint } from "./wire.ts";
import { filterProblem, filterToSubject, needsParentLevel, TopicError, topicToSubject } from "./topics.ts";
import type { MqttSession, MqttSubscription } from "./session.ts";
import type { Mqtt } from "./mqtt.ts";
import { mqttRecord } from "./monitor.ts";

/** The properties a retained message keeps (not the topic alias or subscription ids of the PUBLISH that set it). */
function retainedProperties(p: Properties): Properties {
  const { topicAlias: _alias, subscriptionIdentifiers: _ids, ...kept } = p;
  return kept;
}

/** Reads held beyond this (a client sending on while paused) close the connection. */
const MAX_HELD_BYTES = 8 * 1024 * 1024;

/** Topic aliases a client may use towards the server (MQTT 5 topic alias maximum in CONNACK). */
const TOPIC_ALIAS_MAXIMUM = 64;

export class MqttConnection extends TransportLink {
  readonly startedAt = Date.now();
  lastActivity = Date.now();
  /** 0 until CONNECT, then 4 (3.1.1) or 5. */
  level = 0;
  clientId = "";
  session: MqttSession | null = null;
  account: Account;
  authUser = "";
  perms: ClientPermissions | null = null;
  /** CONNECT's keep alive in seconds (0 = none); 1.5 times it without a packet closes the connection. */
  keepAlive = 0;
  /** MQTT 5: what the client may take in flight at once (receive maximum) and its maximum packet size. */
  clientReceiveMaximum = 65_535;
  clientMaximumPacketSize = Number.MAX_SAFE_INTEGER;
  closeReason = "";
  // As events and monitoring read a client (src/accounts/events.ts EventClient): MQTT has no name, lang,
  // version or RTT; its client id is what identifies it.
  readonly name = "";
  readonly lang = "";
  readonly version = "";
  readonly rttMs = 0;
  inMsgs = 0;
  inBytes = 0;
  /** outMsgs at the previous sweep (mqtt.ts): unchanged = nothing was sent since. */
  outMsgsAtLastSweep = 0;
  private will: Will | null = null;
  private readonly framer: PacketFramer;
  /** Topic aliases the client set (made at the first one: most clients use none). */
  private topicAliases: Map<number, string> | null = null;
  /** MQTT 5: how many topic aliases the client accepts from us (its CONNECT's topic alias maximum). */
  private aliasesOut = 0;
  /** Topics we gave an alias on this connection (latin1 of the UTF-8 bytes → alias), first come first served. */
  private outAliases: Map<string, number> | null = null;
  /** The last topic published and its subject: a device publishing to one topic converts it once. */
  private lastTopic = "";
  private lastSubject = "";
  /** That topic's UTF-8 bytes (the QoS 0 fast path compares them, and sends them on to MQTT subscribers). */
  private lastTopicBytes: Buffer | null = null;
  /**
   * While a bcrypt password is checked off the event loop: the packets already cut from the stream after
   * CONNECT, and the reads that arrive meanwhile (in this order once the check is done).
   */
  private authPending: HeldInput | null = null;
  /** CONNACK sent: from then on the session's messages go to this client (before it, they wait or, QoS 0, are dropped). */
  connacked = false;

  constructor(
    readonly mqtt: Mqtt,
    readonly server: Server,
    readonly transport: Transport,
    readonly cid: number,
  ) {
    super();
    this.account = server.accounts.global;
    this.framer = new PacketFramer(mqtt.maxPacketSize);
  }

  /** nats-server's `client_id` of an MQTT client in events. */
  get mqttClientId(): string {
    return this.clientId;
  }

  get logPrefix(): string {
    return `${this.transport.remoteAddress}:${this.transport.remotePort} - mid:${this.cid}`;
  }

  // ---- input -------------------------------------------------------------------------------

  /** Reads that came while the MQTT layer was still loading its state, or while the user's publish rate paused us. */
  private heldReads: Buffer[] | null = null;
  private heldBytes = 0;
  /** The user's publish rate limit (rate_limit), shared with its other connections; null = none. */
  private publishBucket: PublishBucket | null = null;
  private chargedMsgs = 0;
  private chargedBytes = 0;
  private ratePaused = false;

  onRead(data: Buffer): void {
    if (this.closed) return;
    if (this.mqtt.loading || this.ratePaused) {
      (this.heldReads ??= []).push(Buffer.from(data));
      this.heldBytes += data.length;
      // A WebSocket cannot stop being read: one that keeps sending while told to wait is cut.
      if (this.heldBytes > MAX_HELD_BYTES) this.close("Slow Consumer (Pending Bytes)");
      return;
    }
    if (this.heldReads !== null) {
      // Held reads go first, in order; this one after them.
      (this.heldReads ??= []).push(Buffer.from(data));
      this.releaseHeldReads();
      return;
    }
    if (this.authPending !== null) {
      this.holdRead(data);
      return;
    }
    this.lastActivity = Date.now();
    const server = this.server;
    server.inRead = true;
    try {
      this.framer.feed(data, (first, buf, start, end) => {
        if (this.closed) return;
        if (this.authPending !== null) {
          // A CONNECT is being checked: what follows waits for it, in order.
          this.authPending.packets.push({ first, body: Buffer.from(buf.subarray(start, end)) });
          this.authPending.bytes += end - start;
          return;
        }
        if (first === 0x30 && !server.tracing && this.publishQos0Fast(buf, start, end)) return; // tracing: every packet is logged
        this.onPacket(decodePacket(first, buf, start, end, this.level), end - start);
      });
    } catch (error) {
      if (error instanceof MqttProtocolError) this.protocolViolation(error);
      else {
        server.log.error(`${this.logPrefix} - MQTT internal error: ${(error as Error).stack ?? error}`);
        this.closeWith(ReasonCode.ImplementationSpecificError, "internal error");
      }
    }
    this.mqtt.flushQos0Run(); // the QoS 0 messages of this read, to their subscribers
    server.inRead = false;
    server.flushDirty();
    if (this.publishBucket !== null) this.chargePublishRate();
  }

  /** Why reading is paused (the rate limit, a password check, a slow subscriber): reads resume when none is left. */
  private pauses = 0;

  pauseReading(): void {
    if (this.pauses++ === 0) this.transport.pauseReading();
  }

  resumeReading(): void {
    if (--this.pauses === 0 && !this.closed) this.transport.resumeReading();
  }

  /** After a read: its PUBLISH packets and bytes are charged to the user's rate; in debt, reading pauses. */
  private chargePublishRate(): void {
    const msgs = this.inMsgs - this.chargedMsgs;
    const bytes = this.inBytes - this.chargedBytes;
    if ((msgs === 0 && bytes === 0) || this.closed) return;
    this.chargedMsgs = this.inMsgs;
    this.chargedBytes = this.inBytes;
    const waitMs = this.publishBucket!.take(msgs, bytes);
    if (waitMs <= 0 || this.ratePaused) return;
    this.ratePaused = true;
    this.server.stats.rateLimitPauses++;
    this.pauseReading();
    setTimeout(() => {
      this.ratePaused = false;
      if (this.closed) return;
      this.resumeReading();
      this.releaseHeldReads();
    }, Math.max(1, Math.ceil(waitMs)));
  }

  /** A malformed packet or protocol error: MQTT 5 says why (CONNACK before CONNECT, else DISCONNECT); 3.1.1 just closes. */
  private protocolViolation(error: MqttProtocolError): void {
    this.mqtt.stats.protocolErrors++;
    this.server.log.error(`${this.logPrefix} - MQTT protocol error: ${error.message}`);
    if (this.level === 0) this.close("Protocol Violation");
    else this.closeWith(error.reasonCode, error.message);
  }

  private onPacket(packet: Packet, size: number): void {
    this.mqtt.flushQos0Run(); // QoS 0 messages read before this packet go first
    if (this.server.tracing) this.server.log.trace(`${this.logPrefix} - <<- ${PACKET_NAMES[packet.type]}`);
    if (this.level === 0) {
      if (packet.type !== PacketType.CONNECT) throw protocolError(`first packet must be CONNECT, got ${PACKET_NAMES[packet.type]}`); // [MQTT-3.1.0-1]
      this.onConnect(packet);
      return;
    }
    switch (packet.type) {
      case PacketType.CONNECT:
        throw protocolError("received a second CONNECT packet"); // [MQTT-3.1.0-2]
      case PacketType.PUBLISH:
        this.mqtt.stats.publishesIn++;
        this.inMsgs++;
        this.inBytes += size;
        this.onPublish(packet);
        return;
      case PacketType.PUBACK:
        if (!this.session!.complete(packet.packetId, "publish", 1) && this.level === MQTT_5) this.server.log.debug(`${this.logPrefix} - PUBACK for unknown packet id ${packet.packetId}`);
        return;
      case PacketType.PUBREC:
        if (this.session!.received(packet.packetId)) this.sendPubrel(packet.packetId);
        else this.queue({ type: PacketType.PUBREL, packetId: packet.packetId, reasonCode: this.level === MQTT_5 ? ReasonCode.PacketIdentifierNotFound : 0, properties: {} });
        return;
      case PacketType.PUBCOMP:
        this.session!.complete(packet.packetId, "release", 2);
        return;
      case PacketType.PUBREL: {
        // QoS 2 from the client, step 2: the message was delivered at PUBLISH; forget its id now.
        const known = this.session!.receivedQos2.delete(packet.packetId);
        const reasonCode = known || this.level !== MQTT_5 ? 0 : ReasonCode.PacketIdentifierNotFound;
        this.queue({ type: PacketType.PUBCOMP, packetId: packet.packetId, reasonCode, properties: {} });
        return;
      }
      case PacketType.SUBSCRIBE:
        this.onSubscribe(packet);
        return;
      case PacketType.UNSUBSCRIBE:
        this.onUnsubscribe(packet);
        return;
      case PacketType.PINGREQ:
        this.queue({ type: PacketType.PINGRESP });
        return;
      case PacketType.DISCONNECT: {
        // MQTT 5: a session expiry of 0 in CONNECT cannot become non-zero here ([MQTT-3.14.2-2]).
        const expiry = packet.properties.sessionExpiryInterval;
        if (expiry !== undefined && this.session!.expirySeconds === 0 && expiry !== 0) throw protocolError("session expiry set at DISCONNECT after 0 at CONNECT");
        if (expiry !== undefined) this.session!.expirySeconds = expiry;
        // The will is published only for DISCONNECT 0x04 (MQTT 5), never for a normal one ([MQTT-3.14.4-3]).
        if (packet.reasonCode !== ReasonCode.DisconnectWithWill) this.will = null;
        this.close("Client Closed");
        return;
      }
      case PacketType.AUTH:
        throw new MqttProtocolError(ReasonCode.BadAuthenticationMethod, "enhanced authentication is not supported");
      default:
        throw protocolError(`unexpected ${PACKET_NAMES[packet.type]} from a client`);
    }
  }

  // ---- CONNECT -----------------------------------------------------------------------------

  private onConnect(connect: ConnectPacket): void {
    if (connect.protocolLevel !== MQTT_311 && connect.protocolLevel !== MQTT_5) {
      // [MQTT-3.1.2-2]: answered in 3.1.1's form, which every client version reads.
      this.level = MQTT_311;
      this.refuse(ConnackCode311.UnacceptableProtocolVersion, ReasonCode.UnsupportedProtocolVersion, `unsupported protocol level ${connect.protocolLevel}`);
      return;
    }
    this.level = connect.protocolLevel;
    const v5 = this.level === MQTT_5;
    if (v5 && connect.properties.authenticationMethod !== undefined) {
      this.refuse(ConnackCode311.NotAuthorized, ReasonCode.BadAuthenticationMethod, "enhanced authentication is not supported");
      return;
    }
    if (connect.clientId === "" && !connect.cleanStart && !v5) {
      this.refuse(ConnackCode311.IdentifierRejected, ReasonCode.ClientIdentifierNotValid, "when client ID is empty, clean session flag must be set to 1"); // [MQTT-3.1.3-8]
      return;
    }
    if (connect.will !== null) {
      try {
        topicToSubject(connect.will.topic);
      } catch (error) {
        this.refuse(ConnackCode311.IdentifierRejected, ReasonCode.TopicNameInvalid, (error as Error).message);
        return;
      }

    }
    const auth = this.server.auth;
    const password = connect.password === null ? "" : connect.password.toString("utf8");
    // As nats-server: the MQTT password is also the token.
    const credentials = { user: connect.username ?? "", pass: password, auth_token: password };
    const type = this.transport.kind === "websocket" ? "MQTT_WS" : "MQTT"; // for allowed_connection_types
    const claim = auth === null ? null : auth.resolve("mqtt", credentials, "", undefined, this.transport.peerCertificate ?? null, type);
    if (auth !== null && claim === null) {
      this.authFailed(connect);
      return;
    }
    if (claim === null || claim.secret === null) {
      this.admit(connect, claim?.user ?? null);
      return;
    }
    const match = comparePassword(claim.secret, claim.given);
    if (typeof match === "boolean") {
      if (match) this.admit(connect, claim.user);
      else this.authFailed(connect);
      return;
    }
    this.holdInput(true);
    match.then((ok) => {
      if (this.closed) return;
      const held = this.takeHeldInput();
      if (ok) this.admit(connect, claim.user);
      else this.authFailed(connect);
      this.replayHeldInput(held);
    });
  }

  /**
   * Until CONNECT is settled (a password check, the session being stored): what the client sends waits, in
   * order. A password check may be slow: reading pauses at once. A session write takes a flush: reading
   * pauses only if the client sends more than HELD_BEFORE_PAUSE meanwhile (no pause/resume per CONNECT).
   */
  private holdInput(pauseNow: boolean): void {
    this.authPending = { packets: [], reads: [], bytes: 0, paused: pauseNow };
    if (pauseNow) this.pauseReading();
  }

  private holdRead(data: Buffer): void {
    const held = this.authPending!;
    held.reads.push(Buffer.from(data));
    held.bytes += data.length;
    if (!held.paused && held.bytes > HELD_BEFORE_PAUSE) {
      held.paused = true;
      this.pauseReading();
    }
  }

  private takeHeldInput(): HeldInput {
    const held = this.authPending!;
    this.authPending = null;
    if (held.paused) this.resumeReading();
    return held;
  }

  private replayHeldInput(held: HeldInput): void {
    try {
      for (let i = 0; i < held.packets.length; i++) {
        if (this.closed) return;
        const again = this.authPending;
        if (again !== null) {
          // Held again (a SUBSCRIBE waiting for its session write): the rest waits too, in order.
          again.packets.push(...held.packets.slice(i));
          again.reads.push(...held.reads);
          again.bytes += held.bytes;
          return;
        }
        const { first, body } = held.packets[i]!;
        this.onPacket(decodePacket(first, body, 0, body.length, this.level), body.length);
      }
    } catch (error) {
      if (error instanceof MqttProtocolError) this.protocolViolation(error);
      else throw error;
    }
    for (const data of held.reads) this.onRead(data);
    this.server.flushDirty();
  }

  private authFailed(connect: ConnectPacket): void {
    this.server.stats.authFailures++;
    this.server.log.error(`${this.logPrefix} - authentication error - User ${JSON.stringify(connect.username ?? "")}`);
    this.clientId = connect.clientId;
    this.server.events?.authFailed(this, { user: connect.username ?? undefined });
    // 3.1.1: "not authorized" (0x05), as nats-server answers; 5.0: "bad user name or password" (0x86).
    this.refuse(ConnackCode311.NotAuthorized, ReasonCode.BadUserNameOrPassword, "authentication error");
  }

  /** A refused CONNECT: CONNACK with the code, then close ([MQTT-3.2.2-5]). */
  private refuse(code311: number, reasonCode: number, why: string): void {
    const v5 = this.level === MQTT_5;
    this.queue({ type: PacketType.CONNACK, sessionPresent: false, reasonCode: v5 ? reasonCode : code311, properties: v5 ? { reasonString: why } : {} });
    this.close(`MQTT CONNECT refused: ${why}`);
  }

  private admit(connect: ConnectPacket, user: AuthenticatedUser | null): void {
    const account = user?.account ?? this.server.accounts.global;
    if (account.connectionsFull) {
      this.refuse(ConnackCode311.ServerUnavailable, ReasonCode.QuotaExceeded, "maximum account active connections exceeded");
      return;
    }
    this.account = account;
    account.connections++;
    this.authUser = user?.name ?? "";
    this.perms = user?.permissions ? new ClientPermissions(user.permissions) : null;
    this.publishBucket = user?.publishBucket ?? null;
    const v5 = this.level === MQTT_5;
    const props = connect.properties;
    let assigned: string | undefined;
    this.clientId = connect.clientId;
    if (this.clientId === "") {
      this.clientId = assigned = randomBytes(12).toString("hex"); // [MQTT-3.1.3-6]
    }
    if (props.receiveMaximum !== undefined) this.clientReceiveMaximum = props.receiveMaximum;
    if (props.maximumPacketSize !== undefined) this.clientMaximumPacketSize = props.maximumPacketSize;
    this.keepAlive = connect.keepAlive;
    // MQTT 5: a keep alive of none or longer than natter's maximum becomes the maximum, told in CONNACK
    // (server keep alive, [MQTT-3.2.2-21]); a 3.1.1 client cannot be told, its own stays.
    const maxKeepAlive = this.mqtt.options.maxKeepAlive;
    let serverKeepAlive: number | undefined;
    if (v5 && maxKeepAlive > 0 && (this.keepAlive === 0 || this.keepAlive > maxKeepAlive)) this.keepAlive = serverKeepAlive = maxKeepAlive;
    // MQTT 5: topic aliases the client takes from us (its topic alias maximum); 0 = none.
    if (v5) this.aliasesOut = props.topicAliasMaximum ?? 0;
    this.will = connect.will;
    // 3.1.1: clean session = false keeps the session for ever; 5.0: for the session expiry interval.
    const expiry = v5 ? (props.sessionExpiryInterval ?? 0) : connect.cleanStart ? 0 : 0xffffffff;
    const { session, present, stored } = this.mqtt.attach(this, connect.cleanStart, account, expiry);
    this.session = session;
    if (stored === null) {
      this.accept(connect, present, assigned, serverKeepAlive);
      return;
    }
    // CONNACK once the session is in the stream layer (in a cluster: read from it and taken over first).
    this.holdInput(false);
    stored.then(
      (present) => {
        if (this.closed) return;
        const held = this.takeHeldInput();
        this.accept(connect, present, assigned, serverKeepAlive);
        this.replayHeldInput(held);
      },
      (error: unknown) => {
        if (this.closed) return;
        this.takeHeldInput();
        this.server.log.error(`${this.logPrefix} - MQTT: could not store the session of ${JSON.stringify(this.clientId)}: ${(error as Error).message}`);
        const v5 = this.level === MQTT_5;
        this.queue({ type: PacketType.CONNACK, sessionPresent: false, reasonCode: v5 ? ReasonCode.ServerUnavailable : ConnackCode311.ServerUnavailable, properties: v5 ? { reasonString: "session not stored" } : {} });
        this.close("MQTT CONNECT refused: session not stored");
        this.server.flushDirty();
      },
    );
  }

  /** CONNACK: the client is connected with its session. */
  private accept(connect: ConnectPacket, present: boolean, assigned: string | undefined, serverKeepAlive: number | undefined): void {
    const v5 = this.level === MQTT_5;
    const session = this.session!;
    const account = this.account;
    const ack: Properties = {};
    if (v5) {
      if (assigned !== undefined) ack.assignedClientIdentifier = assigned;
      ack.receiveMaximum = Math.min(this.mqtt.options.maxAckPending, 65_535);
      if (!this.mqtt.retainAvailable(account)) ack.retainAvailable = 0;
      ack.maximumPacketSize = this.mqtt.maxPacketSize;
      ack.topicAliasMaximum = TOPIC_ALIAS_MAXIMUM;
      if (serverKeepAlive !== undefined) ack.serverKeepAlive = serverKeepAlive;
      ack.wildcardSubscriptionAvailable = 1;
      ack.subscriptionIdentifierAvailable = 1;
      ack.sharedSubscriptionAvailable = 1;
    }
    this.queue({ type: PacketType.CONNACK, sessionPresent: present, reasonCode: 0, properties: ack });
    this.connacked = true;
    this.server.events?.clientConnected(this); // $SYS connect event and the audit log name MQTT clients too
    this.server.log.debug(`${this.logPrefix} - Client connected: clientID=${JSON.stringify(this.clientId)}${this.keepAlive > 0 ? ` keepAlive=${this.keepAlive}` : ""}${connect.cleanStart ? " clean" : ""}`);
    // A resumed session: what was in flight goes again ([MQTT-4.4.0-1]), then what waited.
    if (present) session.redeliver(Date.now(), 0);
    session.sendQueued(); // also what arrived while the session was being stored or read
  }

  // ---- PUBLISH -----------------------------------------------------------------------------

  private onPublish(packet: PublishPacket): void {
    const v5 = this.level === MQTT_5;
    let topic = packet.topic;
    const alias = packet.properties.topicAlias;
    if (alias !== undefined) {
      if (alias === 0 || alias > TOPIC_ALIAS_MAXIMUM) throw new MqttProtocolError(ReasonCode.TopicAliasInvalid, `topic alias ${alias} out of range`);
      if (topic === "") {
        const known = this.topicAliases?.get(alias);
        if (known === undefined) throw protocolError(`unknown topic alias ${alias}`);
        topic = known;
      } else {
        (this.topicAliases ??= new Map()).set(alias, topic);
      }
    }
    if (packet.retain && v5 && !this.mqtt.retainAvailable(this.account)) throw new MqttProtocolError(ReasonCode.RetainNotSupported, "retained messages need JetStream in the account");
    let subject: string;
    if (topic === this.lastTopic) subject = this.lastSubject;
    else {
      try {
        subject = topicToSubject(topic);
      } catch (error) {
        if (error instanceof TopicError) throw new MqttProtocolError(ReasonCode.TopicNameInvalid, error.message);
        throw error;
      }
      this.lastTopic = topic;
      this.lastSubject = subject;
      this.lastTopicBytes = isValidPublishSubject(subject) ? Buffer.from(topic, "utf8") : null;
    }
    const session = this.session!;
    if (packet.qos === 2 && session.receivedQos2.has(packet.packetId)) {
      // A resent QoS 2 message (DUP) we have: not delivered twice ([MQTT-4.3.3-9]).
      this.queue({ type: PacketType.PUBREC, packetId: packet.packetId, reasonCode: 0, properties: {} });
      return;
    }
    let reasonCode: number = ReasonCode.Success;
    if (!isValidPublishSubject(subject)) reasonCode = ReasonCode.TopicNameInvalid;
    else if (!this.publishAllowed(subject)) reasonCode = ReasonCode.NotAuthorized;
    else {
      let reply: string | null = null;
      if (v5 && packet.properties.responseTopic !== undefined) {
        try {
          reply = topicToSubject(packet.properties.responseTopic);
        } catch {
          throw new MqttProtocolError(ReasonCode.TopicNameInvalid, "invalid response topic");
        }
      }
      const headers = propertiesToHeaders(v5 ? packet.properties : NO_PROPERTIES, packet.qos, packet.retain);
      // What this publish writes to the stream layer (kept sessions' QoS 1/2 copies, the retained message):
      // its PUBACK/PUBREC waits for those writes, so an acknowledged message survives kill -9.
      const writes = this.mqtt.beginWrites();
      const delivered = this.mqtt.publish(session, subject, reply, headers, packet.payload, packet.qos, packet.retain);
      if (!delivered) reasonCode = ReasonCode.NoMatchingSubscribers;
      if (packet.retain) this.mqtt.retain(this.account, subject, { topic, payload: Buffer.from(packet.payload), qos: packet.qos, properties: retainedProperties(packet.properties) });
      this.mqtt.endWrites();
      if (packet.qos > 0 && writes.length > 0) {
        const code = reasonCode;
        if (packet.qos === 2) session.receivedQos2.add(packet.packetId);
        Promise.allSettled(writes).then((results) => {
          if (this.closed) return;
          if (results.some((r) => r.status === "rejected")) {
            // Not stored: no acknowledgement that would promise it was. MQTT 5 says why; a 3.1.1 client
            // is closed and sends the message again (DUP) when it reconnects.
            session.receivedQos2.delete(packet.packetId);
            if (this.level === MQTT_5) this.ackPublish(packet, ReasonCode.QuotaExceeded);
            else this.close("MQTT could not store a QoS message");
          } else {
            this.ackPublish(packet, code);
          }
          this.server.flushDirty();
        });
        return;
      }
    }
    this.ackPublish(packet, reasonCode);
  }

  /**
   * The common case on its own path: a QoS 0 PUBLISH (no DUP, no RETAIN, no MQTT 5 properties) to the
   * topic this client published to last, read straight from buf[start, end): no packet object, no topic
   * string, no payload view. Returns false for anything else (the full decoder takes it).
   */
  private publishQos0Fast(buf: Buffer, start: number, end: number): boolean {
    const topic = this.lastTopicBytes;
    if (topic === null || this.session === null || end - start < 2) return false;
    const topicLength = (buf[start]! << 8) | buf[start + 1]!;
    if (topicLength !== topic.length) return false;
    let at = start + 2;
    if (at + topicLength > end) return false;
    for (let i = 0; i < topicLength; i++) if (buf[at + i] !== topic[i]) return false;
    at += topicLength;
    if (this.level === MQTT_5) {
      if (at >= end || buf[at] !== 0) return false; // properties: the decoder reads them
      at++;
    }
    const subject = this.lastSubject;
    if (this.perms !== null && !this.publishAllowed(subject)) return true; // QoS 0: dropped, as onPublish does
    this.mqtt.stats.publishesIn++;
    this.inMsgs++;
    this.inBytes += end - start;
    this.mqtt.publishQos0(this.session, subject, topic, buf, at, end);
    return true;
  }

  private ackPublish(packet: PublishPacket, reasonCode: number): void {
    const v5 = this.level === MQTT_5;
    if (packet.qos === 1) {
      this.queue({ type: PacketType.PUBACK, packetId: packet.packetId, reasonCode: v5 ? reasonCode : 0, properties: {} });
    } else if (packet.qos === 2) {
      if (reasonCode < 0x80) this.session!.receivedQos2.add(packet.packetId);
      this.queue({ type: PacketType.PUBREC, packetId: packet.packetId, reasonCode: v5 ? reasonCode : 0, properties: {} });
    }
  }

  private publishAllowed(subject: string): boolean {
    const perms = this.perms;
    if (perms === null) return true;
    const bytes = Buffer.from(subject, "utf8");
    if (perms.publishAllowed(bytes, 0, bytes.length)) return true;
    this.server.stats.permissionViolations++;
    this.server.log.error(`${this.logPrefix} - Publish Violation - User ${JSON.stringify(this.authUser)}, Subject ${JSON.stringify(subject)}`);
    this.server.events?.permissionViolation(this, "PublishViolation", subject);
    return false;
  }

  // ---- SUBSCRIBE / UNSUBSCRIBE ---------------------------------------------------------------

  private onSubscribe(packet: SubscribePacket): void {
    const v5 = this.level === MQTT_5;
    const session = this.session!;
    const subscriptionId = packet.properties.subscriptionIdentifiers?.[0];
    const codes: number[] = [];
    const retainedFor: MqttSubscription[][] = [];
    for (const request of packet.subscriptions) {
      let filter = request.filter;
      let queue: string | null = null;
      if (filter.startsWith("$share/")) {
        // $share/<group>/<filter>: a queue group, shared with NATS queue subscribers of the same name.
        const rest = filter.slice(7);
        const slash = rest.indexOf("/");
        const group = slash < 0 ? "" : rest.slice(0, slash);
        if (group === "" || group.includes("+") || group.includes("#") || slash === rest.length - 1) {
          codes.push(v5 ? ReasonCode.TopicFilterInvalid : SUBACK_FAILURE_311);
          continue;
        }
        if (v5 && request.noLocal) throw protocolError("no local on a shared subscription"); // [MQTT-3.8.3-4]
        queue = group;
        filter = rest.slice(slash + 1);
      }
      const problem = filterProblem(filter);
      let subject = "";
      if (problem === null) {
        try {
          subject = filterToSubject(filter);
        } catch {
          subject = "";
        }
      }
      if (subject === "" || !isValidSubscribeSubject(subject) || (queue !== null && /[\s.*>]/.test(queue))) {
        codes.push(v5 ? ReasonCode.TopicFilterInvalid : SUBACK_FAILURE_311);
        continue;
      }
      const parent = needsParentLevel(subject) ? subject.slice(0, -2) : null;
      if (this.perms !== null && (!this.perms.canSubscribe(subject, queue) || (parent !== null && !this.perms.canSubscribe(parent, queue)))) {
        this.server.stats.permissionViolations++;
        this.server.log.error(`${this.logPrefix} - Subscription Violation - User ${JSON.stringify(this.authUser)}, Subject ${JSON.stringify(subject)}`);
        this.server.events?.permissionViolation(this, queue === null ? "SubscribeViolation" : "SubscribeQueueViolation", subject, queue ?? undefined);
        codes.push(v5 ? ReasonCode.NotAuthorized : SUBACK_FAILURE_311);
        continue;
      }
      // The same filter again replaces the subscription ([MQTT-3.8.4-3]).
      const existed = session.unsubscribe(request.filter);
      const key = request.filter;
      const subs: MqttSubscription[] = [session.subscribe(subject, queue, filter, key, request.qos, request.noLocal, request.retainAsPublished, subscriptionId)];
      if (parent !== null) subs.push(session.subscribe(parent, queue, filter, key, request.qos, request.noLocal, request.retainAsPublished, subscriptionId));
      session.subscriptions.set(key, subs);
      codes.push(request.qos);
      // Retained messages: not for shared subscriptions; retain handling 1 only for a new one, 2 never.
      if (queue === null && (request.retainHandling === 0 || (request.retainHandling === 1 && !existed))) retainedFor.push(subs);
    }
    // SUBACK once a kept session's new subscriptions are stored (a restart, or another node taking the
    // session over, must see what was acknowledged).
    this.afterStored(this.mqtt.saveSession(session), () => {
      this.queue({ type: PacketType.SUBACK, packetId: packet.packetId, reasonCodes: codes, properties: {} });
      for (const subs of retainedFor) this.mqtt.sendRetained(session, subs);
    });
  }

  private onUnsubscribe(packet: UnsubscribePacket): void {
    const session = this.session!;
    const codes = packet.filters.map((filter) => (session.unsubscribe(filter) ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted));
    this.afterStored(this.mqtt.saveSession(session), () => {
      this.queue({ type: PacketType.UNSUBACK, packetId: packet.packetId, reasonCodes: codes, properties: {} });
    });
  }

  /** Runs `then` once `write` settled (at once without one); what the client sends meanwhile waits, in order. */
  private afterStored(write: Promise<void> | null, then: () => void): void {
    if (write === null) return then();
    this.holdInput(false);
    void write.then(() => {
      if (this.closed) return;
      const held = this.takeHeldInput();
      then();
      this.replayHeldInput(held);
    });
  }

  // ---- output ------------------------------------------------------------------------------

  /** A PUBLISH to the client; dropped when larger than the client's maximum packet size ([MQTT-3.1.2-25]). */
  sendPublish(packet: PublishPacket): void {
    if (this.closed) return;
    let bytes = encodePacket(packet, this.level);
    if (bytes.length > this.clientMaximumPacketSize) return;
    if (this.aliasesOut > 0) bytes = this.withTopicAlias(packet, bytes);
    this.outMsgs++;
    this.outBytes += bytes.length;
    this.mqtt.stats.publishesOut++;
    if (packet.dup) this.mqtt.stats.redeliveries++;
    this.server.stats.outMsgs++;
    this.server.stats.outBytes += packet.payload.length;
    this.queueBytes(bytes);
  }

  /**
   * A QoS 0 PUBLISH without MQTT 5 properties, written into the outbound buffer straight from the
   * publisher's bytes buf[start, end): one copy, no packet object. Dropped when larger than the client's
   * maximum packet size.
   */
  /** MQTT 5: the client takes topic aliases from us, so its PUBLISH packets are its own. */
  get sendsTopicAliases(): boolean {
    return this.aliasesOut > 0;
  }

  /** The largest packet the client takes (its MQTT 5 maximum packet size; no limit otherwise). */
  get maximumPacketSize(): number {
    return this.clientMaximumPacketSize;
  }

  /**
   * `count` QoS 0 PUBLISH packets encoded once for many subscribers (Qos0Run), back to back, with
   * `payloadBytes` of payload in all; the caller checked them against the client's maximum packet size.
   */
  sendPackets(packets: Buffer, count: number, payloadBytes: number, publisher: MqttConnection | null): void {
    if (this.closed) return;
    const outbound = this.outbound;
    const at = outbound.reserve(packets.length); // may replace outbound.buf: read it after
    outbound.buf.set(packets, at);
    this.outMsgs += count;
    this.outBytes += packets.length;
    this.mqtt.stats.publishesOut += count;
    const stats = this.server.stats;
    stats.outMsgs += count;
    stats.outBytes += payloadBytes;
    this.afterQueue(publisher);
  }

  sendPublishFrom(topic: Buffer, buf: Buffer, start: number, end: number, retain: boolean, publisher: MqttConnection | null = null): void {
    if (this.closed) return;
    const v5 = this.level === MQTT_5;
    const payloadLength = end - start;
    const fullRemaining = 2 + topic.length + (v5 ? 1 : 0) + payloadLength;
    // Past the client's maximum packet size with the full topic: not sent, alias or not ([MQTT-3.1.2-25]).
    if (1 + varintSize(fullRemaining) + fullRemaining > this.clientMaximumPacketSize) return;
    let alias = 0;
    let topicLength = topic.length;
    if (this.aliasesOut > 0) {
      alias = this.topicAliasFor(topic.toString("latin1"));
      if (alias < 0) {
        alias = -alias; // known to the client: the topic is left out
        topicLength = 0;
      }
    }
    const remaining = 2 + topicLength + (v5 ? (alias > 0 ? 4 : 1) : 0) + payloadLength;
    const size = 1 + varintSize(remaining) + remaining;
    const outbound = this.outbound;
    let at = outbound.reserve(size); // may replace outbound.buf: read it after
    const out = outbound.buf;
    out[at++] = 0x30 | (retain ? 1 : 0);
    at = writeVarint(out, at, remaining);
    out[at++] = topicLength >> 8;
    out[at++] = topicLength & 0xff;
    if (topicLength > 0) at += topic.copy(out, at);
    if (alias > 0) {
      out[at++] = 3; // properties: topic alias (0x23, two bytes)
      out[at++] = 0x23;
      out[at++] = alias >> 8;
      out[at++] = alias & 0xff;
    } else if (v5) out[at++] = 0; // no properties
    buf.copy(out, at, start, end);
    this.outMsgs++;
    this.outBytes += size;
    this.mqtt.stats.publishesOut++;
    const stats = this.server.stats;
    stats.outMsgs++;
    stats.outBytes += payloadLength;
    this.afterQueue(publisher);
  }

  /**
   * The alias of a topic sent to this client: positive = newly assigned (send the topic with it), negative
   * = already known to the client (send an empty topic, [MQTT-3.3.2-12]), 0 = none left. Aliases are
   * handed out while the client's topic alias maximum allows and kept for the connection.
   */
  private topicAliasFor(key: string): number {
    const aliases = (this.outAliases ??= new Map());
    const known = aliases.get(key);
    if (known !== undefined) return -known;
    if (aliases.size >= this.aliasesOut) return 0;
    const alias = aliases.size + 1;
    aliases.set(key, alias);
    return alias;
  }

  /** A PUBLISH encoded with its topic re-encoded with a topic alias (or its topic replaced by one it has). */
  private withTopicAlias(packet: PublishPacket, bytes: Buffer): Buffer {
    const alias = this.topicAliasFor(Buffer.from(packet.topic, "utf8").toString("latin1"));
    if (alias === 0) return bytes;
    const properties = { ...packet.properties, topicAlias: Math.abs(alias) };
    return encodePacket({ ...packet, topic: alias < 0 ? "" : packet.topic, properties }, this.level);
  }

  sendPubrel(packetId: number): void {
    this.queue({ type: PacketType.PUBREL, packetId, reasonCode: 0, properties: {} });
  }

  queue(packet: Packet): void {
    if (this.closed) return;
    if (this.server.tracing) this.server.log.trace(`${this.logPrefix} - ->> ${PACKET_NAMES[packet.type]}`);
    this.queueBytes(encodePacket(packet, this.level));
  }

  private queueBytes(bytes: Buffer): void {
    if (this.closed) return;
    const outbound = this.outbound;
    if (outbound.buf.length === 0 && !this.transport.blocked) {
      // No buffer (a quiet connection: its CONNACK, PINGRESP, a SUBACK…): written at once, and a buffer is
      // made only for what the socket does not take. Nothing is queued, so the order holds.
      const written = this.transport.write(bytes, 0, bytes.length);
      if (written >= bytes.length) return;
      bytes = bytes.subarray(written);
    }
    outbound.append(bytes);
    this.afterQueue(null);
  }

  /**
   * Puts the connection on this tick's flush; past max_pending it is a slow consumer. Before that, an
   * MQTT publisher filling it past its stall point (75%) while the socket is full has its reads paused
   * until this one drains (or briefly, so a stuck client is still cut), as a NATS publisher is for a
   * NATS subscriber.
   */
  private afterQueue(publisher: MqttConnection | null): void {
    this.flushThisTick();
    const pending = this.outbound.pending;
    const maxPending = this.server.options.maxPending;
    if (pending > maxPending) {
      this.closeAsSlowConsumer(maxPending, "info");
    } else if (publisher !== null && publisher !== this && this.transport.blocked && pending > this.stallPoint(maxPending)) {
      this.stallPublisher(publisher);
    }
  }

  /** A slow subscriber pauses this publisher (Link.stallPublisher): one more reason to pause reading. */
  pauseForSlowReceiver(): void {
    this.pauseReading();
  }

  resumeAfterSlowReceiver(): void {
    this.resumeReading();
  }

  /**
   * An idle connection (nothing queued, nothing read or sent since the last sweep) gives its outbound
   * buffer back: most MQTT devices are quiet, and 4 KiB each is half of what an idle one costs.
   */
  releaseIdleBuffer(outMsgsAtLastSweep: number): void {
    const outbound = this.outbound;
    if (outbound.pending === 0 && outbound.buf.length > 0 && this.outMsgs === outMsgsAtLastSweep) outbound.release();
  }

  // ---- close -------------------------------------------------------------------------------

  /** MQTT 5: DISCONNECT with the reason first (only after CONNACK, [MQTT-3.14.0-1]); 3.1.1 just closes. */
  closeWith(reasonCode: number, why: string): void {
    // Nothing but CONNACK goes before CONNACK ([MQTT-3.2.0-1]): a connection closed while its CONNECT is settled just closes.
    if (this.level === MQTT_5 && this.session !== null && this.connacked) {
      this.queue({ type: PacketType.DISCONNECT, reasonCode, properties: { reasonString: why } });
    }
    this.close(`MQTT ${why}`);
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.releaseOutput();
    this.transport.close();
    if (this.session !== null) {
      this.server.closedConnections.append(mqttRecord(this, Date.now(), reason)); // before detach: it may end the session's subscriptions
      this.server.events?.clientDisconnected(this);
      this.account.connections--;
      this.mqtt.detach(this, this.will);
    }
    this.mqtt.remove(this);
    this.server.log.debug(`${this.logPrefix} - Client connection closed: ${reason}`);
  }

  /** The MQTT layer finished loading: what the client sent meanwhile is read now. */
  releaseHeldReads(): void {
    if (this.heldReads === null || this.closed) return;
    const held = this.heldReads;
    this.heldReads = null;
    this.heldBytes = 0;
    for (let i = 0; i < held.length; i++) {
      if (this.closed) return;
      if (this.ratePaused || this.mqtt.loading) {
        // Paused again by what was just read: the rest waits, in order.
        this.heldReads = [...held.slice(i), ...(this.heldReads ?? [])];
        return;
      }
      this.onRead(held[i]!);
    }
  }

  onTransportClosed(): void {
    this.transport.blocked = true;
    this.close("Client Closed");
  }
}

