"""{{name}}: a Wraith plugin. Masks e-mail addresses in every string of every
event; `mask` sets the replacement (default `[email]`)."""
import re

import wraith_plugin as wp

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


class {{type}}(wp.Plugin):
    def init(self, config):
        self.mask = config.str("mask", default="[email]")

    def process(self, event):
        for path, text in event.strings():
            masked = EMAIL.sub(self.mask, text)
            if masked != text:
                event.set(path, masked)
                wp.counter("emails_masked")
        return wp.keep()


Plugin = wp.export({{type}})
