#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""After clang-format moved a trailing block comment (code; /* ... spanning lines */), shift its
continuation lines by the same amount, so they stay aligned with the text after '/* '."""
import re, sys
for path in sys.argv[1:]:
    lines = open(path).read().split('\n')
    out, i, changed = [], 0, False
    while i < len(lines):
        line = lines[i]
        out.append(line)
        m = re.search(r'\S.*?(/\*)(?!.*\*/)', line)
        # a trailing comment: code before '/*' on the same line, not closed on it
        if m and line[:m.start(1)].strip() and not line.lstrip().startswith(('/*', '*', '//')) \
                and '"' not in line[:m.start(1)]:
            c = m.start(1)
            j = i + 1
            if j < len(lines):
                first = lines[j]
                ind = len(first) - len(first.lstrip(' '))
                delta = (c + 3) - ind
                while j < len(lines):
                    l = lines[j]
                    li = len(l) - len(l.lstrip(' '))
                    nl = ' ' * max(li + delta, 0) + l.lstrip(' ') if l.strip() else l
                    if nl != l: changed = True
                    out.append(nl)
                    j += 1
                    if '*/' in l: break
                i = j
                continue
        i += 1
    if changed:
        open(path, 'w').write('\n'.join(out))
        print('fixed', path)
