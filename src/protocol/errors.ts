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
  BadClientProtocol: { text: "invalid client protocol", closes: true },
  NoRespondersRequiresHeaders: { text: "no responders requires headers support", closes: true },
  InvalidSubject: { text: "Invalid Subject", closes: false },
  InvalidPublishSubject: { text: "Invalid Publish Subject", closes: false },
  MaxSubscriptions: { text: "maximum subscriptions exceeded", closes: false },
} as const;

export type ProtocolErrorKind = keyof typeof ProtocolError;

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
  AuthenticationTimeout: "Authentication Timeout",
  AuthenticationViolation: "Authentication Failure",
  BadClientProtocolVersion: "Bad Client Protocol Version",
  NoRespondersRequiresHeaders: "No Responders Requires Headers",
  WriteError: "Write Error",
} as const;

export type CloseReasonText = (typeof CloseReason)[keyof typeof CloseReason];
