// {{name}}: a Wraith plugin. Masks e-mail addresses in every string of every
// event; `mask` sets the replacement (default `[email]`).
import { Plugin, counter, keep } from '@wraith/plugin';

const EMAIL = /[\w.+-]+@[\w-]+(\.[\w-]+)+/g;

export default class {{type}} extends Plugin {
  init(config) {
    this.mask = config.str('mask', '[email]');
  }

  process(event) {
    for (const [path, text] of event.strings()) {
      const masked = text.replace(EMAIL, this.mask);
      if (masked !== text) {
        event.set(path, masked);
        counter('emails_masked');
      }
    }
    return keep();
  }
}
