"""Load and validate routing data: per-query scores and costs of many models.

The format is one JSON object per line (the Avengers-Pro authors' format)::

    {"index": "arc-challenge.test.1", "dataset": "arc-challenge", "split": "test",
     "query": "George wants to warm his hands quickly ...",
     "records": {"gpt-4-1106-preview": 1.0, "mistralai/mistral-7b-chat": 0.0},
     "usages":  {"gpt-4-1106-preview": {"cost": 0.00041},
                 "mistralai/mistral-7b-chat": {"cost": 2.1e-05}}}

A RouterBench-style wide CSV (``prompt``/``query``, ``eval_name``, ``sample_id``, one score column
per model and ``<model>|total_cost`` columns) is read too. A model absent from a line is unknown
for that query, not wrong: it is ``NaN`` in the matrices of :class:`RoutingData`.

Example:
    >>> from shared_core.data import load_data
    >>> data = load_data("../shared/data/routerbench/test.jsonl")
    >>> data.scores.shape
    (945, 11)
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared_core._errors import DataError, UnknownModelError

PathArg = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


@dataclass(frozen=True)
class Sample:
    """One routing sample: a query and, per model, its score in [0, 1] and its cost in USD."""

    query: str
    records: dict[str, float]
    costs: dict[str, float] = field(default_factory=dict)
    index: str = ""
    dataset: str = ""
    split: str = ""


@dataclass(frozen=True, eq=False)
class RoutingData:
    """Samples as dense matrices: ``scores[i, j]`` / ``costs[i, j]`` of model ``models[j]`` on
    query ``i``; ``NaN`` where the model is unknown for the query."""

    queries: tuple[str, ...]
    models: tuple[str, ...]
    scores: np.ndarray
    costs: np.ndarray
    datasets: tuple[str, ...] = ()
    indices: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.queries)

    @classmethod
    def from_samples(
        cls, samples: Sequence[Sample], models: Sequence[str] | None = None
    ) -> RoutingData:
        """Stack samples into matrices. ``models`` fixes the column order (default: sorted)."""
        if not samples:
            raise DataError("no routing samples given")
        seen = sorted({m for s in samples for m in s.records})
        if models is None:
            models = seen
        else:
            unknown = [m for m in seen if m not in set(models)]
            if unknown:
                raise UnknownModelError(unknown[0], models)
        col = {m: j for j, m in enumerate(models)}
        scores = np.full((len(samples), len(models)), np.nan)
        costs = np.full((len(samples), len(models)), np.nan)
        for i, s in enumerate(samples):
            for m, v in s.records.items():
                scores[i, col[m]] = v
            for m, c in s.costs.items():
                if m in col:
                    costs[i, col[m]] = c
        return cls(
            queries=tuple(s.query for s in samples),
            models=tuple(models),
            scores=scores,
            costs=costs,
            datasets=tuple(s.dataset for s in samples),
            indices=tuple(s.index for s in samples),
        )

    def subset(self, rows: np.ndarray | Sequence[int]) -> RoutingData:
        """The rows ``rows`` as a new :class:`RoutingData` (same models)."""
        rows = np.asarray(rows)
        pick = rows.tolist()
        return RoutingData(
            queries=tuple(self.queries[i] for i in pick),
            models=self.models,
            scores=self.scores[rows],
            costs=self.costs[rows],
            datasets=tuple(self.datasets[i] for i in pick) if self.datasets else (),
            indices=tuple(self.indices[i] for i in pick) if self.indices else (),
        )

    def summary(self) -> list[dict[str, Any]]:
        """Per (dataset, model): number of known samples, mean score and mean cost."""
        rows = []
        datasets = np.asarray(self.datasets or ("",) * len(self))
        for ds in sorted(set(datasets.tolist())):
            sel = datasets == ds
            for j, m in enumerate(self.models):
                known = ~np.isnan(self.scores[sel, j])
                n = int(known.sum())
                rows.append(
                    {
                        "dataset": ds,
                        "model": m,
                        "n": n,
                        "mean_score": float(np.nanmean(self.scores[sel, j])) if n else None,
                        "mean_cost": float(np.nanmean(self.costs[sel, j])) if n else None,
                    }
                )
        return rows


def _number(value: Any, where: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{where}: expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise DataError(f"{where}: expected a finite number, got {value!r}")
    if lo is not None and v < lo or hi is not None and v > hi:
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise DataError(f"{where}: {v} is outside {rng}")
    return v


def parse_sample(obj: Any, where: str) -> Sample:
    """Validate one decoded JSON line. ``where`` ("line 3 of f.jsonl") prefixes every error."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    query = obj.get("query")
    if query is None:
        raise DataError(f"{where}: 'query' missing")
    if not isinstance(query, str) or not query.strip():
        raise DataError(f"{where}: 'query' must be a non-empty string")
    records = obj.get("records")
    if records is None:
        raise DataError(f"{where}: 'records' missing")
    if not isinstance(records, dict) or not records:
        raise DataError(f"{where}: 'records' must be a non-empty object of model -> score")
    scores = {str(m): _number(v, f"{where}: records[{m!r}]", 0.0, 1.0) for m, v in records.items()}
    usages = obj.get("usages", {})
    if not isinstance(usages, dict):
        raise DataError(f"{where}: 'usages' must be an object of model -> {{'cost': ...}}")
    costs: dict[str, float] = {}
    for m, u in usages.items():
        if not isinstance(u, dict) or "cost" not in u:
            raise DataError(f"{where}: usages[{m!r}]: 'cost' missing")
        costs[str(m)] = _number(u["cost"], f"{where}: usages[{m!r}].cost", 0.0)
    missing_cost = sorted(set(scores) - set(costs))
    if missing_cost:
        raise DataError(f"{where}: usages[{missing_cost[0]!r}]: no cost for a model in 'records'")
    return Sample(
        query=query,
        records=scores,
        costs=costs,
        index=str(obj.get("index", "")),
        dataset=str(obj.get("dataset", "")),
        split=str(obj.get("split", "")),
    )


