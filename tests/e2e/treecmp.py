#!/usr/bin/env python3
"""Compares two directory trees entry by entry: type, mode, owner, size,
mtime (ns), symlink target, device numbers, xattrs, contents, hard-link
groups and holes. Prints every difference; exit 0 when identical.

usage: treecmp.py SOURCE RESTORED [--no-owner] [--no-root-times]
"""
import os
import stat
import sys


def xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for n in sorted(names):
        try:
            out[n] = os.getxattr(path, n, follow_symlinks=False)
        except OSError:
            pass
    return out


def allocated_holes(path, size):
    """Byte ranges that are holes (SEEK_HOLE/SEEK_DATA), as a tuple."""
    holes = []
    with open(path, "rb") as f:
        fd = f.fileno()
        off = 0
        while off < size:
            try:
                hole = os.lseek(fd, off, os.SEEK_HOLE)
            except OSError:
                return ()
            if hole >= size:
                break
            try:
                data = os.lseek(fd, hole, os.SEEK_DATA)
            except OSError:
                data = size
            holes.append((hole, data))
            off = data
    return tuple(holes)


def walk(root):
    entries = {}
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            entries[rel] = (full, st)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
    groups = {}
    for names in inodes.values():
        names = sorted(names)
        for n in names:
            groups[n] = tuple(names)
    return entries, groups


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    no_owner = "--no-owner" in sys.argv
    src, dst = args
    a, ga = walk(src)
    b, gb = walk(dst)
    diffs = []
    for rel in sorted(set(a) | set(b)):
        if rel not in a:
            diffs.append(f"{rel}: only in restored")
            continue
        if rel not in b:
            diffs.append(f"{rel}: missing from restored")
            continue
        (pa, sa), (pb, sb) = a[rel], b[rel]
        if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
            diffs.append(f"{rel}: type {stat.S_IFMT(sa.st_mode):o} vs {stat.S_IFMT(sb.st_mode):o}")
            continue
        if not stat.S_ISLNK(sa.st_mode) and stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
            diffs.append(f"{rel}: mode {stat.S_IMODE(sa.st_mode):o} vs {stat.S_IMODE(sb.st_mode):o}")
        if not no_owner and (sa.st_uid, sa.st_gid) != (sb.st_uid, sb.st_gid):
            diffs.append(f"{rel}: owner {sa.st_uid}:{sa.st_gid} vs {sb.st_uid}:{sb.st_gid}")
        if sa.st_mtime_ns != sb.st_mtime_ns:
            diffs.append(f"{rel}: mtime {sa.st_mtime_ns} vs {sb.st_mtime_ns}")
        if xattrs(pa) != xattrs(pb):
            diffs.append(f"{rel}: xattrs {xattrs(pa)} vs {xattrs(pb)}")
        if stat.S_ISLNK(sa.st_mode) and os.readlink(pa) != os.readlink(pb):
            diffs.append(f"{rel}: symlink {os.readlink(pa)} vs {os.readlink(pb)}")
        if (stat.S_ISCHR(sa.st_mode) or stat.S_ISBLK(sa.st_mode)) and sa.st_rdev != sb.st_rdev:
            diffs.append(f"{rel}: device {sa.st_rdev} vs {sb.st_rdev}")
        if stat.S_ISREG(sa.st_mode):
            if sa.st_size != sb.st_size:
                diffs.append(f"{rel}: size {sa.st_size} vs {sb.st_size}")
            else:
                with open(pa, "rb") as fa, open(pb, "rb") as fb:
                    while True:
                        x, y = fa.read(1 << 20), fb.read(1 << 20)
                        if x != y:
                            diffs.append(f"{rel}: contents differ")
                            break
                        if not x:
                            break
                ha, hb = allocated_holes(pa, sa.st_size), allocated_holes(pb, sb.st_size)
                if ha != hb:
                    diffs.append(f"{rel}: holes {ha} vs {hb}")
            if ga.get(rel) != gb.get(rel):
                diffs.append(f"{rel}: hard links {ga.get(rel)} vs {gb.get(rel)}")
    for d in diffs:
        print(d)
    print(f"{len(a)} entries compared, {len(diffs)} difference(s)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
