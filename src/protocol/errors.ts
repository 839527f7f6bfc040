// Every -ERR text natter sends, spelled once. Clients match on these strings, so each is
// byte-identical to nats-server's (see ../shared/NATS-NOTES.md). `closes` says whether
// nats-server drops the connection after sending it.

export const ProtocolError = {
  UnknownOperation: { text: "Unknown Protocol Operation", closes: true },
  MaxPayload: { text: "Maximum Payload Violation", closes: true },
  MaxControlLine: { text: "maximum control line exceeded", closes: true },
  AuthorizationViolation: { text: "Authorization Violation", closes: true },
  AuthenticationTimeout: { text: "Authentication Timeout", closes: true },
  StaleConnection: { text: "Stale Connection", closes: true },
  MaxConnections: { text: "maximum connections exceeded", closes: true },
  MaxAccountConnections: { text: "maximum account active connections exceeded", closes: true },
  BadClientProtocol: { text: "invalid client protocol", closes: true },
  NoRespondersRequiresHeaders: { text: "no responders requires headers support", closes: true },
  InvalidSubject: { text: "Invalid Subject", closes: false },
  InvalidPublishSubject: { text: "Invalid Publish Subject", closes: false },
  MaxSubscriptions: { text: "maximum subscriptions exceeded", closes: false },
  SecureConnectionRequired: { text: "Secure Connection - TLS Required", closes: true },
  ConnectionThrottling: { text: "Connection throttling is active. Please try again later.", closes: true },
  // Templates: each %q is a value quoted as Go's %q does (formatError).
  PublishViolation: { text: "Permissions Violation for Publish to %q", closes: false },
  SubscribeViolation: { text: "Permissions Violation for Subscription to %q", closes: false },
  SubscribeQueueViolation: { text: "Permissions Violation for Subscription to %q using queue %q", closes: false },
  ReplyViolation: { text: "Permissions Violation for Publish with Reply of %q", closes: false },
  MaxSubTokensViolation: { text: "Permissions Violation for Subscription to %q, too many tokens", closes: false },
} as const;

export type ProtocolErrorKind = keyof typeof ProtocolError;

/** A template's text with its %q filled in, in order, each value quoted like Go's %q (for printable text: JSON quoting). */
export function formatError(kind: ProtocolErrorKind, ...values: string[]): string {
  let i = 0;
  return ProtocolError[kind].text.replace(/%q/g, () => goQuote(values[i++] ?? ""));
}

function goQuote(value: string): string {
  return JSON.stringify(value).replace(/\\u00([0-9a-f]{2})/g, "\\x$1");
}

/** Why a connection was closed: the reasons nats-server reports in /connz and its logs. */
export const CloseReason = {
  ClientClosed: "Client Closed",
  ServerShutdown: "Server Shutdown",
  SlowConsumerPendingBytes: "Slow Consumer (Pending Bytes)",
  SlowConsumerWriteDeadline: "Slow Consumer (Write Deadline)",
  StaleConnection: "Stale Connection",
  ParseError: "Parse Error",
  ProtocolViolation: "Protocol Violation",
  MaxPayloadExceeded: "Maximum Payload Exceeded",
  MaxControlLineExceeded: "Maximum Control Line Exceeded",
  MaxConnectionsExceeded: "Maximum Connections Exceeded",
  MaxAccountConnectionsExceeded: "Maximum Account Connections Exceeded",
  AuthenticationTimeout: "Authentication Timeout",
  AuthenticationViolation: "Authentication Failure",
  TLSHandshakeError: "TLS Handshake Failure",
  BadClientProtocolVersion: "Bad Client Protocol Version",
  NoRespondersRequiresHeaders: "No Responders Requires Headers",
  WriteError: "Write Error",
  /** Closed by an operator (natter's console; nats-server's Kicked). */
  Kicked: "Kicked",
} as const;

export type CloseReasonText = (typeof CloseReason)[keyof typeof CloseReason];
