"""A benchmark's exit status is its verdict: a run that measured a missed target fails the command that ran it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT


def run_bench(targets_met: object) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(f"""
        import argparse
        from loadtests.harness import run_benchmark
        run_benchmark(lambda stack, tmp, args: {{"figure": 1, "targets_met": {targets_met!r}}},
                      argparse.Namespace(keep=False), prefix="renfort-verdict-")
    """)
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_a_benchmark_that_misses_a_target_exits_non_zero_after_printing_its_line() -> None:
    missed = run_bench(False)
    assert missed.returncode == 1 and missed.stdout.strip() == '{"figure": 1, "targets_met": false}'
    met = run_bench(True)
    assert met.returncode == 0 and met.stdout.strip() == '{"figure": 1, "targets_met": true}'
    assert run_bench(None).returncode == 0  # no verdict to give (a comparison without targets)


def test_benchmarks_bind_the_procfile_web_line_to_loopback_only() -> None:
    from loadtests.harness import loopback, procfile

    web = loopback(procfile()["web"])
    assert "--host 127.0.0.1 " in web and web.count("127.0.0.1") == 1  # no other address left to listen on
