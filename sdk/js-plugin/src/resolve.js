// A module resolve hook (see ../register.js): `@wraith/plugin[/sub]` is this SDK.
const SUBPATHS = {
  '@wraith/plugin': './index.js',
  '@wraith/plugin/testing': './testing.js',
  '@wraith/plugin/component': './component.js',
  '@wraith/plugin/flat': './flat.js',
};

export async function resolve(specifier, context, next) {
  const sub = SUBPATHS[specifier];
  if (sub) return { url: new URL(sub, import.meta.url).href, shortCircuit: true };
  return next(specifier, context);
}
