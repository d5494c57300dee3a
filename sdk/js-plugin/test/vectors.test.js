// The shared test vectors (sdk/vectors/*.json), run through the native
// harness: the JavaScript SDK reads and edits events as the Rust and Python
// SDKs do, and the harness stores them as the gateway does.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { Plugin, drop, keep, reject, route } from '../src/index.js';
import * as flat from '../src/flat.js';
import { Harness } from '../src/testing.js';

const VECTORS = process.env.WRAITH_VECTORS ?? join(fileURLToPath(new URL('.', import.meta.url)), '../../vectors');

/** Does to each event what the case's `ops` say for its index. Ops are trees
 * (flat.parse), so numbers reach `set` with their digits intact. */
class Scripted extends Plugin {
  init(config) {
    this.ops = flat.parse(JSON.stringify(config.get('ops', [])));
  }
  process(event) {
    const ops = this.ops[event.index] ?? [];
    for (const op of ops) {
      const o = flat.toJs(op);
      if ('set' in o) event.set(o.set, o.value);
      else if ('remove' in o) event.remove(o.remove);
      else if ('copy' in o) event.set(o.to, event.has(o.copy) ? event.get(o.copy) : '<missing>');
      else if ('has' in o) event.set(o.to, event.has(o.has));
      else if ('strings' in o) event.set(o.strings, [...event.strings()]);
      else if ('leaves' in o) event.set(o.leaves, [...event.leaves()].map(([p]) => p));
      else if ('verdict' in o) return { drop, reject, route }[o.verdict](o.value);
      else throw new Error(`unknown op ${JSON.stringify(o)}`);
    }
    return keep();
  }
}

const verdictJson = (v) => (v.kind === 'keep' ? 'keep' : { [v.kind]: v.value });

const files = readdirSync(VECTORS).filter((f) => f.endsWith('.json')).sort();
assert.ok(files.length > 0, `no vectors in ${VECTORS}`);
for (const file of files) {
  const cases = flat.parse(readFileSync(join(VECTORS, file), 'utf8'));
  for (const c of cases) {
    test(`${file}: ${c.get('name')}`, () => {
      // The ops travel as config JSON; keep their numbers' digits by passing the text.
      const ops = flat.stringify(c.get('ops'));
      const h = new Harness(Scripted, `{"ops":${ops}}`);
      const out = h.run(flat.stringify(c.get('events')));
      const expect = c.get('expect');
      assert.equal(out.length, expect.length);
      out.forEach((got, i) => {
        assert.deepEqual(verdictJson(got.verdict), flat.toJs(expect[i].get('verdict')), `event ${i}`);
        assert.equal(got.json, flat.stringify(expect[i].get('event')), `event ${i}`);
        if (expect[i].has('json')) assert.equal(got.json, expect[i].get('json'), `event ${i}, exact text`);
      });
    });
  }
}
