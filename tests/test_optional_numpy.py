"""numpy is optional: every ``to_numpy()`` says the same thing when it is missing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from conftest import test_object

pytestmark = pytest.mark.bpf


def test_every_to_numpy_names_itself_and_the_extra_when_numpy_is_missing() -> None:
    code = textwrap.dedent(f"""
        import sys
        sys.modules["numpy"] = None  # import numpy now raises ImportError, as where it is not installed
        import pyprobe
        from pyprobe.btf import numpy_dtype

        def message(call):
            try:
                call()
            except ImportError as exc:
                return str(exc)
            return "no ImportError"

        with pyprobe.load({str(test_object("maps"))!r}) as obj:
            h = obj.maps["hash"]
            h[1] = bytes(16)
            print(message(lambda: h.items(batch=True).to_numpy()))
            print(message(lambda: numpy_dtype(h.value_type)))
        with pyprobe.load({str(test_object("events"))!r}) as obj:
            with pyprobe.RingBuffer(obj.maps["events"]) as rb:
                print(message(lambda: rb.read_batch(timeout=0).to_numpy()))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "MapItems.to_numpy() needs numpy: pip install 'pyprobe[numpy]'",
        "numpy_dtype() needs numpy: pip install 'pyprobe[numpy]'",
        "Batch.to_numpy() needs numpy: pip install 'pyprobe[numpy]'",
    ]
