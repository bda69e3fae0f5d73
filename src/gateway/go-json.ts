/**
 * A JSON reader that fails the way Go's encoding/json does. etcd's gateway reads request bodies with
 * a Go json.Decoder (first value only, trailing bytes ignored) and answers syntax errors with the Go
 * scanner's message verbatim, so a server that wants to answer like etcd needs the same messages.
 * It also keeps number literals as text: int64 fields must not pass through a double.
 */

export type JsonNode =
  | { t: 'obj'; fields: Map<string, JsonNode> }
  | { t: 'arr'; items: JsonNode[] }
  /** `raw` is the text between the quotes, escapes left as written (what jsonpb looks at). */
  | { t: 'str'; value: string; raw: string }
  | { t: 'num'; raw: string }
  | { t: 'bool'; value: boolean }
  | { t: 'null' };

/** A syntax error, with Go's message. */
export class JsonSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JsonSyntaxError';
  }
}

/** Go's quoteChar: how its scanner names the offending byte. */
export function goQuoteChar(c: number): string {
  if (c === 0x27) return "'\\''";
  if (c === 0x22) return "'\"'";
  return `'${goQuoteRune(c)}'`;
}

function goQuoteRune(c: number): string {
  switch (c) {
    case 0x07:
      return '\\a';
    case 0x08:
      return '\\b';
    case 0x0c:
      return '\\f';
    case 0x0a:
      return '\\n';
    case 0x0d:
      return '\\r';
    case 0x09:
      return '\\t';
    case 0x0b:
      return '\\v';
    case 0x5c:
      return '\\\\';
  }
  if (c < 0x20 || c === 0x7f) return `\\x${c.toString(16).padStart(2, '0')}`;
  if (c >= 0x80 && c < 0xa0) return `\\u${c.toString(16).padStart(4, '0')}`;
  if (c === 0xad) return '\\u00ad';
  return String.fromCharCode(c);
}

const EOF = -1;
const MAX_DEPTH = 10_000;

class Reader {
  pos = 0;
  readonly buf: Uint8Array;
  /** Decoder mode says "unexpected EOF"; Unmarshal mode "unexpected end of JSON input". */
  readonly eofMessage: string;
  constructor(buf: Uint8Array, eofMessage: string) {
    this.buf = buf;
    this.eofMessage = eofMessage;
  }
  peek(): number {
    return this.pos < this.buf.length ? (this.buf[this.pos] as number) : EOF;
  }
  skipSpace(): void {
    for (;;) {
      const c = this.peek();
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else return;
    }
  }
  fail(c: number, context: string): never {
    if (c === EOF) throw new JsonSyntaxError(this.eofMessage);
    throw new JsonSyntaxError(`invalid character ${goQuoteChar(c)} ${context}`);
  }

  /** Open objects and arrays; Go's scanner refuses more than 10,000. */
  depth = 0;

  value(): JsonNode {
    this.skipSpace();
    const c = this.peek();
    switch (c) {
      case 0x7b:
        return this.object();
      case 0x5b:
        return this.array();
      case 0x22:
        return this.string();
      case 0x74:
        this.literal('true');
        return { t: 'bool', value: true };
      case 0x66:
        this.literal('false');
        return { t: 'bool', value: false };
      case 0x6e:
        this.literal('null');
        return { t: 'null' };
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    return this.fail(c, 'looking for beginning of value');
  }

  private literal(word: string): void {
    this.pos++;
    for (let i = 1; i < word.length; i++) {
      const c = this.peek();
      if (c !== word.charCodeAt(i)) this.fail(c, `in literal ${word} (expecting '${word[i]}')`);
      this.pos++;
    }
  }

  private number(): JsonNode {
    const start = this.pos;
    let c = this.peek();
    if (c === 0x2d) {
      this.pos++;
      c = this.peek();
      if (!(c >= 0x30 && c <= 0x39)) this.fail(c, 'in numeric literal');
    }
    if (c === 0x30) this.pos++;
    else while (isDigit(this.peek())) this.pos++;
    if (this.peek() === 0x2e) {
      this.pos++;
      c = this.peek();
      if (!isDigit(c)) this.fail(c, 'after decimal point in numeric literal');
      while (isDigit(this.peek())) this.pos++;
    }
    c = this.peek();
    if (c === 0x65 || c === 0x45) {
      this.pos++;
      c = this.peek();
      if (c === 0x2b || c === 0x2d) {
        this.pos++;
        c = this.peek();
      }
      if (!isDigit(c)) this.fail(c, 'in exponent of numeric literal');
      while (isDigit(this.peek())) this.pos++;
    }
    return { t: 'num', raw: latin1(this.buf, start, this.pos) };
  }

  private string(): JsonNode & { t: 'str' } {
    this.pos++; // opening quote
    const start = this.pos;
    let simple = true;
    for (;;) {
      const c = this.peek();
      if (c === EOF) this.fail(c, '');
      if (c === 0x22) break;
      if (c < 0x20) this.fail(c, 'in string literal');
      if (c === 0x5c) {
        simple = false;
        this.pos++;
        const e = this.peek();
        if (e === 0x75) {
          this.pos++;
          for (let i = 0; i < 4; i++) {
            const h = this.peek();
            if (!isHex(h)) this.fail(h, 'in \\u hexadecimal character escape');
            this.pos++;
          }
          continue;
        }
        if (e === EOF) this.fail(e, '');
        if ('"\\/bfnrt'.indexOf(String.fromCharCode(e)) < 0) this.fail(e, 'in string escape code');
        this.pos++;
        continue;
      }
      if (c >= 0x80) simple = false;
      this.pos++;
    }
    const end = this.pos;
    this.pos++; // closing quote
    const raw = Buffer.from(this.buf.buffer, this.buf.byteOffset + start, end - start).toString('utf8');
    const value = simple ? raw : (JSON.parse(`"${raw}"`) as string);
    return { t: 'str', value, raw };
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) throw new JsonSyntaxError('exceeded max depth');
  }

