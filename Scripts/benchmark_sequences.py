#!/usr/bin/env python3
"""Kiln against Keras (TensorFlow CPU) and PyTorch (CPU) on sequence workloads of the same shapes:

  forecast     LSTM(64) → Dense(1) on windows of 48 steps × 1 feature, MSE, batch 64
  text-lstm    Embedding(10,000 × 64) → LSTM(64) → Dense(1) on 200 token ids, BCE from logits, batch 32
  text-conv1d  Embedding(10,000 × 64) → Conv1D(128, 5, relu) → GlobalMaxPooling1D → Dense(1), batch 32

Random inputs (throughput does not depend on the values); Adam 1e-3. Each measurement runs in its
own process, engines interleaved; the best of the rounds counts. Prints a table and, with --record,
adds it to docs/benchmarks.md. Run through `Scripts/benchmark.sh sequences`.

With --accuracy, compares instead what the same epochs learn on real data (mean of --seeds), Kiln
through `kiln train`, Keras and PyTorch on the same split and preprocessing:
  forecast     the workshop's forecast lesson, LSTM(32) → Dense(1) on windows of 48 hourly Seattle
               temperatures (python3-vega-datasets), chronological split (last 15% test, the 10% before
               it validation), standardised; test MAE in °F, 10 epochs
  text-lstm    Embedding(vocabulary × 64, mask_zero) → LSTM(64) → Dense(3) (`--model text-lstm`) and
  text-conv1d  Embedding → Conv1D(128, 5, same, relu) → GlobalMaxPooling1D → Dense(3) (`--model text-conv1d`)
               on three categories of Debian's fortunes (computers, definitions, people; every fifth
               entry is test), 60 tokens of a 5,000-word vocabulary as Keras's TextVectorization,
               training texts shuffled and their last 10% held out; test accuracy, 5 epochs
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


FORTUNES = ["computers", "definitions", "people"]


def fortunes_folder(folder):
    """The three fortunes categories as train/ and test/ class folders (every fifth entry to test)."""
    subprocess.run([str(ROOT / "Scripts/fortunes-to-folder.sh"), str(folder / "all")] + FORTUNES, check=True, capture_output=True)
    for category in FORTUNES:
        for part in ["train", "test"]:
            (folder / part / category).mkdir(parents=True)
        for n, file in enumerate(sorted((folder / "all" / category).iterdir())):
            file.rename(folder / ("test" if n % 5 == 0 else "train") / category / file.name)
    return folder


def text_ids(folder, seed):
    """Kiln's TextVocabulary (5,000 ids: padding, unknown, then words by count, ties alphabetical;
    60 ids per text) over the shuffled training texts: (x, y) for training, validation and test."""
    import re
    import numpy as np
    from collections import Counter
    def documents(part):
        pairs = [(f.read_bytes().decode("utf-8", "replace"), label) for label, c in enumerate(FORTUNES)
                 for f in sorted((folder / part / c).iterdir())]
        return [t for t, _ in pairs], np.array([l for _, l in pairs], dtype="int64")
    words = lambda text: re.findall(r"[^\W_]+", text.lower())
    texts, labels = documents("train")
    order = np.random.default_rng(seed).permutation(len(texts))
    texts, labels = [texts[i] for i in order], labels[order]
    counts = Counter(w for t in texts for w in words(t))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5_000 - 2]
    index = {w: i + 2 for i, (w, _) in enumerate(ranked)}
    def encode(texts):
        ids = np.zeros((len(texts), 60), dtype="int64")
        for n, t in enumerate(texts):
            encoded = [index.get(w, 1) for w in words(t)][:60]
            ids[n, :len(encoded)] = encoded
        return ids
    cut = len(texts) - round(len(texts) * 0.1)
    x, (tx, ty) = encode(texts), documents("test")
    return (x[:cut], labels[:cut]), (x[cut:], labels[cut:]), (encode(tx), ty), len(index) + 2


def accuracy_worker(args):
    """One engine's test MAE (°F, forecast) or test accuracy (text) after --epochs."""
    import numpy as np
    if args.workload == "forecast":
        (x, y, _), (vx, vy, _), (tx, _, truth), (mean, std) = seattle_windows()
    else:
        (x, y), (vx, vy), (tx, ty), vocabulary = text_ids(Path(args.data), args.seed)
    if args.worker == "keras-accuracy":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras
        from keras import layers
        keras.utils.set_random_seed(args.seed)
        if args.workload == "forecast":
            m = keras.Sequential([keras.Input((48, 1)), layers.LSTM(32), layers.Dense(1)])
            loss = "mse"
        else:
            body = ([layers.Embedding(vocabulary, 64, mask_zero=True), layers.LSTM(64)] if args.workload == "text-lstm" else
                    [layers.Embedding(vocabulary, 64), layers.Conv1D(128, 5, padding="same", activation="relu"), layers.GlobalMaxPooling1D()])
            m = keras.Sequential([keras.Input((60,))] + body + [layers.Dense(3)])
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        m.compile(keras.optimizers.Adam(1e-3), loss)
        m.fit(x, y, batch_size=32, epochs=args.epochs, validation_data=(vx, vy), shuffle=True, verbose=0)
        predictions = m.predict(tx, batch_size=256, verbose=0)
    else:
        import torch
        import torch.nn as nn
        torch.manual_seed(args.seed)
        if args.workload == "forecast":
            lstm, fc = nn.LSTM(1, 32, batch_first=True), nn.Linear(32, 1)
            net = lambda inputs: fc(lstm(inputs)[1][0][0])
            parameters, loss = list(lstm.parameters()) + list(fc.parameters()), nn.functional.mse_loss
        elif args.workload == "text-lstm":
            embedding, lstm, fc = nn.Embedding(vocabulary, 64), nn.LSTM(64, 64, batch_first=True), nn.Linear(64, 3)
            def net(ids):  # padding at the end, left out as Keras's mask does
                lengths = (ids != 0).sum(1).clamp(min=1)
                packed = nn.utils.rnn.pack_padded_sequence(embedding(ids), lengths, batch_first=True, enforce_sorted=False)
                return fc(lstm(packed)[1][0][0])
            parameters, loss = [p for m in (embedding, lstm, fc) for p in m.parameters()], nn.functional.cross_entropy
        else:
            embedding, conv, fc = nn.Embedding(vocabulary, 64), nn.Conv1d(64, 128, 5, padding=2), nn.Linear(128, 3)
            net = lambda ids: fc(torch.relu(conv(embedding(ids).transpose(1, 2))).amax(dim=2))
            parameters, loss = [p for m in (embedding, conv, fc) for p in m.parameters()], nn.functional.cross_entropy
        optimizer = torch.optim.Adam(parameters, 1e-3, eps=1e-7)
        xs, ys = torch.from_numpy(x), torch.from_numpy(y)
        for _ in range(args.epochs):
            for batch in torch.randperm(len(xs)).split(32):
                optimizer.zero_grad()
                loss(net(xs[batch]), ys[batch]).backward()
                optimizer.step()
        with torch.no_grad():
            predictions = net(torch.from_numpy(tx)).numpy()
    if args.workload == "forecast":
        return {"test_mae": float(np.abs(predictions * std + mean - truth).mean())}
    return {"test_accuracy": float((predictions.argmax(1) == ty).mean())}


