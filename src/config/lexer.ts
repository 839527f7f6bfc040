// The lexer for nats-server's configuration format (the facts of conf/lex.go, our own code):
//
//   key: value   key = value   key value        # comment   // comment
//   block { key: value, key2 = value2 }          arrays [ 1, 2, "x" ] (commas or new lines)
//   include 'other.conf'                         $VARIABLE references
//   sizes 1MB / 1K, durations as strings "2m", booleans true/false/yes/no/on/off,
//   'raw strings', "strings with \t \n \r \" \\ \xXX escapes", unquoted strings, ISO dates,
//   IP:port values (127.0.0.1:4222), a ( … ) block holding raw text until a line with only ")".
//
// It turns the text into a flat list of tokens; the parser (parser.ts) builds the tree. Every token
// carries its line and its 1-based column. Where nats-server's lexer has odd corners we keep
// them when a real config file could depend on them (an unquoted `2m` is the integer 2000000,
// `10s` is a string), and we report errors as clearly as we can instead of emitting junk tokens.

export type TokenType =
  | "key"
  | "string"
  | "bool"
  | "integer"
  | "float"
  | "datetime"
  | "arrayStart"
  | "arrayEnd"
  | "mapStart"
  | "mapEnd"
  | "variable"
  | "include"
  | "eof";

export interface Token {
  type: TokenType;
  /** The text: a key, a string's contents (escapes resolved), a number with its suffix, a variable name without `$`. */
  value: string;
  line: number;
  /** 1-based column of the token's first character (a quoted value's opening quote excluded). */
  col: number;
}

/** A syntax error at a line and (1-based) column. */
export class LexError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly col: number,
  ) {
    super(message);
  }
}

const BOOL_WORDS = new Set(["true", "false", "yes", "no", "on", "off"]);
const NUMBER_SUFFIX = /[kKmMgGtTpPeE]/;

function isSpace(c: string): boolean {
  // Go's unicode.IsSpace for the characters a config file holds.
  return c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\v" || c === "\f" || c === "\u0085" || c === "\u00a0";
}
function isWhitespace(c: string): boolean {
  return c === " " || c === "\t";
}
function isNL(c: string): boolean {
  return c === "\n" || c === "\r";
}
function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}
function isKeySeparator(c: string): boolean {
  return c === "=" || c === ":";
}
function show(c: string): string {
  return c === "\n" ? "\\n" : c === "\r" ? "\\r" : c === "" ? "EOF" : c;
}

const EOF = "";

class Lexer {
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  readonly tokens: Token[] = [];

  constructor(private readonly input: string) {}

  // ---- character access ----------------------------------------------------------------

  private peek(offset = 0): string {
    return this.input[this.pos + offset] ?? EOF;
  }

  private next(): string {
    const c = this.input[this.pos];
    if (c === undefined) return EOF;
    this.pos++;
    if (c === "\n") {
      this.line++;
      this.lineStart = this.pos;
    }
    return c;
  }

  private col(at = this.pos): number {
    return at - this.lineStart + 1;
  }

  private fail(message: string, line = this.line, col = this.col()): never {
    throw new LexError(message, line, col);
  }

  private emit(type: TokenType, value: string, line: number, col: number): void {
    this.tokens.push({ type, value, line, col });
  }

  /** Skips a comment (after `#` or `//`) up to, not including, the end of the line. */
  private skipComment(): void {
    while (this.peek() !== EOF && !isNL(this.peek())) this.next();
  }

  /** At `#` or `//`: consumes the marker and the comment. */
  private atComment(): boolean {
    if (this.peek() === "#") {
      this.next();
      this.skipComment();
      return true;
    }
    if (this.peek() === "/" && this.peek(1) === "/") {
      this.next();
      this.next();
      this.skipComment();
      return true;
    }
    return false;
  }

  // ---- top level -----------------------------------------------------------------------------

  run(): Token[] {
    for (;;) {
      const c = this.peek();
      if (c === EOF) break;
      // A top-level `{ … }` around everything (JSON style) is allowed: the braces are skipped.
      if (isSpace(c) || c === "{" || c === "}") {
        this.next();
        continue;
      }
      if (this.atComment()) continue;
      this.entry("top");
      this.topValueEnd();
    }
    this.emit("eof", "", this.line, this.col());
    return this.tokens;
  }

  /** After a top-level value: only blanks, then a new line, comment, `;`, `,`, `}` or EOF. */
  private topValueEnd(): void {
    for (;;) {
      const c = this.peek();
      if (isWhitespace(c)) {
        this.next();
        continue;
      }
      if (this.atComment()) return;
      if (c === EOF || isNL(c) || c === ";" || c === "," || c === "}") {
        if (c !== EOF) this.next();
        return;
      }
      this.fail(`Expected a top-level value to end with a new line, comment or EOF, but got '${show(c)}' instead.`);
    }
  }

