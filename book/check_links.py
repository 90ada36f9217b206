#!/usr/bin/env python3
"""Fails when a relative link in the book points at a file (or a heading anchor) that does not exist.

Usage: python3 book/check_links.py [book/src]
Checks every `[text](target)` in every .md file under src: the target file must exist, and a
`#anchor` must match a heading of the target (mdBook's id rules: lowercase, spaces to dashes,
punctuation dropped). `{{#include ...}}` paths must exist too. External links are skipped.
"""
import os
import re
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "src")
LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INCLUDE = re.compile(r"\{\{#(?:rustdoc_include|include)\s+([^}\s:]+)(?::([A-Za-z0-9_-]+))?\s*\}\}")
FENCE = re.compile(r"^\s*(```|~~~)")


def heading_ids(path):
    ids = set()
    in_code = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if FENCE.match(line):
                in_code = not in_code
                continue
            if in_code:
                continue
            m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m:
                text = re.sub(r"`|\*|_(?=\w)|\[|\]\([^)]*\)", "", m.group(1))
                hid = "".join(c for c in text.lower() if c.isalnum() or c in " -_").replace(" ", "-")
                ids.add(hid)
    return ids


def main():
    errors = []
    for root, _, files in os.walk(SRC):
        for name in files:
            if not name.endswith(".md"):
                continue
            path = os.path.join(root, name)
            text = open(path, encoding="utf-8").read()
            for m in INCLUDE.finditer(text):
                target = os.path.normpath(os.path.join(root, m.group(1)))
                if not os.path.isfile(target):
                    errors.append(f"{path}: include {m.group(1)} does not exist")
                elif m.group(2):
                    body = open(target, encoding="utf-8").read()
                    if f"ANCHOR: {m.group(2)}" not in body or f"ANCHOR_END: {m.group(2)}" not in body:
                        errors.append(f"{path}: anchor {m.group(2)} not found in {m.group(1)}")
            # Links inside code blocks are not links.
            prose = re.sub(r"(?ms)^\s*(```|~~~).*?^\s*\1", "", text)
            for m in LINK.finditer(prose):
                target = m.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
                    continue
                file_part, _, anchor = target.partition("#")
                dest = path if not file_part else os.path.normpath(os.path.join(root, file_part))
                if not os.path.exists(dest):
                    errors.append(f"{path}: link {target} points to {dest}, which does not exist")
                    continue
                if anchor and dest.endswith(".md") and anchor not in heading_ids(dest):
                    errors.append(f"{path}: link {target}: no heading #{anchor} in {dest}")
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"{len(errors)} broken link(s) in the book", file=sys.stderr)
        return 1
    print("book links ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
