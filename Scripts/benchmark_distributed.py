#!/usr/bin/env python3
"""Data-parallel training on this machine: `kiln train --distributed` under mpirun.

Scaling: the workshop CNN on the first --limit Fashion-MNIST images for --epochs epochs (1% held
out for validation), 1 rank × 1 thread against 2 ranks × 1 thread (KILN_NUM_THREADS=1), at each global batch
of --batch-sizes; samples/s from metrics.json (the whole fit, first step included), the all-reduce
time per step (and the part of it the step waited for after its backward pass) and the gradient
bytes per step. Accuracy (--accuracy-epochs > 0): the full data,
seeds 1–3, one process against 2 ranks at the same global batch, test accuracy after that many
epochs. Prints a table and, with --record, adds it to docs/benchmarks.md.
"""
import argparse, datetime, json, os, statistics, subprocess, sys, tempfile
from pathlib import Path

from benchmark import machine, publish  # Scripts/benchmark.py, beside this file

ROOT = Path(__file__).resolve().parent.parent
KILN = str(ROOT / ".build/release/kiln")
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_btl": "self,vader,tcp"}


def train(ranks, threads, arguments, folder):
    """metrics.json of one `kiln train` run (under mpirun with --distributed when ranks > 1)."""
    env = dict(os.environ, **MPI_ENV)
    if threads:
        env["KILN_NUM_THREADS"] = str(threads)
    command = [KILN, "train"] + arguments + ["--device", "cpu", "--out", folder]
    if ranks > 1:
        command = ["mpirun", "--oversubscribe", "--bind-to", "core", "-np", str(ranks), "-x", "KILN_NUM_THREADS"] + command + ["--distributed"]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return json.loads((Path(folder) / "metrics.json").read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--limit", type=int, default=32768)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs per configuration")
    parser.add_argument("--accuracy-epochs", type=int, default=5)
    parser.add_argument("--accuracy-batch-size", type=int, default=64)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    subprocess.run(["swift", "build", "-c", "release", "--product", "kiln"], cwd=ROOT, check=True, capture_output=True)
    scratch = tempfile.mkdtemp(prefix="kiln-distributed-")
    commit, cpu = machine()
    lines = [f"## {datetime.date.today()} — data-parallel training, commit {commit}", "",
             f"{cpu}, {os.cpu_count()} cores; Open MPI over shared memory; `Scripts/benchmark.sh distributed`. Scaling: the workshop CNN on "
             f"{args.limit} Fashion-MNIST images, {args.epochs} epochs (1% held out for validation), best of {args.rounds} runs; samples/s over the whole fit.", "",
             "| global batch | ranks × threads | samples/s | scaling | all-reduce ms/step | of it waited for after backward | gradient KB/step |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        common = ["--dataset", "fashion-mnist", "--limit", str(args.limit), "--epochs", str(args.epochs), "--batch-size", str(batch),
                  "--validation-split", "0.01"]
        results = {}
        for ranks in (1, 2):
            runs = [train(ranks, 1, common, f"{scratch}/scale-{batch}-{ranks}-{r}") for r in range(args.rounds)]
            results[ranks] = max(runs, key=lambda m: m["samples_per_second"])
            print(f"batch {batch}, {ranks} rank(s): {results[ranks]['samples_per_second']:.0f} samples/s", file=sys.stderr)
        for ranks in (1, 2):
            m = results[ranks]
            scaling = m["samples_per_second"] / results[1]["samples_per_second"]
            reduce_ms = f"{m['allreduce_ms_per_step']:.2f}" if ranks > 1 else "—"
            exposed = f"{m['allreduce_exposed_ms_per_step']:.2f} ({100 * (1 - m['allreduce_overlap']):.0f}%)" if ranks > 1 else "—"
            kb = f"{m['gradient_bytes_per_step'] / 1024:.0f}" if ranks > 1 else "—"
            lines.append(f"| {batch} | {ranks} × 1 | {m['samples_per_second']:.0f} | {scaling:.2f}× | {reduce_ms} | {exposed} | {kb} |")
    if args.accuracy_epochs > 0:
        lines += ["", f"Test accuracy after {args.accuracy_epochs} epochs on the full data, global batch {args.accuracy_batch_size}, "
                  "one process (2 threads) against 2 ranks × 1 thread:", "",
                  "| configuration | seed 1 | seed 2 | seed 3 | mean |", "|---|---:|---:|---:|---:|"]
        for ranks in (1, 2):
            accuracies = [train(ranks, None if ranks == 1 else 1,
                                ["--dataset", "fashion-mnist", "--epochs", str(args.accuracy_epochs), "--batch-size",
                                 str(args.accuracy_batch_size), "--seed", str(seed)], f"{scratch}/accuracy-{ranks}-{seed}")["test_accuracy"]
                          for seed in (1, 2, 3)]
            print(f"{ranks} rank(s): {accuracies}", file=sys.stderr)
            lines.append(f"| {'1 process' if ranks == 1 else '2 ranks'} | " + " | ".join(f"{a:.4f}" for a in accuracies)
                         + f" | {statistics.mean(accuracies):.4f} |")
    publish("\n".join(lines) + "\n", args.record)


if __name__ == "__main__":
    main()
