#!/usr/bin/env python3
"""Kiln against Keras (TensorFlow CPU) and PyTorch (CPU) on the workshop CNN and the real Fashion-MNIST.

Each measurement runs in its own process (so peak memory is per engine), engines interleaved
(A B C A B C …) so that drift on a shared machine hits all of them alike. Prints one table and, with
--record, adds it to docs/benchmarks.md (newest first). Run through Scripts/benchmark.sh, which
makes the virtual environment and the release build.
"""
import argparse, datetime, gzip, json, os, platform, resource, statistics, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("KILN_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))


def fashion_mnist():
    import numpy as np
    def read(name, offset):
        return np.frombuffer(gzip.open(DATA / name).read()[offset:], np.uint8)
    x_train = read("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    x_test = read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    return x_train, read("train-labels-idx1-ubyte.gz", 8).astype("int64"), x_test, read("t10k-labels-idx1-ubyte.gz", 8).astype("int64")


def windows(step, batch, steps, count):
    """Median samples/s over `count` windows of `steps` steps, after one warm-up window."""
    rates = []
    for window in range(count + 1):
        start = time.perf_counter()
        step(window, steps)
        if window:
            rates.append(steps * batch / (time.perf_counter() - start))
    return statistics.median(rates)


def inference(predict, images, passes=3):
    """Median images/s over `passes` calls of `predict` (each over the whole test set)."""
    rates = []
    for _ in range(passes):
        start = time.perf_counter()
        predict()
        rates.append(images / (time.perf_counter() - start))
    return statistics.median(rates)


def keras_worker(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np, keras
    from keras import layers
    x_train, y_train, x_test, y_test = fashion_mnist()
    def model():
        keras.utils.set_random_seed(args.seed)
        m = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
                              layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2), layers.Conv2D(32, 3, activation="relu"),
                              layers.Dropout(0.2), layers.Flatten(), layers.Dense(32, activation="relu"), layers.Dense(10)])
        m.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return m
    m = model()
    x = x_train.astype("float32") / 255
    n = args.steps * args.batch_size
    def step(window, steps):
        start = (window * n) % (len(x) - n)
        m.fit(x[start:start + n], y_train[start:start + n], batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False)
    result = {"train_samples_per_second": windows(step, args.batch_size, args.steps, args.windows)}
    xt = x_test.astype("float32") / 255
    m.predict(xt[:256], batch_size=256, verbose=0)
    result["inference_images_per_second"] = inference(lambda: m.predict(xt, batch_size=256, verbose=0), len(xt))
    if args.epochs:
        fresh, accuracies = model(), []
        for _ in range(args.epochs):
            fresh.fit(x, y_train, batch_size=args.batch_size, epochs=1, verbose=0)
            accuracies.append(float(fresh.evaluate(xt, y_test, batch_size=256, verbose=0)[1]))
        result["test_accuracy_per_epoch"] = accuracies
    return result


def torch_worker(args):
    import numpy as np, torch
    import torch.nn as nn
    torch.set_num_threads(os.cpu_count())
    device = torch.device(args.torch_device)  # cuda: fp32 (AMP off), channels-last, as on the CPU
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    x_train, y_train, x_test, y_test = fashion_mnist()
    def model():
        torch.manual_seed(args.seed)
        m = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 32, 3), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(), nn.Linear(288, 32), nn.ReLU(), nn.Linear(32, 10))
        return m.to(device, memory_format=torch.channels_last)  # PyTorch's faster CPU layout here
    def tensors(x):
        return torch.from_numpy(x.astype("float32") / 255).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last).to(device)
    x, y, xt = tensors(x_train), torch.from_numpy(y_train).to(device), tensors(x_test)
    m = model()
    optimizer, loss = torch.optim.Adam(m.parameters(), 1e-3, eps=1e-7), nn.CrossEntropyLoss()
    def train(net, opt, first, steps, batch):
        net.train()
        for i in range(steps):
            s = (first + i * batch) % (len(x) - batch)
            opt.zero_grad()
            loss(net(x[s:s + batch]), y[s:s + batch]).backward()
            opt.step()
        sync()
    n = args.steps * args.batch_size
    result = {"train_samples_per_second": windows(lambda w, steps: train(m, optimizer, w * n, steps, args.batch_size),
                                                  args.batch_size, args.steps, args.windows)}
    m.eval()
    with torch.no_grad():
        m(xt[:256])
        result["inference_images_per_second"] = inference(lambda: ([m(xt[s:s + 256]) for s in range(0, len(xt), 256)], sync()), len(xt))
    if args.epochs:
        fresh = model()
        opt, accuracies = torch.optim.Adam(fresh.parameters(), 1e-3, eps=1e-7), []
        for epoch in range(args.epochs):
            order = torch.randperm(len(x)).to(device)
            fresh.train()
            for s in range(0, len(x), args.batch_size):
                idx = order[s:s + args.batch_size]
                opt.zero_grad()
                loss(fresh(x[idx]), y[idx]).backward()
                opt.step()
            fresh.eval()
            with torch.no_grad():
                correct = sum(int((fresh(xt[s:s + 256]).argmax(1).cpu() == torch.from_numpy(y_test[s:s + 256])).sum()) for s in range(0, len(xt), 256))
            accuracies.append(correct / len(xt))
        result["test_accuracy_per_epoch"] = accuracies
    return result


