#!/usr/bin/env node
// Build a JavaScript plugin into a Wraith plugin component:
//
//   wraith-plugin-build plugin.js -o my-plugin.wasm [--wit DIR]
//
// `plugin.js` default-exports the plugin class. The build writes an entry
// module that connects the class to the gateway's host functions, bundles
// it (rolldown, `@wraith/plugin` resolved to this SDK) into one module, and
// turns that into a component with componentize-js (SpiderMonkey inside; no
// HTTP, no fetch). Both tools are looked up in WRAITH_NODE_TOOLS, then in the
// current folder's node_modules, then beside this SDK.

import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SDK = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function usage(msg) {
  console.error(`error: ${msg}\nusage: wraith-plugin-build PLUGIN.js -o OUT.wasm [--wit DIR]`);
  process.exit(2);
}

const args = process.argv.slice(2);
let input;
let out;
let wit = existsSync(join(SDK, 'wit')) ? join(SDK, 'wit') : resolve(SDK, '../../wit');
for (let i = 0; i < args.length; i++) {
  if (args[i] === '-o' || args[i] === '--out') out = args[++i];
  else if (args[i] === '--wit') wit = args[++i];
  else if (args[i].startsWith('-')) usage(`unknown option ${args[i]}`);
  else if (input) usage(`one plugin module at a time (got ${input} and ${args[i]})`);
  else input = args[i];
}
if (!input) usage('no plugin module given');
if (!out) usage('no output given (-o OUT.wasm)');
if (!existsSync(input)) usage(`${input} does not exist`);
if (!existsSync(join(wit, 'world.wit'))) usage(`no plugin contract (world.wit) in ${wit}: pass --wit DIR`);

/** The entry module of the npm package `name` in `dir`/node_modules (or up from it). */
function entryIn(dir, name) {
  for (let d = resolve(dir); ; d = dirname(d)) {
    const pkgDir = join(d, 'node_modules', name);
    if (existsSync(join(pkgDir, 'package.json'))) {
      const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
      let e = pkg.exports?.['.'] ?? pkg.exports ?? pkg.module ?? pkg.main ?? 'index.js';
      while (e && typeof e === 'object') e = e.import ?? e.node ?? e.default;
      return pathToFileURL(join(pkgDir, e)).href;
    }
    if (dirname(d) === d) return null;
  }
}

function tool(name) {
  const dirs = [process.env.WRAITH_NODE_TOOLS, process.cwd(), SDK].filter(Boolean);
  for (const d of dirs) {
    const found = entryIn(d, name);
    if (found) return found;
  }
  console.error(
    `error: ${name} is not installed (looked in ${dirs.join(', ')}): run \`npm install\` in the plugin's folder, or \`cargo xtask test\` in the Wraith repository`,
  );
  process.exit(1);
}

const { rolldown } = await import(tool('rolldown'));
const { componentize } = await import(tool('@bytecodealliance/componentize-js'));

const work = mkdtempSync(join(tmpdir(), 'wraith-js-'));
try {
  const entry = join(work, 'entry.js');
  writeFileSync(
    entry,
    [
      "import { log, counterAdd } from 'wraith:plugin/host@0.1.0';",
      `import { componentPlugin } from ${JSON.stringify(join(SDK, 'src/component.js'))};`,
      `import Plugin from ${JSON.stringify(resolve(input))};`,
      'export const plugin = componentPlugin(Plugin, { log, counterAdd });',
      '',
    ].join('\n'),
  );
  const bundle = await rolldown({
    input: entry,
    external: [/^wraith:/],
    platform: 'neutral',
    resolve: {
      alias: {
        '@wraith/plugin/testing': join(SDK, 'src/testing.js'),
        '@wraith/plugin/flat': join(SDK, 'src/flat.js'),
        '@wraith/plugin': join(SDK, 'src/index.js'),
      },
    },
    logLevel: 'warn',
  });
  const bundled = join(work, 'plugin.js');
  await bundle.write({ file: bundled, format: 'esm' });
  await bundle.close();
  const { component } = await componentize({
    sourcePath: bundled,
    witPath: resolve(wit),
    worldName: 'wraith-plugin',
    disableFeatures: ['http', 'fetch-event'],
  });
  const tmp = `${out}.tmp`;
  writeFileSync(tmp, component);
  renameSync(tmp, out);
  console.error(`built ${out} (${Math.round(statSync(out).size / 1024 / 1024)} MB)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
