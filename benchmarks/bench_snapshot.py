"""Huge snapshots: the fast reader against ASE, and the chunked analysis of one frame.

Not run in CI. Three measurements, each printed:

1. Parsing: `structures.fastread` (one frame of a LAMMPS text dump, plain and
   .gz, and an extxyz frame) against ``ase.io.read`` on the same files, best
   of ``--repeats`` runs, atoms per second.
2. Start-up: ``atominfo entropy`` on a small extxyz with the fast reader, and
   with it switched off (ASE's reader, which imports ``ase.io``), best of
   ``--repeats`` runs of a fresh process each.
3. The chunked analysis (`atominfo.workflows.snapshot.analyse_snapshot`) of a
   BCC Ta snapshot (a0 = 3.30 Å, thermal noise, about 13% of the atoms in
   amorphous spheres at the same density), written as a LAMMPS dump, against
   a reference of ``--ref-envs`` BCC environments. Run in a child process so
   that its peak RSS is the analysis's own. Prints wall time, per-stage
   times, peak RSS, the fraction novel and the largest dH, and a projection
   to ``--project`` atoms from the measured per-atom rates (labelled as such).

Usage::

    python benchmarks/bench_snapshot.py --atoms 1000000
    python benchmarks/bench_snapshot.py --atoms 32500000 --skip-parse --skip-startup
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

A0 = 3.30  # Å, BCC Ta
NOISE = 0.08  # Å, thermal displacement per coordinate


def bcc_supercell(n_atoms: int):
    """Cubic BCC Ta repeats holding about n_atoms: (positions (n, 3), box side (3,))."""
    reps = max(2, round((n_atoms / 2) ** (1 / 3)))
    g = np.arange(reps) * A0
    corner = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    pos = np.concatenate([corner, corner + A0 / 2])
    return pos, np.full(3, reps * A0)


def snapshot(n_atoms: int, seed: int = 0, amorphous: float = 0.13):
    """BCC Ta with thermal noise and amorphous spheres (about `amorphous` of the atoms).

    Amorphous spheres: their atoms are replaced by as many uniformly random
    positions in the sphere (the same density, no minimum distance: some pairs
    come very close, which gives the largest dH values).
    """
    rng = np.random.default_rng(seed)
    pos, box = bcc_supercell(n_atoms)
    pos = pos + rng.normal(scale=NOISE, size=pos.shape)
    n_spheres = 6
    volume = amorphous * float(np.prod(box)) / n_spheres
    radius = (3 * volume / (4 * np.pi)) ** (1 / 3)
    centres = rng.uniform(0, 1, size=(n_spheres, 3)) * box
    for c in centres:
        d = pos - c
        d -= box * np.round(d / box)  # periodic
        inside = np.flatnonzero((d**2).sum(axis=1) < radius**2)
        # random points in the sphere, as many as the atoms they replace
        r = radius * rng.uniform(0, 1, len(inside)) ** (1 / 3)
        v = rng.normal(size=(len(inside), 3))
        v /= np.linalg.norm(v, axis=1)[:, None]
        pos[inside] = (c + r[:, None] * v) % box
    return pos % box, box


def write_dump(path: Path, pos: np.ndarray, box: np.ndarray, block: int = 500_000) -> None:
    """A LAMMPS text dump (id type x y z), written block by block."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt") as fh:
        lx, ly, lz = (float(v) for v in box)
        fh.write(
            f"ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n{len(pos)}\n"
            f"ITEM: BOX BOUNDS pp pp pp\n0.0 {lx!r}\n0.0 {ly!r}\n0.0 {lz!r}\n"
            "ITEM: ATOMS id type x y z\n"
        )
        for a in range(0, len(pos), block):
            p = pos[a : a + block]
            ids = np.arange(a + 1, a + len(p) + 1)
            flat = np.column_stack([ids, np.ones(len(p)), p]).ravel().tolist()
            fh.write(("%d %d %.6f %.6f %.6f\n" * len(p)) % tuple(flat))


