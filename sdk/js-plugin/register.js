// `node --import @wraith/plugin/register.js --test`: resolves `@wraith/plugin`
// (and its subpaths) to this copy of the SDK, so a plugin project's native
// tests run without installing the SDK into node_modules.
import { register } from 'node:module';

register('./src/resolve.js', import.meta.url);