  private object(): JsonNode {
    this.enter();
    this.pos++;
    const fields = new Map<string, JsonNode>();
    this.skipSpace();
    if (this.peek() === 0x7d) {
      this.pos++;
      this.depth--;
      return { t: 'obj', fields };
    }
    for (;;) {
      this.skipSpace();
      const c = this.peek();
      if (c !== 0x22) this.fail(c, 'looking for beginning of object key string');
      const key = this.string().value;
      this.skipSpace();
      const colon = this.peek();
      if (colon !== 0x3a) this.fail(colon, 'after object key');
      this.pos++;
      fields.set(key, this.value());
      this.skipSpace();
      const next = this.peek();
      if (next === 0x2c) {
        this.pos++;
        continue;
      }
      if (next === 0x7d) {
        this.pos++;
        this.depth--;
        return { t: 'obj', fields };
      }
      this.fail(next, 'after object key:value pair');
    }
  }

  private array(): JsonNode {
    this.enter();
    this.pos++;
    const items: JsonNode[] = [];
    this.skipSpace();
    if (this.peek() === 0x5d) {
      this.pos++;
      this.depth--;
      return { t: 'arr', items };
    }
    for (;;) {
      items.push(this.value());
      this.skipSpace();
      const next = this.peek();
      if (next === 0x2c) {
        this.pos++;
        continue;
      }
      if (next === 0x5d) {
        this.pos++;
        this.depth--;
        return { t: 'arr', items };
      }
      this.fail(next, 'after array element');
    }
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
function latin1(buf: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(buf[i] as number);
  return s;
}

/**
 * Go's json.Decoder.Decode: the first value of `body`, bytes after it ignored. `undefined` when the
 * body holds only whitespace (Go's io.EOF, which grpc-gateway treats as an empty request).
 */
export function readFirstValue(body: Uint8Array): JsonNode | undefined {
  const r = new Reader(body, 'unexpected EOF');
  r.skipSpace();
  if (r.peek() === EOF) return undefined;
  return guardDepth(() => r.value());
}

/**
 * Nesting deeper than the JS stack allows is refused with Go's own text for too deep a document
 * (Go allows 10,000 levels; the exact bound here is the stack's, a few thousand).
 */
function guardDepth<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof RangeError) throw new JsonSyntaxError('exceeded max depth');
    throw e;
  }
}

/**
 * Every value in `body` one after another, as a json.Decoder loop reads a streamed request body.
 * Stops at the first syntax error and returns it with the values read before it.
 */
export function readValues(body: Uint8Array): { values: JsonNode[]; error?: JsonSyntaxError } {
  const r = new Reader(body, 'unexpected EOF');
  const values: JsonNode[] = [];
  for (;;) {
    r.skipSpace();
    if (r.peek() === EOF) return { values };
    try {
      values.push(guardDepth(() => r.value()));
    } catch (e) {
      if (e instanceof JsonSyntaxError) return { values, error: e };
      throw e;
    }
  }
}

/** Go's json.Unmarshal: exactly one value, nothing but whitespace after it. */
export function readWhole(text: string): JsonNode {
  const r = new Reader(Buffer.from(text, 'utf8'), 'unexpected end of JSON input');
  const v = guardDepth(() => r.value());
  r.skipSpace();
  const c = r.peek();
  if (c !== EOF) r.fail(c, 'after top-level value');
  return v;
}
