#!/usr/bin/env python3
"""Kiln against Keras (TensorFlow CPU) and PyTorch (CPU) on sequence workloads of the same shapes:

  forecast     LSTM(64) → Dense(1) on windows of 48 steps × 1 feature, MSE, batch 64
  text-lstm    Embedding(10,000 × 64) → LSTM(64) → Dense(1) on 200 token ids, BCE from logits, batch 32
  text-conv1d  Embedding(10,000 × 64) → Conv1D(128, 5, relu) → GlobalMaxPooling1D → Dense(1), batch 32

Random inputs (throughput does not depend on the values); Adam 1e-3. Each measurement runs in its
own process, engines interleaved; the best of the rounds counts. Prints a table and, with --record,
adds it to docs/benchmarks.md. Run through `Scripts/benchmark.sh sequences`.

With --accuracy, compares instead what the same epochs learn on real data (mean of --seeds): the
workshop's forecast lesson, LSTM(32) → Dense(1) on windows of 48 hourly Seattle temperatures
(python3-vega-datasets), Kiln through `kiln train --model lstm-forecast`, Keras and PyTorch on the
same chronological split (last 15% test, the 10% before it validation) and standardisation; the
figure is the test MAE in °F.
"""
import datetime, json, os, resource, statistics, subprocess, sys, time
from pathlib import Path

from benchmark import best_of_rounds, dated_table, machine, publish, run_workload, workload_parser  # Scripts/benchmark.py, beside this file

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {"forecast": 64, "text-lstm": 32, "text-conv1d": 32}


