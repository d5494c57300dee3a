// Write plugins for the Wraith telemetry gateway in JavaScript.
//
// A plugin is a class with `init(config)` and `process(event)`: built once
// from the operator's config, it decides about each event of every batch —
// keep it (possibly changed), drop it, reject it to the dead-letter queue, or
// route it to a named destination:
//
//   import { Plugin, keep, counter } from '@wraith/plugin';
//
//   const EMAIL = /[\w.+-]+@[\w-]+(\.[\w-]+)+/g;
//
//   export default class Scrub extends Plugin {
//     init(config) {
//       this.mask = config.str('mask', '[email]');
//     }
//     process(event) {
//       for (const [path, text] of event.strings()) {
//         const masked = text.replace(EMAIL, this.mask);
//         if (masked !== text) {
//           event.set(path, masked);
//           counter('emails_masked');
//         }
//       }
//       return keep();
//     }
//   }
//
// `wraith-plugin-build plugin.js -o scrub.wasm` bundles the module and
// builds the component with componentize-js; `@wraith/plugin/testing` runs
// the same class in Node on JSON events, through the same batch layout and
// edit application as the gateway.
//
// Paths are dotted (`context.os`, `tags[0]`, `frames[2].file`); a `.`, `[`,
// `]` or `\` inside a key is escaped with a backslash (`a\.b`).

import * as flat from './flat.js';

// --- verdicts ----------------------------------------------------------------

class Verdict {
  constructor(kind, value) {
    this.kind = kind;
    this.value = value;
    Object.freeze(this);
  }
  toString() {
    return this.kind === 'keep' ? 'keep()' : `${this.kind}(${JSON.stringify(this.value)})`;
  }
}

const KEEP = new Verdict('keep', undefined);
const needString = (kind, v) => {
  if (typeof v !== 'string') throw new TypeError(`${kind} needs a string`);
  return new Verdict(kind, v);
};

/** Keep the event, with any edits. */
export const keep = () => KEEP;
/** Drop the event on purpose (sampling, filtering): counted, not stored. Edits made to it are discarded. */
export const drop = (reason) => needString('drop', reason);
/** The event is invalid: it goes to the dead-letter queue with this reason. Edits made to it are discarded. */
export const reject = (reason) => needString('reject', reason);
/** Keep the event (with its edits) and send it to this destination (`[a-z0-9_-]`, at most 64 bytes). */
export const route = (destination) => needString('route', destination);
export { Verdict };

// --- config ------------------------------------------------------------------

/** Why a plugin refused its config: the offending field (dotted path, empty for
 * the config as a whole) and what is wrong with it. */
export class ConfigError extends Error {
  constructor(field, message) {
    super(field ? `${field}: ${message}` : message);
    this.field = field;
    // The component's `result` error: what the gateway shows the operator.
    this.payload = { field, message };
    this.reason = message;
  }
}

const describe = (v) => {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a table';
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  return `${typeof v} \`${String(v)}\``;
};
const MISSING = Symbol('missing');

/** The operator's config for a plugin (a JSON object).
 *
 * Read every setting in `init` with the typed getters; each names the field
 * in its error. Once `init` returns, a key that was never read is refused as
 * an unknown field (a typo in plugins.toml is caught at load), unless the
 * plugin called `allowUnknown()`. */
