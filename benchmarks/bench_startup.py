"""Start-up figures: command line, import, and numba's first-use compilation.

Measures, with the `atominfo` installed beside the Python running this script
(e.g. `.venv/bin/python benchmarks/bench_startup.py`):

* ``python -c pass`` (the interpreter alone, for scale) and
  ``python -c 'import atominfo'``;
* ``atominfo --help`` and ``atominfo entropy tests/data/cu_fcc_108.extxyz``;
  each best of `--repeat` (default 5) runs after one warm-up run, so the
  operating system's file cache and numba's on-disk cache are warm;
* the first use of the numba kernels: descriptors, entropy and dH of the
  108-atom test crystal in a fresh process with an empty ``NUMBA_CACHE_DIR``
  (every kernel compiled), then again with that cache filled (kernels loaded);
  the difference is the compilation cost a user pays once per install;
* with ``--readonly-cache``: where numba caches when the installed package
  directory is read-only and ``NUMBA_CACHE_DIR`` is unset (a copy of the
  package in a read-only directory, run as an unprivileged user when this
  script runs as root, since root ignores file permissions).

Wall times of whole processes (``time.perf_counter`` around
``subprocess.run``), in seconds. Prints a table, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "cu_fcc_108.extxyz"

# Timed inside the child: import, then the first calls of every kernel used by
# descriptors -> entropy -> dH, so that import time and compile time are separate.
FIRST_USE = """
import json, sys, time
t0 = time.perf_counter()
import atominfo
t1 = time.perf_counter()
X = atominfo.descriptors(sys.argv[1])
H = atominfo.entropy(X)
dH = atominfo.delta_entropy(X[:10], X)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_use": t2 - t1, "H": float(H)}))
"""


def run(cmd, env=None, cwd=ROOT, user=None) -> tuple[float, subprocess.CompletedProcess]:
    if user is not None:  # (uid, gid) to run as
        cmd = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups", *cmd]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - start, done


def failure(done: subprocess.CompletedProcess) -> str:
    lines = (done.stderr or done.stdout).strip().splitlines()
    return f"exit {done.returncode}: {lines[-1] if lines else '(no output)'}"


def best_of(cmd, repeat: int, env=None) -> dict:
    """Best wall time of `repeat` runs after one warm-up run."""
    _, done = run(cmd, env)
    if done.returncode != 0:
        return {"command": " ".join(map(str, cmd)), "error": failure(done)}
    times = []
    for _ in range(repeat):
        seconds, done = run(cmd, env)
        if done.returncode != 0:
            return {"command": " ".join(map(str, cmd)), "error": failure(done)}
        times.append(seconds)
    return {
        "command": " ".join(map(str, cmd)),
        "best": min(times),
        "median": sorted(times)[len(times) // 2],
        "runs": len(times),
    }


def first_use(python: str, sample: Path) -> dict:
    """Cold (empty numba cache) and warm (cache filled) first use, in fresh processes."""
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        out = {}
        for label in ("cold", "warm"):
            seconds, done = run([python, "-c", FIRST_USE, str(sample)], env)
            if done.returncode != 0:
                return {"error": failure(done)}
            out[label] = {"wall": seconds, **json.loads(done.stdout.strip().splitlines()[-1])}
        out["cache_files"] = sum(1 for p in Path(cache).rglob("*") if p.is_file())
    out["compile"] = out["cold"]["first_use"] - out["warm"]["first_use"]
    return out


def readonly_cache(python: str, sample: Path) -> dict:
    """Where numba writes its cache when the package directory cannot be written.

    A copy of the package goes into a read-only directory, put first on
    PYTHONPATH; HOME and XDG_CACHE_HOME point to a fresh directory. Two runs
    per case: the second is fast only if the first could write its cache.
    """
    import atominfo

    package = Path(atominfo.__file__).resolve().parent
    user = None
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            return {"error": "running as root without setpriv: cannot test a read-only directory"}
        import pwd

        entry = pwd.getpwnam("nobody")
        user = (entry.pw_uid, entry.pw_gid)
    with tempfile.TemporaryDirectory(prefix="ro-install-") as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o755)
        site = tmp / "site"
        shutil.copytree(
            package,
            site / "atominfo",
            ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"),
        )
        shutil.copy(sample, tmp / sample.name)
        for path in [site, *site.rglob("*")]:  # read-only for everyone
            os.chmod(path, 0o555 if path.is_dir() else 0o444)
        out = {"user": f"uid {user[0] if user else os.geteuid()}"}
        # 1. a writable home: numba may fall back to its user-wide cache there;
        # 2. nothing writable (read-only home too, NUMBA_CACHE_DIR unset);
        # 3. nothing writable but NUMBA_CACHE_DIR set to a writable directory.
        for case, home_writable, cache_dir in (
            ("writable home", True, None),
            ("read-only home", False, None),
            ("read-only home, NUMBA_CACHE_DIR", False, "numba-cache"),
        ):
            home = tmp / case.replace(" ", "_").replace(",", "")
            home.mkdir()
            env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
            env.update(PYTHONPATH=str(site), HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
            if cache_dir is not None:
                (tmp / cache_dir).mkdir()
                env["NUMBA_CACHE_DIR"] = str(tmp / cache_dir)
            for path in (home, tmp / (cache_dir or "")):
                if user is not None and path != tmp:
                    os.chown(path, *user)
            if not home_writable:
                os.chmod(home, 0o555)
            runs = []
            for _ in range(2):
                seconds, done = run(
                    [python, "-c", FIRST_USE, str(tmp / sample.name)], env, cwd=tmp, user=user
                )
                if done.returncode != 0:
                    runs.append({"error": failure(done)})
                    break
                runs.append({"wall": seconds, **json.loads(done.stdout.strip().splitlines()[-1])})
            where = {"package": site, "home": home}
            if cache_dir is not None:
                where["NUMBA_CACHE_DIR"] = tmp / cache_dir
            out[case] = {
                "runs": runs,
                "cache_files": {
                    name: sum(1 for p in root.rglob("*") if p.suffix in (".nbi", ".nbc"))
                    for name, root in where.items()
                },
            }
        return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per command")
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="structure file")
    parser.add_argument(
        "--readonly-cache",
        action="store_true",
        help="also test numba's cache with a read-only package directory",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)

    python = sys.executable
    script = Path(python).with_name("atominfo")
    if not script.exists():
        parser.error(f"no atominfo command beside {python}: install the package first")
    results = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python -c pass": best_of([python, "-c", "pass"], args.repeat),
        "import atominfo": best_of([python, "-c", "import atominfo"], args.repeat),
        "atominfo --help": best_of([str(script), "--help"], args.repeat),
        "atominfo entropy": best_of([str(script), "entropy", str(args.sample)], args.repeat),
        "numba first use": first_use(python, args.sample),
    }
    if args.readonly_cache:
        results["read-only install"] = readonly_cache(python, args.sample)

    if args.json:
        print(json.dumps(results, indent=2, default=str))
        return 0
    load = ", ".join(f"{x:.2f}" for x in results["load_average"])
    print(
        f"Python {results['python']} on {results['machine']}, {results['cpus']} CPUs, "
        f"load average {load}; best of {args.repeat} warm runs, seconds"
    )
    for key in ("python -c pass", "import atominfo", "atominfo --help", "atominfo entropy"):
        r = results[key]
        shown = f"{r['best']:.3f} (median {r['median']:.3f})" if "best" in r else r["error"]
        print(f"  {key:<20} {shown}")
    r = results["numba first use"]
    if "error" in r:
        print(f"  numba first use      {r['error']}")
    else:
        print(
            f"  first use, empty numba cache: {r['cold']['first_use']:.2f} "
            f"(process {r['cold']['wall']:.2f}); cache filled: {r['warm']['first_use']:.2f} "
            f"(process {r['warm']['wall']:.2f}); compilation {r['compile']:.2f}, "
            f"{r['cache_files']} cache files"
        )
    if "read-only install" in results:
        r = results["read-only install"]
        print(f"  read-only package directory, run as {r.get('user', '?')}:")
        if "error" in r:
            print(f"    {r['error']}")
        for case, value in r.items():
            if case in ("user", "error"):
                continue
            runs = "; ".join(
                f"first use {x['first_use']:.2f}" if "error" not in x else x["error"]
                for x in value["runs"]
            )
            files = ", ".join(f"{k} {v}" for k, v in value["cache_files"].items())
            print(f"    {case:<34} {runs} (cache files: {files})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
