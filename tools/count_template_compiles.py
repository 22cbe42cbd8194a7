"""Run ansible-playbook and say which Jinja templates the controller compiled, how often and for how long.

ansible-core renders a task's templates in the worker process it forks for that task and host, and a
template compiled there is lost with the worker: an expression a variable holds is compiled again for
every task that names it, on every host. This counts those compiles (docs/converge.md, "Where the
controller's CPU goes"). It wraps ansible-playbook in this process, so its workers, forked from it,
report too; each compile appends one line to a log, read once the playbook has ended.

    .venv/bin/python tools/count_template_compiles.py [--top 25] -- site.yml -i inventories/lab ...

Prints the total, then the templates with the most compile time: seconds, compiles, the template's
first characters. Exits with ansible-playbook's status.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time

import jinja2.environment
from ansible.cli.playbook import main as ansible_playbook


def count_compiles(log_path: str) -> None:
    """Make every Jinja compile in this process and its forks append (seconds, source) to log_path."""
    compile_template = jinja2.environment.Environment.compile

    def compile_and_log(self, source, *args, **kwargs):
        started = time.perf_counter()
        try:
            return compile_template(self, source, *args, **kwargs)
        finally:
            # ansible-core hands some templates over as parsed nodes: name them by their repr.
            text = source if isinstance(source, str) else repr(source)
            line = json.dumps([time.perf_counter() - started, text]) + "\n"
            with open(log_path, "a", encoding="utf-8") as log:  # one short append per compile
                log.write(line)

    jinja2.environment.Environment.compile = compile_and_log


def summarize(log_path: str) -> tuple[int, float, list[tuple[float, int, str]]]:
    """(compiles, seconds, [(seconds, compiles, template)] with the most seconds first)."""
    seconds: collections.Counter[str] = collections.Counter()
    compiles: collections.Counter[str] = collections.Counter()
    with open(log_path, encoding="utf-8") as log:
        for line in log:
            elapsed, text = json.loads(line)
            seconds[text] += elapsed
            compiles[text] += 1
    ranked = [(spent, compiles[text], text) for text, spent in seconds.most_common()]
    return sum(compiles.values()), sum(seconds.values()), ranked


def report(log_path: str, top: int) -> str:
    total, spent, ranked = summarize(log_path)
    lines = [
        f"{total} compiles of {len(ranked)} distinct templates, {spent:.2f} s in all",
        "seconds  compiles  template",
    ]
    for seconds, count, text in ranked[:top]:
        lines.append(f"{seconds:7.2f}  {count:8d}  {json.dumps(text[:100])}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25, help="how many templates to list (default 25)")
    parser.add_argument(
        "playbook_args", nargs=argparse.REMAINDER, help="-- then ansible-playbook's arguments"
    )
    args = parser.parse_args()
    playbook_args = args.playbook_args[1:] if args.playbook_args[:1] == ["--"] else args.playbook_args
    if not playbook_args:
        parser.error("give ansible-playbook's arguments after --")

    fd, log_path = tempfile.mkstemp(prefix="template-compiles-", suffix=".jsonl")
    os.close(fd)
    try:
        count_compiles(log_path)
        sys.argv = ["ansible-playbook", *playbook_args]
        try:
            status = ansible_playbook()
        except SystemExit as ended:
            status = ended.code
        print(report(log_path, args.top), file=sys.stderr)
    finally:
        os.unlink(log_path)
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