def read_jsonl(path: str | Path) -> list[Sample]:
    """Read and validate a JSONL routing file. Errors name the file, the line and the field."""
    path = Path(path)
    samples = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"line {lineno} of {path.name}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from e
            samples.append(parse_sample(obj, where))
    if not samples:
        raise DataError(f"{path}: no routing samples (the file is empty)")
    return samples


def read_wide_csv(path: str | Path) -> list[Sample]:
    """Read a RouterBench-style wide CSV: one score column per model, ``<model>|total_cost``."""
    path = Path(path)
    samples = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        qcol = next((c for c in ("query", "prompt") if c in header), None)
        if qcol is None:
            raise DataError(f"{path.name}: no 'query' or 'prompt' column; columns: {header}")
        models = [c[: -len("|total_cost")] for c in header if c.endswith("|total_cost")]
        missing = [m for m in models if m not in header]
        if not models or missing:
            raise DataError(
                f"{path.name}: expected a score column and a '<model>|total_cost' column per "
                f"model; missing score columns: {missing or 'no cost columns at all'}"
            )
        for lineno, row in enumerate(reader, 2):
            obj: dict[str, Any] = {
                "query": row[qcol],
                "index": row.get("sample_id", ""),
                "dataset": row.get("eval_name", ""),
                "records": {},
                "usages": {},
            }
            for m in models:
                score, cost = row[m].strip(), row[f"{m}|total_cost"].strip()
                if not score:
                    continue
                try:
                    obj["records"][m] = float(score)
                    obj["usages"][m] = {"cost": float(cost)}
                except ValueError as e:
                    raise DataError(
                        f"line {lineno} of {path.name}: model {m!r}: not a number ({e})"
                    ) from e
            samples.append(parse_sample(obj, f"line {lineno} of {path.name}"))
    if not samples:
        raise DataError(f"{path}: no routing samples (the file is empty)")
    return samples


def read_samples(paths: PathArg) -> list[Sample]:
    """Read samples from files (``.jsonl`` / ``.csv``) or folders (their ``*.jsonl``)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    samples: list[Sample] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(p.glob("*.jsonl"))
            if not files:
                raise DataError(f"{p}: folder has no .jsonl files")
        elif p.exists():
            files = [p]
        else:
            raise DataError(f"{p}: no such file or folder")
        for f in files:
            samples.extend(read_wide_csv(f) if f.suffix == ".csv" else read_jsonl(f))
    return samples


def load_data(paths: PathArg, models: Sequence[str] | None = None) -> RoutingData:
    """Read files or folders and stack them into a :class:`RoutingData`."""
    return RoutingData.from_samples(read_samples(paths), models=models)
