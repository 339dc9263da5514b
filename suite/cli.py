"""The ``energybench`` command.

Exit codes: 0 success; 2 bad usage or environment (unknown verb, experiment, profile or device;
a plugin module that fails to import; a data root, cache or results path that is a file or cannot
be read or written: one line naming the variable or path); 1 a cell failed (the other cells still
ran and were saved; the report shows the traceback); 130 interrupted by Ctrl-C, 143 stopped by
SIGTERM (finished cells are kept, a rerun resumes, no worker process is left behind).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from suite.harness import registry

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143

DESCRIPTION = """\
Reproduce four CV papers on energy minimization inside deep networks (LSM CVPR 2020,
ADM CVPR 2019, TV layers CVPR 2022, Wibergian NeurIPS 2019): run their experiments as
cached cells, judge each paper's claims against the published numbers, and render an HTML
report. Profiles: smoke (tiny sizes: every experiment in a few minutes, a first report),
mini (the default: CPU, generated data, every model trained: minutes to an hour per table,
hours for everything on a few cores), full (the papers' datasets and sizes, GPU). A finished
cell is kept under results/cells/ and is not run again unless its code, data, profile, seed
or device class change (or --force): a rerun resumes where a run stopped."""

EPILOG = """\
examples:
  energybench reproduce --profile smoke        every experiment at tiny sizes (minutes), then
                                               reports/index.html: a first report
  energybench reproduce                        everything at mini (hours on a few CPU cores)
  energybench reproduce wibergian              one paper at mini
  energybench reproduce tvlayers --profile smoke
  energybench run tvlayers.table1 --seeds 0,1,2 -j 2
  energybench run adm > run.log 2>&1          a log: one plain line per finished cell, no bars
                                               (whenever stdout is not a terminal)
  energybench report --profile mini            render reports/ from results/
  energybench list                             experiments and the papers' claims
  energybench data status                      datasets present or absent
  energybench <verb> --help                    the options of one verb

exit codes:
  0  success (cells that could not run, e.g. a dataset is absent, show as "not run")
  1  a cell failed (the other cells still ran and were saved; the report shows the traceback)
  2  bad usage or environment: unknown verb, experiment, paper, profile or device; a module of
     ENERGYBENCH_PLUGINS that fails to import; ENERGYBENCH_DATA, ENERGYBENCH_CACHE or --results
     naming a file, or a results/report folder that cannot be read or written (read-only, full disk)
  130, 143  interrupted (Ctrl-C) or stopped (SIGTERM): finished cells are kept; rerun to resume"""


PROFILE_HELP = ("smoke: tiny sizes, seconds per experiment; mini (default): CPU, generated data, every model "
                "trained; full: the papers' datasets and sizes, GPU")
OUT_HELP = "report folder (default: reports); open its index.html"


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help="experiment ids (tvlayers.table1) or paper ids (tvlayers); none = everything")
    parser.add_argument("--profile", default=registry.DEFAULT_PROFILE, choices=registry.PROFILES, help=PROFILE_HELP)
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when available)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="local worker processes (timing cells run alone)")
    parser.add_argument("--executor", default="local", choices=("local", "ray"),
                        help="local processes (-j) or a Ray cluster (pip install -e '.[ray]')")
    parser.add_argument("--address", default=None, help="the Ray cluster's address, or auto for one started here "
                                                        "(default: $RAY_ADDRESS, else a private local instance)")
    parser.add_argument("--force", action="store_true", help="rerun cells that already have results")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: results)")
    parser.add_argument("--seeds", type=lambda s: tuple(int(v) for v in s.split(",")), default=None,
                        help="comma-separated seeds (default: the profile's)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress output. Without it: a bar with an ETA (from each cell's last recorded "
                             "time) when stderr is a terminal, one plain line per finished cell otherwise "
                             "(logs, CI)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="energybench", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="registered experiments and the papers' claims")
    listing.add_argument("--coverage", action="store_true",
                         help="every table and figure of each paper.yaml with its experiment (or 'no experiment yet') "
                              "and the profiles it runs at")
    listing.add_argument("--markdown", action="store_true", help="with --coverage: the README's markdown block")
    listing.add_argument("--write-readme", nargs="?", const=README, default=None, type=Path, metavar="README",
                         help="with --coverage: rewrite the block between <!-- coverage:start --> and "
                              "<!-- coverage:end --> of README.md (default: the checkout's)")
    run = verbs.add_parser("run", help="run experiment cells (finished cells are skipped)")
    _add_run_options(run)
    report = verbs.add_parser("report", help="render reports/index.html from results/")
    report.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: results)")
    report.add_argument("--out", type=Path, default=Path("reports"), help=OUT_HELP)
    report.add_argument("--profile", default=registry.DEFAULT_PROFILE, choices=registry.PROFILES,
                        help="the profile whose cells the report shows (default: mini)")
    reproduce = verbs.add_parser("reproduce", help="run, then report")
    _add_run_options(reproduce)
    reproduce.add_argument("--out", type=Path, default=Path("reports"), help=OUT_HELP)
    verbs.add_parser("info", help="environment and devices")
    data = verbs.add_parser("data", help="datasets: build, verify, status, add")
    data_verbs = data.add_subparsers(dest="data_verb", required=True)
    build = data_verbs.add_parser("build", help="write the generated datasets under data/ and record them with DVC")
    build.add_argument("--profile", default=registry.DEFAULT_PROFILE, choices=registry.PROFILES)
    verify = data_verbs.add_parser("verify", help="rebuild in a temporary folder and compare with data.dvc")
    verify.add_argument("--profile", default=registry.DEFAULT_PROFILE, choices=registry.PROFILES)
    data_verbs.add_parser("status", help="every dataset: present or absent, version, size")
    add = data_verbs.add_parser("add", help="check a real dataset's layout and record it under data/<id>")
    add.add_argument("path", type=Path)
    add.add_argument("--as", dest="as_id", required=True, help="dataset id")
    add.add_argument("--link", action="store_true", help="symlink instead of copying")
    add.add_argument("--overwrite", action="store_true", help="replace data/<id> when it is already there")
    bench = verbs.add_parser("bench", help="speed benchmarks against peers (benchmarks/bench_NAME.py)")
    bench.add_argument("name", help="tv, boundary, graphcut, crf, ...")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="passed on to the benchmark script")
    return parser


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
README = Path(__file__).resolve().parents[1] / "README.md"


def cmd_bench(args) -> int:
    """Run ``benchmarks/bench_<name>.py`` (a checkout's folder: benchmarks are not installed)."""
    import runpy

    script = BENCHMARKS / f"bench_{args.name}.py"
    if not script.is_file():
        known = sorted(p.stem.removeprefix("bench_") for p in BENCHMARKS.glob("bench_*.py"))
        raise registry.UnknownIdError(f"unknown benchmark {args.name!r}{registry.suggest(args.name, known)} "
                                      f"(known: {', '.join(known) or 'none'}; looked in {BENCHMARKS})")
    sys.argv = [str(script), *args.args]
    runpy.run_path(str(script), run_name="__main__")
    return EXIT_OK


def cmd_list(args) -> int:
    from suite.report import coverage
    from suite.report.render import _paper_files

    if args.coverage or args.markdown or args.write_readme:
        rows = coverage.coverage_rows()
        if args.write_readme:
            try:
                changed = coverage.write_readme(args.write_readme, rows)
            except (OSError, ValueError) as err:
                print(f"energybench: list --write-readme: {err}", file=sys.stderr)
                return EXIT_USAGE
            print(f"{args.write_readme}: coverage block {'rewritten' if changed else 'already up to date'}")
            return EXIT_OK
        print(coverage.markdown(rows) if args.markdown else coverage.text(rows), end="")
        return EXIT_OK
    experiments = registry.all_experiments()
    # the id column as wide as the longest id (leaderboard ids run past 24 characters); a long
    # table name (a leaderboard's, which its title repeats) is cut so the columns stay aligned
    wid = max((len(e.id) for e in experiments.values()), default=0)
    wtab = min(18, max((len(e.table) for e in experiments.values()), default=0))
    for exp in experiments.values():
        cells = len(exp.cells(registry.DEFAULT_PROFILE))
        table = exp.table if len(exp.table) <= wtab else exp.table[: wtab - 3] + "..."
        print(f"{exp.id:{wid}s}  {table:{wtab}s}  {cells:3d} {'cell ' if cells == 1 else 'cells'}  {exp.title}")
    for paper in _paper_files(experiments.values(), None):
        print(f"\n{paper.id}: {len(paper.claims)} claims")
        for claim in paper.claims:
            print(f"  {claim.id:34s} {claim.kind:11s} {claim.text}")
    return EXIT_OK


def _run(args) -> int:
    from suite.harness import runner

    _check_results_folder(args.results)
    experiments = registry.resolve(args.targets)
    options = runner.Options(profile=args.profile, device=args.device, jobs=max(1, args.jobs), force=args.force,
                             results=args.results, seeds=args.seeds, progress=not args.no_progress,
                             executor=args.executor, address=args.address)
    summary = runner.run(experiments, options)
    print(f"cells: {summary.ran} ran, {summary.cached} already done, {summary.not_run} not run (see report), "
          f"{len(summary.failed)} failed; results in {args.results}/cells")
    for failure in summary.failed:
        print(f"FAILED: {failure}", file=sys.stderr)
    return EXIT_OK if summary.ok else EXIT_FAILED


def _check_results_folder(results: Path) -> None:
    from suite.harness import store

    if results.exists() and not results.is_dir():
        raise store.StoreError(results, "--results names a file, not a folder")


def cmd_report(args) -> int:
    from suite.harness import store
    from suite.report.render import build

    _check_results_folder(args.results)
    if args.out.exists() and not args.out.is_dir():
        raise store.StoreError(args.out, "--out names a file, not a folder")
    if not store.load_cells(args.results):
        print(f"energybench: no results under {args.results}/cells for any profile; the report will be empty "
              "(run `energybench run` first, or pass --results)", file=sys.stderr)
    index = build(args.results, args.out, profile=args.profile)
    print(f"report: {index}")
    return EXIT_OK


def cmd_reproduce(args) -> int:
    from suite.harness import progress

    code = _run(args)
    say = (lambda text: None) if args.no_progress else (lambda text: print(text, flush=True))
    # the report is rendered again only when something it reads changed (see reusable_report)
    fingerprint, stamp = progress.reusable_report(args.results, args.out, profile=args.profile)
    if stamp is not None and not args.force:
        say(f"report: {args.out}/ is up to date (no cell, code, paper or dataset changed since it was rendered)")
        text = stamp["summary"]
    else:
        with progress.Phase(say, f"report: judging the claims and rendering {args.out}/"):
            cmd_report(args)
        with progress.Phase(say, "summary: judging the claims per paper"):
            text = progress.summary_text(progress.paper_summaries(args.results, profile=args.profile),
                                         report=args.out / "index.html")
        progress.write_report_stamp(args.out, fingerprint, text)
    print(text)
    return code


def cmd_info(_args) -> int:
    import torch

    from suite.harness import provenance

    env = provenance.environment("cuda" if torch.cuda.is_available() else "cpu")
    for key, value in env.items():
        print(f"{key:14s} {value}")
    for i in range(torch.cuda.device_count()):
        print(f"cuda:{i:<9d} {torch.cuda.get_device_name(i)}")
    print(f"{'experiments':14s} {', '.join(registry.all_experiments())}")
    return EXIT_OK


def cmd_data(args) -> int:
    from suite.data import manage

    if args.data_verb == "build":
        result = manage.build(profile=args.profile)
        print(result if isinstance(result, str) else "\n".join(f"{k}: {v}" for k, v in dict(result).items()))
        return EXIT_OK
    if args.data_verb == "verify":
        try:
            report = manage.verify(profile=args.profile)  # strict: raises on any difference
        except manage.DataVerificationError as err:
            print(f"energybench: data verify FAILED:\n{err}", file=sys.stderr)
            return EXIT_FAILED
        print(f"data verify: every generated dataset matches ({report.get('dvc', report) if isinstance(report, dict) else report})")
        return EXIT_OK
    if args.data_verb == "status":
        rows = manage.status()
        print(f"{'id':28s} {'kind':10s} {'present':8s} {'size':>10s}  version")
        for r in rows:
            size = f"{r['size_bytes'] / 2**20:.1f} MB" if r.get("size_bytes") else "-"
            print(f"{r['id']:28s} {r['kind']:10s} {'yes' if r['present'] else 'no':8s} {size:>10s}  {r['version']}")
        return EXIT_OK
    try:
        report = manage.add(args.path, as_id=args.as_id, link=args.link, overwrite=args.overwrite,
                            progress=True)
    except FileExistsError as err:
        print(f"energybench: data add: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError) as err:  # unknown id, wrong layout, malformed file, unreadable, full disk
        print(f"energybench: data add: {err}", file=sys.stderr)
        return EXIT_USAGE
    dvc = report["dvc"]
    print(f"{report['id']}: {report['samples']} samples {'linked' if report['linked'] else 'copied'} to "
          f"{report['path']}, version {report['version']}")
    print(f"checked: {report['checked']['mode']}")
    if report["skipped"]:
        shown = "; ".join(f"{name!r} ({why})" for name, why in report["skipped"][:5])
        more = f"; and {len(report['skipped']) - 5} more" if len(report["skipped"]) > 5 else ""
        print(f"passed over: {shown}{more}")
    print(f"dvc: recorded in {dvc['path']} ({dvc.get('md5')})" if dvc.get("recorded") else f"dvc: not recorded: {dvc['reason']}")
    return EXIT_OK


COMMANDS = {"list": cmd_list, "run": _run, "report": cmd_report, "reproduce": cmd_reproduce,
            "info": cmd_info, "data": cmd_data, "bench": cmd_bench}


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that ``finally`` blocks run (workers are stopped)."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    import signal

    from suite.data.registry import ConfigurationError, check_environment
    from suite.harness.store import StoreError

    args = _parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if _main_thread() else None
    try:
        check_environment()
        return COMMANDS[args.verb](args)
    except BrokenPipeError:  # `energybench list | head`
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("\nenergybench: interrupted; finished cells are kept, rerun the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("energybench: stopped by SIGTERM; finished cells are kept, rerun the same command to resume",
              file=sys.stderr)
        return EXIT_TERMINATED
    except (registry.UnknownIdError, registry.PluginError, ConfigurationError, StoreError) as err:
        print(f"energybench: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:
        if err.errno is None or not err.filename:
            raise
        # a folder that cannot be created, read or written (full disk, read-only, permissions)
        print(f"energybench: {err.filename}: {err.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as err:
        if args.verb in ("run", "reproduce") and "--device" in str(err):
            print(f"energybench: {err}", file=sys.stderr)
            return EXIT_USAGE
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
