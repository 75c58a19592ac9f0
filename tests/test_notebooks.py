"""The notebooks in ``notebooks/``: each one runs offline without errors and is committed clean.

Every ``*.ipynb`` in the folder is picked up, so a new notebook is tested as soon as it is
added. The notebooks run in an IPython kernel of the interpreter that runs pytest, so they
import the package under test from the same environment, whatever kernels the machine
has installed elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
KERNEL_NAME = "dragonscale-test"
CELL_TIMEOUT = 30
"""Seconds a single cell may run. The suite's per-test timeout still caps the whole notebook."""


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """Return a kernel spec manager whose only kernel is this interpreter's ipykernel."""
    kernels = tmp_path_factory.mktemp("kernels")
    # ipykernel writes ``sys.executable`` into the spec, not a bare "python".
    write_kernel_spec(kernels / KERNEL_NAME)
    return KernelSpecManager(kernel_dirs=[str(kernels)])


def read(path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    return notebook


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs(
    path: Path, kernel_specs: KernelSpecManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel inherits this environment: without a key the notebooks stay offline.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    notebook = read(path)
    manager = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_specs)
    client = NotebookClient(
        notebook,
        km=manager,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )

    # The client does not own a manager it is given, so without cleanup_kc=True it
    # leaves the kernel running and its sockets open.
    client.execute(cleanup_kc=True)

    # Warnings, and log records of level WARNING and above, reach the cells as stderr output.
    stderr = [
        output["text"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.get("name") == "stderr"
    ]
    assert stderr == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_committed_without_outputs(path: Path) -> None:
    notebook = read(path)

    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    with_outputs = [index for index, cell in enumerate(code_cells) if cell.outputs]
    with_counts = [index for index, cell in enumerate(code_cells) if cell.execution_count]

    assert with_outputs == [], "clear the outputs before committing (code cells listed)"
    assert with_counts == [], "clear the execution counts before committing"


def test_notebooks_found() -> None:
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOKS_DIR}"