def data(workload, samples, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    if workload == "forecast":
        return rng.standard_normal((samples, 48, 1)).astype("float32"), rng.standard_normal((samples, 1)).astype("float32")
    return rng.integers(1, 10_000, (samples, 200)).astype("int64"), rng.integers(0, 2, (samples, 1)).astype("float32")


def measure(train_window, predict, samples, windows):
    rates = []
    for window in range(windows + 1):
        start = time.perf_counter()
        train_window()
        if window:
            rates.append(samples / (time.perf_counter() - start))
    predict()
    inference = sorted(samples / timed(predict) for _ in range(3))[1]
    return {"train_samples_per_second": statistics.median(rates), "inference_samples_per_second": inference}


def timed(body):
    start = time.perf_counter()
    body()
    return time.perf_counter() - start


def keras_worker(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from keras import layers
    keras.utils.set_random_seed(args.seed)
    batch, samples = args.batch_size, args.steps * args.batch_size
    x, y = data(args.workload, samples, args.seed)
    if args.workload == "forecast":
        m = keras.Sequential([keras.Input((48, 1)), layers.LSTM(64), layers.Dense(1)])
        loss = "mse"
    else:
        body = [layers.LSTM(64)] if args.workload == "text-lstm" else [layers.Conv1D(128, 5, activation="relu"), layers.GlobalMaxPooling1D()]
        m = keras.Sequential([keras.Input((200,)), layers.Embedding(10_000, 64)] + body + [layers.Dense(1)])
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
    m.compile(keras.optimizers.Adam(1e-3), loss)
    return measure(lambda: m.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False),
                   lambda: m.predict(x, batch_size=256, verbose=0), samples, args.windows)


def torch_worker(args):
    import torch
    import torch.nn as nn
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(args.seed)
    batch, samples = args.batch_size, args.steps * args.batch_size
    x, y = (torch.from_numpy(a) for a in data(args.workload, samples, args.seed))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            if args.workload == "forecast":
                self.lstm, self.fc = nn.LSTM(1, 64, batch_first=True), nn.Linear(64, 1)
            else:
                self.emb = nn.Embedding(10_000, 64)
                if args.workload == "text-lstm":
                    self.lstm, self.fc = nn.LSTM(64, 64, batch_first=True), nn.Linear(64, 1)
                else:
                    self.conv, self.fc = nn.Conv1d(64, 128, 5), nn.Linear(128, 1)

        def forward(self, inputs):
            h = inputs if args.workload == "forecast" else self.emb(inputs)
            if args.workload == "text-conv1d":
                return self.fc(torch.relu(self.conv(h.transpose(1, 2))).amax(dim=2))
            _, (last, _) = self.lstm(h)
            return self.fc(last[0])

    m = Net()
    optimizer = torch.optim.Adam(m.parameters(), 1e-3, eps=1e-7)
    loss = nn.MSELoss() if args.workload == "forecast" else nn.BCEWithLogitsLoss()

    def train():
        m.train()
        for s in range(0, samples, batch):
            optimizer.zero_grad()
            loss(m(x[s:s + batch]), y[s:s + batch]).backward()
            optimizer.step()

    def predict():
        m.eval()
        with torch.no_grad():
            for s in range(0, samples, 256):
                m(x[s:s + 256])

    return measure(train, predict, samples, args.windows)


SEATTLE = "/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-temps.csv"


def seattle_windows():
    """Kiln's TimeSeries split of the temperatures: standardised windows of 48 rows and the next row, per part."""
    import numpy as np
    values = np.loadtxt(SEATTLE, delimiter=",", skiprows=1, usecols=[1], dtype=np.float64)
    n = len(values)
    test_start = n - int(n * 0.15 + 0.5)
    validation_start = test_start - int(n * 0.1 + 0.5)
    mean, std = values[:validation_start].mean(), values[:validation_start].std()
    def part(lo, hi):
        starts = range(lo, hi - 48)
        x = np.stack([values[s:s + 48] for s in starts])[..., None]
        y = np.array([values[s + 48] for s in starts])[:, None]
        return ((x - mean) / std).astype("float32"), ((y - mean) / std).astype("float32"), y
    return part(0, validation_start), part(validation_start, test_start), part(test_start, n), (mean, std)


def accuracy_worker(args):
    """One engine's test MAE (°F) after --epochs on the Seattle temperatures."""
    import numpy as np
    (x, y, _), (vx, vy, _), (tx, _, truth), (mean, std) = seattle_windows()
    if args.worker == "keras-accuracy":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras
        from keras import layers
        keras.utils.set_random_seed(args.seed)
        m = keras.Sequential([keras.Input((48, 1)), layers.LSTM(32), layers.Dense(1)])
        m.compile(keras.optimizers.Adam(1e-3), "mse")
        m.fit(x, y, batch_size=32, epochs=args.epochs, validation_data=(vx, vy), shuffle=True, verbose=0)
        predictions = m.predict(tx, batch_size=256, verbose=0)
    else:
        import torch
        import torch.nn as nn
        torch.manual_seed(args.seed)
        lstm, fc = nn.LSTM(1, 32, batch_first=True), nn.Linear(32, 1)
        parameters = list(lstm.parameters()) + list(fc.parameters())
        optimizer = torch.optim.Adam(parameters, 1e-3, eps=1e-7)
        xs, ys = torch.from_numpy(x), torch.from_numpy(y)
        for _ in range(args.epochs):
            for batch in torch.randperm(len(xs)).split(32):
                optimizer.zero_grad()
                nn.functional.mse_loss(fc(lstm(xs[batch])[1][0][0]), ys[batch]).backward()
                optimizer.step()
        with torch.no_grad():
            predictions = fc(lstm(torch.from_numpy(tx))[1][0][0]).numpy()
    return {"test_mae": float(np.abs(predictions * std + mean - truth).mean())}


def accuracy(args):
    """Test MAE of Kiln, Keras and PyTorch after --epochs, per seed and their mean, as a table."""
    import tempfile
    results = {engine: [] for engine in ["kiln", "keras", "torch"]}
    for seed in range(1, args.seeds + 1):
        with tempfile.TemporaryDirectory() as folder:
            subprocess.run([str(ROOT / ".build/release/kiln"), "train", "--dataset", SEATTLE, "--target", "temp", "--window", "48",
                            "--model", "lstm-forecast", "--epochs", str(args.epochs), "--seed", str(seed), "--device", args.kiln_device,
                            "--out", folder], check=True, capture_output=True)
            results["kiln"].append(json.loads(Path(folder, "metrics.json").read_text())["test_mae"])
        for engine in ["keras", "torch"]:
            output = subprocess.run([sys.executable, __file__, "--worker", f"{engine}-accuracy", "--epochs", str(args.epochs), "--seed", str(seed)],
                                    check=True, capture_output=True, text=True).stdout
            results[engine].append(json.loads(output.splitlines()[-1])["test_mae"])
        print(f"seed {seed}: " + ", ".join(f"{e} {v[-1]:.4f}" for e, v in results.items()), file=sys.stderr)
    (_, _, _), (_, _, _), (tx, _, truth), (mean, std) = seattle_windows()
    baseline = float(abs(tx[:, -1, 0] * std + mean - truth[:, 0]).mean())
    commit, cpu = machine()
    rows = [f"| {e} | {', '.join(f'{v:.4f}' for v in values)} | {statistics.mean(values):.4f} |" for e, values in results.items()]
    return "\n".join([f"## {datetime.date.today()} — forecast test MAE, commit {commit}", "",
                      f"{cpu}, {os.cpu_count()} cores; LSTM(32) → Dense(1) on windows of 48 hourly Seattle temperatures, {args.epochs} epochs, batch 32, Adam 1e-3, "
                      f"MSE on standardised values, seeds 1–{args.seeds}; test MAE in °F on the last 15% of the series "
                      f"(`Scripts/benchmark_sequences.py --accuracy`). Persistence baseline: {baseline:.4f}.", "",
                      "| engine | test MAE per seed | mean |", "|---|---|---:|"] + rows) + "\n"


def main():
    parser = workload_parser(__doc__, WORKLOADS, 40, "forecast")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--accuracy", action="store_true", help="compare test MAE on the Seattle temperatures instead of speed")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if args.worker and args.worker.endswith("-accuracy"):
        print(json.dumps(accuracy_worker(args)))
        return
    if args.accuracy:
        publish(accuracy(args), args.record)
        return
    if args.worker:
        result = (keras_worker if args.worker == "keras" else torch_worker)(args)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    engines, workloads = args.engines.split(","), args.workloads.split(",")
    run = lambda engine, workload: run_workload(engine, workload, __file__, "sequence", ["--batch-size", str(WORKLOADS[workload])], args)
    best = best_of_rounds(engines, workloads, args.rounds, run, "train_samples_per_second")
    publish(report(best, engines, workloads, args), args.record)


def report(best, engines, workloads, args):
    def row(workload, engine, r, ratio):
        return [workload, str(WORKLOADS[workload]), engine, f"{r['train_samples_per_second']:.0f}", ratio("train_samples_per_second"),
                f"{r['inference_samples_per_second']:.0f}", ratio("inference_samples_per_second"), f"{r['peak_rss_mb']:.0f}"]
    return dated_table("sequences, ", f"Kiln on `{args.kiln_device}`; random inputs of the workloads' shapes (`Scripts/benchmark_sequences.py`), "
                       f"Adam 1e-3; median of {args.windows} windows of {args.steps} steps after a warm-up, best of {args.rounds} interleaved rounds; "
                       "inference: median of 3 passes, batch 256.",
                       [("workload", "---"), ("batch", "---:"), ("engine", "---"), ("train samples/s", "---:"), ("Kiln ÷ engine", "---:"),
                        ("inference samples/s", "---:"), ("Kiln ÷ engine", "---:"), ("peak RSS MB", "---:")],
                       best, engines, workloads, row)

if __name__ == "__main__":
    main()