export class Config {
  constructor(value, prefix = '') {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new ConfigError(prefix.replace(/\.$/, ''), `expected a table, got ${describe(value)}`);
    }
    this.raw = value;
    this.prefix = prefix;
    this.read = new Set();
    this.children = [];
    this.unknownAllowed = false;
  }

  field(key) {
    return this.prefix + flat.escapeKey(key);
  }

  /** The raw value at `key`, or `dflt`. */
  get(key, dflt = undefined) {
    this.read.add(key);
    return Object.hasOwn(this.raw, key) ? this.raw[key] : dflt;
  }

  typed(key, check, what, dflt) {
    this.read.add(key);
    if (!Object.hasOwn(this.raw, key)) {
      if (dflt === MISSING) throw new ConfigError(this.field(key), `missing field \`${key}\``);
      return dflt;
    }
    const v = this.raw[key];
    if (!check(v)) throw new ConfigError(this.field(key), `expected ${what}, got ${describe(v)}`);
    return v;
  }

  /** A string setting (required unless a default is given). */
  str(key, dflt = MISSING) {
    return this.typed(key, (v) => typeof v === 'string', 'a string', dflt);
  }
  /** A string setting that must be an event path (`context.os`). */
  path(key, dflt = MISSING) {
    const v = this.str(key, dflt);
    if (typeof v === 'string') {
      try {
        flat.parsePath(v);
      } catch (e) {
        throw new ConfigError(this.field(key), `not a path: ${e.message}`);
      }
    }
    return v;
  }
  /** A boolean setting. */
  bool(key, dflt = MISSING) {
    return this.typed(key, (v) => typeof v === 'boolean', 'a boolean', dflt);
  }
  /** An integer setting, optionally bounded by `{min, max}`. */
  int(key, dflt = MISSING, { min, max } = {}) {
    const v = this.typed(key, Number.isInteger, 'an integer', dflt);
    if (Number.isInteger(v) && ((min !== undefined && v < min) || (max !== undefined && v > max))) {
      const bounds =
        min !== undefined && max !== undefined ? `between ${min} and ${max}` : min !== undefined ? `at least ${min}` : `at most ${max}`;
      throw new ConfigError(this.field(key), `must be ${bounds}, got ${v}`);
    }
    return v;
  }
  /** A number setting. */
  number(key, dflt = MISSING) {
    return this.typed(key, (v) => typeof v === 'number', 'a number', dflt);
  }
  /** A list of strings. */
  strList(key, dflt = MISSING) {
    const v = this.typed(key, Array.isArray, 'a list', dflt);
    if (Object.hasOwn(this.raw, key)) {
      v.forEach((item, i) => {
        if (typeof item !== 'string') throw new ConfigError(`${this.field(key)}[${i}]`, `expected a string, got ${describe(item)}`);
      });
    }
    return v;
  }
  /** A nested table, as a Config whose errors name `key.field` (an empty table when absent and not required). */
  section(key, required = false) {
    this.read.add(key);
    if (!Object.hasOwn(this.raw, key) && required) throw new ConfigError(this.field(key), `missing field \`${key}\``);
    const child = new Config(Object.hasOwn(this.raw, key) ? this.raw[key] : {}, `${this.field(key)}.`);
    this.children.push(child);
    return child;
  }
  /** Accept keys the plugin did not read. */
  allowUnknown() {
    this.unknownAllowed = true;
  }
  /** Refuse the first key that was never read (the SDK calls this after `init`). */
  checkUnknown() {
    if (!this.unknownAllowed) {
      for (const key of Object.keys(this.raw)) {
        if (!this.read.has(key)) {
          const known = [...this.read].sort().map((k) => `\`${k}\``).join(', ');
          const hint = known ? `, expected one of ${known}` : ', this plugin takes no settings';
          throw new ConfigError(this.field(key), `unknown field \`${key}\`${hint}`);
        }
      }
    }
    for (const c of this.children) c.checkUnknown();
  }
}

// --- events ------------------------------------------------------------------

const utf8 = new TextEncoder();
const text = new TextDecoder();

function leafValue(kind, t) {
  if (kind === flat.NUMBER) return flat.numberValue(t);
  if (kind === flat.JSON_KIND) return JSON.parse(t);
  if (kind === flat.STRING) return t;
  if (kind === flat.NULL) return null;
  if (kind === flat.FALSE) return false;
  if (kind === flat.TRUE) return true;
  throw new flat.FlatError(`unknown value kind ${kind}`);
}