  // ---- key = value -------------------------------------------------------------------------

  /** One `key [sep] value` or `include file`, at the top level or inside a map. */
  private entry(where: "top" | "map"): void {
    const c = this.peek();
    if (isKeySeparator(c)) this.fail(`Unexpected key separator '${c}'`);
    const line = this.line;
    const col = this.col();
    let key: string;
    if (c === '"' || c === "'") {
      this.next();
      const start = this.pos;
      while (this.peek() !== c) {
        if (this.peek() === EOF) this.fail(`Unexpected EOF processing quoted key.`, line, col);
        this.next();
      }
      key = this.input.slice(start, this.pos);
      this.next();
      this.emit("key", key, line, col + 1);
    } else {
      const start = this.pos;
      for (;;) {
        const k = this.peek();
        if (k === EOF) {
          if (where === "map") this.fail("Unexpected EOF processing map key.");
          break;
        }
        if (isSpace(k) || isKeySeparator(k)) break;
        this.next();
      }
      key = this.input.slice(start, this.pos);
      // `include` followed by blanks is the include directive, not a key.
      if (key.toLowerCase() === "include" && isSpace(this.peek())) {
        this.include();
        return;
      }
      this.emit("key", key, line, col);
    }
    // Key end: any spaces (new lines too), then an optional `=` or `:`.
    while (isSpace(this.peek())) this.next();
    if (isKeySeparator(this.peek())) this.next();
    else if (this.peek() === EOF || (where === "map" && this.peek() === "}")) {
      this.fail(`config is invalid: key "${key}" has no value`, line, col);
    }
    if (where === "map") {
      // In a map, the value may start on a later line.
      while (isSpace(this.peek())) this.next();
      if (this.peek() === ",") this.fail(`Unexpected map value terminator ','.`);
      if (this.peek() === "}") this.fail(`config is invalid: key "${key}" has no value`, line, col);
    }
    this.value();
  }

  private include(): void {
    while (isWhitespace(this.peek())) this.next();
    const line = this.line;
    const col = this.col();
    const c = this.peek();
    if (c === "'" || c === '"') {
      this.next();
      const start = this.pos;
      while (this.peek() !== c) {
        if (this.peek() === EOF) this.fail(c === '"' ? "Unexpected EOF in double quoted include" : "Unexpected EOF in quoted include", line, col);
        this.next();
      }
      this.emit("include", this.input.slice(start, this.pos), line, col + 1);
      this.next();
      return;
    }
    if (c === "[") this.fail("Expected include value but found start of an array");
    if (c === "{") this.fail("Expected include value but found start of a map");
    if (c === "(") this.fail("Expected include value but found start of a block");
    if (isDigit(c) || c === "-") this.fail("Expected include value but found start of a number");
    if (c === "\\") this.fail("Expected include value but found escape sequence");
    if (isNL(c) || c === EOF) this.fail("Expected include value but found new line");
    const start = this.pos;
    for (;;) {
      const r = this.peek();
      if (r === EOF || isNL(r) || r === ";" || r === "}" || isWhitespace(r) || r === "'") break;
      this.next();
    }
    this.emit("include", this.input.slice(start, this.pos), line, col);
    if (this.peek() === "'") this.next();
  }

  // ---- values ----------------------------------------------------------------------------------

  private value(): void {
    while (isWhitespace(this.peek())) this.next();
    const line = this.line;
    const col = this.col();
    const c = this.peek();
    if (c === EOF) this.fail("Expected value but found EOF");
    if (isNL(c)) this.fail("Expected value but found new line");
    if (c === "[") {
      this.next();
      this.emit("arrayStart", "", line, col);
      this.array(line, col);
      return;
    }
    if (c === "{") {
      this.next();
      this.emit("mapStart", "", line, col);
      this.map(line, col);
      return;
    }
    if (c === "'") {
      this.next();
      const start = this.pos;
      while (this.peek() !== "'") {
        if (this.peek() === EOF) this.fail("Unexpected EOF in quoted string.", line, col);
        this.next();
      }
      this.emit("string", this.input.slice(start, this.pos), line, col + 1);
      this.next();
      return;
    }
    if (c === '"') {
      this.next();
      this.emit("string", this.quoted(line, col), line, col + 1);
      return;
    }
    if (c === "(") {
      this.next();
      this.block(line, col);
      return;
    }
    if (c === "-") {
      this.next();
      this.negativeNumber(line, col);
      return;
    }
    if (c === ".") this.fail("Floats must start with a digit");
    if (isDigit(c)) {
      this.number(line, col);
      return;
    }
    this.unquoted(this.pos, line, col, "");
  }

