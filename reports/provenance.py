"""Section 6: provenance of a run, everything needed to reproduce or trust it.

Model file and hash, engine and precision, data and subset, corruption profile and resolution, seed,
software versions, machine, duration and date, as a definition list (escaped values).
"""

from __future__ import annotations

from reports.fmt import DASH, esc, is_num
from reports.load import Run


def provenance_rows(run: Run) -> list[tuple[str, str]]:
    """(label, plain value) pairs of a run's provenance; missing values become a dash.

    Example:
        >>> dict(provenance_rows(load_run("out/results.json")))["precision"]  # doctest: +SKIP
        'fp32'
    """
    d = run.doc
    model, engine, ds, cor, env = (d.get(k) or {} for k in ("model", "engine", "dataset", "corruption", "environment"))
    subset = DASH
    if ds.get("limit") is not None:
        subset = f"limit {ds.get('limit')} images, subset seed {ds.get('subset_seed', DASH)}"
    elif "limit" in ds:
        subset = "all images"
    packages = ", ".join(f"{k} {v or DASH}" for k, v in sorted((env.get("packages") or {}).items()))
    duration = d.get("duration_s")
    mapping = model.get("label_mapping") or {}
    return [
        ("model file", f"{model.get('path', DASH)} ({model.get('format', DASH)})"),
        ("model sha256", model.get("sha256") or DASH),
        ("engine", f"{engine.get('name', DASH)}, provider {engine.get('provider', DASH)}"
                   + (f" ({', '.join(map(str, engine['active_providers']))})" if engine.get("active_providers") else "")),
        ("precision", engine.get("precision") or DASH),
        ("label mapping", _mapping_text(mapping)),
        ("unmatched classes", _unmatched_text(mapping)),
        *([("label table", _table_text(mapping))] if mapping.get("table") else []),
        *([("detections left out", _dropped_text(mapping["predictions"]))] if mapping.get("predictions") else []),
        ("model settings from", _origins_text((model.get("metadata") or {}).get("origins") or {})),
        ("device / batch", f"{engine.get('device') or DASH} / {engine.get('batch_size', DASH)}"),
        ("dataset", f"{ds.get('format', DASH)}: {ds.get('path', DASH)}"),
        *([("metrics on this format", str(ds["note"]))] if ds.get("note") else []),
        ("images per cell", str(ds.get("num_images", DASH))),
        ("subset", subset),
        ("skipped images", str(ds.get("num_skipped", len(ds.get("skipped") or [])))),
        ("corruption profile", cor.get("profile") or DASH),
        ("corrupted at", cor.get("resolution") or DASH),
        ("corruption source", cor.get("source") or DASH),
        ("corruptions / severities", f"{len(cor.get('corruptions') or [])} / {', '.join(map(str, cor.get('severities') or []))}"),
        ("seed", str(cor.get("seed", DASH))),
        *([("user-defined corruptions", _plugins_text(cor))] if cor.get("plugins") else []),
        ("status", str(d.get("status", DASH))),
        ("robustaudit / python", f"{env.get('robustaudit', DASH)} / {env.get('python', DASH)}"),
        ("packages", packages or DASH),
        ("machine", f"{env.get('machine', DASH)}, {env.get('platform', DASH)}, {env.get('cpu_count') or DASH} CPUs"),
        ("duration", f"{duration:.1f} s" if is_num(duration) else DASH),
        ("date", str(d.get("created", DASH))),
        ("results file", run.source or DASH),
    ]


def _plugins_text(cor: dict) -> str:
    """Each corruption plug-in: its corruptions, origin, and version or file hash (schema 1.2)."""
    parts = []
    for p in cor.get("plugins") or []:
        if isinstance(p, dict):
            pin = f"version {p['version']}" if p.get("version") else f"sha256 {str(p.get('sha256') or DASH)[:16]}"
            parts.append(f"{', '.join(map(str, p.get('corruptions') or []))} from {p.get('kind', DASH)} {p.get('origin', DASH)} ({pin})")
    return "; ".join(parts) or DASH


def _mapping_text(mapping: dict) -> str:
    """'category-id (inferred: ...)': how the model's labels were read, and why."""
    if not mapping:
        return DASH
    return f"{mapping.get('space', DASH)} ({mapping.get('source', DASH)}: {mapping.get('reason') or DASH})"


def _unmatched_text(mapping: dict) -> str:
    parts = []
    for key, what in (("unmatched_model", "model classes the dataset lacks, left out"),
                      ("unmatched_dataset", "dataset categories the model does not name")):
        names = [str(n) for n in mapping.get(key) or []]
        if names:
            parts.append(f"{what} ({len(names)}): {', '.join(names[:20])}" + (" ..." if len(names) > 20 else ""))
    return "; ".join(parts) or "none"


def _table_text(mapping: dict, limit: int = 40) -> str:
    """'0 -> none; 1 circle -> 1 circle; ...': each model label, its own name, the category it counts as."""
    rows = mapping.get("table") or []
    parts = []
    for row in rows[:limit]:
        name = f" {row['model_name']}" if row.get("model_name") else ""
        target = "none" if row.get("category_id") is None else f"{row['category_id']} {row.get('category') or ''}".strip()
        parts.append(f"{row.get('label')}{name} -> {target}")
    return "; ".join(parts) + (f"; ... ({len(rows)} labels)" if len(rows) > limit else "")


def _dropped_text(counts: dict) -> str:
    """'12 of 340 (background 12)': detections over every cell left out of the evaluation, by reason (schema 1.5)."""
    reasons = ("background", "unmatched_class", "out_of_range")
    dropped = {r: counts.get(r) or 0 for r in reasons}
    detail = ", ".join(f"{r.replace('_', ' ')} {n}" for r, n in dropped.items() if n)
    return f"{sum(dropped.values())} of {counts.get('total', 0)}" + (f" ({detail})" if detail else "")


def _origins_text(origins: dict) -> str:
    """'metadata: task, mean; flag: label_space': where each model setting came from."""
    by_source: dict[str, list[str]] = {}
    for key, source in origins.items():
        by_source.setdefault(str(source), []).append(str(key))
    return "; ".join(f"{source}: {', '.join(keys)}" for source, keys in sorted(by_source.items())) or DASH


def provenance(run: Run, anchor: str) -> str:
    """The provenance section as an escaped definition list.

    Example:
        >>> html = provenance(load_run("out/results.json"), "run1")  # doctest: +SKIP
    """
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in provenance_rows(run))
    return f'<section id="{anchor}-provenance"><h3>Provenance</h3><dl class="prov">{items}</dl></section>'
