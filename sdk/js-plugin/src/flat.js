// The flat batch layout that crosses the plugin boundary (wit/types.wit).
//
// The JavaScript twin of the wraith-event crate's `flat` and `path` modules:
// it encodes JSON events into leaves the way the gateway does, and applies a
// plugin's edits the way the gateway does. The native test harness
// (`@wraith/plugin/testing`) runs plugins through it, so a test in Node sees
// what the gateway would store.
//
// JSON is read into a small tree that keeps what the gateway keeps: object
// keys in document order (a Map, so `"1"` stays where it was written) and
// numbers as the gateway writes them back (`JsonNumber`). Nothing in a
// running component uses this tree; a plugin only ever sees leaves.

export const LEAF_WORDS = 5;
export const EVENT_WORDS = 2;
export const EDIT_WORDS = 7;

export const NULL = 0, FALSE = 1, TRUE = 2, NUMBER = 3, STRING = 4, JSON_KIND = 5;
export const OP_SET = 0, OP_REMOVE = 1;

const U64_END = 1n << 64n;
const I64_MIN = -(1n << 63n);
const INTEGER = /^-?(?:0|[1-9][0-9]*)$/;
const NUMBER_RE = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
const INDEX = /^\+?[0-9]+$/;

/** A malformed edit, path or value (the gateway refuses the whole answer). */
export class FlatError extends Error {}
/** A path that does not parse. */
export class PathError extends FlatError {}

// --- numbers ----------------------------------------------------------------

/** Write a double the way the gateway does (serde_json: shortest round-trip
 * digits, fixed notation for exponents -5 to 15, `1.0`, `0.001`, `1e-7`,
 * `1.5e+300`). */
export function formatF64(f) {
  if (f === 0) return Object.is(f, -0) ? '-0.0' : '0.0';
  const neg = f < 0 ? '-' : '';
  const [mant, e] = Math.abs(f).toExponential().split('e');
  const ds = mant.replace('.', '');
  const length = ds.length;
  const kk = Number(e) + 1; // 10^(kk-1) <= |f| < 10^kk
  const exp = kk - length;
  if (exp >= 0 && kk <= 16) return `${neg}${ds}${'0'.repeat(exp)}.0`;
  if (kk > 0 && kk <= 16) return `${neg}${ds.slice(0, kk)}.${ds.slice(kk)}`;
  if (kk > -5 && kk <= 0) return `${neg}0.${'0'.repeat(-kk)}${ds}`;
  const exponent = `e${kk > 0 ? '+' : ''}${kk - 1}`;
  if (length === 1) return `${neg}${ds}${exponent}`;
  return `${neg}${ds[0]}.${ds.slice(1)}${exponent}`;
}

/** The text the gateway stores for the JSON number `text`. */
export function canonicalNumber(text) {
  const t = String(text).replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, '');
  if (!NUMBER_RE.test(t)) throw new FlatError(`${JSON.stringify(String(text))} is not a JSON number`);
  if (INTEGER.test(t)) {
    const v = BigInt(t);
    if (t.startsWith('-')) {
      if (v !== 0n && v >= I64_MIN) return v.toString();
    } else if (v < U64_END) {
      return v.toString();
    }
  }
  const f = Number(t);
  if (!Number.isFinite(f)) throw new FlatError(`number ${t} is out of range`);
  return formatF64(f);
}

/** A JSON number as the gateway keeps it. */
export class JsonNumber {
  constructor(text) {
    this.text = canonicalNumber(text);
  }
  /** As a JavaScript value: a number, or a BigInt for integers beyond 2^53. */
  value() {
    return numberValue(this.text);
  }
}

/** A number leaf's text as a JavaScript value: a number, or a BigInt for an
 * integer that a number cannot hold exactly. */
export function numberValue(text) {
  if (INTEGER.test(text)) {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : BigInt(text);
  }
  return Number(text);
}

/** The text a plugin sends for a number or BigInt (`null` for NaN and
 * infinities, which JSON cannot hold). */
export function numberText(v) {
  if (typeof v === 'bigint') return v.toString();
  if (!Number.isFinite(v)) return null;
  return String(v);
}

// --- JSON trees -------------------------------------------------------------

