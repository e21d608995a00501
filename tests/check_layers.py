#!/usr/bin/python3
"""The layer rule of docs/architecture.md, enforced.

Reads the table under "## Layers" in docs/architecture.md (level, layer,
public headers, sources and private headers), maps every file in src/ and
include/gust/ to its row, and fails on:
  - a file in src/ that no row names, or that two rows name;
  - an #include "..." of a header whose layer is above the file's;
  - a call (an undefined symbol of the file's object) to a function or a
    variable defined in a layer above the file's, read from the objects
    with nm;
  - a private header (src/*.h) included by a file its first comment does
    not name.

Usage: check_layers.py SOURCE_DIR [OBJECT_FILES joined with ':']
Without the objects, only the includes are checked.
"""
import fnmatch
import os
import re
import subprocess
import sys

TABLE = 'docs/architecture.md'


def cells(line):
    return [c.strip() for c in line.strip().strip('|').split('|')]


def names(cell):
    """The backticked names of a table cell."""
    return re.findall(r'`([^`]+)`', cell)


def read_table(root):
    """[(level, layer, public headers, source patterns)] from the table."""
    text = open(os.path.join(root, TABLE)).read()
    m = re.search(r'^## Layers\n(.*?)(?=^## )', text, re.S | re.M)
    if not m:
        sys.exit(f'{TABLE}: no "## Layers" section')
    rows = []
    for line in m.group(1).splitlines():
        if not line.startswith('|'):
            continue
        c = cells(line)
        if len(c) < 4 or not c[0].isdigit():
            continue  # the heading and the |---| line
        rows.append((int(c[0]), c[1], names(c[2]), names(c[3])))
    if len(rows) < 10:
        sys.exit(f'{TABLE}: the layer table has only {len(rows)} rows')
    return rows


def read_exceptions(root):
    """{(file, used)} from the table under "## Known exceptions": upward
    uses that are known and waiting to be removed."""
    text = open(os.path.join(root, TABLE)).read()
    m = re.search(r'^## Known exceptions\n(.*?)(?=^## |\Z)', text, re.S | re.M)
    out = set()
    if m:
        for line in m.group(1).splitlines():
            if line.startswith('|') and '`' in line:
                c = cells(line)
                for f in names(c[0]):
                    for u in names(c[1]):
                        out.add((f, u))
    return out


def first_comment(path):
    m = re.match(r'\s*/\*(.*?)\*/', open(path, errors='replace').read(), re.S)
    return m.group(1) if m else ''


def includes(path):
    """(line number, name) of each #include "name" in path."""
    out = []
    for n, line in enumerate(open(path, errors='replace'), 1):
        m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
        if m:
            out.append((n, m.group(1)))
    return out


