"""Benchmark: the offline render (`gitops render`) of a synthetic fleet, stage by stage.

Measures what `gitops render REPO --snapshot SNAP -o OUT` does, through the same entry points
(`controller.sources`, `gitops.loading.load`, `gitops.pipeline.load_inputs`,
`gitops.translate.translate` + `Translation.render`, `gitops.rendering.write_all`), on fleets
made by `bench/fleet.py`. Each size runs in a fresh child process pinned to one CPU, so
timings are single-core and the peak RSS (`ru_maxrss`, read inside the child) is that size's
alone. Output is streamed one cluster at a time (render -> write -> drop), as `gitops render`
does, so the fleet's output is never all in memory.

Stages: parse (read files, YAML, load + validate config and snapshots), translate
(`translate()` plus every cluster's `render()`), serialise (`write_all` of every cluster into
a temp dir; each file is deleted, untimed, once written). The floor is what the bare
libraries need for the same bytes: `yaml.load_all(..., Loader=yaml.CSafeLoader)` of every
input file plus `json.dumps(obj, sort_keys=True)` of every output object; total/floor says
how much the project adds on top of parsing and printing. See bench/README.md.

Run from the repository root: `python -m bench.translate [SIZE ...] [--profile] [--json FILE]`
with SIZE as CLUSTERSxSERVICES (default 10x100 50x500 100x1000).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import fleet as fleets

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = ("10x100", "50x500", "100x1000")
MB = 1024 * 1024

#: Targets (reference/perf-anchors.md section 4, goal 3; issue 3 for the `-sec` fleets):
#: label -> (size or None for every size,
#: metric key, limit, unit).
TARGETS: tuple[tuple[str, str | None, str, float, str], ...] = (
    ("total/floor <= 3", None, "ratio", 3.0, "x"),
    ("translate <= 15 s", "100x1000", "translate_s", 15.0, "s"),
    ("peak RSS <= 4096 MB", "100x1000", "peak_rss_mb", 4096.0, "MB"),
    ("end to end <= 2 s", "10x100", "total_s", 2.0, "s"),
    # Issue 3: with service isolation and an AccessPolicy on half the services.
    ("translate <= 20 s", "100x1000-sec", "translate_s", 20.0, "s"),
    ("peak RSS <= 4096 MB", "100x1000-sec", "peak_rss_mb", 4096.0, "MB"),
)

Result = dict[str, Any]


# -- child: one size, one process ------------------------------------------------------------


class _GcClock:
    """Time spent in the cyclic garbage collector, via `gc.callbacks`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1


@dataclass
class _Stopwatch:
    """Wall, CPU and GC seconds of consecutive laps."""

    gc_clock: _GcClock
    laps: dict[str, float] = field(default_factory=dict)
    gc_laps: dict[str, float] = field(default_factory=dict)
    _wall: float = field(default_factory=time.perf_counter)
    _gc: float = 0.0

    def lap(self, name: str) -> float:
        now = time.perf_counter()
        spent = now - self._wall
        self.laps[name] = self.laps.get(name, 0.0) + spent
        self.gc_laps[name] = self.gc_laps.get(name, 0.0) + self.gc_clock.seconds - self._gc
        self._wall = now
        self._gc = self.gc_clock.seconds
        return spent

    def restart(self) -> None:
        self._wall = time.perf_counter()
        self._gc = self.gc_clock.seconds


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / MB


def _pin_to_one_cpu() -> int:
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def _progress(message: str) -> None:
    print(f"    .. {message}", file=sys.stderr, flush=True)


def _yaml_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith((".yaml", ".yml")) and not name.startswith("."):
                yield Path(dirpath) / name


