// Native tests of redact-js: plain Node, no component build
// (`node --import ../../sdk/js-plugin/register.js --test`).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ConfigError, keep, reject } from '@wraith/plugin';
import { Harness } from '@wraith/plugin/testing';

import Redact from './plugin.js';

test('redacts the field and masks e-mails', () => {
  const h = new Harness(Redact, { field: 'context.hostname' });
  const out = h.runOne({ context: { hostname: 'ada-laptop', os: 'linux' }, msg: 'mail ada@example.com now' });
  assert.equal(out.verdict, keep());
  assert.deepEqual(out.event, { context: { hostname: '[redacted]', os: 'linux' }, msg: 'mail [email] now' });
  assert.deepEqual(h.counters, { redacted: 2 });
  assert.deepEqual(h.logs, [['info', 'redact-js ready: field context.hostname']]);
});

test('rejects refused types and keeps their events unedited', () => {
  const h = new Harness(Redact, { reject_types: ['internal'] });
  const [a, b] = h.run([{ event_type: 'internal', user: 'ada' }, { event_type: 'login', user: 'ada' }]);
  assert.deepEqual(a.verdict, reject('event type internal is refused by redact-js'));
  assert.equal(a.event.user, 'ada');
  assert.equal(b.event.user, '[redacted]');
});

test('config errors name the field', () => {
  assert.throws(() => new Harness(Redact, { feild: 'x' }), (e) => e instanceof ConfigError && e.field === 'feild' && /^unknown field `feild`/.test(e.payload.message));
  assert.throws(() => new Harness(Redact, { field: 'a..b' }), (e) => e.field === 'field');
});