def write_extxyz(path: Path, pos: np.ndarray, box: np.ndarray) -> None:
    with open(path, "w") as fh:
        lx, ly, lz = (float(v) for v in box)
        fh.write(
            f'{len(pos)}\nLattice="{lx!r} 0.0 0.0 0.0 {ly!r} 0.0 0.0 0.0 {lz!r}" '
            'Properties=species:S:1:pos:R:3 pbc="T T T"\n'
        )
        for a in range(0, len(pos), 500_000):
            p = pos[a : a + 500_000]
            fh.write(("Ta %.8f %.8f %.8f\n" * len(p)) % tuple(p.ravel().tolist()))


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_parse(directory: Path, n_atoms: int, repeats: int) -> None:
    import ase.io

    from atominfo.structures.fastread import extxyz_atoms, lammps_atoms, read_snapshot
    from atominfo.structures.fastread import lines as fastread_lines

    pos, box = bcc_supercell(n_atoms)
    pos = pos + np.random.default_rng(1).normal(scale=NOISE, size=pos.shape)
    n = len(pos)
    dump, gz, xyz = directory / "p.dump", directory / "p.dump.gz", directory / "p.extxyz"
    xyz_gz = directory / "p.extxyz.gz"
    write_dump(dump, pos, box)
    write_dump(gz, pos, box)
    write_extxyz(xyz, pos, box)
    with open(xyz, "rb") as src, gzip.open(xyz_gz, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)

    def with_gzip_module(fn):
        """fn with the gzip module's inflate: the fallback where isal is not installed."""

        def run():
            saved = fastread_lines.gzip_module
            fastread_lines.gzip_module = lambda: gzip
            try:
                return fn()
            finally:
                fastread_lines.gzip_module = saved

        return run

    ase_dump = lambda: ase.io.read(dump, format="lammps-dump-text")  # noqa: E731
    ase_gz = lambda: ase.io.read(gz, format="lammps-dump-text")  # noqa: E731
    ase_xyz = lambda: ase.io.read(xyz, format="extxyz")  # noqa: E731
    ase_xyz_gz = lambda: ase.io.read(xyz_gz, format="extxyz")  # noqa: E731
    rows = [
        ("LAMMPS dump -> Atoms (lammps_atoms)", lambda: lammps_atoms(dump.read_bytes()), ase_dump),
        ("LAMMPS dump -> arrays (read_snapshot)", lambda: read_snapshot(dump), ase_dump),
        ("LAMMPS dump .gz -> arrays (read_snapshot)", lambda: read_snapshot(gz), ase_gz),
        ("LAMMPS dump .gz -> Atoms (read_snapshot)", lambda: read_snapshot(gz, atoms=True), ase_gz),
        (
            "LAMMPS dump .gz -> arrays, gzip module",
            with_gzip_module(lambda: read_snapshot(gz)),
            ase_gz,
        ),
        ("extxyz -> Atoms (extxyz_atoms)", lambda: extxyz_atoms(xyz.read_bytes()), ase_xyz),
        ("extxyz -> arrays (read_snapshot)", lambda: read_snapshot(xyz), ase_xyz),
        ("extxyz .gz -> arrays (read_snapshot)", lambda: read_snapshot(xyz_gz), ase_xyz_gz),
    ]
    # numba compile / cache load outside the timings
    lammps_atoms(dump.read_bytes())
    read_snapshot(gz)
    read_snapshot(xyz)
    print(
        f"\n== parsing one frame of {n:,} atoms, best of {repeats} "
        f"(dump {dump.stat().st_size / 1e6:.0f} MB, inflate: "
        f"{fastread_lines.gzip_module().__name__}; ASE timed once per input file)"
    )
    ase_times: dict = {}
    for name, fast, slow in rows:
        t_fast = best(fast, repeats)
        if slow not in ase_times:
            ase_times[slow] = best(slow, repeats)
        t_slow = ase_times[slow]
        print(
            f"  {name:45s} {t_fast:7.2f} s  {n / t_fast / 1e6:6.2f} M atoms/s"
            f"   ase.io.read {t_slow:7.2f} s  {n / t_slow / 1e6:5.2f} M atoms/s"
            f"   x{t_slow / t_fast:.1f}   (load {os.getloadavg()[0]:.2f})",
            flush=True,
        )