def run(engine, args, size, epochs, seed=1):
    steps, windows = (args.steps, args.windows) if seed == 1 else (1, 1)  # further seeds: accuracy only
    common = ["--batch-size", str(size), "--steps", str(steps), "--windows", str(windows), "--epochs", str(epochs),
              "--seed", str(seed)]
    if engine == "kiln":
        command = [str(ROOT / ".build/release/kiln"), "benchmark", "train", "--device", args.kiln_device] + common
    else:
        command = [sys.executable, __file__, "--worker", engine, "--torch-device", args.torch_device] + common
    return measured(command, engine)


def measured(command, label):
    """The last JSON line a measuring process prints; its failure ends the run with its output."""
    output = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in output.stdout.splitlines() if line.startswith("{")]
    if output.returncode or not lines:
        raise SystemExit(f"{label} failed:\n{output.stdout[-2000:]}\n{output.stderr[-2000:]}")
    return json.loads(lines[-1])


def workload_parser(doc, workloads, steps, workload):
    """The options the workload benchmarks (sequences, generative) share."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="kiln,keras,torch")
    parser.add_argument("--workloads", default=",".join(workloads))
    parser.add_argument("--steps", type=int, default=steps, help="training steps per measured window")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--kiln-device", default="cpu")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--worker")
    parser.add_argument("--workload", default=workload)
    return parser


def run_workload(engine, workload, script, subcommand, options, args):
    """One measurement: `kiln benchmark SUBCOMMAND` or the script's own worker for `engine`."""
    common = ["--workload", workload, "--steps", str(args.steps), "--windows", str(args.windows)] + options
    if engine == "kiln":
        command = [str(ROOT / ".build/release/kiln"), "benchmark", subcommand, "--device", args.kiln_device] + common
    else:
        command = [sys.executable, script, "--worker", engine] + common
    return measured(command, f"{engine} {workload}")


def best_of_rounds(engines, workloads, rounds, run, metric):
    """Runs every (engine, workload) `rounds` times, engines interleaved; keeps each one's result with the best `metric`."""
    best = {}
    for round_ in range(rounds):
        for workload in workloads:
            for engine in engines:
                result = run(engine, workload)
                if (engine, workload) not in best or result[metric] > best[(engine, workload)][metric]:
                    best[(engine, workload)] = result
                print(f"round {round_ + 1}: {engine:5} {workload:11}: {result[metric]:9.2f} {metric}", file=sys.stderr)
    return best


def publish(table, record_it):
    """Prints a table and, when asked, adds it to docs/benchmarks.md."""
    print(table)
    if record_it:
        record(table)


