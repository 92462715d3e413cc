#!/usr/bin/env python3
"""Kiln against Keras (TensorFlow CPU) and PyTorch (CPU) on the workshops' transfer learning:

  mobilenet_v2  keras.applications.MobileNetV2(alpha=0.35, include_top=False) on 96×96×3 images
  resnet50      keras.applications.ResNet50(include_top=False) on 96×96×3 images

each with a new head (global average pooling, Dense(5)), Adam 1e-3, batch 32, in three modes:

  frozen    the base frozen (its batch norm in inference mode), the head trained
  unfrozen  the whole network trained, batch norm in training mode
  cached    `--cache-features`: the base run once over the images, then the head trained for
            --head-epochs on its outputs. samples/s counts those epochs' samples over the whole run;
            "head cost" is the head's training time in passes of the base over the images (below 1:
            training the head costs less than one base forward pass per image per run).

Random weights (no pretrained files offline) and random images: speed depends on neither. Kiln and
Keras load the same .keras files, saved here by Keras; PyTorch runs torchvision's architectures
(MobileNetV2 at width 0.35; ResNet50 with its stride on the 3×3 convolution, the same FLOPs) rebuilt in
Scripts/torchvision_replicas.py, NCHW as PyTorch users run them. Each measurement runs in its own
process, engines interleaved; the best of the rounds counts. Run through `Scripts/benchmark.sh transfer`.
"""
import json, os, resource, statistics, subprocess, sys, time
from pathlib import Path

from benchmark import dated_table, machine, measured, publish, workload_parser  # Scripts/benchmark.py, beside this file

ROOT = Path(__file__).resolve().parent.parent
BASES = ROOT / ".build" / "benchmark-transfer"
BATCH, CLASSES, SIDE = 32, 5, 96
MODES = ["frozen", "unfrozen", "cached"]


def images(args):
    import numpy as np
    count = args.steps * BATCH
    return np.random.default_rng(1).random((count, SIDE, SIDE, 3), dtype=np.float32), np.arange(count) % CLASSES


def median_rate(window, count, windows):
    """Median samples/s of `windows` calls of `window` (each over `count` samples) after a warm-up call."""
    rates = []
    for index in range(windows + 1):
        start = time.perf_counter()
        window()
        if index:
            rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def cached_result(count, cache_seconds, head_seconds, epochs):
    return {"cache_seconds": cache_seconds, "head_seconds": head_seconds, "head_cost_in_base_passes": head_seconds / cache_seconds,
            "train_samples_per_second": count * epochs / (cache_seconds + head_seconds)}


def make_bases():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    BASES.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(1)
    keras.applications.MobileNetV2(input_shape=(SIDE, SIDE, 3), alpha=0.35, include_top=False, weights=None).save(BASES / "mobilenet_v2.keras")
    keras.applications.ResNet50(input_shape=(SIDE, SIDE, 3), include_top=False, weights=None).save(BASES / "resnet50.keras")


def keras_worker(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from keras import layers
    keras.utils.set_random_seed(1)
    x, y = images(args)
    base = keras.models.load_model(BASES / f"{args.workload}.keras", compile=False)
    def compiled(inputs, outputs):
        model = keras.Model(inputs, outputs)
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model
    def head(inputs):
        return layers.Dense(CLASSES)(layers.GlobalAveragePooling2D()(inputs))
    if args.mode == "cached":
        start = time.perf_counter()
        features = base.predict(x, batch_size=128, verbose=0)
        cache = time.perf_counter() - start
        inputs = keras.Input(features.shape[1:])
        model = compiled(inputs, head(inputs))
        start = time.perf_counter()
        model.fit(features, y, batch_size=BATCH, epochs=args.head_epochs, verbose=0)
        return cached_result(len(x), cache, time.perf_counter() - start, args.head_epochs)
    base.trainable = args.mode == "unfrozen"  # a frozen base runs its batch norm in inference mode (Keras 3)
    inputs = keras.Input((SIDE, SIDE, 3))
    model = compiled(inputs, head(base(inputs)))
    return {"train_samples_per_second": median_rate(lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False),
                                                    len(x), args.windows)}


