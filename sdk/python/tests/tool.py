"""A Python tool using wraith_client, for the end-to-end tests: like
examples/sdk-tool's `process`, one `line_processed` event per stdin line."""

import sys

import wraith_client as wraith


def main():
    wraith.init("py-tool", "2.0.0")
    with wraith.timed("process"):
        for i, line in enumerate(sys.stdin, 1):
            line = line.rstrip("\n")
            words = line.split()
            word = words[0] if words else ""
            wraith.track("line_processed", level="critical" if word == "crash" else "info",
                         command="process", line_no=i, word=word, sample=line[:60])
    if len(sys.argv) > 1 and sys.argv[1] == "--fail":
        with wraith.timed("fail"):
            raise KeyError("a message that must not be sent")


if __name__ == "__main__":
    main()