def main():
    root = sys.argv[1]
    objects = sys.argv[2].split(':') if len(sys.argv) > 2 and sys.argv[2] \
        else []
    rows = read_table(root)
    exceptions = read_exceptions(root)
    used_exceptions = set()
    errors = []
    known = []

    def upward(f, used, msg):
        if (f, used) in exceptions:
            used_exceptions.add((f, used))
            known.append(msg)
        else:
            errors.append(msg)
    add_row = (f'add it to a row of the table in {TABLE} (or a row for a '
               'new layer, with its level)')

    # Every file's layer.
    layer_of = {}  # 'src/x.c' or 'gust/x.h' -> (level, layer)
    src = os.path.join(root, 'src')
    for f in sorted(os.listdir(src)):
        if not f.endswith(('.c', '.h')):
            continue
        hits = [(lv, name) for lv, name, _, pats in rows
                if any(fnmatch.fnmatchcase(f, p) for p in pats)]
        if not hits:
            errors.append(f'src/{f}: no layer for this file: {add_row}')
        elif len(hits) > 1:
            errors.append(f'src/{f}: in more than one row of {TABLE}: '
                          + ', '.join(n for _, n in hits))
        else:
            layer_of['src/' + f] = hits[0]
    for lv, name, pubs, _ in rows:
        for h in pubs:
            layer_of['gust/' + h] = (lv, name)
    inc = os.path.join(root, 'include', 'gust')
    for h in sorted(os.listdir(inc)):
        if h.endswith('.h') and 'gust/' + h not in layer_of:
            errors.append(f'include/gust/{h}: no layer for this header: '
                          f'{add_row}')

    # Includes: never upward; private headers only where their first
    # comment says.
    allowed = {}  # private header -> names in its first comment
    for f in layer_of:
        if f.startswith('src/') and f.endswith('.h'):
            allowed[f[4:]] = set(re.findall(r'[A-Za-z0-9_*]+\.[ch]\b',
                                            first_comment(os.path.join(root,
                                                                       f))))
    files = [(f, os.path.join(root, f)) for f in layer_of if f.startswith('src/')]
    files += [('gust/' + h, os.path.join(inc, h)) for h in sorted(os.listdir(inc))
              if 'gust/' + h in layer_of]
    for f, path in sorted(files):
        lv, name = layer_of[f]
        base = os.path.basename(f)
        for n, target in includes(path):
            key = target if target.startswith('gust/') else 'src/' + target
            if key not in layer_of:
                if target.startswith('gust/') or os.path.exists(
                        os.path.join(src, target)):
                    continue  # reported above as a file with no layer
                errors.append(f'{f}:{n}: includes "{target}", which is '
                              'neither in src/ nor in include/gust/')
                continue
            tlv, tname = layer_of[key]
            if tlv > lv or (tlv == lv and tname != name):
                upward(f, target, f'{f}:{n}: includes "{target}" of layer '
                       f'{tname} ({tlv}), not below its own {name} ({lv})')
            if not target.startswith('gust/'):
                names_ok = allowed.get(target, set())
                if base != target and not any(
                        fnmatch.fnmatchcase(base, p) for p in names_ok):
                    errors.append(
                        f'{f}:{n}: includes the private header {target}, '
                        f'whose first comment does not name {base} among '
                        'the files that may include it')

    # Calls and data references, from the objects.
    if objects:
        out = subprocess.run(['nm', '-A', *objects], check=True,
                             capture_output=True, text=True).stdout
        defined = {}  # symbol -> source file
        undefined = []  # (source file, symbol)
        for line in out.splitlines():
            m = re.match(r'(.+?):\s*(?:[0-9a-f]+)?\s+([A-Za-z])\s+(\S+)$', line)
            if not m:
                continue
            obj, kind, sym = m.groups()
            srcname = 'src/' + os.path.basename(obj)
            srcname = srcname[:srcname.rindex('.c') + 2] \
                if '.c' in srcname else srcname
            if not sym.startswith('gust'):
                continue
            if kind == 'U':
                undefined.append((srcname, sym))
            elif kind.isupper():
                defined[sym] = srcname
        for f, sym in sorted(set(undefined)):
            d = defined.get(sym)
            if not d or f not in layer_of or d not in layer_of:
                continue
            (lv, name), (tlv, tname) = layer_of[f], layer_of[d]
            if tlv > lv or (tlv == lv and tname != name):
                upward(f, d, f'{f}: calls {sym} ({d}, layer {tname}, '
                       f'{tlv}), not below its own {name} ({lv})')
        if len(defined) < 100:
            errors.append(f'only {len(defined)} symbols defined in the '
                          'objects: the nm output was not read')

    for f, u in sorted(exceptions - used_exceptions):
        if objects or not u.startswith('src/'):
            errors.append(f'{TABLE}: the known exception {f} -> {u} no '
                          'longer occurs: remove it from the table')
    for k in known:
        print('known exception:', k)
    for e in errors:
        print(e)
    print(f'{len(layer_of)} files in {len(rows)} layers, '
          f'{len(objects)} objects, {len(errors)} problems')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
