#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz harnesses: tests/fuzz/corpus/<harness>/seed-*.

    make_corpus.py [HARNESS...]      (default: all)

Each seed is a small, hand-made scenario in the input format its harness
documents at the top of its source (fuzz_<harness>.c): a realistic setup
and an operation mix the fuzzer then mutates. Inputs the fuzzer found
(crashes kept as regressions, corpus entries kept by scripts/fuzz) live in
the same folders under other names and are left alone here.
"""
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def u8(v):
    return struct.pack("<B", v & 0xFF)


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


# ---------------------------------------------------------------------------
# pmm (fuzz_pmm.c)
# ---------------------------------------------------------------------------
PMM_USABLE = 0


def pmm_type(t):
    """Type byte: usable is < 160, type k is 160 + k."""
    return 0 if t == PMM_USABLE else 160 + t


def pmm_entry(base, length, t=PMM_USABLE, flags=0, sub_base=0, sub_len=0):
    return (u8(pmm_type(t)) + u8(flags) + u16(base >> 12) + u16(length >> 12) +
            u16(sub_base) + u16(sub_len))


def pmm_map(entries):
    return u8(len(entries)) + b"".join(entries)


class PmmOps:
    def __init__(self):
        self.b = b""

    def alloc(self, zeroed=False):
        self.b += u8(0 | (16 if zeroed else 0))

    def contig(self, count, align_shift=0, limit_frames=None, zeroed=False, adapter=False):
        op = 2 | (16 if zeroed else 0) | (32 if adapter else 0)
        # count encodings: c >> 14 selects the modulus (9, 80, 300, 1100)
        sel, mod = next((i, m) for i, m in enumerate((9, 80, 300, 1100)) if count < m)
        c = (sel << 14) + (count - (sel << 14)) % mod
        self.b += u8(op) + u16(c) + u8(align_shift)
        if limit_frames is None:
            self.b += u8(0) + u16(0)
        else:
            self.b += u8(2) + u16(limit_frames)

    def free_held(self, index=0, sub=False, single=False, adapter=False):
        how = (3 if sub else 0) | (4 if single else 0) | (0x40 if adapter else 0)
        self.b += u8(5) + u16(index) + u8(how)

    def free_any(self, frame, how=0):
        self.b += u8(8) + u16(frame) + u8(how)

    def reserve(self, frame, frames, flags=0, sub=0):
        self.b += u8(9) + u8(flags) + u16(frame) + u16(frames) + u16(sub)

    def release(self, frame, frames, flags=0, sub=0):
        self.b += u8(11) + u8(flags) + u16(frame) + u16(frames) + u16(sub)

    def state(self, frame, off=0):
        self.b += u8(13) + u16(frame) + u8(off)

    def bad_calls(self):
        self.b += u8(14)

    def drain(self):
        self.b += u8(15)

    def sweep(self, frame=0):
        self.b += u8(31) + u16(frame)


MIB = 1 << 20


def pmm_seeds():
    rnd = random.Random(1)
    seeds = {}

    # A PC-like 64 MiB map: low memory, the BIOS hole, ACPI at the top.
    qemu = pmm_map([
        pmm_entry(0, 0x9F000, flags=2, sub_len=0xC00),
        pmm_entry(0x9F000, 0x1000, t=1, flags=1, sub_base=0xC00),
        pmm_entry(0xF0000, 0x10000, t=1),
        pmm_entry(MIB, 63 * MIB - 0x20000),
        pmm_entry(64 * MIB - 0x20000, 0x20000, t=2),
        pmm_entry(0xFFFC0000 & 0xFFFFFFF, 0x40000, t=1, flags=0x10),
    ])
    o = PmmOps()
    for _ in range(40):
        o.alloc()
    o.contig(8, 3)
    o.contig(200, 0)
    o.contig(600, 9)
    o.contig(3, 0, limit_frames=256)
    for i in range(20):
        o.free_held(rnd.randrange(40))
    for _ in range(10):
        o.alloc(zeroed=True)
    o.free_held(3, sub=True)
    o.reserve(0x2000, 16)
    o.release(0x2000, 16)
    o.sweep()
    o.drain()
    seeds["qemu-64m"] = qemu + o.b

    # One small range, driven to exhaustion and back, with bad frees.
    small = pmm_map([pmm_entry(0x1000, 160 * 4096)])
    o = PmmOps()
    for _ in range(170):
        o.alloc()
    o.free_any(5)            # in use: fine
    o.free_any(5)            # double free
    o.free_any(0)            # frame 0: never usable
    o.free_any(400)          # beyond the span
    o.free_any(7, how=0x11)  # unaligned
    o.alloc()
    o.bad_calls()
    o.drain()
    seeds["exhaust"] = small + o.b

    # Holes, unaligned and overlapping entries; runs under limits and aligns.
    holes = pmm_map([
        pmm_entry(0, 20 * MIB, flags=1, sub_base=0x123),
        pmm_entry(3 * MIB, 0x3000, t=4, flags=1, sub_base=0x800),
        pmm_entry(5 * MIB, 2 * MIB, t=5),
        pmm_entry(17 * MIB, 8 * MIB),
        pmm_entry(18 * MIB, 0x1000, t=3, flags=2, sub_len=0x10),
        pmm_entry(30 * MIB, 2 * MIB, t=6),
    ])
    o = PmmOps()
    for count, shift, limit in [(1, 0, 100), (2, 1, None), (64, 6, None), (127, 0, None),
                                (512, 9, None), (5, 2, 2048), (1000, 0, None), (70, 0, 1500),
                                (129, 7, None), (1, 0, None)]:
        o.contig(count, shift, limit)
    o.contig(3, 0, adapter=True)
    o.free_held(0, adapter=True)
    o.free_held(2, sub=True)
    o.reserve(1000, 40)
    o.release(5 * MIB >> 12, 512)
    o.release(0, 3)
    o.state(0)
    o.state(2000, off=0x81)
    o.sweep()
    seeds["holes"] = holes + o.b

    # Maps pmm_init must refuse, and one it must accept without the 16 MiB
    # preference.
    seeds["bad-type"] = pmm_map([pmm_entry(0, 8 * MIB), u8(160 + 8) + bytes(9)])
    seeds["wraps"] = pmm_map([pmm_entry(0, 8 * MIB), pmm_entry(0, 0, flags=0x18, sub_base=5)])
    seeds["too-big"] = pmm_map([pmm_entry(0, 70 * MIB)])
    seeds["empty"] = pmm_map([])
    low = pmm_map([pmm_entry(0x1000, 0x4000), pmm_entry(0x10000, 2 * MIB)])
    o = PmmOps()
    o.contig(16, 4)
    o.alloc()
    o.free_held(0, single=True)
    o.alloc()
    o.drain()
    seeds["low-only"] = low + o.b

    # A 768 MiB span (three summary levels, 192 chunks) in the 16-frame
    # scale: whole chunks free, a fragmented middle, big aligned runs.
    big = pmm_map([
        pmm_entry(16 << 12, 12000 << 12, flags=0x80),    # fields in 16-frame units
        pmm_entry(3000 << 12, 16 << 12, t=1, flags=0x80),
        pmm_entry(4000 * 16 * 4096, 1 << 20, t=2),
    ])
    o = PmmOps()
    for count, shift, limit in [(1000, 9, None), (64, 6, None), (3, 0, 65535), (700, 0, None)]:
        o.contig(count, shift, limit)
    for _ in range(30):
        o.alloc()
    o.free_held(1)
    o.contig(1000, 12)
    o.sweep(40000)
    o.drain()
    seeds["big-span"] = big + o.b
    return seeds


# ---------------------------------------------------------------------------
# x86pt (fuzz_x86pt.c)
# ---------------------------------------------------------------------------
W, X, U, G = 1, 2, 4, 8
WB, UC, WT, WC = 0, 1, 2, 3
# pick_va anchors: 0 null, 1 low user, 2 last user root entry, 3 top 2 MiB of
# the user half, 4 first kernel, 5 middle kernel, 6 last kernel root entry,
# 7 top 2 MiB.


def x_va(anchor, page=0, slot2m=0, gb=0, neighbour=None, unaligned=None):
    sel = anchor & 7
    b = (page & 15) | (slot2m & 7) << 4 | (gb & 3) << 7
    if neighbour is not None:
        sel |= 0x40
        b |= (neighbour & 3) << 9
    if unaligned is not None:
        sel |= 0x80
        b |= (unaligned & 0xFFF) << 12
    return u8(sel) + u32(b)


def x_raw_va(v):
    return u8(0xF0) + u32(0) + u64(v)


def x_pa(frame=0, mode=0):
    return u8(mode) + u32(frame)


def x_flags(bits=0, cache=WB):
    return u8(0x80 | bits | cache << 4)


SIZE = {"4k": 0, "2m": 2, "1g": 3, "bad": 0xFF}


class XOps:
    def __init__(self):
        self.b = b""

    def map(self, va, pa, size="4k", flags=None, root_b=False, iface=False):
        op = 0 | (0x10 if root_b else 0) | (0x20 if iface else 0)
        self.b += u8(op) + va + pa + u8(SIZE[size]) + (flags or x_flags(W))

    def unmap(self, va, size="4k", root_b=False, null_pa=False):
        op = 3 | (0x10 if root_b else 0) | (0x40 if null_pa else 0)
        self.b += u8(op) + va + u8(SIZE[size])

    def unmap_nth(self, i, kernel=False, root_b=False):
        self.b += u8(3 | 0x80 | (0x10 if root_b else 0)) + u16(i) + u8(1 if kernel else 0)

    def protect(self, va, size, flags, root_b=False):
        self.b += u8(5 | (0x10 if root_b else 0)) + va + u8(SIZE[size]) + flags

    def protect_nth(self, i, flags, kernel=False):
        self.b += u8(5 | 0x80) + u16(i) + u8(1 if kernel else 0) + flags

    def translate(self, va, off=0, root_b=False):
        self.b += u8(6 | (0x10 if root_b else 0)) + va + u8(0) + u32(off)

    def map_range(self, va, pa, lenmode, n, flags, root_b=False):
        self.b += u8(7 | (0x10 if root_b else 0)) + va + pa + u8(lenmode) + u16(n) + flags

    def unmap_range(self, va, lenmode, n, holes=False, root_b=False):
        self.b += u8(8 | (0x10 if root_b else 0)) + va + u8(lenmode) + u16(n) + u8(holes)

    def protect_range(self, va, lenmode, n, flags, holes=False):
        self.b += u8(9) + va + u8(lenmode) + u16(n) + u8(holes) + flags

    def prepopulate(self, va, slots=1, root_b=False):
        self.b += u8(10 | (0x10 if root_b else 0)) + va + u8(slots % 6)

    def root_b(self, kernel_root=True):
        self.b += u8(11) + u8(0 if kernel_root else 2)

    def hog(self, keep):
        self.b += u8(12) + u8(keep & 0x3F)

    def unhog(self):
        self.b += u8(12) + u8(0x80)

    def fail_at(self, k, sticky=False):
        self.b += u8(12 | 0x80) + u8((k & 0x3F) | (0x40 if sticky else 0))

    def inspect(self, a, b, root_b=False, stop_after=3):
        self.b += u8(13 | (0x10 if root_b else 0)) + a + b + u8(stop_after - 1) + u8(1)

    def bad_args(self):
        self.b += u8(15)


def x_header(levels=4, nx=True, g1=True, strict=False, phys=46, pool=200, bad=False):
    cfg = (1 if levels == 5 else 0) | (2 if nx else 0) | (4 if g1 else 0) | (8 if strict else 0)
    if bad:
        cfg |= 0xE0
    return u8(cfg) + u8(phys - 32) + u8((pool - 32) // 6)


def x86pt_seeds():
    seeds = {}
    everything = (x_raw_va(0), x_raw_va(0xFFFFFFFFFFFFFFFF))

    o = XOps()
    for i in range(12):
        o.map(x_va(1, page=i), x_pa(0x100 + i), flags=x_flags(W | U))
    for i in range(6):
        o.map(x_va(4, page=i), x_pa(0x200 + i), flags=x_flags(W | G))
    o.map(x_va(5, slot2m=1), x_pa(0x200, mode=1), "2m", x_flags(W, WC))
    o.map(x_va(4, gb=1), x_pa(1, mode=2), "1g", x_flags(X))
    o.map(x_va(1, page=3), x_pa(0x300), flags=x_flags(W))         # exists
    o.map(x_va(1, page=1, unaligned=5), x_pa(1))                   # unaligned
    o.map(x_raw_va(0x0000800000000000), x_pa(1))                    # not canonical
    o.map(x_va(5, slot2m=2), x_pa(0x201, mode=1), "2m", x_flags(W, UC))
    o.map(x_va(4, page=1, slot2m=3), x_pa(0x400), "4k", x_flags(W, WC))
    o.translate(x_va(1, page=2), off=0x123)
    o.translate(x_va(5, slot2m=1), off=0x12345)
    o.protect(x_va(1, page=2), "4k", x_flags(U))
    o.protect(x_va(4, gb=1), "1g", x_flags(W | X | G, WT))
    o.protect_nth(3, x_flags(W | G, UC), kernel=True)
    o.unmap(x_va(4, slot2m=0), "2m")                               # size mismatch
    o.unmap_nth(0)
    o.unmap_nth(5, kernel=True)
    o.inspect(*everything)
    o.unmap(x_va(1, page=7))
    o.inspect(x_va(1), x_va(4, page=3))
    seeds["pages"] = x_header() + o.b

    o = XOps()
    o.map_range(x_va(1, page=3), x_pa(0x1003), 0, 530, x_flags(W | U))
    o.map_range(x_va(2), x_pa(0x400, mode=1), 2, 40, x_flags(W))
    o.map_range(x_va(5), x_pa(2, mode=2), 3, 2, x_flags(X | G))
    o.map_range(x_va(6, slot2m=1, page=5), x_pa(0x2005), 2, 3, x_flags(W))
    o.protect_range(x_va(2), 2, 40, x_flags(0, WT))
    o.unmap_range(x_va(1, page=3), 0, 100)
    o.unmap_range(x_va(1), 0, 590, holes=True)
    o.unmap_range(x_va(1), 0, 590)                                  # not mapped
    o.unmap_range(x_va(5), 2, 3)                                    # size mismatch
    o.inspect(*everything)
    o.unmap_range(x_va(5), 3, 2)
    seeds["ranges-5level"] = x_header(levels=5) + o.b

    o = XOps()
    o.prepopulate(x_va(4), 5)
    o.map(x_va(4, page=2), x_pa(0x50), flags=x_flags(W | G))
    o.root_b(kernel_root=True)
    o.map(x_va(1, page=1), x_pa(0x60), flags=x_flags(W | U), root_b=True)
    o.map(x_va(5, page=1), x_pa(0x61), flags=x_flags(W), root_b=True)
    o.translate(x_va(4, page=2), root_b=True)
    o.prepopulate(x_va(1), 2, root_b=True)
    o.unmap(x_va(4, page=2), root_b=True)
    o.inspect(*everything, root_b=True)
    o.root_b()                                                      # destroy
    o.root_b(kernel_root=False)
    o.map(x_va(2, page=9), x_pa(0x70), flags=x_flags(U | X), root_b=True)
    o.root_b()
    seeds["two-roots"] = x_header() + o.b

    o = XOps()
    o.map(x_va(1), x_pa(1))
    o.hog(1)
    o.map(x_va(2), x_pa(2))            # needs three tables: no memory
    o.map(x_va(1, page=1), x_pa(3))    # needs none
    o.unhog()
    o.fail_at(2)
    o.map(x_va(2), x_pa(2))
    o.fail_at(1, sticky=True)
    o.map_range(x_va(5), x_pa(0), 0, 20, x_flags(W))
    o.root_b()
    o.fail_at(0)
    o.map_range(x_va(5), x_pa(0), 0, 20, x_flags(W))
    o.prepopulate(x_va(4), 3)
    seeds["no-memory"] = x_header(pool=32) + o.b

    o = XOps()
    o.map(x_va(1), x_pa(1), flags=x_flags(W))           # refused: NX needed
    o.map(x_va(1), x_pa(1), flags=x_flags(W | X))
    o.map(x_va(1, gb=1), x_pa(1, mode=2), "1g", x_flags(X))  # no 1 GiB pages
    o.map_range(x_va(1, gb=2), x_pa(0, mode=2), 3, 1, x_flags(X))
    o.protect(x_va(1), "4k", x_flags(0))
    o.inspect(*everything)
    seeds["strict-no-nx"] = x_header(nx=False, g1=False, strict=True, phys=36) + o.b
    o = XOps()
    o.map(x_va(4), x_pa(1), flags=x_flags(W))
    o.map(x_va(4, page=1), x_pa(1), flags=x_flags(W | X, WC))
    o.inspect(*everything)
    o.bad_args()
    seeds["no-nx"] = x_header(nx=False, phys=52) + o.b
    seeds["bad-config"] = x_header(bad=True)
    return seeds


# ---------------------------------------------------------------------------
# vmm_region (fuzz_vmm_region.c)
# ---------------------------------------------------------------------------
def vr_size(pages=None, raw=None):
    """pick_size: v >> 14 selects pages % 9, % 80, % 1032, or an odd size."""
    if raw is not None:
        return u16(0xC000 | raw | 1)
    sel, mod = next((i, m) for i, m in enumerate((9, 80, 1032)) if pages < m)
    return u16((sel << 14) + (pages - (sel << 14)) % mod)


def vr_addr(page, below=False, unaligned=0):
    sel = (1 if below else 0) | ((2 | (unaligned << 2)) if unaligned else 0)
    return u8(sel) + u16(page)


class VrOps:
    def __init__(self):
        self.b = b""

    def alloc(self, pages=None, raw=None):
        self.b += u8(0) + vr_size(pages, raw)

    def free_nth(self, i, how=0):
        self.b += u8(3) + u16(i) + u8(how)

    def free_at(self, page, pages, below=False, unaligned=0):
        self.b += u8(5) + vr_addr(page, below, unaligned) + vr_size(pages)

    def bump(self, pages):
        self.b += u8(6) + vr_size(pages)

    def unwind(self, back=0):
        self.b += u8(8) + u8(1 | back << 1 if back else 0)

    def unwind_at(self, page, pages):
        self.b += u8(8) + u8(0x80) + vr_addr(page) + vr_size(pages)

    def query(self, page, pages, extra=0):
        self.b += u8(9) + vr_addr(page) + vr_size(pages) + u8(extra)

    def nulls(self):
        self.b += u8(10)

    def free_all(self):
        self.b += u8(11)


def vr_header(cap, pages, place=0, base_page=0x10000):
    return u8(cap) + u8(place) + u16(pages - 1) + u32(base_page)


def vmm_region_seeds():
    seeds = {}
    o = VrOps()
    for n in (1, 4, 2, 8, 3, 1, 16):
        o.alloc(n)
    o.free_nth(1)
    o.free_nth(3)
    o.alloc(2)       # first fit in a hole
    o.alloc(5)       # does not fit: watermark
    o.free_nth(0, how=1)  # the tail of one
    o.free_nth(2, how=2)  # through the next
    o.free_at(3, 1)  # double free
    o.free_at(200, 1)  # beyond the watermark
    o.free_at(0, 1, below=True)
    o.free_at(5, 1, unaligned=3)
    o.query(0, 3)
    o.query(10, 1)
    o.bump(3)
    o.bump(2)
    o.unwind()
    o.unwind(back=1)
    o.unwind_at(0, 3)
    o.nulls()
    o.free_all()
    seeds["first-fit"] = vr_header(4, 64) + o.b

    o = VrOps()
    for _ in range(12):
        o.alloc(1)
    for i in (0, 2, 4, 6, 8):    # holes need slots; the third is refused
        o.free_at(i, 1)
    o.free_at(1, 1)              # coalesces 0..2: frees a slot
    o.free_at(10, 1)
    o.alloc(70)
    o.free_all()
    seeds["full"] = vr_header(2, 128) + o.b

    o = VrOps()
    o.alloc(30)
    o.alloc(2)
    o.alloc(1)                   # exhausted
    o.bump(32)
    o.bump(1)                    # exhausted
    o.free_at(30, 2)             # the last pages, at 2^64
    o.alloc(1000)
    seeds["top-of-memory"] = vr_header(1, 32, place=1) + o.b
    seeds["kernel-half"] = vr_header(8, 1024, place=3, base_page=0x1234) + o.b
    seeds["no-slots"] = vr_header(0, 16) + o.b
    for k, name in enumerate(("unaligned", "empty", "odd-size", "wraps")):
        seeds[f"bad-{name}"] = vr_header(3, 8, place=2 | k << 2)
    return seeds


# ---------------------------------------------------------------------------
# kheap (fuzz_kheap.c)
# ---------------------------------------------------------------------------
def kh_size(n):
    """pick_size: v >> 14 picks % 300, % 4200, or multiples of 4 up to 64 KiB."""
    if n < 300:
        return u16(n)
    if n < 4200:
        return u16(1 << 14 | n)
    assert n % 4 == 0 and n < 65536
    return u16(2 << 14 | n >> 2)


def kh_align(shift=None):
    return u8(0) if shift is None else u8(0x80 | shift)


class KhOps:
    def __init__(self):
        self.b = b""

    def alloc(self, n, shift=None):
        self.b += u8(0) + kh_size(n) + kh_align(shift)

    def huge(self, shift):
        self.b += u8(0) + u16(0xC000 | (shift << 1) | 1) + kh_align()

    def calloc(self, n, size):
        self.b += u8(4) + kh_size(n) + kh_size(size)

    def free(self, i):
        self.b += u8(5) + u16(i)

    def bad(self, kind, i=0, via_realloc=False):
        self.b += u8(8) + u8(kind | (8 if via_realloc else 0)) + u16(i)

    def realloc(self, i, n, how=2):
        self.b += u8(9) + u16(i) + kh_size(n) + u8(how)

    def query(self, i, other=False):
        self.b += u8(10) + u8(1 if other else 0) + u16(i)

    def add_region(self, kind, n, low=0):
        self.b += u8(11) + u8(kind << 6 | low) + u16(n)

    def config(self, how):
        self.b += u8(12) + u8(how)

    def verify(self):
        self.b += u8(13)

    def free_all(self):
        self.b += u8(14)

    def bad_instances(self):
        self.b += u8(15)


def kh_header(flags=0, size=65536, mis=0):
    return u8(flags) + u16(size // 16) + u8(mis)


def kheap_seeds():
    rnd = random.Random(7)
    seeds = {}
    o = KhOps()
    for n in (24, 100, 256, 300, 1000, 4000, 4096, 9000, 0, 16, 17):
        o.alloc(n)
    o.alloc(100, shift=6)
    o.alloc(5000, shift=12)
    o.alloc(40, shift=8)
    for i in (3, 0, 5, 2):
        o.free(i)
    o.alloc(250)
    o.alloc(2000)
    o.calloc(10, 24)
    o.realloc(1, 50)
    o.realloc(2, 6000)
    o.realloc(3, 0, how=1)
    o.realloc(0, 64, how=0)
    o.bad(0, 1)          # stale
    o.bad(1, 2)          # interior
    o.bad(2, 40)         # somewhere in the arena
    o.bad(3)             # not the heap's
    o.bad(4, 1, via_realloc=True)
    o.query(2)
    o.query(300, other=True)
    o.verify()
    o.bad_instances()
    o.free_all()
    seeds["mixed"] = kh_header() + o.b

    o = KhOps()
    for _ in range(60):
        o.alloc(rnd.choice((16, 32, 48, 200, 256, 600, 3000)))
    for _ in range(40):
        o.free(rnd.randrange(60))
    o.config(1)          # runs off
    for _ in range(20):
        o.alloc(rnd.choice((16, 100, 700)))
    o.config(3)          # runs on
    o.verify()
    seeds["runs"] = kh_header(size=128 * 1024, mis=5) + o.b

    o = KhOps()
    o.config(2 | 4 | 0x80)      # grow, adjacent
    for n in (30000, 60000, 60000, 5000):
        o.alloc(n)
    o.config(2 | 4 | 16)        # grow with a gap; the callback allocates
    o.alloc(65000, shift=13)
    o.config(2 | 8)             # growth fails
    o.alloc(65532)
    o.add_region(0, 4000)       # adjacent: merges
    o.add_region(1, 2000)       # a gap
    o.add_region(2, 100)        # overlaps
    o.add_region(3, 5, low=0x20)  # NULL
    o.add_region(3, 50)         # wraps
    o.add_region(0, 3)          # too small
    o.huge(40)
    o.verify()
    o.free_all()
    seeds["grow"] = kh_header(flags=2, size=4096) + o.b
    seeds["empty-grow"] = kh_header(flags=1 | 2 | 8) + o.b
    seeds["too-small"] = kh_header(size=96, mis=3)
    return seeds


# ---------------------------------------------------------------------------
# a64pt (fuzz_a64pt.c)
# ---------------------------------------------------------------------------
# pick_va anchors: 0 null, 1 the last 4 GiB of the user half, 2 the first
# kernel address, 3 the last 4 GiB. Flags and cache types as for x86pt
# (cache 1 is MM_MAP_DEVICE: Device memory).


def a_va(anchor, page=0, slot2m=0, gb=0, unaligned=None):
    sel = anchor & 3
    b = (page & 15) | (slot2m & 7) << 4 | (gb & 3) << 7
    if unaligned is not None:
        sel |= 0x80
        b |= (unaligned & 0xFFF) << 12
    return u8(sel) + u32(b)


def a_raw_va(v):
    return u8(0xF8) + u32(0) + u64(v)


class AOps:
    def __init__(self):
        self.b = b""

    def map(self, va, pa, size="4k", flags=None, iface=False, fail=None):
        op = 0 | (0x08 if iface else 0)
        pre = b""
        if fail is not None:
            op |= 0xF0
            pre = u8(fail - 1)
        self.b += u8(op) + pre + va + pa + u8(SIZE[size] % 4) + (flags or x_flags(W))

    def unmap_nth(self, i):
        self.b += u8(2) + u8(1 | (i << 1))

    def protect_nth(self, i, flags):
        self.b += u8(3) + u8(1 | (i << 1)) + flags

    def translate(self, va):
        self.b += u8(4) + va

    def map_range(self, va, pa, lenmode, n, flags, fail=None):
        op = 5
        pre = b""
        if fail is not None:
            op |= 0xF0
            pre = u8(fail - 1)
        self.b += u8(op) + pre + va + pa + u8(lenmode) + u16(n) + flags

    def unmap_range(self, va, lenmode, n, holes=False):
        self.b += u8(6 | (0x20 if holes else 0)) + va + u8(lenmode) + u16(n)

    def protect_range(self, va, lenmode, n, flags, holes=False):
        self.b += u8(7 | (0x20 if holes else 0)) + va + u8(lenmode) + u16(n) + flags


def a_header(va52=False, lpa2=False, phys=40, pool=200, bad=False):
    cfg = (1 if va52 else 0) | (2 if lpa2 else 0) | (0xE0 if bad else 0)
    return u8(cfg) + u8(phys - 32) + u8((pool - 32) // 6)


def a64pt_seeds():
    seeds = {}
    o = AOps()
    for i in range(8):
        o.map(a_va(1, page=i), x_pa(0x100 + i), flags=x_flags(W | U))
    for i in range(4):
        o.map(a_va(2, page=i), x_pa(0x200 + i), flags=x_flags(W | G))
    o.map(a_va(2, slot2m=1), x_pa(0x200, mode=1), "2m", x_flags(W, WC))
    o.map(a_va(3, gb=1), x_pa(1, mode=2), "1g", x_flags(X | G))
    o.map(a_va(1, page=3), x_pa(0x300))                          # exists
    o.map(a_va(1, page=1, unaligned=5), x_pa(1))                 # unaligned
    o.map(a_raw_va(0x0000800000000000), x_pa(1))                 # not canonical
    o.map(a_va(2, page=9), x_pa(0x400), flags=x_flags(X, UC))    # device + exec
    o.map(a_va(1, page=12), x_pa(0x500), flags=x_flags(U | G))   # global user
    o.translate(a_va(1, page=2))
    o.protect_nth(9, x_flags(W, UC))                             # memory type: BBM
    o.protect_nth(9, x_flags(W | G, UC))                         # global: BBM
    o.protect_nth(2, x_flags(U | X))                             # permissions only
    o.unmap_nth(0)
    o.map(a_va(1, page=14, slot2m=2), x_pa(0x600), fail=1)       # injected failure
    o.map_range(a_va(1, gb=2), x_pa(0x40, mode=1), 2, 3, x_flags(W), fail=2)
    o.map_range(a_va(1, gb=2), x_pa(0x40, mode=1), 2, 3, x_flags(W))
    o.protect_range(a_va(1, gb=2), 2, 3, x_flags(W, WT))
    o.unmap_range(a_va(1, gb=2), 2, 3)
    o.unmap_range(a_va(1), 0, 40, holes=True)
    seeds["pages"] = a_header() + o.b
    seeds["lpa2-48"] = a_header(lpa2=True, phys=52) + o.b
    seeds["va52"] = a_header(va52=True, phys=52) + o.b
    seeds["small-pool"] = a_header(pool=32) + o.b
    seeds["bad-config"] = a_header(bad=True, phys=52)
    return seeds


HARNESSES = {
    "pmm": pmm_seeds,
    "x86pt": x86pt_seeds,
    "a64pt": a64pt_seeds,
    "vmm_region": vmm_region_seeds,
    "kheap": kheap_seeds,
}


def main():
    names = sys.argv[1:] or list(HARNESSES)
    for name in names:
        out = os.path.join(HERE, "corpus", name)
        os.makedirs(out, exist_ok=True)
        for seed, data in HARNESSES[name]().items():
            with open(os.path.join(out, f"seed-{seed}"), "wb") as f:
                f.write(data)
        print(f"{name}: {len(HARNESSES[name]())} seeds in {out}")


if __name__ == "__main__":
    main()
