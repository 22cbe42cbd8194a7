"""docs/sizing.md carries the current output of tools/sizing_report.py (regenerate it when this fails)."""

from pathlib import Path

from tools.sizing_report import fitted_report, measured_report, report

DOC = Path(__file__).resolve().parent.parent / "docs" / "sizing.md"
BEGIN, END = "<!-- sizing_report: begin -->\n", "\n<!-- sizing_report: end -->"


def test_docs_table_is_current():
    text = DOC.read_text()
    embedded = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    assert embedded == report(), (
        "run: .venv/bin/python tools/sizing_report.py and paste it into docs/sizing.md"
    )


def test_docs_measured_table_is_current():
    text = DOC.read_text()
    begin, end = "<!-- measured_report: begin -->\n", "\n<!-- measured_report: end -->"
    embedded = text[text.index(begin) + len(begin) : text.index(end)]
    assert embedded == measured_report(), "run: .venv/bin/python tools/sizing_report.py and paste it"


def test_docs_fit_report_is_current():
    text = DOC.read_text()
    begin, end = "<!-- fit_report: begin -->\n", "\n<!-- fit_report: end -->"
    embedded = text[text.index(begin) + len(begin) : text.index(end)]
    assert embedded == fitted_report(), "run: .venv/bin/python tools/sizing_report.py and paste it"


def test_docs_name_every_constant_the_engine_uses():
    text = DOC.read_text()
    for constant in (
        "DEFAULT_GPU_MEMORY_UTILIZATION",
        "DEFAULT_BLOCK_SIZE",
        "VOCAB_PADDING",
        "FUSED_MOE_CHUNK_TOKENS",
        "MAX_CUDAGRAPH_CAPTURE_SIZE",
        "CUDA_CONTEXT_BYTES",
        "NCCL_COMMUNICATOR_BYTES",
        "CUBLAS_WORKSPACE_BYTES",
        "PROFILE_WORKSPACE_BYTES",
        "SAMPLER_BYTES_PER_LOGIT",
        "HIDDEN_BUFFERS",
        "CUDAGRAPH_BYTES_PER_CAPTURE",
        "SORTING_SAMPLER_BYTES_PER_LOGIT",
        "RELEASES",
    ):
        assert f"`{constant}`" in text, constant
