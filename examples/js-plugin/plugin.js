// redact-js: masks e-mail addresses in every string, replaces the string at
// `field` with `placeholder`, rejects events whose type is in `reject_types`.
import { Plugin, counter, keep, log, reject } from '@wraith/plugin';

const EMAIL = /[\w.+-]+@[\w-]+(\.[\w-]+)+/g;

export default class Redact extends Plugin {
  init(config) {
    this.field = config.path('field', 'user');
    this.placeholder = config.str('placeholder', '[redacted]');
    this.refused = new Set(config.strList('reject_types', []));
    log('info', `redact-js ready: field ${this.field}`);
  }

  process(event) {
    const type = event.get('event_type');
    if (this.refused.has(type)) return reject(`event type ${type} is refused by redact-js`);
    for (const [path, text] of event.strings()) {
      const masked = path === this.field ? this.placeholder : text.replace(EMAIL, '[email]');
      if (masked !== text) {
        event.set(path, masked);
        counter('redacted');
      }
    }
    return keep();
  }
}