  /** A double-quoted string (after the opening quote): escapes resolved, ends at the closing quote. */
  private quoted(line: number, col: number): string {
    let out = "";
    for (;;) {
      const c = this.next();
      if (c === EOF) this.fail("Unexpected EOF in double quoted string.", line, col);
      if (c === '"') return out;
      if (c === "\\") out += this.escape();
      else out += c;
    }
  }

  /** After a backslash: \t \n \r \" \\ \xXX. */
  private escape(): string {
    const c = this.next();
    switch (c) {
      case "t":
        return "\t";
      case "n":
        return "\n";
      case "r":
        return "\r";
      case '"':
        return '"';
      case "\\":
        return "\\";
      case "x": {
        const hex = this.peek() + this.peek(1);
        if (isNL(this.peek()) || isNL(this.peek(1)) || hex.length < 2) {
          this.fail("Expected two hexadecimal digits after '\\x', but hit end of line");
        }
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) this.fail(`Expected two hexadecimal digits after '\\x', but got '${hex}'`);
        this.next();
        this.next();
        return String.fromCharCode(parseInt(hex, 16));
      }
    }
    this.fail(
      `Invalid escape character '${show(c)}'. Only the following escape characters are allowed: \\xXX, \\t, \\n, \\r, \\", \\\\.`,
    );
  }

  /**
   * An unquoted string from `start` (some of it may already be consumed, `prefix` holds escapes resolved so
   * far): up to a new line, blank, `;`, `,`, `]`, `}` or a closing `'`. A bare true/false/yes/no/on/off is a
   * boolean and `$name` a variable reference, unless escapes were used.
   */
  private unquoted(start: number, line: number, col: number, prefix: string): void {
    let out = prefix + this.input.slice(start, this.pos);
    let escaped = prefix.length > 0;
    for (;;) {
      const c = this.peek();
      if (c === EOF || isNL(c) || c === ";" || c === "," || c === "]" || c === "}" || isWhitespace(c) || c === "'") break;
      this.next();
      if (c === "\\") {
        out += this.escape();
        escaped = true;
      } else out += c;
    }
    if (this.peek() === "'") this.next(); // nats-server ends an unquoted string at a quote and drops it
    if (!escaped && BOOL_WORDS.has(out.toLowerCase())) this.emit("bool", out, line, col);
    else if (!escaped && out.startsWith("$")) this.emit("variable", out.slice(1), line, col);
    else this.emit("string", out, line, col);
  }

  /** Characters that end a number. */
  private endsNumber(c: string): boolean {
    return c === EOF || isNL(c) || c === "}" || c === "]" || c === ";" || c === "," || isWhitespace(c);
  }

  /** A value starting with a digit: integer (maybe with a size suffix), float, datetime, IP address or string. */
  private number(line: number, col: number): void {
    const start = this.pos;
    while (isDigit(this.peek())) this.next();
    const c = this.peek();
    if (c === "-") {
      if (this.pos - start !== 4) this.fail("All ISO8601 dates must be in full Zulu form.");
      this.next();
      this.datetime(start, line, col);
      return;
    }
    if (c === ".") {
      this.next();
      this.fraction(start, line, col);
      return;
    }
    if (NUMBER_SUFFIX.test(c)) {
      this.suffix(start, line, col);
      return;
    }
    if (this.endsNumber(c)) {
      this.emit("integer", this.input.slice(start, this.pos), line, col);
      return;
    }
    // Something like `10s` or `1h`: a string that starts with digits.
    this.unquoted(start, line, col, "");
  }

  private negativeNumber(line: number, col: number): void {
    const start = this.pos - 1;
    const c = this.peek();
    if (!isDigit(c)) {
      if (c === ".") this.fail("Floats must start with a digit, not '.'.");
      this.fail(`Expected a digit but got '${show(c)}'.`);
    }
    while (isDigit(this.peek())) this.next();
    if (this.peek() === ".") {
      this.next();
      this.fraction(start, line, col);
      return;
    }
    if (NUMBER_SUFFIX.test(this.peek())) {
      this.suffix(start, line, col);
      return;
    }
    this.emit("integer", this.input.slice(start, this.pos), line, col);
  }

  /** After `<digits>.`: a float, or an IP address (a second dot) such as 127.0.0.1:4222. */
  private fraction(start: number, line: number, col: number): void {
    if (!isDigit(this.peek())) this.fail(`Floats must have a digit after the '.', but got '${show(this.peek())}' instead.`);
    while (isDigit(this.peek())) this.next();
    if (this.peek() === ".") {
      while (isDigit(this.peek()) || this.peek() === "." || this.peek() === ":" || this.peek() === "-") this.next();
      this.emit("string", this.input.slice(start, this.pos), line, col);
      return;
    }
    this.emit("float", this.input.slice(start, this.pos), line, col);
  }

  /** `<digits>` then k/m/g/t/p/e, optionally b and i (1K, 1MB, 1GiB): an integer, unless more text follows. */
  private suffix(start: number, line: number, col: number): void {
    this.next();
    while (/[bBiI]/.test(this.peek())) this.next();
    if (this.endsNumber(this.peek())) {
      this.emit("integer", this.input.slice(start, this.pos), line, col);
      return;
    }
    this.unquoted(start, line, col, "");
  }

  /** After `YYYY-`: the rest of a Zulu datetime, MM-DDTHH:MM:SSZ. */
  private datetime(start: number, line: number, col: number): void {
    for (const f of "00-00T00:00:00Z") {
      const c = this.next();
      if (f === "0") {
        if (!isDigit(c)) this.fail(`Expected digit in ISO8601 datetime, but found '${show(c)}' instead.`);
      } else if (c !== f) this.fail(`Expected '${f}' in ISO8601 datetime, but found '${show(c)}' instead.`);
    }
    this.emit("datetime", this.input.slice(start, this.pos), line, col);
  }

  /** After `(`: raw text up to a line holding only `)`. */
  private block(line: number, col: number): void {
    const start = this.pos;
    for (let i = start; i < this.input.length; i++) {
      if (this.input[i] === ")" && this.input[i - 1] === "\n" && (i + 1 === this.input.length || this.input[i + 1] === "\n")) {
        const text = this.input.slice(start, i - 1);
        while (this.pos <= i) this.next();
        this.emit("string", text, line, col + 1);
        return;
      }
    }
    this.fail("Unexpected EOF processing block.", line, col);
  }

  // ---- arrays and maps -------------------------------------------------------------------------

  private array(line: number, col: number): void {
    for (;;) {
      // Before a value: spaces and new lines, comments, or the end.
      const c = this.peek();
      if (c === EOF) this.fail("Unexpected EOF processing array.", line, col);
      if (isSpace(c)) {
        this.next();
        continue;
      }
      if (this.atComment()) continue;
      if (c === ",") this.fail("Unexpected array value terminator ','.");
      if (c === "]") {
        const l = this.line;
        const cl = this.col();
        this.next();
        this.emit("arrayEnd", "", l, cl);
        return;
      }
      this.value();
      // After a value: blanks, comments, then `,` or a new line (next value) or `]`.
      for (;;) {
        const d = this.peek();
        if (isWhitespace(d)) {
          this.next();
          continue;
        }
        if (this.atComment()) break;
        if (d === "," || isNL(d)) {
          this.next();
          break;
        }
        if (d === "]") break;
        if (d === EOF) this.fail("Unexpected EOF processing array.", line, col);
        this.fail(`Expected an array value terminator ',' or an array terminator ']', but got '${show(d)}' instead.`);
      }
    }
  }

  private map(line: number, col: number): void {
    for (;;) {
      const c = this.peek();
      if (c === EOF) this.fail("Unexpected EOF processing map.", line, col);
      if (isSpace(c)) {
        this.next();
        continue;
      }
      if (this.atComment()) continue;
      if (isKeySeparator(c)) this.fail(`Unexpected key separator '${c}'.`);
      if (c === "]") this.fail(`Unexpected array end ']' processing map.`);
      if (c === "}") {
        const l = this.line;
        const cl = this.col();
        this.next();
        this.emit("mapEnd", "", l, cl);
        return;
      }
      this.entry("map");
      // After a value: blanks, comments, then `,` `;` or a new line (next key) or `}`.
      for (;;) {
        const d = this.peek();
        if (isWhitespace(d)) {
          this.next();
          continue;
        }
        if (this.atComment()) break;
        if (d === "," || d === ";" || isNL(d)) {
          this.next();
          break;
        }
        if (d === "}") break;
        if (d === EOF) this.fail("Unexpected EOF processing map.", line, col);
        this.fail(`Expected a map value terminator ',' or a map terminator '}', but got '${show(d)}' instead.`);
      }
    }
  }
}

/** Tokens of a whole config text; throws LexError on a syntax error. */
export function lex(input: string): Token[] {
  return new Lexer(input).run();
}
