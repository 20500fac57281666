"""`lora-studio eval` and `lora-studio report`: evaluate a run in the foreground (the same job the Evaluate tab
starts, holding the device lock) and write a run's report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.workspace import Workspace


def add_commands(commands: Any, workspace_flag: argparse.ArgumentParser) -> None:
    evaluate = commands.add_parser(
        "eval", parents=[workspace_flag],
        help="score a run's answers on held-out data (BLEU, chrF, ROUGE, perplexity); the last line is the eval folder")
    evaluate.set_defaults(handler=cmd_eval)
    evaluate.add_argument("run", help="the run's id")
    evaluate.add_argument("--data", type=Path, metavar="FILE",
                          help="a held-out .jsonl/.json/.csv file (default: the validation rows the run held out)")
    evaluate.add_argument("--base", action="store_true", help="let the base model answer too, and compare (paired CIs)")
    evaluate.add_argument("--compare", action="append", default=[], metavar="RUN",
                          help="another run answering the same prompts (repeatable)")
    evaluate.add_argument("--limit", type=int, default=0, metavar="N", help="only the first N prompts (default: all)")
    evaluate.add_argument("--batch-size", type=int, default=8, metavar="N", help="prompts answered together (default 8)")
    evaluate.add_argument("--json", action="store_true", help="print metrics.json and the folder as one JSON object")

    report = commands.add_parser("report", parents=[workspace_flag],
                                 help="write a run's report: one self-contained HTML file and the same in Markdown")
    report.set_defaults(handler=cmd_report)
    report.add_argument("run", help="the run's id")
    report.add_argument("--out", type=Path, metavar="FILE", help="the HTML file (default runs/<id>/report.html); "
                                                                 ".md beside it")
    report.add_argument("--eval", dest="eval_id", metavar="EVAL_ID", help="which evaluation (default: the latest finished)")


def cmd_eval(args: argparse.Namespace) -> int:
    from core.evaluation import job, results
    from core.evaluation.report import METRIC_LABELS
    from core.evaluation.workflow import EvalRequest
    from core.jobs import prepare, worker
    from core.system import job_status

    workspace = Workspace.open(args.workspace)
    request = EvalRequest(args.run, compare=args.compare, include_base=args.base,
                          data_file=str(args.data) if args.data else None, limit=max(0, args.limit),
                          batch_size=max(1, args.batch_size))
    prepare.ensure_device_free(workspace)
    folder, title, settings = job.prepare(workspace, request)
    job_status.create(job_status.JobFolder(folder), job.KIND, title, settings)
    echo = (lambda line: None) if args.json else (lambda line: print(line, flush=True))
    worker.run_other_job(workspace, job_status.JobFolder(folder), echo)
    metrics = results.load_metrics(workspace, args.run, folder.name)
    if args.json:
        print(json.dumps({"folder": str(folder), **metrics}, ensure_ascii=False, indent=2))
        return 0
    for model in metrics["models"].values():
        print(f"{model['label']}:")
        for name, label in METRIC_LABELS.items():
            entry = model[name]
            if entry["value"] is not None:
                print(f"  {label:<30} {entry['value']:9.2f}  95% CI [{entry['ci_low']:.2f}, {entry['ci_high']:.2f}]")
    for comparison in metrics["comparisons"]:
        print(f"{comparison['model']} against {comparison['baseline']}:")
        for name, entry in comparison["deltas"].items():
            if entry["delta"] is not None:
                print(f"  {METRIC_LABELS[name]:<30} {entry['delta']:+9.2f}  95% CI [{entry['ci_low']:+.2f}, "
                      f"{entry['ci_high']:+.2f}]  better {entry['better']}, worse {entry['worse']}, same {entry['same']}")
    print(folder)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from core.evaluation.report import write_report

    html_path, md_path = write_report(Workspace.open(args.workspace), args.run, args.out, args.eval_id)
    print(md_path)
    print(html_path)
    return 0
