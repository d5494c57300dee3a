"""redact-py: masks e-mail addresses in every string, replaces the string at
`field` with `placeholder`, rejects events whose type is in `reject_types`."""
import re

import wraith_plugin as wp

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


class Redact(wp.Plugin):
    def init(self, config):
        self.field = config.path("field", default="user")
        self.placeholder = config.str("placeholder", default="[redacted]")
        self.refused = set(config.str_list("reject_types", default=[]))
        wp.log("info", f"redact-py ready: field {self.field}")

    def process(self, event):
        if event.get("event_type") in self.refused:
            return wp.reject(f"event type {event.get('event_type')} is refused by redact-py")
        for path, text in event.strings():
            masked = self.placeholder if path == self.field else EMAIL.sub("[email]", text)
            if masked != text:
                event.set(path, masked)
                wp.counter("redacted")
        return wp.keep()


Plugin = wp.export(Redact)
