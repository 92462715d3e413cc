#!/usr/bin/env python3
"""Kiln against Keras (TensorFlow CPU) and PyTorch (CPU) on sequence workloads of the same shapes:

  forecast     LSTM(64) → Dense(1) on windows of 48 steps × 1 feature, MSE, batch 64
  text-lstm    Embedding(10,000 × 64) → LSTM(64) → Dense(1) on 200 token ids, BCE from logits, batch 32
  text-conv1d  Embedding(10,000 × 64) → Conv1D(128, 5, relu) → GlobalMaxPooling1D → Dense(1), batch 32

Random inputs (throughput does not depend on the values); Adam 1e-3. Each measurement runs in its
own process, engines interleaved; the best of the rounds counts. Prints a table and, with --record,
adds it to docs/benchmarks.md. Run through `Scripts/benchmark.sh sequences`.
"""
import json, os, resource, statistics, sys, time
from pathlib import Path

from benchmark import best_of_rounds, dated_table, publish, run_workload, workload_parser  # Scripts/benchmark.py, beside this file

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


def main():
    parser = workload_parser(__doc__, WORKLOADS, 40, "forecast")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
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