def bench_startup(repeats: int) -> None:
    data = Path(__file__).resolve().parent.parent / "tests" / "data" / "cu_hot_32.extxyz"
    code = (
        "import sys, atominfo.structures.frames as fr\n"
        "if sys.argv[1] == 'ase': fr._fast_atoms = lambda *a: None\n"
        "from atominfo.cli import main\n"
        "try:\n    main(['entropy', sys.argv[2], '-q'])\nexcept SystemExit:\n    pass\n"
        "print('ase.io imported:', 'ase.io' in sys.modules, file=sys.stderr)\n"
    )
    print(f"\n== start-up: atominfo entropy {data.name}, best of {repeats} fresh processes")
    for mode in ("fast", "ase"):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", code, mode, str(data)],
                capture_output=True,
                text=True,
                check=True,
            )
            times.append(time.perf_counter() - t0)
        print(f"  {mode:5s} reader: {min(times):.2f} s  ({out.stderr.strip()})", flush=True)


def reference_descriptors(n_envs: int, k: int, cutoff: float, path: Path) -> None:
    """Descriptors of n_envs BCC Ta environments at a few thermal noise levels."""
    from atominfo import descriptors

    rng = np.random.default_rng(7)
    per = 16_000
    blocks = []
    scales = (0.04, 0.06, 0.08, 0.10)
    for i in range(int(np.ceil(n_envs / per))):
        pos, box = bcc_supercell(per)
        from ase import Atoms

        atoms = Atoms(
            "Ta" + str(len(pos)),
            positions=pos + rng.normal(scale=scales[i % len(scales)], size=pos.shape),
            cell=np.diag(box),
            pbc=True,
        )
        blocks.append(descriptors(atoms, k, cutoff))
    X = np.concatenate(blocks)[:n_envs]
    np.save(path, X)


