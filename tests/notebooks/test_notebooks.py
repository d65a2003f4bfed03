"""The sample notebook runs top to bottom, headless, on a tiny configuration."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "sample_books" / "finetune.ipynb"


def parameters_cell(nb) -> int:
    return next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))


@pytest.mark.slow
def test_sample_notebook_runs_top_to_bottom(tmp_path, tiny_model_dir):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells[parameters_cell(nb)].source = "\n".join([
        f"BOOKS = {str(ROOT / 'examples' / 'books')!r}",
        f"OUT = {str(tmp_path / 'out')!r}",
        f"MODEL = {str(tiny_model_dir)!r}",
        "EPOCHS = 1.0", "MAX_STEPS = 2", "SAMPLES = 1", "CHUNK_WORDS = 350",
    ])
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "before:" in outputs and "after:" in outputs
    assert (tmp_path / "out" / "run" / "adapter" / "adapter_model.safetensors").is_file()
