"""Evaluation: automatic metrics on held-out data (right in Chinese and English), the base model and runs'
adapters side by side with paired-bootstrap confidence intervals, error analysis that sends bad answers
back into training as hard examples, and one report per run.

    scoring.py    metrics per sample and per set: BLEU, chrF, ROUGE, exact match, lengths; language detection
    stats.py      bootstrap confidence intervals and paired deltas
    heldout.py    what is evaluated: a run's validation rows (as its training held them out) or a file
    workflow.py   one evaluation: answer, score, compare, write runs/<id>/evals/<eval_id>/
    job.py        the job kind the runner starts ("evaluate"), and how an evaluation is requested
    results.py    reading evaluations back: worst samples, ideal answers, hard examples, the next run
    report.py     the self-contained HTML and Markdown report of a run
"""