def peak_rss() -> int:
    """This process's own peak resident memory, bytes.

    VmHWM belongs to the process's current address space, so it starts afresh
    at exec; ru_maxrss does not: on Linux a child reports its parent's peak
    at fork (here the parent that built a 32M-atom snapshot, 3.2 GB) if that
    is larger than its own.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def analyse_child(args) -> None:
    """The analysis alone (run as a child process): prints one JSON line."""
    from atominfo import Reference
    from atominfo.workflows.snapshot import analyse_snapshot

    client = None
    if args.dask:
        from atominfo.engine.dask_client import get_client

        client = get_client(args.dask)
    t0 = time.perf_counter()
    ref = Reference(np.load(args.child[1]), args.bandwidth, k=args.k, cutoff=args.cutoff)
    _ = ref.index  # the cluster index, built once
    t_ref = time.perf_counter() - t0
    out = Path(args.child[2])
    res = analyse_snapshot(
        args.child[0],
        ref,
        out / "dh.npy",
        dump=out / "dh.dump" if args.dump else None,
        dh=args.dh,
        dh_tol=args.dh_tol,
        chunk_atoms=args.chunk_atoms,
        client=client,
    )
    rss = peak_rss()
    print(
        json.dumps(
            {
                "reference_index_s": t_ref,
                "seconds": res.seconds,
                "timings": res.timings,
                "atoms": res.atoms,
                "novelty": res.novelty,
                "max_dH": res.max_dH,
                "chunks": res.chunks,
                "halo_atoms": res.halo_atoms,
                "peak_rss": rss,
            }
        )
    )


def bench_snapshot(directory: Path, args) -> None:
    t0 = time.perf_counter()
    pos, box = snapshot(args.atoms)
    dump = directory / "snapshot.dump"
    write_dump(dump, pos, box)
    n = len(pos)
    del pos
    t_gen = time.perf_counter() - t0
    ref_path = directory / "ref.npy"
    t0 = time.perf_counter()
    reference_descriptors(args.ref_envs, args.k, args.cutoff, ref_path)
    t_ref = time.perf_counter() - t0
    print(
        f"\n== chunked analysis: {n:,} atoms BCC Ta + amorphous spheres "
        f"(dump {dump.stat().st_size / 1e9:.2f} GB, written in {t_gen:.0f} s), "
        f"{args.ref_envs:,} reference environments (described in {t_ref:.0f} s), "
        f"k={args.k}, rc={args.cutoff} Å, h={args.bandwidth} 1/Å, dH of {args.dh} atoms "
        f"(at most {args.dh_tol:g} nats above exact), "
        f"chunk_atoms={args.chunk_atoms:,}" + (f", on Dask {args.dask}" if args.dask else ""),
        flush=True,
    )
    r = run_child(directory / "local", dump, ref_path, args, None)
    report(r, n, args, "here")
    if args.dask:
        d = run_child(directory / "dask", dump, ref_path, args, args.dask)
        report(d, n, args, f"on Dask {args.dask}")
        same = all(
            (directory / "local" / f).read_bytes() == (directory / "dask" / f).read_bytes()
            for f in ("dh.npy", "dh.dump")
            if (directory / "local" / f).exists()
        )
        print(f"  Dask outputs identical to the local run's (bytes): {'yes' if same else 'NO'}")
    if args.project:
        project(r, n, args)


def run_child(out: Path, dump: Path, ref_path: Path, args, dask: str | None) -> dict:
    """The analysis in a fresh process (its own peak RSS): the child's JSON line."""
    out.mkdir()
    child = (
        [sys.executable, __file__, "--child", str(dump), str(ref_path), str(out)]
        + ["--k", str(args.k), "--cutoff", str(args.cutoff), "--bandwidth", str(args.bandwidth)]
        + ["--dh", args.dh, "--chunk-atoms", str(args.chunk_atoms), "--dh-tol", str(args.dh_tol)]
        + (["--dump"] if args.dump else [])
        + (["--dask", dask] if dask else [])
    )
    proc = subprocess.run(child, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr)
        raise SystemExit(proc.returncode)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(r: dict, n: int, args, where: str) -> None:
    print(
        f"  {where}: wall time {r['seconds']:.1f} s ({n / r['seconds']:,.0f} atoms/s), "
        f"reference index {r['reference_index_s']:.1f} s, peak RSS "
        f"{r['peak_rss'] / 1e9:.2f} GB (this process; Dask workers not counted)"
    )
    print("  stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in r["timings"].items()))
    print(f"  {r['chunks']} boxes, halo {r['halo_atoms'] / n:.2f} gathered atoms per atom")
    print(f"  fraction novel (dH > 0) {r['novelty']:.4f}, largest dH {r['max_dH']:.2f} nats")
    sent = (n + r["halo_atoms"]) * POSITION_BYTES
    print(
        f"  Dask traffic: {sent / 1e9:.3f} GB of positions out ({sent / n:.1f} bytes an "
        f"atom), {n * RESULT_BYTES / 1e9:.3f} GB of results back",
        flush=True,
    )


# Per atom sent to a worker: 3 float64 coordinates and an int64 atom number;
# back: a float64 dH and a bool label.
POSITION_BYTES, RESULT_BYTES = 32, 9


def project(r: dict, n: int, args) -> None:
    """Projection (not a measurement) to --project atoms, here and on Dask clusters.

    From this run's stage times: 'read' (streaming and sorting the frame) is
    serial on the client; 'halo' and 'write' run on the client while the
    workers compute (overlapped); descriptors, labels and dH ran on this
    machine's cores and scale with the cores of the cluster. The analyser
    (reference and its indexes) is sent once to each node.
    """
    scale = args.project / n
    t = {k: v * scale for k, v in r["timings"].items()}
    local = r["seconds"] * scale
    print(
        f"\n  PROJECTION (not measured) to {args.project:,} atoms from these per-atom rates: "
        f"{local / 60:.0f} min here (+ {r['reference_index_s']:.0f} s reference index); "
        "memory stays that of one box plus the reference and the output map",
        flush=True,
    )
    cores_here = os.cpu_count() or 1
    compute = (t["descriptors"] + t["labels"] + t["dH"]) * cores_here  # core-seconds
    client_overlap = t["halo"] + t["write"]
    sent = args.project * (1 + r["halo_atoms"] / n) * POSITION_BYTES
    back = args.project * RESULT_BYTES
    analyser = 2.2 * args.ref_envs * (2 * args.k - 1) * 8  # bytes, see snapshot_dask.py
    link = args.network_gbps * 1e9 / 8
    print(
        f"  Dask, {args.cores_per_node} cores a node, a {args.network_gbps:g} Gb/s link at the "
        f"client; compute {compute:,.0f} core-s (measured on {cores_here} cores), client "
        f"read {t['read']:.0f} s then halo+write {client_overlap:.0f} s overlapped with the "
        f"workers; positions out {sent / 1e9:.2f} GB, results back {back / 1e9:.2f} GB, "
        f"analyser {analyser / 1e9:.2f} GB to each node"
    )
    print("  | nodes (cores) | compute | client halo+write | transfer | total | dominant |")
    print("  | --- | --- | --- | --- | --- | --- |")
    for nodes in (1, 16, 128):
        work = compute / (nodes * args.cores_per_node)
        transfer = (sent + back) / link + analyser * math.ceil(math.log2(nodes + 1)) / link
        overlapped = max(work, client_overlap, transfer)
        total = t["read"] + overlapped
        parts = {"compute": work, "client halo+write": client_overlap, "transfer": transfer}
        top = max(parts, key=lambda k: parts[k])
        print(
            f"  | {nodes} ({nodes * args.cores_per_node:,}) | {work:,.0f} s | "
            f"{client_overlap:.0f} s | {transfer:.0f} s | {total / 60:.1f} min | "
            f"{top} ({parts[top] / total:.0%}); client read {t['read'] / total:.0%} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=1_000_000)
    parser.add_argument("--parse-atoms", type=int, default=1_000_000)
    parser.add_argument("--ref-envs", type=int, default=160_000)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--bandwidth", type=float, default=0.015)
    parser.add_argument("--dh", default="novel", choices=("novel", "all", "none"))
    parser.add_argument("--chunk-atoms", type=int, default=200_000)
    parser.add_argument("--dh-tol", type=float, default=0.01, help="Bound on dH, nats.")
    parser.add_argument(
        "--dask", default=None, help="Analyse the boxes on Dask (local:N, address)."
    )
    parser.add_argument("--dump", action="store_true", help="Also write the OVITO dump.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--project", type=int, default=32_500_000)
    parser.add_argument("--cores-per-node", type=int, default=32)
    parser.add_argument("--network-gbps", type=float, default=10.0)
    parser.add_argument("--skip-parse", action="store_true")
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument("--skip-snapshot", action="store_true")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="Directory for the generated files (default: a temporary one).",
    )
    parser.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        analyse_child(args)
        return
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    directory = Path(tempfile.mkdtemp(prefix="bench_snapshot_", dir=args.workdir))
    try:
        if not args.skip_parse:
            bench_parse(directory, args.parse_atoms, args.repeats)
        if not args.skip_startup:
            bench_startup(args.repeats)
        if not args.skip_snapshot:
            bench_snapshot(directory, args)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