/** Parse JSON text into a tree: Maps for objects (keys in document order),
 * JsonNumber for numbers. */
export function parse(text) {
  let i = 0;
  const s = String(text);
  const ws = () => {
    while (i < s.length && ' \t\n\r'.includes(s[i])) i++;
  };
  const fail = (what) => {
    throw new FlatError(`not valid JSON: ${what} at character ${i}`);
  };
  const value = () => {
    ws();
    const c = s[i];
    if (c === '{') {
      i++;
      const m = new Map();
      ws();
      if (s[i] === '}') {
        i++;
        return m;
      }
      for (;;) {
        ws();
        if (s[i] !== '"') fail('expected a key');
        const k = string();
        ws();
        if (s[i] !== ':') fail("expected ':'");
        i++;
        m.set(k, value());
        ws();
        if (s[i] === ',') i++;
        else if (s[i] === '}') {
          i++;
          return m;
        } else fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const a = [];
      ws();
      if (s[i] === ']') {
        i++;
        return a;
      }
      for (;;) {
        a.push(value());
        ws();
        if (s[i] === ',') i++;
        else if (s[i] === ']') {
          i++;
          return a;
        } else fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (s.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(s.slice(i, i + 4096));
    if (!m || m[0] === '' || m[0] === '-') fail('expected a value');
    i += m[0].length;
    return new JsonNumber(m[0]);
  };
  const string = () => {
    const start = i;
    i++;
    while (i < s.length && s[i] !== '"') {
      if (s[i] === '\\') i++;
      else if (s.charCodeAt(i) < 0x20) fail('control character in string');
      i++;
    }
    if (i >= s.length) fail('unterminated string');
    i++;
    try {
      return JSON.parse(s.slice(start, i));
    } catch (e) {
      fail(e.message);
    }
  };
  const out = value();
  ws();
  if (i !== s.length) fail('trailing characters');
  return out;
}

/** Turn plain JavaScript values into a tree. */
export function fromJs(v) {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || v instanceof JsonNumber) return v;
  if (typeof v === 'number' || typeof v === 'bigint') {
    const t = numberText(v);
    if (t === null) throw new FlatError(`${v} is not a JSON number`);
    return new JsonNumber(t);
  }
  if (Array.isArray(v)) return v.map(fromJs);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [String(k), fromJs(x)]));
  if (typeof v === 'object') return new Map(Object.entries(v).map(([k, x]) => [k, fromJs(x)]));
  throw new TypeError(`${typeof v} is not a JSON value`);
}

/** A tree as plain JavaScript values (numbers beyond 2^53 as BigInt). */
export function toJs(t) {
  if (t instanceof JsonNumber) return t.value();
  if (Array.isArray(t)) return t.map(toJs);
  if (t instanceof Map) {
    const o = {};
    for (const [k, v] of t) o[k] = toJs(v);
    return o;
  }
  return t;
}

/** Compact JSON text of a tree, keys in order, numbers as kept. */
export function stringify(t) {
  if (t instanceof JsonNumber) return t.text;
  if (Array.isArray(t)) return `[${t.map(stringify).join(',')}]`;
  if (t instanceof Map) return `{${[...t].map(([k, v]) => `${JSON.stringify(k)}:${stringify(v)}`).join(',')}}`;
  if (t === null || typeof t === 'boolean' || typeof t === 'string') return JSON.stringify(t);
  throw new TypeError(`${typeof t} is not a JSON value`);
}

/** JSON text of plain JavaScript values, BigInts as integers and non-finite
 * numbers as null. */
export function stringifyJs(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return numberText(v) ?? 'null';
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stringifyJs).join(',')}]`;
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `${JSON.stringify(String(k))}:${stringifyJs(x)}`).join(',')}}`;
  if (typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${stringifyJs(x)}`).join(',')}}`;
  throw new TypeError(`${typeof v} is not a JSON value`);
}

// --- paths ------------------------------------------------------------------

/** A key as written in a path: `.`, `[`, `]` and `\` escaped. */
export function escapeKey(k) {
  return /[.[\]\\]/.test(k) ? k.replace(/[.[\]\\]/g, (c) => `\\${c}`) : k;
}