def machine():
    """The commit and the CPU's model name, for a table's heading."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    return commit, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="kiln,keras,torch")
    parser.add_argument("--batch-sizes", default="32,128")
    parser.add_argument("--steps", type=int, default=150, help="training steps per measured window")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best round per engine counts")
    parser.add_argument("--epochs", type=int, default=0, help="also train this many epochs for test accuracy")
    parser.add_argument("--seeds", type=int, default=1, help="accuracy runs with seeds 1…N; the table shows their mean")
    parser.add_argument("--kiln-device", default="cpu")
    parser.add_argument("--torch-device", default="cpu", help="cpu, or cuda on a GPU machine (Scripts/gpu-check.sh)")
    parser.add_argument("--record", action="store_true", help="add the table to docs/benchmarks.md")
    parser.add_argument("--worker")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.worker:
        result = (keras_worker if args.worker == "keras" else torch_worker)(args)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    engines, sizes = args.engines.split(","), [int(b) for b in args.batch_sizes.split(",")]
    best = {}
    for round_ in range(args.rounds):
        for size in sizes:
            for engine in engines:
                result = run(engine, args, size, args.epochs if round_ == 0 else 0)  # accuracy runs are long: once
                key = (engine, size)
                previous = best.get(key)
                if previous is None or result["train_samples_per_second"] > previous["train_samples_per_second"]:
                    result.setdefault("test_accuracy_per_epoch", previous and previous.get("test_accuracy_per_epoch"))
                    best[key] = result
                print(f"round {round_ + 1}: {engine:5} batch {size:3}: {result['train_samples_per_second']:8.0f} samples/s", file=sys.stderr)
    for size in sizes if args.epochs else []:  # more seeds for the accuracy: one seed's result is ± 0.3% noise
        for engine in engines:
            runs = [best[(engine, size)]["test_accuracy_per_epoch"]]
            for seed in range(2, args.seeds + 1):
                runs.append(run(engine, args, size, args.epochs, seed)["test_accuracy_per_epoch"])
                print(f"seed {seed}: {engine:5} batch {size:3}: accuracy {runs[-1][-1]:.4f}", file=sys.stderr)
            best[(engine, size)]["accuracy_runs"] = runs
    publish(report(best, engines, sizes, args), args.record)


def record(table):
    """Adds a dated table to docs/benchmarks.md, newest first, after the status notes."""
    path = ROOT / "docs/benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\nNewest first. Made by `Scripts/benchmark.sh`.\n"
    rows = text.find("\n## 20")
    head, rest = (text, "") if rows < 0 else (text[:rows], text[rows + 1:])
    path.write_text(head.rstrip() + "\n\n" + table + ("\n" + rest if rest else ""))


def dated_table(title, description, columns, best, engines, groups, row):
    """A dated section of docs/benchmarks.md: a heading, the machine and `description`, then a row per
    (group, engine) from `row(group, engine, result, ratio)`, where `ratio(key)` is Kiln's result over
    the engine's. `columns` are (name, alignment) pairs."""
    commit, cpu = machine()
    lines = [f"## {datetime.date.today()} — {title}commit {commit}", "", f"{cpu}, {os.cpu_count()} cores; {description}", "",
             "| " + " | ".join(name for name, _ in columns) + " |", "|" + "|".join(align for _, align in columns) + "|"]
    for group in groups:
        kiln = best.get(("kiln", group))
        for engine in engines:
            r = best[(engine, group)]
            ratio = lambda key: f"{kiln[key] / r[key]:.2f}" if kiln and engine != "kiln" else "—"
            lines.append("| " + " | ".join(row(group, engine, r, ratio)) + " |")
    return "\n".join(lines) + "\n"


def report(best, engines, sizes, args):
    def row(size, engine, r, ratio):
        runs = r.get("accuracy_runs") or [r.get("test_accuracy_per_epoch") or []]
        accuracy = ", ".join(f"{statistics.mean(epoch):.4f}" for epoch in zip(*runs)) or "—"
        if len(runs) > 1:
            last = [run[-1] for run in runs]
            accuracy += f" (mean of {len(runs)} seeds; last epoch {min(last):.4f}–{max(last):.4f})"
        return [engine, str(size), f"{r['train_samples_per_second']:.0f}", ratio("train_samples_per_second"),
                f"{r['inference_images_per_second']:.0f}", ratio("inference_images_per_second"), f"{r['peak_rss_mb']:.0f}", accuracy]
    return dated_table("", f"Kiln on `{args.kiln_device}`; workshop CNN (28,394 parameters), Adam 1e-3, sparse CE from logits; "
                       f"median of {args.windows} windows of {args.steps} steps after a warm-up, best of {args.rounds} interleaved rounds; "
                       "inference: median of 3 passes over the test set.",
                       [("engine", "---"), ("batch", "---:"), ("train samples/s", "---:"), ("Kiln ÷ engine", "---:"),
                        ("inference img/s (b256)", "---:"), ("Kiln ÷ engine", "---:"), ("peak RSS MB", "---:"), ("test accuracy by epoch", "---")],
                       best, engines, sizes, row)

if __name__ == "__main__":
    main()
