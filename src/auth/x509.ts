// The few parts of a client's X.509 certificate that TLS authentication reads, from its DER bytes: the
// subject as it is encoded (RDNs in order, with their attribute OIDs and values), the SubjectPublicKeyInfo
// bytes (pinned_certs hash them) and the email, DNS and URI subject alternative names (verify_and_map
// matches them). A small DER walker: Node's X509Certificate shows the subject only as text, which loses
// the order and multi-valued RDNs nats-server's matching depends on.

/** One attribute of a subject RDN; `value` is null when it is not a string type (Go leaves it raw). */
export interface AttributeValue {
  readonly oid: string;
  readonly value: string | null;
  /** The attribute's value as DER (tag, length, bytes): Go writes unknown types as `oid=#<hex of it>`. */
  readonly der: Buffer;
}

export interface CertificateIdentity {
  /** The subject's RDNs in encoded order, each one or more attributes. */
  readonly subject: readonly (readonly AttributeValue[])[];
  /** The DER SubjectPublicKeyInfo (nats-server's RawSubjectPublicKeyInfo). */
  readonly spki: Buffer;
  readonly emails: readonly string[];
  readonly dnsNames: readonly string[];
  readonly uris: readonly string[];
}

interface Tlv {
  readonly tag: number;
  /** The whole element: tag, length and contents. */
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

function readTlv(der: Buffer, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new Error("truncated DER");
  const tag = der[at]!;
  let length = der[at + 1]!;
  let contentStart = at + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4 || contentStart + n > limit) throw new Error("bad DER length");
    length = 0;
    for (let k = 0; k < n; k++) length = length * 256 + der[contentStart + k]!;
    contentStart += n;
  }
  const end = contentStart + length;
  if (end > limit) throw new Error("truncated DER");
  return { tag, start: at, contentStart, end };
}

/** The elements inside a constructed element. */
function children(der: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end; ) {
    const t = readTlv(der, at, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

function oidString(der: Buffer, t: Tlv): string {
  const parts: number[] = [];
  let value = 0;
  for (let k = t.contentStart; k < t.end; k++) {
    const b = der[k]!;
    value = value * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      if (parts.length === 0) parts.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else parts.push(value);
      value = 0;
    }
  }
  return parts.join(".");
}

/** The string types Go's asn1 decodes into a string (UTF8, Printable, IA5, T61, Numeric, BMP). */
function stringValue(der: Buffer, t: Tlv): string | null {
  const bytes = der.subarray(t.contentStart, t.end);
  switch (t.tag) {
    case 0x0c: // UTF8String
      return bytes.toString("utf8");
    case 0x12: // NumericString
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x14: // T61String: Go reads it as Latin-1 bytes
      return bytes.toString("latin1");
    case 0x1e: // BMPString: UTF-16 big-endian
      return Buffer.from(bytes).swap16().toString("utf16le");
    default:
      return null;
  }
}

const SUBJECT_ALT_NAME = "2.5.29.17";

/** Reads a DER certificate; throws on bytes that are not one. */
export function readCertificate(der: Buffer): CertificateIdentity {
  const cert = readTlv(der, 0, der.length);
  const tbs = children(der, cert)[0];
  if (tbs === undefined) throw new Error("not a certificate");
  const fields = children(der, tbs);
  let i = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version, when present
  i += 3; // serial number, signature algorithm, issuer
  i += 1; // validity
  const subjectTlv = fields[i];
  const spkiTlv = fields[i + 1];
  if (subjectTlv === undefined || spkiTlv === undefined) throw new Error("not a certificate");
  const subject = children(der, subjectTlv).map((set) =>
    children(der, set).map((atv) => {
      const [type, value] = children(der, atv);
      if (type === undefined || value === undefined) throw new Error("bad attribute");
      return { oid: oidString(der, type), value: stringValue(der, value), der: der.subarray(value.start, value.end) };
    }),
  );
  const emails: string[] = [];
  const dnsNames: string[] = [];
  const uris: string[] = [];
  const extensions = fields.slice(i + 2).find((t) => t.tag === 0xa3);
  if (extensions !== undefined) {
    const list = children(der, extensions)[0];
    for (const ext of list === undefined ? [] : children(der, list)) {
      const parts = children(der, ext);
      if (parts[0] === undefined || oidString(der, parts[0]) !== SUBJECT_ALT_NAME) continue;
      const octets = parts[parts.length - 1]!; // after the optional critical flag
      const names = readTlv(der, octets.contentStart, octets.end);
      for (const name of children(der, names)) {
        const text = der.subarray(name.contentStart, name.end).toString("latin1");
        if (name.tag === 0x81) emails.push(text); // [1] rfc822Name
        else if (name.tag === 0x82) dnsNames.push(text); // [2] dNSName
        else if (name.tag === 0x86) uris.push(text); // [6] uniformResourceIdentifier
      }
    }
  }
  return { subject, spki: der.subarray(spkiTlv.start, spkiTlv.end), emails, dnsNames, uris };
}