def run_child(spec: Result) -> Result:
    """Measure one size; `spec` holds the fleet paths and options. Returns the result record."""
    started = time.perf_counter()
    cpu = _pin_to_one_cpu()
    import yaml

    from controller import batch
    from controller.sources.directory import read_directory
    from controller.sources.snapshots import read_snapshot_dir
    from gitops import loading, pipeline, rendering
    from gitops.translate import translate

    imports_s = time.perf_counter() - started
    repo, snapshot = Path(spec["repo"]), Path(spec["snapshot"])
    gc_clock = _GcClock()
    gc.callbacks.append(gc_clock)
    profiler = cProfile.Profile() if spec["profile"] else None
    cpu_started = time.process_time()
    watch = _Stopwatch(gc_clock)
    if profiler is not None:
        profiler.enable()

    # The collector settings `gitops render` runs with (controller/batch.py): raised
    # thresholds, and the parsed inputs and fleet-wide translation frozen once built.
    tuning = batch.collector_tuned()
    freeze = tuning.__enter__()

    # -- parse
    tree = read_directory(repo)
    snapshots = read_snapshot_dir(snapshot)
    watch.lap("read")
    bundle = loading.load(tree)
    watch.lap("load_config")
    inputs = pipeline.load_inputs(snapshots)
    freeze("inputs")
    watch.lap("load_snapshots")
    # The snapshot bytes are not needed once parsed; the streaming render does not keep them.
    del snapshots
    watch.restart()
    rss_after_parse = _current_rss_mb()
    peak_after_parse = _peak_rss_mb()
    _progress(f"parsed in {sum(watch.laps.values()):.2f} s, RSS {rss_after_parse:.0f} MB")

    # -- translate + serialise, streamed per cluster
    diagnostics: Counter[str] = Counter()
    samples: list[str] = []

    def note(found: Any) -> None:
        for d in found:
            diagnostics[d.severity.name] += 1
            if len(samples) < 5:
                samples.append(d.format())

    note(bundle.diagnostics)
    for cluster_inputs in inputs.values():
        note(cluster_inputs.diagnostics)
    watch.restart()
    translation = translate(bundle, inputs)
    freeze("translated")
    watch.lap("translate_prepare")
    note(translation.diagnostics)
    kinds: Counter[str] = Counter()
    objects = 0
    output_chars = 0
    json_s = 0.0
    json_cpu_s = 0.0
    json_chars = 0
    clusters = translation.clusters
    step = max(1, len(clusters) // 10)
    with tempfile.TemporaryDirectory(prefix="bench-render-") as out_dir:
        watch.restart()
        for n, cluster in enumerate(clusters, 1):
            output = translation.render(cluster)
            watch.lap("render")
            target = os.path.join(out_dir, f"{cluster}.yaml")
            with open(target, "w", encoding="utf-8") as fh:
                output_chars += rendering.write_all(output.objects, fh.write)
            watch.lap("serialise")
            # Untimed bookkeeping and the json half of the floor, outside the stage laps.
            os.unlink(target)
            objects += len(output.objects)
            kinds.update(o["kind"] for o in output.objects)
            note(output.diagnostics)
            if profiler is None:
                json_started = time.perf_counter()
                json_cpu_started = time.process_time()
                for obj in output.objects:
                    json_chars += len(json.dumps(obj, sort_keys=True))
                json_s += time.perf_counter() - json_started
                json_cpu_s += time.process_time() - json_cpu_started
            del output
            if n % step == 0 or n == len(clusters):
                _progress(f"rendered {n}/{len(clusters)} clusters, {objects:,} objects")
            watch.restart()
    if profiler is not None:
        profiler.disable()
    # The collector is off while clusters render (controller/batch.py): show that this
    # left nothing behind, i.e. that rendering made no reference cycles.
    cyclic_garbage = gc.collect()
    tuning.__exit__(None, None, None)
    # CPU seconds of the measured stages (the interleaved json.dumps floor is taken out).
    cpu_s = time.process_time() - cpu_started - json_cpu_s
    peak_rss = _peak_rss_mb()
    gc_collections = list(gc_clock.collections)

    result: Result = {
        "cpu": cpu,
        "imports_s": imports_s,
        "read_s": watch.laps["read"],
        "load_config_s": watch.laps["load_config"],
        "load_snapshots_s": watch.laps["load_snapshots"],
        "translate_prepare_s": watch.laps["translate_prepare"],
        "render_s": watch.laps.get("render", 0.0),
        "serialise_s": watch.laps.get("serialise", 0.0),
        "gc_s": dict(watch.gc_laps),
        "gc_collections": gc_collections,
        "cpu_s": cpu_s,
        "clusters_rendered": len(clusters),
        "output_objects": objects,
        "output_kinds": dict(sorted(kinds.items())),
        "output_mb": output_chars / MB,
        "diagnostics": dict(diagnostics),
        "diagnostic_samples": samples,
        "rss_after_parse_mb": rss_after_parse,
        "peak_rss_after_parse_mb": peak_after_parse,
        "peak_rss_mb": peak_rss,
        "cyclic_garbage": cyclic_garbage,
    }
    result["parse_s"] = result["read_s"] + result["load_config_s"] + result["load_snapshots_s"]
    result["translate_s"] = result["translate_prepare_s"] + result["render_s"]
    result["total_s"] = result["parse_s"] + result["translate_s"] + result["serialise_s"]
    del translation, inputs, bundle, tree

    if profiler is not None:
        _print_profile(profiler, spec)
        result["profiled"] = True
        return result

    # -- the floor: bare libyaml over the same input files (json.dumps was timed above)
    _progress("floor: yaml.load_all(CSafeLoader) of every input file")
    floor_started = time.perf_counter()
    documents = 0
    for path in [*_yaml_files(repo), *_yaml_files(snapshot)]:
        data = path.read_bytes()
        documents += sum(1 for _ in yaml.load_all(data, Loader=yaml.CSafeLoader))
    result["floor_yaml_s"] = time.perf_counter() - floor_started
    result["floor_yaml_documents"] = documents
    result["floor_json_s"] = json_s
    result["floor_json_mb"] = json_chars / MB
    result["floor_s"] = result["floor_yaml_s"] + json_s
    result["ratio"] = result["total_s"] / result["floor_s"] if result["floor_s"] else 0.0
    result["peak_rss_end_mb"] = _peak_rss_mb()
    return result


def _print_profile(profiler: cProfile.Profile, spec: Result) -> None:
    out = Path(spec["profile_out"])
    profiler.dump_stats(out)
    for order in ("cumulative", "tottime"):
        print(f"\n---- profile of {spec['size']}: top 30 by {order} ----", flush=True)
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.strip_dirs().sort_stats(order).print_stats(30)
    print(f"(full profile: {out}; open with `python -m pstats {out}`)", flush=True)


# -- parent: generate fleets, run children, print --------------------------------------------


def _run_size(size: fleets.FleetSize, args: argparse.Namespace) -> Result:
    fleet = fleets.ensure(size, args.cache, args.regenerate)
    how = f"generated in {fleet.generated_in:.1f} s" if fleet.generated_in else "from cache"
    print(f"\n== {size.label}: {size.clusters} clusters x {size.services} services ==")
    print(f"fleet     {fleet.describe()} [{how}]", flush=True)
    profile_out = (args.cache or fleets.default_cache()) / f"profile-{size.label}.pstats"
    spec = {
        "size": size.label,
        "repo": str(fleet.repo),
        "snapshot": str(fleet.snapshot),
        "profile": args.profile,
        "profile_out": str(profile_out),
    }
    base: Result = {
        "size": size.label,
        "clusters": size.clusters,
        "services": size.services,
        "config_objects": fleet.config_objects,
        "snapshot_objects": fleet.snapshot_objects,
        "input_mb": fleet.input_bytes / MB,
        "config_mb": fleet.config_bytes / MB,
        "snapshot_mb": fleet.snapshot_bytes / MB,
        "input_files": fleet.config_files + fleet.snapshot_files,
        "generate_s": fleet.generated_in,
    }
    runs: list[Result] = []
    for attempt in range(1 if args.profile else args.repeat):
        if args.repeat > 1 and not args.profile:
            print(f"run {attempt + 1}/{args.repeat}", flush=True)
        child = _spawn(spec, args.timeout)
        if "error" in child:
            print(f"FAILED: {child['error']}")
            return {**base, **child}
        runs.append(child)
    best = min(runs, key=lambda r: float(r["total_s"]))
    result = {**base, **best, "runs": len(runs), "run_totals_s": [r["total_s"] for r in runs]}
    if not result.get("profiled"):
        result["targets"] = _check_targets(result)
    _print_result(result)
    return result


def _spawn(spec: Result, timeout: float | None) -> Result:
    """Run one measurement in a fresh interpreter; its result, or {"error": why}."""
    with tempfile.NamedTemporaryFile(prefix="bench-result-", suffix=".json") as result_file:
        command = [sys.executable, "-m", "bench.translate", "--child", json.dumps(spec)]
        command += ["--result", result_file.name]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *_pp()])}
        started = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=ROOT, env=env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s (child killed)"}
        if done.returncode != 0:
            return {"error": f"child exited with {done.returncode}"}
        child: Result = json.loads(Path(result_file.name).read_text(encoding="utf-8"))
    child["child_wall_s"] = time.perf_counter() - started
    return child


