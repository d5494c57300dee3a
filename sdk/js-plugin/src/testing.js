// Run a plugin natively, in Node, through the same batch layout and edit
// application as the gateway: events are flattened into leaves, the plugin
// answers with verdicts and edits, and the edits are applied to the JSON
// events exactly as the gateway would before storing them.
//
//   import { Harness } from '@wraith/plugin/testing';
//   const h = new Harness(Scrub, { mask: '[email]' });
//   const out = h.runOne({ user: 'ada@example.com' });
//   assert.equal(out.event.user, '[email]');

import * as flat from './flat.js';
import { keep, Recorder, runBatch, setHost, start } from './index.js';

/** An event after the plugin ran: `event` (plain values), `json` (the JSON
 * text the gateway would store, keys in order, numbers as the gateway writes
 * them) and `verdict`. */
export class Processed {
  constructor(tree, verdict) {
    this.tree = tree;
    this.verdict = verdict;
  }
  get event() {
    return flat.toJs(this.tree);
  }
  get json() {
    return flat.stringify(this.tree);
  }
}

/** An initialised plugin that batches are run through. `config` is an object
 * or JSON text; a refused config throws ConfigError, as the gateway would
 * refuse to load the plugin. Each harness records its own logs and counters. */
export class Harness {
  constructor(cls, config = {}) {
    this.recorder = new Recorder();
    const t = typeof config === 'string' ? config : JSON.stringify(config);
    this.plugin = this.withHost(() => start(cls, t));
  }

  withHost(f) {
    const saved = setHost(this.recorder);
    try {
      return f();
    } finally {
      setHost(saved);
    }
  }

  /** `[level, message]` of every log line since the harness started. */
  get logs() {
    return [...this.recorder.logs];
  }

  /** Every counter's total since the harness started. */
  get counters() {
    return { ...this.recorder.counters };
  }

  /** Run one batch: an array of events (objects or JSON texts) or the text
   * of a JSON array. One Processed per event. */
  run(events) {
    let trees;
    if (typeof events === 'string') {
      trees = flat.parse(events);
      if (!Array.isArray(trees)) throw new TypeError('a batch in JSON text is an array of events');
    } else {
      trees = events.map((e) => (typeof e === 'string' ? flat.parse(e) : flat.fromJs(e)));
    }
    const batch = flat.encode(trees);
    const { outcomes, edits, editData } = this.withHost(() => runBatch(this.plugin, batch.data, batch.leaves, batch.events));
    flat.applyEdits(trees, edits, editData);
    const verdicts = trees.map(() => keep());
    for (const [i, v] of outcomes) verdicts[i] = v;
    return trees.map((t, i) => new Processed(t, verdicts[i]));
  }

  /** Run a batch of one event. */
  runOne(event) {
    return this.run([event])[0];
  }
}