def accuracy(args):
    """Per workload, Kiln's, Keras's and PyTorch's test figure after the same epochs, per seed and their mean."""
    import tempfile
    tables = []
    with tempfile.TemporaryDirectory() as scratch:
        texts = fortunes_folder(Path(scratch))
        for workload in args.workloads.split(","):
            forecast = workload == "forecast"
            epochs, metric = args.epochs or (10 if forecast else 5), "test_mae" if forecast else "test_accuracy"
            data = ["--dataset", SEATTLE, "--target", "temp", "--window", "48", "--model", "lstm-forecast"] if forecast else \
                   ["--dataset", str(texts), "--model", workload, "--sequence-length", "60", "--vocabulary-size", "5000"]
            results = {engine: [] for engine in ["kiln", "keras", "torch"]}
            for seed in range(1, args.seeds + 1):
                with tempfile.TemporaryDirectory() as folder:
                    subprocess.run([str(ROOT / ".build/release/kiln"), "train"] + data + ["--epochs", str(epochs), "--seed", str(seed),
                                    "--device", args.kiln_device, "--out", folder], check=True, capture_output=True)
                    results["kiln"].append(json.loads(Path(folder, "metrics.json").read_text())[metric])
                for engine in ["keras", "torch"]:
                    output = subprocess.run([sys.executable, __file__, "--worker", f"{engine}-accuracy", "--workload", workload, "--data", str(texts),
                                             "--epochs", str(epochs), "--seed", str(seed)], check=True, capture_output=True, text=True).stdout
                    results[engine].append(json.loads(output.splitlines()[-1])[metric])
                print(f"{workload} seed {seed}: " + ", ".join(f"{e} {v[-1]:.4f}" for e, v in results.items()), file=sys.stderr)
            if forecast:
                (_, _, _), (_, _, _), (tx, _, truth), (mean, std) = seattle_windows()
                baseline = f"Persistence baseline: {float(abs(tx[:, -1, 0] * std + mean - truth[:, 0]).mean()):.4f}."
                what = (f"LSTM(32) → Dense(1) on windows of 48 hourly Seattle temperatures, {epochs} epochs, batch 32, Adam 1e-3, "
                        f"MSE on standardised values; test MAE in °F on the last 15% of the series")
            else:
                (_, _), (_, _), (_, ty), _ = text_ids(texts, 1)
                baseline = f"Majority class: {max((ty == c).mean() for c in range(3)):.4f}."
                what = (f"`--model {workload}` on three fortunes categories (every fifth entry is test), 60 tokens of a 5,000-word "
                        f"vocabulary, {epochs} epochs, batch 32, Adam 1e-3; test accuracy")
            commit, cpu = machine()
            rows = [f"| {e} | {', '.join(f'{v:.4f}' for v in values)} | {statistics.mean(values):.4f} |" for e, values in results.items()]
            tables.append("\n".join([f"## {datetime.date.today()} — {workload} {metric.replace('_', ' ').replace('mae', 'MAE')}, commit {commit}", "",
                                     f"{cpu}, {os.cpu_count()} cores; {what}, seeds 1–{args.seeds} (`Scripts/benchmark_sequences.py --accuracy`). {baseline}", "",
                                     f"| engine | {metric.replace('_', ' ').replace('mae', 'MAE')} per seed | mean |", "|---|---|---:|"] + rows) + "\n")
    return "\n".join(tables)


def main():
    parser = workload_parser(__doc__, WORKLOADS, 40, "forecast")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--accuracy", action="store_true", help="compare what the same epochs learn on real data instead of speed")
    parser.add_argument("--epochs", type=int, help="epochs of --accuracy runs (default: 10 forecast, 5 text)")
    parser.add_argument("--data", help="the text folder of an accuracy worker")
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
