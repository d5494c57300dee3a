// The glue between a plugin class and the component's exports. The build
// (bin/build.js) writes an entry module that imports the gateway's host
// functions and hands them here; nothing else in the SDK knows it runs in a
// component.

import { ConfigError, runBatch, setHost, start } from './index.js';

export function componentPlugin(cls, hostImports) {
  let plugin = null;
  const host = {
    log: (level, message) => hostImports.log(level, message),
    counterAdd: (name, delta) => hostImports.counterAdd(name, BigInt(delta)),
  };
  return {
    init(configText) {
      setHost(host);
      try {
        plugin = start(cls, configText);
      } catch (e) {
        if (e instanceof ConfigError) throw e;
        throw new ConfigError('', `init failed: ${e && e.message ? e.message : e}`);
      }
    },
    process(batch) {
      const { outcomes, edits, editData } = runBatch(plugin, batch.data, batch.leaves, batch.events);
      return {
        outcomes: outcomes.map(([index, v]) => ({ index, verdict: { tag: v.kind, val: v.value } })),
        edits,
        editData,
      };
    },
  };
}