def _pp() -> list[str]:
    return [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


def _check_targets(result: Result) -> list[Result]:
    checks: list[Result] = []
    for label, size, key, limit, unit in TARGETS:
        if size is not None and size != result["size"]:
            continue
        value = float(result[key])
        checks.append(
            {"target": label, "value": value, "limit": limit, "unit": unit, "met": value <= limit}
        )
    return checks


def _gc_note(result: Result, *stages: str) -> str:
    seconds = sum(result["gc_s"].get(stage, 0.0) for stage in stages)
    return f"gc {seconds:.2f}"


def _print_result(r: Result) -> None:
    profiled = bool(r.get("profiled"))
    note = " (under cProfile: inflated)" if profiled else ""
    print(
        f"input     config {r['config_objects']:,} objects, snapshots "
        f"{r['snapshot_objects']:,} objects; {r['input_mb']:.1f} MB YAML in "
        f"{r['input_files']:,} files"
    )
    runs = r.get("run_totals_s", [])
    best = f" (best of {len(runs)} runs; totals {', '.join(f'{t:.2f}' for t in runs)} s)"
    print(f"time{note}{best if len(runs) > 1 else ''}")
    print(
        f"  parse     {r['parse_s']:8.2f} s  (read {r['read_s']:.2f}, config "
        f"{r['load_config_s']:.2f}, snapshots {r['load_snapshots_s']:.2f}; "
        f"{_gc_note(r, 'read', 'load_config', 'load_snapshots')})"
    )
    print(
        f"  translate {r['translate_s']:8.2f} s  (translate() {r['translate_prepare_s']:.2f}, "
        f"render() x{r['clusters_rendered']} {r['render_s']:.2f}; "
        f"{_gc_note(r, 'translate_prepare', 'render')})"
    )
    print(f"  serialise {r['serialise_s']:8.2f} s  ({_gc_note(r, 'serialise')})")
    print(
        f"  total     {r['total_s']:8.2f} s  (CPU {r['cpu_s']:.2f} s on cpu {r['cpu']}; "
        f"imports {r['imports_s']:.2f} s not included; gc collections "
        f"{'/'.join(str(n) for n in r['gc_collections'])} by generation)"
    )
    rate = r["output_objects"] / max(r["translate_s"] + r["serialise_s"], 1e-9)
    kinds = ", ".join(f"{n:,} {k}" for k, n in r["output_kinds"].items())
    print(
        f"output    {r['output_objects']:,} objects ({kinds}); {r['output_mb']:.1f} MB YAML; "
        f"{rate:,.0f} objects/s (translate+serialise)"
    )
    print(
        f"memory    peak RSS {r['peak_rss_mb']:,.0f} MB (peak {r['peak_rss_after_parse_mb']:,.0f} "
        f"MB by the end of parse, {r['rss_after_parse_mb']:,.0f} MB held after parse); "
        f"cyclic garbage left by the renders {r['cyclic_garbage']:,} objects"
    )
    found = ", ".join(f"{n} {sev.lower()}" for sev, n in sorted(r["diagnostics"].items()))
    print(f"diagnostics {found or 'none'}")
    for sample in r["diagnostic_samples"]:
        print(f"  {sample}")
    if profiled:
        return
    yaml_rate = r["input_mb"] / max(r["floor_yaml_s"], 1e-9)
    json_rate = r["floor_json_mb"] / max(r["floor_json_s"], 1e-9)
    print(
        f"floor     {r['floor_s']:.2f} s = yaml.load_all(CSafeLoader) {r['floor_yaml_s']:.2f} s "
        f"({yaml_rate:.1f} MB/s) + json.dumps {r['floor_json_s']:.2f} s ({json_rate:.0f} MB/s)"
    )
    print(
        f"ratio     total/floor {r['ratio']:.2f}  (parse/yaml "
        f"{r['parse_s'] / max(r['floor_yaml_s'], 1e-9):.2f}, translate+serialise/json "
        f"{(r['translate_s'] + r['serialise_s']) / max(r['floor_json_s'], 1e-9):.2f})"
    )
    for check in r["targets"]:
        verdict = "met" if check["met"] else "MISSED"
        print(f"target    {check['target']}: {check['value']:.2f} {check['unit']} -> {verdict}")


def _print_summary(results: list[Result]) -> None:
    print("\n== summary ==")
    print(
        f"{'size':>10} {'parse s':>8} {'transl s':>8} {'serial s':>8} {'total s':>8} "
        f"{'floor s':>8} {'ratio':>6} {'outputs':>10} {'obj/s':>8} {'peak MB':>8}"
    )
    for r in results:
        if "error" in r:
            print(f"{r['size']:>10} {r['error']}")
            continue
        rate = r["output_objects"] / max(r["translate_s"] + r["serialise_s"], 1e-9)
        floor = f"{r['floor_s']:8.2f} {r['ratio']:6.2f}" if "floor_s" in r else f"{'-':>8} {'-':>6}"
        print(
            f"{r['size']:>10} {r['parse_s']:8.2f} {r['translate_s']:8.2f} "
            f"{r['serialise_s']:8.2f} {r['total_s']:8.2f} {floor} "
            f"{r['output_objects']:10,} {rate:8,.0f} {r['peak_rss_mb']:8,.0f}"
        )
    missed = [
        f"{r['size']}: {c['target']}" for r in results for c in r.get("targets", []) if not c["met"]
    ]
    if missed:
        print("targets missed: " + "; ".join(missed))
    elif all("targets" in r for r in results):
        print("all targets met")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.translate",
        description="Benchmark the offline render (load -> translate -> serialise).",
    )
    parser.add_argument(
        "sizes",
        nargs="*",
        default=list(DEFAULT_SIZES),
        help="CLUSTERSxSERVICES (default: %(default)s)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one size (the first)")
    parser.add_argument("--json", type=Path, default=None, help="write results to this file")
    parser.add_argument("--cache", type=Path, default=None, help="fleet cache (default .bench/)")
    parser.add_argument("--regenerate", action="store_true", help="rebuild cached fleets")
    parser.add_argument(
        "--timeout", type=float, default=None, help="kill a size's child after this many seconds"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="fresh runs per size; the best total is kept"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child is not None:
        result = run_child(json.loads(args.child))
        Path(args.result).write_text(json.dumps(result), encoding="utf-8")
        return 0

    try:
        sizes = [fleets.parse_size(text) for text in args.sizes]
    except ValueError as err:
        parser.error(str(err))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.profile:
        sizes = sizes[:1]
    print(
        f"python {sys.version.split()[0]}, one CPU per child, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    results = [_run_size(size, args) for size in sizes]
    _print_summary(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
