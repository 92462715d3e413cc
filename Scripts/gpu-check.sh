#!/usr/bin/env bash
# One command on a GPU machine, no Swift needed: run it from the bundle (Scripts/bundle.sh --with-data
# makes dist/kiln) or a built checkout (the newest of its bundle and release build; KILN= picks one). Registers the vendor's OpenCL driver when its library is
# present but no ICD file names it (NVIDIA's libnvidia-opencl.so.1, AMD's libamdocl64.so), then runs
# kiln devices, kiln selftest, kiln tune, kiln benchmark ops and the workshop-CNN training benchmark on the device
# (DEVICE, default opencl) at batch 32 and 128 and, when python3 has a CUDA-enabled torch, the same
# model in PyTorch CUDA (fp32, channels-last) in the same run. Writes gpu-check/results.json and
# gpu-check/table.md (OUT to choose the folder); exits 1 if the self test fails.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${KILN:-}
if [ -z "$kiln" ]; then  # the newest build there is: a checkout may hold an older bundle beside a newer release build
    for candidate in "$root/bin/kiln" "$root/dist/kiln/bin/kiln" "$root/.build/release/kiln"; do
        [ -x "$candidate" ] && { [ -z "$kiln" ] || [ "$candidate" -nt "$kiln" ]; } && kiln=$candidate
    done
fi
[ -n "$kiln" ] || { echo "gpu-check: no kiln here; make the bundle with Scripts/bundle.sh --with-data"; exit 1; }
echo "gpu-check: $kiln"
out=${OUT:-$PWD/gpu-check}
device=${DEVICE:-opencl}
steps=${STEPS:-100}
mkdir -p "$out"
data=""
for folder in "$root/data/fashion-mnist" "$root/dist/kiln/data/fashion-mnist" /usr/share/datasets/fashion-mnist; do
    [ -z "$data" ] && [ -f "$folder/train-images-idx3-ubyte.gz" ] && data=$folder
done

# Vendor drivers that no ICD file names (containers often have the library but not the file).
vendors="$out/vendors"
rm -rf "$vendors" && mkdir -p "$vendors"
for lib in libnvidia-opencl.so.1 libamdocl64.so; do
    path=$(ldconfig -p 2>/dev/null | awk -v name="$lib" '$1 == name { print $NF; exit }')
    if [ -n "$path" ] && ! grep -qs "$lib" /etc/OpenCL/vendors/*.icd; then
        echo "$path" > "$vendors/${lib%%.so*}.icd"
        echo "gpu-check: registered $path as an OpenCL driver"
    fi
done
if ls "$vendors"/*.icd >/dev/null 2>&1; then
    cp /etc/OpenCL/vendors/*.icd "$vendors/" 2>/dev/null
    export OCL_ICD_VENDORS="$vendors"
fi

"$kiln" devices | tee "$out/devices.txt"
"$kiln" selftest --device "$device" | tee "$out/selftest.txt"
selftest=${PIPESTATUS[0]}
"$kiln" tune --device "$device" | tee "$out/tune.txt"
"$kiln" benchmark ops --devices "$device" --seconds 0.3 | tee "$out/ops.txt"
for batch in 32 128; do
    "$kiln" benchmark train --device "$device" --batch-size "$batch" --steps "$steps" --windows 3 ${data:+--data "$data"} \
        | grep '^{' | tail -1 > "$out/kiln-$batch.json"
    if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null && [ -f "$root/Scripts/benchmark.py" ]; then
        KILN_FASHION_MNIST=${data:-/usr/share/datasets/fashion-mnist} python3 "$root/Scripts/benchmark.py" --worker torch --torch-device cuda \
            --batch-size "$batch" --steps "$steps" --windows 3 | grep '^{' | tail -1 > "$out/torch-cuda-$batch.json"
    fi
done

python3 - "$out" "$device" "$selftest" <<'PYTHON'
import json, pathlib, platform, sys
out, device, selftest = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def load(name):
    path = out / name
    return json.loads(path.read_text()) if path.exists() and path.read_text().strip() else None
results = {"device": device, "devices": (out / "devices.txt").read_text(), "selftest_passed": selftest == 0,
           "selftest": (out / "selftest.txt").read_text().splitlines()[-1], "ops": (out / "ops.txt").read_text(),
           "tune": (out / "tune.txt").read_text() if (out / "tune.txt").exists() else "",
           "machine": platform.platform(), "runs": {}}
rows = ["| engine | batch | train samples/s | inference images/s |", "|---|---:|---:|---:|"]
for engine in ("kiln", "torch-cuda"):
    for batch in (32, 128):
        result = load(f"{engine}-{batch}.json")
        if result:
            results["runs"][f"{engine}-{batch}"] = result
            rows.append(f"| {engine} | {batch} | {result['train_samples_per_second']:.0f} | {result.get('inference_images_per_second', 0):.0f} |")
(out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
table = "\n".join([f"Workshop CNN on {device} ({results['selftest']})", ""] + rows) + "\n"
(out / "table.md").write_text(table)
print(table)
PYTHON
exit $selftest
