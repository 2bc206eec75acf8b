#!/usr/bin/env python3
"""Regenerates the small committed fixtures in fixtures/.

They are cut around a 4 KiB chunk size (the smallest the server allows, and
what the tests run with), so each edge case stays a few KiB:
empty, one byte, exactly one chunk, one chunk plus one byte, every byte
value, multi-byte UTF-8 (Chinese, emoji) straddling chunk boundaries, and
names with spaces, quotes and non-ASCII characters.
"""
import os, random

C = 4096
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
os.makedirs(os.path.join(here, "nested", "deeper"), exist_ok=True)
rng = random.Random(7)

def put(name, data):
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)

put("empty.txt", b"")
put("one-byte.txt", b"x")
put("one-byte.bin", b"\xff")
put("one-chunk.bin", bytes([0xFF]) + bytes(rng.randrange(256) for _ in range(C - 1)))
put("one-chunk-plus-one.bin", bytes([0xFE]) + bytes(rng.randrange(256) for _ in range(C)))
put("all-bytes.bin", bytes(range(256)) * 17)  # 4352 bytes: every value, two chunks

# Multi-byte characters placed so chunk cuts at k*4096 fall inside them.
pieces, size = [], 0
chars = ["中", "文", "字", "😀", "🚀", "é", "ß", "→", "👩‍💻"]
for k in range(1, 6):
    target = k * C - (k % 3) - 1  # 1..3 bytes before the boundary
    filler = "ascii text line %d. " % k
    while size + len(filler.encode()) < target:
        pieces.append(filler); size += len(filler.encode())
    pad = target - size
    pieces.append("-" * pad); size += pad
    ch = chars[k % len(chars)] + "😀"
    pieces.append(ch); size += len(ch.encode())
pieces.append("\nend 完 🎉\n")
put("utf8-boundaries.txt", "".join(pieces).encode())

# A longer text for the typing demo: English and Chinese paragraphs.
words = "chunk stream resume verify byte network browser event reconnect hash".split()
paras = []
for p in range(60):
    sentence = " ".join(rng.choice(words) for _ in range(40)).capitalize() + "."
    paras.append(f"{p + 1}. {sentence} 第{p + 1}段：数据分块传输，断线续传，逐块校验。✨")
put("story.txt", ("\n\n".join(paras) + "\n").encode())

put("name with spaces & 'quotes'.txt", b"odd names are served too\n")
put("ünïcødé 名前.txt", "非ASCIIの名前\n".encode())
put(os.path.join("nested", "deeper", "note.txt"), b"nested file\n")
