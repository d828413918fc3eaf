"""The chart's digest, part of every run id: what Helm packages changes it, a README edit does not."""

from __future__ import annotations

import shutil

from config.chart_values import chart_digest
from tests.conftest import PROJECT_DIR


def test_the_chart_digest_follows_what_helm_packages_not_its_readme(tmp_path) -> None:
    charts = {}
    for name in ("as-is", "docs-edited", "defaults-edited"):
        charts[name] = tmp_path / name
        shutil.copytree(PROJECT_DIR / "charts" / "test-job-runner", charts[name])
    (charts["docs-edited"] / "README.md").write_text("a documentation edit\n")
    (charts["docs-edited"] / "ci" / "extra-values.yaml").write_text("x: 1\n")
    values = charts["defaults-edited"] / "values.yaml"
    values.write_text(values.read_text() + "\n# a defaults change\n")
    digests = {name: chart_digest(path) for name, path in charts.items()}
    assert digests["docs-edited"] == digests["as-is"]  # no suite reruns for a README edit
    assert digests["defaults-edited"] != digests["as-is"]
