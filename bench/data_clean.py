"""Data cleaning speed: `lora-studio data check` + `data clean` of a generated 100,000-row file.

    .venv/bin/python bench/data_clean.py                 # about 2 minutes on 2 shared cores
    .venv/bin/python bench/data_clean.py --rows 20000

The file mixes Chinese and English clinic FAQ rows (sentences recombined from the demo dataset, about
300 characters a row) with the flaws real uploads have: exact and near duplicates, broken lines, empty
and placeholder answers, personal data, a few very long rows. Both commands run as the user runs them
(a fresh process each, all steps on, token lengths under the built-in model's tokenizer and chat
template); printed: wall time, rows/s and peak RSS of each, and of the two together (target: at most
60 s and 2 GB).

Baselines measured in the same run, on a slice of the same rows, for the two costly parts:
  near-duplicates  datasketch used row by row (MinHash.update_batch + MinHashLSH.insert per row)
                   against core.data.similarity (the same MinHash values, computed for all rows at once);
  token lengths    tokenising every row with the chat template (core.data.lengths.TokenCounter.count)
                   against the step's bound-first method (only rows that may be too long are tokenised).
Also: what the Data tab does for a 20,000-row upload (store, read, check) in-process.
Other processes share the CPU, so absolute figures are noisy; ratios from one run are what counts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from train_speed import bench_workspace  # noqa: E402 - a workspace linking the converted default model

from core.data import cleaning, similarity, store  # noqa: E402
from core.workspace import Workspace  # noqa: E402

TARGET_SECONDS, TARGET_RSS_GB = 60, 2.0
CLAUSE = re.compile(r"[^,.?!，。？！；;]+[,.?!，。？！；;]+")


def clause_pools() -> dict[str, list[str]]:
    """The clauses (up to a comma or full stop) of the demo dataset's prompts and answers, per language:
    recombined, they make rows that rarely repeat by chance."""
    pools: dict[str, list[str]] = {"en": [], "zh": []}
    for line in store.DEMO_DATASET_FILE.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        language = "en" if record["prompt"].isascii() else "zh"
        text = f"{record['prompt']} {record['response']}"
        pools[language].extend(c.strip() for c in CLAUSE.findall(text) if len(c.strip()) > 3)
    return {language: sorted(set(clauses)) for language, clauses in pools.items()}


def generate(rows: int, seed: int = 0) -> list[str]:
    """`rows` JSONL lines of about 300 characters of text each, with the flaws of real uploads: 3% exact
    copies, 2% near copies, 0.5% broken lines, 0.5% placeholder answers, 0.4% personal data, 0.1% very long."""
    rng = random.Random(seed)
    pools = clause_pools()
    records: list[dict[str, str]] = []
    lines: list[str] = []
    for n in range(rows):
        roll = rng.random()
        if records and roll < 0.03:
            lines.append(json.dumps(rng.choice(records), ensure_ascii=False))
            continue
        if records and roll < 0.05:
            copy = dict(rng.choice(records))
            copy["response"] = copy["response"].replace("the", "our", 1).replace("的", "之", 1)
            lines.append(json.dumps(copy, ensure_ascii=False))
            continue
        if roll < 0.055:
            lines.append('{"prompt": "broken line ' + str(n))
            continue
        language = rng.choice(("en", "zh"))
        clauses = pools[language]
        joiner = " " if language == "en" else ""
        record = {"prompt": joiner.join(rng.sample(clauses, 3)),
                  "response": joiner.join(rng.sample(clauses, rng.randint(5, 10)))}
        if roll > 0.999:
            record["response"] *= 40
        elif roll > 0.994:
            record["response"] = "TODO"
        elif roll > 0.99:
            record["response"] += f" patient{n}@example.com, 138{n % 10**8:08d}"
        records.append(record)
        lines.append(json.dumps(record, ensure_ascii=False))
    return lines


def run_cli(*args: str) -> tuple[float, float, float, dict]:
    """(wall seconds, CPU seconds, peak RSS in GB, parsed JSON report) of one `lora-studio data …` process.
    CPU seconds say what the wall time would be on an idle machine (the work is mostly one thread)."""
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "cli", "data", *args, "--json"], cwd=REPO,
                                   stdout=output, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)   # this child's own peak RSS, not all children's
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status):
            errors.seek(0)
            raise SystemExit(f"lora-studio data {' '.join(args)} failed:\n{errors.read().decode()}")
        output.seek(0)
        return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 2**20, json.loads(output.read())


def near_duplicate_baseline(texts: list[str]) -> tuple[float, float]:
    """Seconds for datasketch row by row, and for core.data.similarity on the same texts."""
    from datasketch import MinHash, MinHashLSH

    started = time.perf_counter()
    index = MinHashLSH(threshold=0.6, num_perm=similarity.NUM_PERM)
    for number, text in enumerate(texts):
        minhash = MinHash(num_perm=similarity.NUM_PERM, seed=similarity.SEED, hashfunc=similarity.shingle_hash)
        minhash.update_batch(similarity.shingles(text))
        index.insert(number, minhash)
    row_by_row = time.perf_counter() - started
    started = time.perf_counter()
    similarity.candidate_pairs(similarity.signatures(texts), 0.6)
    return row_by_row, time.perf_counter() - started


def length_baseline(workspace: Workspace, conversations: list[list[dict[str, str]]]) -> tuple[float, float]:
    """Seconds to tokenise every conversation, and for the bound-first too-long check."""
    counter = store.token_counter(workspace)
    started = time.perf_counter()
    for messages in conversations:
        counter.count(messages)
    every_row = time.perf_counter() - started
    started = time.perf_counter()
    counter.over_limit(conversations, 2048)
    return every_row, time.perf_counter() - started


def upload_in_process(workspace: Workspace, lines: list[str], folder: Path) -> tuple[float, float]:
    """What the Data tab does for an upload: (seconds to the validation report, seconds to the counts)."""
    path = folder / "upload.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    started = time.perf_counter()
    created = store.import_upload(workspace, path, "upload")
    stored = time.perf_counter() - started
    store.check_version(workspace, created.dataset_id, created.version, cleaning.CleanOptions())
    return stored, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=5_000)
    parser.add_argument("--upload-rows", type=int, default=20_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        workspace = bench_workspace(folder / "ws")
        lines = generate(args.rows)
        source = folder / "generated.jsonl"
        source.write_text("\n".join(lines) + "\n", encoding="utf-8")
        readable = [json.loads(line) for line in lines if not line.startswith('{"prompt": "broken')]
        chars = sum(len(row["prompt"]) + len(row["response"]) for row in readable) / len(readable)
        print(f"file: {len(lines):,} rows, {source.stat().st_size / 2**20:.1f} MB, {chars:.0f} characters of text a row")

        common = ("--workspace", str(workspace.root))
        check_s, check_cpu, check_gb, report = run_cli("check", str(source), *common)
        clean_s, clean_cpu, clean_gb, _ = run_cli("clean", str(source), "--out", str(folder / "out"), *common)
        total, cpu = check_s + clean_s, check_cpu + clean_cpu
        for name, seconds, cpu_seconds, peak in (("data check", check_s, check_cpu, check_gb),
                                                 ("data clean", clean_s, clean_cpu, clean_gb)):
            print(f"{name}: {seconds:6.1f} s wall ({cpu_seconds:5.1f} s CPU)  {args.rows / seconds:8,.0f} rows/s  "
                  f"peak RSS {peak:.2f} GB")
        met = total <= TARGET_SECONDS and max(check_gb, clean_gb) <= TARGET_RSS_GB
        print(f"together:   {total:6.1f} s wall ({cpu:5.1f} s CPU)  {2 * args.rows / total:8,.0f} rows/s  "
              f"(target ≤ {TARGET_SECONDS} s and ≤ {TARGET_RSS_GB} GB: {'met' if met else 'MISSED'}; "
              f"load average when done {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        print(f"report: kept {report['kept']:,}, rejected {report['rejected']:,}, reasons {report['reasons']}, "
              f"{len(report['contradiction_groups'])} contradiction groups, flags {report['flags']}")

        sample = readable[:args.baseline_rows]
        texts = [similarity.comparable(row["response"]) for row in sample]
        row_by_row, vectorised = near_duplicate_baseline(texts)
        print(f"near-duplicate signatures + LSH, {len(texts):,} rows: datasketch row by row {row_by_row:.2f} s, "
              f"core.data.similarity {vectorised:.2f} s ({row_by_row / vectorised:.0f}x)")
        conversations = [[{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["response"]}]
                         for row in sample]
        every_row, bounded = length_baseline(workspace, conversations)
        print(f"too-long check, {len(conversations):,} rows: tokenise every row {every_row:.2f} s, "
              f"bound first {bounded:.2f} s ({every_row / bounded:.0f}x)")

        stored, counted = upload_in_process(workspace, lines[:args.upload_rows], folder)
        print(f"Data tab, {args.upload_rows:,}-row upload in-process: validation report after {stored:.1f} s, "
              f"cleaning counts after {counted:.1f} s")


if __name__ == "__main__":
    main()
