"""release_freed_memory gives back the heap holes that buffers of varying sizes leave under glibc."""
import subprocess
import sys
import textwrap

import pytest

from fastreid.utils.memory import _malloc_trim, release_freed_memory

SCRIPT = textwrap.dedent("""
    import os, torch
    from fastreid.utils.memory import release_freed_memory

    def resident_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    kept = []
    for i in range(120):  # tracklet-like buffers of 6-30 MiB, one in ten kept (the features the evaluator holds)
        buf = torch.ones((6 + (i * 7) % 25) * 2**18)
        if i % 10 == 0:
            kept.append(buf[:16].clone())
        del buf
    before = resident_mib()
    released = release_freed_memory()
    print(before, resident_mib(), released)
""")


@pytest.mark.skipif(_malloc_trim() is None, reason="needs glibc's malloc_trim")
def test_trim_returns_the_holes_left_by_varying_buffers():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout.split()
    before, after, released = float(out[0]), float(out[1]), out[2] == "True"
    assert released
    assert after < before - 50, (before, after)


def test_is_safe_to_call_repeatedly():
    for _ in range(3):
        assert release_freed_memory() in (True, False)