const utf8 = new TextEncoder();
const byteAt = (path, i) => utf8.encode(path.slice(0, i)).length;

/** Parse a path into keys (strings) and indices (numbers). */
export function parsePath(path) {
  if (path === '') throw new PathError('path is empty');
  const out = [];
  let i = 0;
  let expectKey = true;
  const n = path.length;
  while (i < n) {
    const c = path[i];
    if (c === '[') {
      const end = path.indexOf(']', i + 1);
      const digits = end >= 0 ? path.slice(i + 1, end) : '';
      if (end < 0 || !INDEX.test(digits) || BigInt(digits) >= U64_END) {
        throw new PathError(`path ${JSON.stringify(path)} has a bad array index at byte ${byteAt(path, i)}`);
      }
      out.push(Number(digits));
      i = end + 1;
      expectKey = false;
    } else if (c === '.') {
      if (expectKey) throw new PathError(`path ${JSON.stringify(path)} has an empty key at byte ${byteAt(path, i)}`);
      i++;
      expectKey = true;
      if (i === n) throw new PathError(`path ${JSON.stringify(path)} has an empty key at byte ${byteAt(path, i)}`);
    } else {
      let key = '';
      const start = i;
      while (i < n && path[i] !== '.' && path[i] !== '[') {
        if (path[i] === '\\') {
          i++;
          if (i === n) throw new PathError(`path ${JSON.stringify(path)} ends inside an escape`);
        }
        // One whole character (a surrogate pair counts as one).
        const cp = path.codePointAt(i);
        const ch = String.fromCodePoint(cp);
        key += ch;
        i += ch.length;
      }
      if (key === '') throw new PathError(`path ${JSON.stringify(path)} has an empty key at byte ${byteAt(path, start)}`);
      out.push({ key });
      expectKey = false;
    }
  }
  return out.map((s) => (typeof s === 'number' ? s : s.key));
}

const isIndex = (seg) => typeof seg === 'number';
const isObj = (v) => v instanceof Map;

/** Set the value at a path, as the gateway does: objects and arrays are
 * created along the way, a scalar in the way is replaced by the container
 * the path needs, arrays are padded with null. Returns the new root. */
export function pathSet(root, segments, value) {
  if (segments.length === 0) return value;
  const holder = [root];
  let parent = holder;
  let slot = 0;
  const container = (wantIndex) => {
    let cur = parent instanceof Map ? parent.get(slot) : parent[slot];
    if (wantIndex ? !Array.isArray(cur) : !isObj(cur)) {
      cur = wantIndex ? [] : new Map();
      if (parent instanceof Map) parent.set(slot, cur);
      else parent[slot] = cur;
    }
    return cur;
  };
  for (let n = 0; n < segments.length; n++) {
    const seg = segments[n];
    const last = n === segments.length - 1;
    const cur = container(isIndex(seg));
    if (isIndex(seg)) {
      if (seg >= cur.length) {
        while (cur.length < seg) cur.push(null);
        cur.push(last ? value : isIndex(segments[n + 1]) ? [] : new Map());
        if (last) return holder[0];
      } else if (last) {
        cur[seg] = value;
        return holder[0];
      }
    } else {
      if (last) {
        cur.set(seg, value);
        return holder[0];
      }
      if (!cur.has(seg)) cur.set(seg, isIndex(segments[n + 1]) ? [] : new Map());
    }
    parent = cur;
    slot = seg;
  }
  return holder[0];
}

/** Remove the value at a path if it is there. */
export function pathRemove(root, segments) {
  if (segments.length === 0) return;
  let cur = root;
  for (const seg of segments.slice(0, -1)) {
    if (isIndex(seg) && Array.isArray(cur) && seg < cur.length) cur = cur[seg];
    else if (!isIndex(seg) && isObj(cur) && cur.has(seg)) cur = cur.get(seg);
    else return;
  }
  const last = segments[segments.length - 1];
  if (isIndex(last) && Array.isArray(cur) && last < cur.length) cur.splice(last, 1);
  else if (!isIndex(last) && isObj(cur)) cur.delete(last);
}

// --- encoding and applying ---------------------------------------------------