class Edits {
  constructor() {
    this.words = [];
    this.chunks = [];
    this.size = 0;
    this.texts = []; // [path, kind, text] per edit, for reading own edits
  }
  push(event, op, path, kind, value) {
    const p = utf8.encode(path);
    const v = utf8.encode(value);
    this.words.push(event, op, this.size, p.length, kind, this.size + p.length, v.length);
    this.chunks.push(p, v);
    this.size += p.length + v.length;
    this.texts.push([path, op, kind, value]);
  }
  truncate(edits) {
    this.words.length = edits * flat.EDIT_WORDS;
    this.texts.length = edits;
  }
  data() {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/** One event of the batch being processed.
 *
 * Reads see the event as it arrived plus this plugin's own edits to the same
 * path; edits are recorded and applied by the gateway after the plugin
 * answers (and discarded if the verdict drops or rejects the event). */
export class Event {
  constructor(index, leaves, edits) {
    /** Position of the event in its batch. */
    this.index = index;
    this._leaves = leaves; // [path, kind, text]
    this._edits = edits;
    this._firstEdit = edits.texts.length;
  }

  _find(path) {
    const t = this._edits.texts;
    for (let n = t.length - 1; n >= this._firstEdit; n--) {
      if (t[n][0] === path) return t[n][1] === flat.OP_REMOVE ? null : [t[n][2], t[n][3]];
    }
    for (const [p, kind, v] of this._leaves) if (p === path) return [kind, v];
    return null;
  }

  /** The value of the leaf at `path` (a string, number — BigInt beyond 2^53 —,
   * boolean, null, `{}`/`[]` for an empty container), or `dflt`. Only leaves
   * have values: `get('context')` of a non-empty object is `dflt`. */
  get(path, dflt = undefined) {
    const f = this._find(path);
    return f === null ? dflt : leafValue(f[0], f[1]);
  }

  /** Whether there is a leaf at `path` (null included). */
  has(path) {
    return this._find(path) !== null;
  }

  /** `[path, value]` of every leaf as the event arrived, in document order. */
  *leaves() {
    for (const [p, kind, v] of this._leaves) yield [p, leafValue(kind, v)];
  }

  /** `[path, text]` of every string leaf as the event arrived: what a scrubber walks. */
  *strings() {
    for (const [p, kind, v] of this._leaves) if (kind === flat.STRING) yield [p, v];
  }

  /** Set `path` to `value` (string, number, BigInt, boolean, null, array or
   * object), creating objects along the way. NaN and infinities become null. */
  set(path, value) {
    flat.parsePath(path);
    let kind;
    let t = '';
    if (value === null) kind = flat.NULL;
    else if (value === true) kind = flat.TRUE;
    else if (value === false) kind = flat.FALSE;
    else if (typeof value === 'string') [kind, t] = [flat.STRING, value];
    else if (typeof value === 'number' || typeof value === 'bigint') {
      const n = flat.numberText(value);
      [kind, t] = n === null ? [flat.NULL, ''] : [flat.NUMBER, n];
    } else if (typeof value === 'object') [kind, t] = [flat.JSON_KIND, flat.stringifyJs(value)];
    else throw new TypeError(`cannot set ${typeof value}: use a string, number, BigInt, boolean, null, array or object`);
    this._edits.push(this.index, flat.OP_SET, path, kind, t);
  }

  /** Remove `path` and everything under it. */
  remove(path) {
    flat.parsePath(path);
    this._edits.push(this.index, flat.OP_REMOVE, path, flat.NULL, '');
  }
}

// --- plugins -----------------------------------------------------------------

/** Base class of a plugin: override `init` and `process`. */
export class Plugin {
  /** Read the settings; throw a ConfigError to refuse them. */
  init(_config) {}
  /** Decide about one event; returning nothing means keep. */
  process(_event) {
    return KEEP;
  }
}

/** Build and initialise a plugin from the config's JSON text; throws ConfigError. */
export function start(cls, configText) {
  let value;
  try {
    value = JSON.parse(configText);
  } catch (e) {
    throw new ConfigError('', `config is not valid JSON: ${e.message}`);
  }
  const config = new Config(value);
  const plugin = new cls();
  plugin.init(config);
  config.checkUnknown();
  return plugin;
}

/** Run a plugin over a flat batch: the non-keep verdicts (`[index, verdict]`),
 * the edit words and the edit data. */
export function runBatch(plugin, data, leaves, events) {
  const edits = new Edits();
  const outcomes = [];
  for (let i = 0; i < events.length / flat.EVENT_WORDS; i++) {
    const first = events[2 * i];
    const count = events[2 * i + 1];
    const ls = [];
    for (let l = first; l < first + count; l++) {
      const w = l * flat.LEAF_WORDS;
      ls.push([
        text.decode(data.subarray(leaves[w], leaves[w] + leaves[w + 1])),
        leaves[w + 2],
        text.decode(data.subarray(leaves[w + 3], leaves[w + 3] + leaves[w + 4])),
      ]);
    }
    const event = new Event(i, ls, edits);
    const v = plugin.process(event);
    if (v === undefined || v === null || v === KEEP) continue;
    if (!(v instanceof Verdict)) throw new TypeError(`process returned ${v}; return keep(), drop(..), reject(..) or route(..)`);
    if (v.kind === 'drop' || v.kind === 'reject') {
      // Edits to an event that does not travel on are not sent back.
      edits.truncate(event._firstEdit);
    }
    if (v.kind !== 'keep') outcomes.push([i, v]);
  }
  return { outcomes, edits: Uint32Array.from(edits.words), editData: edits.data() };
}

// --- host --------------------------------------------------------------------

export class Recorder {
  constructor() {
    this.logs = [];
    this.counters = {};
  }
  log(level, message) {
    this.logs.push([level, message]);
  }
  counterAdd(name, delta) {
    this.counters[name] = (this.counters[name] ?? 0) + Number(delta);
  }
}

// Where log lines and counters go: the gateway inside a component, the
// current harness's recorder in native tests.
let host = new Recorder();

/** Swap the host (the component glue and the test harness do); returns the previous one. */
export function setHost(h) {
  const old = host;
  host = h;
  return old;
}

const LEVELS = ['debug', 'info', 'warn', 'error'];

/** Write a log line through the gateway (`debug`, `info`, `warn` or `error`),
 * tagged with the plugin's name. Never put event values in it. */
export function log(level, message) {
  if (!LEVELS.includes(level)) throw new RangeError(`log level must be one of ${LEVELS.join(', ')}`);
  host.log(level, String(message));
}

/** Add `delta` to this plugin's counter `name` (`[a-z0-9_]`), shown in the gateway's /metrics. */
export function counter(name, delta = 1) {
  host.counterAdd(name, delta);
}

export { flat };
