#!/usr/bin/env python3
"""Finds two branch names whose commits of the same root share a 7-hex-digit version-id
prefix, for the ambiguous-prefix case in refs.slt. Version ids are SHA-256 of the
version record (docs/format.md section 5), deterministic with BAGBASE_TIME pinned.

usage: find_prefix_collision.py ROOT_HEX PARENT_HEX AUTHOR MESSAGE CREATED_AT_NS
(take the values from the record of the branch commit the .slt makes; when the format
or the fixture changes, run again and update the branch names and ids in refs.slt)."""
import hashlib
import sys

root, parent, author, message, created = sys.argv[1:6]
rec = ('{"root":"%s","parents":["%s"],"author":"%s","message":"%s","created_at":%s,"branch":"%%s"}'
       % (root, parent, author, message, created))
seen = {}
i = 0
while True:
    name = "b%d" % i
    h = hashlib.sha256((rec % name).encode()).hexdigest()
    if h[:7] in seen:
        other = seen[h[:7]]
        print(other, hashlib.sha256((rec % other).encode()).hexdigest())
        print(name, h)
        break
    seen[h[:7]] = name
    i += 1
