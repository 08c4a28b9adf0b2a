"""The HTML report of a run: the executed report notebook (06) as one self-contained page.

``write(run_dir)`` converts ``<run>/notebooks/06_report.ipynb`` (what ``python -m advlib run``
executes) with nbconvert's HTML exporter into ``<run>/report.html``: the markdown, tables and
figures of every cell, the figures embedded as data (the page opens anywhere, offline), and the
code cells left out unless ``code=True``. Written to a temporary file and renamed, so a reader never
sees half a page. ``python -m advlib report <run>`` rebuilds it.
"""

from __future__ import annotations

from pathlib import Path

REPORT_NOTEBOOK = "06_report.ipynb"
FILENAME = "report.html"


def write(run_dir, *, code: bool = False, notebook: str = REPORT_NOTEBOOK) -> Path:
    """Convert the run's executed report notebook into ``<run_dir>/report.html``; return its path."""
    import nbformat
    from nbconvert import HTMLExporter

    from .utils import atomic_write_text

    run_dir = Path(run_dir).expanduser()
    source = run_dir / "notebooks" / notebook
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found: run the notebooks first (python -m advlib run --out {run_dir}), "
                                "which executes the report notebook into the run directory")
    nb = nbformat.read(source, as_version=4)
    if not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
        raise ValueError(f"{source} has no outputs: it was never executed (python -m advlib run writes executed copies)")
    exporter = HTMLExporter(template_name="lab", exclude_input=not code, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    return atomic_write_text(run_dir / FILENAME, body)


__all__ = ["write", "FILENAME", "REPORT_NOTEBOOK"]