def torch_worker(args):
    import torch, torch.nn as nn
    sys.path.insert(0, str(Path(__file__).parent))
    from torchvision_replicas import MobileNetV2, ResNet
    torch.manual_seed(1)
    if args.workload == "mobilenet_v2":
        trunk, channels = MobileNetV2(0.35).features, 1280
    else:
        trunk, channels = nn.Sequential(*list(ResNet([3, 4, 6, 3], True).children())[:-2]), 2048  # less avgpool and fc
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, CLASSES))
    x, y = (torch.from_numpy(a) for a in images(args))
    x = x.permute(0, 3, 1, 2).contiguous()
    loss = nn.CrossEntropyLoss()
    def train(model, parameters, inputs, epochs, shuffle):
        optimizer = torch.optim.Adam(parameters, 1e-3)
        for _ in range(epochs):
            order = torch.randperm(len(inputs)) if shuffle else torch.arange(len(inputs))
            for at in range(0, len(inputs), BATCH):
                batch = order[at:at + BATCH]
                optimizer.zero_grad()
                loss(model(inputs[batch]), y[batch]).backward()
                optimizer.step()
    if args.mode == "cached":
        trunk.eval()
        start = time.perf_counter()
        with torch.no_grad():
            features = torch.cat([trunk(x[at:at + 128]) for at in range(0, len(x), 128)])
        cache = time.perf_counter() - start
        start = time.perf_counter()
        train(head, head.parameters(), features, args.head_epochs, True)
        return cached_result(len(x), cache, time.perf_counter() - start, args.head_epochs)
    model = nn.Sequential(trunk, head)
    if args.mode == "frozen":
        trunk.eval()
        for parameter in trunk.parameters():
            parameter.requires_grad = False
    parameters = [p for p in model.parameters() if p.requires_grad]
    return {"train_samples_per_second": median_rate(lambda: train(model, parameters, x, 1, False), len(x), args.windows)}


def run(engine, workload, args):
    name, mode = workload.split("/")
    if engine == "kiln":
        command = [str(ROOT / ".build/release/kiln"), "benchmark", "transfer", "--base", str(BASES / f"{name}.keras"), "--mode", mode,
                   "--device", args.kiln_device]
    else:
        command = [sys.executable, __file__, "--worker", engine, "--workload", name, "--mode", mode]
    return measured(command + ["--steps", str(args.steps), "--windows", str(args.windows), "--head-epochs", str(args.head_epochs)],
                    f"{engine} {workload}")


def main():
    workloads = [f"{name}/{mode}" for name in ["mobilenet_v2", "resnet50"] for mode in MODES]
    parser = workload_parser(__doc__, workloads, 10, "mobilenet_v2")
    parser.add_argument("--mode", default="frozen")
    parser.add_argument("--head-epochs", type=int, default=10)
    args = parser.parse_args()
    if args.worker == "make-bases":
        return make_bases()
    if args.worker:
        result = (keras_worker if args.worker == "keras" else torch_worker)(args)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    if not all((BASES / f"{name}.keras").exists() for name in ["mobilenet_v2", "resnet50"]):
        subprocess.run([sys.executable, __file__, "--worker", "make-bases"], check=True)
    engines, workloads = args.engines.split(","), args.workloads.split(",")
    best = {}
    for round_ in range(args.rounds):
        for workload in workloads:
            for engine in engines:
                result = run(engine, workload, args)
                if (engine, workload) not in best or result["train_samples_per_second"] > best[(engine, workload)]["train_samples_per_second"]:
                    best[(engine, workload)] = result
                print(f"round {round_ + 1}: {engine:5} {workload:22}: {result['train_samples_per_second']:8.1f} samples/s", file=sys.stderr)
    publish(report(best, engines, workloads, args), args.record)


def report(best, engines, workloads, args):
    def row(workload, engine, r, ratio):
        cost = f"{r['head_cost_in_base_passes']:.2f}" if "head_cost_in_base_passes" in r else "—"
        return [workload, engine, f"{r['train_samples_per_second']:.1f}", ratio("train_samples_per_second"), cost, f"{r['peak_rss_mb']:.0f}"]
    return dated_table("fine-tuning, ", f"Kiln on `{args.kiln_device}`; random 96×96×3 images, batch {BATCH}, Adam 1e-3, a GAP + Dense({CLASSES}) head "
                       f"(`Scripts/benchmark_transfer.py`); frozen/unfrozen: median of {args.windows} windows of {args.steps} steps after a "
                       f"warm-up; cached: one base pass over {args.steps * BATCH} images, then {args.head_epochs} head epochs; "
                       f"best of {args.rounds} interleaved rounds.",
                       [("workload", "---"), ("engine", "---"), ("train samples/s", "---:"), ("Kiln ÷ engine", "---:"),
                        ("head cost (base passes)", "---:"), ("peak RSS MB", "---:")],
                       best, engines, workloads, row)


if __name__ == "__main__":
    main()
