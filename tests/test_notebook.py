"""cgan_mnist.ipynb: saved executed and small, and it runs top to bottom in a fresh kernel.

`UPDATE_NOTEBOOK=1 python -m pytest tests/test_notebook.py` runs it and saves it with the new outputs.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="reading the notebook needs nbformat (pip install nbformat)")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "cgan_mnist.ipynb"
MAX_BYTES = 1_000_000  # outputs are kept in git, so the notebook renders on a code host; kept small


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def outputs(nb):
    return [out for cell in code_cells(nb) for out in cell.outputs]


def check_outputs(nb):
    """What a reader of the executed notebook should see: every cell run, pictures, no errors or warnings."""
    cells = code_cells(nb)
    assert all(cell.execution_count for cell in cells), "a code cell was not run"
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1)), "not run top to bottom"
    outs = outputs(nb)
    assert not [out for out in outs if out.output_type == "error"]
    stderr = [out.text for out in outs if out.output_type == "stream" and out.name == "stderr"]
    assert not stderr, f"the notebook printed to stderr (warnings or logs): {stderr}"
    pictures = [out for out in outs if "image/png" in out.get("data", {})]
    assert len(pictures) >= 12
    printed = "".join(out.text for out in outs if out.output_type == "stream")
    assert "generator saved to" in printed
    shipped = re.search(r"^shipped\s+([\d.]+)%", printed, re.MULTILINE)
    assert shipped and float(shipped.group(1)) > 95, "the shipped generator should score above 95% accuracy"
    assert "real (train)" in printed
    assert any("application/vnd.jupyter.widget-view+json" in out.get("data", {}) for out in outs), "no playground"


def test_the_saved_notebook_is_executed_and_small():
    assert NOTEBOOK.stat().st_size < MAX_BYTES
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    check_outputs(nb)


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom():
    nbclient = pytest.importorskip("nbclient", reason="running the notebook needs nbclient (pip install nbclient)")
    pytest.importorskip("ipykernel", reason="running the notebook needs a Python kernel (pip install ipykernel)")
    pytest.importorskip("ipywidgets", reason="the notebook's playground needs ipywidgets (pip install ipywidgets)")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # "python3" is the kernel ipykernel installs with itself: it runs this interpreter, so no `ipykernel install`.
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=600, record_timing=False,
                                     resources={"metadata": {"path": str(ROOT)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and its traceback, at the first error
    elapsed = time.perf_counter() - start
    check_outputs(nb)
    if os.environ.get("UPDATE_NOTEBOOK"):
        nbformat.write(nb, NOTEBOOK)
        print(f"wrote {NOTEBOOK.name}: {NOTEBOOK.stat().st_size:,} bytes, executed in {elapsed:.0f} s")
    assert len(nbformat.writes(nb).encode()) < MAX_BYTES
