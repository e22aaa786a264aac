"""Scaling of the kernel sums: local CPU engine vs Dask (1 and 2 workers) vs PyTorch.

All engines compute the same exact log kernel sums of `--queries` thermal Cu
environments against a `--reference` set (k=32, rc=5 Å, h=0.015 1/Å); each
figure is printed as pairs/s and as a ratio to the local CPU engine measured
in the same run (2 threads), so the ratios survive a noisy machine. Also:
per-core rates (1 thread) for the CPU engine and the descriptors, the cost of
broadcasting the reference, the float32 error of the torch engine, and the
projection to a 32.5M-atom snapshot against a 160,000-environment reference.

Usage: python benchmarks/bench_scale.py [--queries 12000] [--reference 12000]
       [--repeats 3] [--json results.json] [--cores-per-node 32] [--network-gbps 10]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from atominfo.descriptor import structure_descriptors
from atominfo.engine import log_kernel_sums
from atominfo.structures.datasets import rattled_fcc_cu

H = np.array([0.015])


def best_time(fn, repeats):
    """Best wall time of `repeats` calls (s) and the last result."""
    best, result = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def thermal_environments(n, sigma, seed):
    """Descriptors of about n atoms of FCC Cu rattled by sigma Å (a thermal crystal)."""
    side = max(2, round((n / 4) ** (1 / 3)))
    atoms = rattled_fcc_cu(
        (side, side, max(1, round(n / (4 * side * side)))), sigma=sigma, seed=seed
    )
    return structure_descriptors(atoms)[:n]


def bench_cpu(Y, X, repeats):
    pairs = len(Y) * len(X)
    rows = {}
    log_kernel_sums(Y[:64], X, H)  # compile / load the numba cache
    for threads in (1, 2):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        with threadpool_limits(threads):
            t, out = best_time(lambda: log_kernel_sums(Y, X, H), repeats)
        rows[threads] = (t, pairs / t)
        if threads == 2:
            reference = out
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return rows, reference


def bench_dask(Y, X, repeats, expected):
    from atominfo.engine.dask import prepare_reference
    from atominfo.engine.dask_client import close_client, get_client

    rows = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        client = get_client(f"local:{workers}", threads_per_worker=1)
        startup = time.perf_counter() - t0
        try:
            client.run(lambda: log_kernel_sums(Y[:64], X[:64], H))  # warm numba on workers
            t_scatter, opts = best_time(lambda c=client: prepare_reference(X, client=c), 1)
            t, out = best_time(
                lambda o=opts: log_kernel_sums(Y, X, H, backend="dask", **o), repeats
            )
            rows[workers] = dict(
                time=t,
                pairs_per_s=len(Y) * len(X) / t,
                startup=startup,
                scatter=t_scatter,
                max_diff=float(np.abs(out - expected).max()),
            )
        finally:
            close_client(client)
    return rows


def bench_torch(Y, X, repeats, expected):
    try:
        import torch
    except ImportError:
        return None
    from atominfo.engine.torch import float32_error_bound

    torch.set_num_threads(2)
    rows = {"cuda_available": torch.cuda.is_available(), "version": torch.__version__}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for precision in ("float64", "float32"):
            t, out = best_time(
                lambda d=device, p=precision: log_kernel_sums(
                    Y, X, H, backend="torch", device=d, precision=p
                ),
                repeats,
            )
            rows[f"{device}/{precision}"] = dict(
                time=t,
                pairs_per_s=len(Y) * len(X) / t,
                max_error=float(np.abs(out - expected).max()),
                bound=float(float32_error_bound(Y, X, H)[0]) if precision == "float32" else None,
            )
    return rows


def bench_descriptors_per_core(n, repeats):
    atoms = rattled_fcc_cu((10, 10, 10), sigma=0.1, seed=0)[:n]
    structure_descriptors(atoms[:64])
    numba.set_num_threads(1)
    t, _ = best_time(lambda: structure_descriptors(atoms), repeats)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return len(atoms) / t


def project(
    pair_rate_core,
    desc_rate_core,
    cores_per_node,
    network_gbps,
    n_atoms=32.5e6,
    n_ref=160_000,
    width=63,
):
    """Seconds per stage for dH of an n_atoms snapshot on 1, 16 and 128 nodes.

    Assumes perfect scaling of the measured per-core rates within and across
    nodes and one Dask worker per node. Descriptors: computed where the
    snapshot is read (one node, as the CLI does), or spread over all nodes.
    Transfer over one link of `network_gbps` at the client: the queries out,
    the results back, the reference once (Dask then replicates it worker to
    worker in a binary tree: ceil(log2(nodes)) rounds of one copy per link).
    """
    link = network_gbps * 1e9 / 8  # bytes/s
    ref_bytes = n_ref * width * 8
    rows = []
    for nodes in (1, 16, 128):
        cores = nodes * cores_per_node
        kernel = n_atoms * n_ref / (pair_rate_core * cores)
        desc_one_node = n_atoms / (desc_rate_core * cores_per_node)
        desc_spread = n_atoms / (desc_rate_core * cores)
        if nodes == 1:
            transfer = 0.0
        else:
            transfer = (n_atoms * width * 8 + n_atoms * 8 + ref_bytes) / link + math.ceil(
                math.log2(nodes)
            ) * ref_bytes / link
        rows.append(
            dict(
                nodes=nodes,
                cores=cores,
                kernel_s=kernel,
                descriptors_one_node_s=desc_one_node,
                descriptors_spread_s=desc_spread,
                transfer_s=transfer,
            )
        )
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=12_000)
    parser.add_argument("--reference", type=int, default=12_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores-per-node", type=int, default=32)
    parser.add_argument("--network-gbps", type=float, default=10.0)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"numba threads {numba.get_num_threads()}"
    )
    X = thermal_environments(args.reference, 0.05, seed=1)
    Y = thermal_environments(args.queries, 0.10, seed=2)
    pairs = len(Y) * len(X)
    print(
        f"input: {len(Y)} queries (Cu rattled 0.10 Å) x {len(X)} reference (0.05 Å), "
        f"width {X.shape[1]}, h = {H[0]} 1/Å: {pairs:.3g} pairs"
    )

    cpu_rows, expected = bench_cpu(Y, X, args.repeats)
    base = cpu_rows[2][1]
    print("\nengine                          time (s)     pairs/s   ratio to local 2 threads")
    for threads, (t, rate) in cpu_rows.items():
        print(
            f"local cpu, {threads} thread(s)          {t:8.3f}  {rate:10.3g}   {rate / base:6.2f}"
        )
    dask_rows = bench_dask(Y, X, args.repeats, expected)
    for workers, r in dask_rows.items():
        print(
            f"dask, {workers} worker(s) x 1 thread     {r['time']:8.3f}  {r['pairs_per_s']:10.3g}"
            f"   {r['pairs_per_s'] / base:6.2f}   (max |diff| {r['max_diff']:.1e} nats; "
            f"cluster start {r['startup']:.1f} s, reference broadcast {r['scatter']:.3f} s)"
        )
    torch_rows = bench_torch(Y, X, args.repeats, expected)
    if torch_rows is None:
        print("torch: not installed (pip install 'atominfo[gpu]')")
    else:
        for key, r in torch_rows.items():
            if not isinstance(r, dict):
                continue
            bound = f", stated bound {r['bound']:.1e}" if r["bound"] else ""
            print(
                f"torch {key:<22}    {r['time']:8.3f}  {r['pairs_per_s']:10.3g}   "
                f"{r['pairs_per_s'] / base:6.2f}   "
                f"(max |error| {r['max_error']:.1e} nats{bound})"
            )
        if not torch_rows["cuda_available"]:
            print("torch cuda: no GPU available on this machine; not measured")

    desc_core = bench_descriptors_per_core(4000, args.repeats)
    pair_core = cpu_rows[1][1]
    print(f"\nper core: kernel sums {pair_core:.3g} pairs/s, descriptors {desc_core:,.0f} atoms/s")
    proj = project(pair_core, desc_core, args.cores_per_node, args.network_gbps)
    print(
        f"projection: dH of 32.5M atoms vs 160,000 reference, {args.cores_per_node} cores/node, "
        f"{args.network_gbps:g} Gb/s link at the client, perfect scaling"
    )
    print("nodes   kernel sums (s)   descriptors 1 node / spread (s)   transfer (s)")
    for r in proj:
        print(
            f"{r['nodes']:5d}   {r['kernel_s']:15.0f}   {r['descriptors_one_node_s']:13.0f} / "
            f"{r['descriptors_spread_s']:<8.1f}         {r['transfer_s']:8.1f}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                dict(
                    queries=len(Y),
                    reference=len(X),
                    cpu=cpu_rows,
                    dask=dask_rows,
                    torch=torch_rows,
                    descriptors_per_core=desc_core,
                    projection=proj,
                ),
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
