// Native tests of {{name}}, in plain Node: `npm test`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { keep } from '@wraith/plugin';
import { Harness } from '@wraith/plugin/testing';

import {{type}} from './plugin.js';

test('masks e-mails in every string', () => {
  const h = new Harness({{type}}, {});
  const out = h.runOne({ event_type: 'login', message: 'mail ada@example.com now', context: { user: 'ada@example.com', os: 'linux' } });
  assert.equal(out.verdict, keep());
  assert.equal(out.event.message, 'mail [email] now');
  assert.deepEqual(out.event.context, { user: '[email]', os: 'linux' });
  assert.deepEqual(h.counters, { emails_masked: 2 });
  assert.throws(() => new Harness({{type}}, { mask: 5 }), (e) => e.field === 'mask');
});