/** Flatten events (trees) the way the gateway does: `{data, leaves, events}`. */
export function encode(events) {
  const bytes = [];
  let size = 0;
  const leaves = [];
  const evs = [];
  const push = (path, kind, value) => {
    const p = utf8.encode(path);
    const v = utf8.encode(value);
    leaves.push(size, p.length, kind, size + p.length, v.length);
    bytes.push(p, v);
    size += p.length + v.length;
  };
  const walk = (v, path) => {
    if (v instanceof Map && v.size) {
      for (const [k, x] of v) walk(x, (path ? `${path}.` : '') + escapeKey(k));
    } else if (Array.isArray(v) && v.length) {
      v.forEach((x, i) => walk(x, `${path}[${i}]`));
    } else if (v instanceof Map) push(path, JSON_KIND, '{}');
    else if (Array.isArray(v)) push(path, JSON_KIND, '[]');
    else if (v === null) push(path, NULL, '');
    else if (v === false) push(path, FALSE, '');
    else if (v === true) push(path, TRUE, '');
    else if (v instanceof JsonNumber) push(path, NUMBER, v.text);
    else if (typeof v === 'string') push(path, STRING, v);
    else throw new TypeError(`${typeof v} is not a JSON value (use fromJs)`);
  };
  for (const e of events) {
    const first = leaves.length / LEAF_WORDS;
    walk(e, '');
    evs.push(first, leaves.length / LEAF_WORDS - first);
  }
  const data = new Uint8Array(size);
  let at = 0;
  for (const b of bytes) {
    data.set(b, at);
    at += b.length;
  }
  return { data, leaves: Uint32Array.from(leaves), events: Uint32Array.from(evs) };
}

const strict = new TextDecoder('utf-8', { fatal: true });

/** A leaf or edit value as a tree (what the gateway stores for it). */
export function decodeValue(kind, text) {
  switch (kind) {
    case NULL:
      return null;
    case FALSE:
      return false;
    case TRUE:
      return true;
    case NUMBER:
      return new JsonNumber(text);
    case STRING:
      return text;
    case JSON_KIND:
      return parse(text);
    default:
      throw new FlatError(`unknown value kind ${kind}`);
  }
}

/** Apply a plugin's edits to the events (trees) in place, as the gateway
 * does: every edit is checked before any is applied, so a malformed answer
 * leaves the events untouched. Returns, per event, whether it changed. */
export function applyEdits(events, edits, data) {
  if (edits.length % EDIT_WORDS) {
    throw new FlatError(`edit list length ${edits.length} is not a multiple of ${EDIT_WORDS}`);
  }
  const planned = [];
  for (let n = 0; n < edits.length / EDIT_WORDS; n++) {
    const [event, op, pOff, pLen, kind, vOff, vLen] = edits.slice(n * EDIT_WORDS, (n + 1) * EDIT_WORDS);
    if (event >= events.length) {
      throw new FlatError(`edit ${n} names event ${event}, but the batch has ${events.length} events`);
    }
    const slice = (off, len) => {
      if (off + len > data.length) throw new FlatError(`edit ${n} points outside its data (${off}+${len} > ${data.length})`);
      return data.subarray(off, off + len);
    };
    const text = (b) => {
      try {
        return strict.decode(b);
      } catch {
        throw new FlatError(`edit ${n}: value is not valid UTF-8`);
      }
    };
    let segments;
    try {
      segments = parsePath(text(slice(pOff, pLen)));
    } catch (e) {
      throw e instanceof PathError ? new FlatError(`edit ${n}: ${e.message}`) : e;
    }
    if (op === OP_SET) {
      let value;
      try {
        value = decodeValue(kind, text(slice(vOff, vLen)));
      } catch (e) {
        throw new FlatError(`edit ${n}: ${e.message}`);
      }
      planned.push([event, segments, value, true]);
    } else if (op === OP_REMOVE) {
      planned.push([event, segments, null, false]);
    } else {
      throw new FlatError(`edit ${n} has unknown operation ${op}`);
    }
  }
  const changed = events.map(() => false);
  for (const [event, segments, value, isSet] of planned) {
    changed[event] = true;
    if (isSet) events[event] = pathSet(events[event], segments, value);
    else pathRemove(events[event], segments);
  }
  return changed;
}
