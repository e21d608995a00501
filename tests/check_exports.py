#!/usr/bin/python3
"""libgust.so exports exactly Gust's public interface.

Fails if `nm -D` shows any internal gust__* symbol, or if a function or
variable declared in include/gust/*.h is not exported (a public declaration
without GUST_EXTERN, with the library built with hidden visibility), or if
the library exports a gust_* symbol that no public header declares.

Usage: check_exports.py LIBGUST_SO INCLUDE_DIR
"""
import glob
import os
import re
import subprocess
import sys


def strip_comments(src):
    """src with comments and string literals blanked (newlines kept)."""
    def blank(m):
        return re.sub(r'[^\n]', ' ', m.group(0))
    return re.sub(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', blank, src,
                  flags=re.S)


def declared_names(header):
    """Names of the functions and variables a public header declares at
    file scope (static inline functions and typedefs excepted)."""
    code = strip_comments(open(header).read().replace('extern "C" {', ''))
    # Drop preprocessor lines (with their continuations) and the C++ guard.
    code = re.sub(r'^[ \t]*#(?:[^\n]*\\\n)*[^\n]*', '', code, flags=re.M)
    names = []
    depth = 0
    stmt = ''
    head = ''      # what came before the { of a body at file scope
    in_type = False
    for ch in code:
        if ch == '{':
            if depth == 0:
                head = ' '.join(stmt.split())
            depth += 1
            continue
        if ch == '}':
            depth = max(depth - 1, 0)  # the C++ guard's } has no {
            if depth == 0:
                # A struct, union or enum body is followed by the rest of
                # its declaration; a function body (static inline) is not.
                in_type = bool(re.match(r'(typedef|struct|enum|union)\b',
                                        head))
                stmt = ''
            continue
        if depth > 0:
            continue
        if ch == ';':
            s = ' '.join(stmt.split())
            stmt = ''
            if in_type:
                in_type = False
                continue
            if not s or re.match(r'(typedef|static|struct \w+$|enum|union)\b',
                                 s):
                continue
            s = re.sub(r'__attribute__\s*\(\(.*?\)\)', '', s)
            m = re.search(r'\b([A-Za-z_]\w*)\s*\(', s)
            if m and not s.startswith('extern '):
                names.append((m.group(1), 'GUST_EXTERN' in s))
                continue
            m = re.search(r'\b([A-Za-z_]\w*)\s*(\[[^\]]*\])?\s*$', s)
            if m:
                names.append((m.group(1), 'GUST_EXTERN' in s))
            continue
        stmt += ch
    return names


def main():
    lib, include = sys.argv[1], sys.argv[2]
    out = subprocess.run(['nm', '-D', '--defined-only', lib], check=True,
                         capture_output=True, text=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if line.split()}
    errors = []
    internal = sorted(n for n in exported if n.startswith('gust__'))
    for n in internal:
        errors.append(f'{os.path.basename(lib)} exports internal symbol {n}')
    declared = {}
    for h in sorted(glob.glob(os.path.join(include, 'gust', '*.h'))):
        for name, marked in declared_names(h):
            declared[name] = h
            rel = os.path.relpath(h, os.path.dirname(include))
            if not marked:
                errors.append(f'{rel}: {name} is declared without GUST_EXTERN')
            if name not in exported:
                errors.append(f'{rel}: {name} is declared but not exported '
                              f'by {os.path.basename(lib)}')
    for n in sorted(exported):
        if n.startswith('gust_') and not n.startswith('gust__') \
                and n not in declared:
            errors.append(f'{os.path.basename(lib)} exports {n}, which no '
                          f'header in include/gust declares')
    if len(declared) < 100:
        errors.append(f'only {len(declared)} public declarations found: '
                      'the header parser is broken')
    for e in errors:
        print(e)
    print(f'{len(declared)} public declarations, {len(exported)} exported '
          f'symbols, {len(errors)} problems')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
