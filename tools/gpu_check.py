"""Turn the book's GPU estimates into measurements: one command, at most 6 minutes, one JSON (README "Measuring on
a GPU"; chapter 4 and the status page show committed results).

    python tools/gpu_check.py --out gpu.json                 # on a CUDA machine (the package importable)
    python tools/gpu_check.py --smoke --out smoke.json       # every part at tiny sizes, on any CPU (CI)

Parts, each in its own process with a time budget (killed past it and recorded as "skipped: over budget", with
what it had measured); a failing part records its error and the others still run:
a. training step of the full profile (ResNet-50, 224 px, Eq. 6 over batch 256) in bf16 and in fp16 + GradScaler:
   images/s and peak allocated memory beside aigfd_lite.train.gpu_memory's estimate;  b. the same batch in 2 and 4
   micro-batches;  c. the full profile's loader on a synthetic official-layout tree, all CPUs as workers;
d. streamed feature extraction, and the GMM at paper scale (K = 8, full covariances, 25,000 x 768);
e. torchrun on NCCL (DDP + SyncBatchNorm) and a run SIGKILLed and resumed;  f. chapters 4-6's functions with the
   full profile on the rehearsal's miniature (_build/rehearsal/data/paper; --miniature DIR).
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
#: Seconds per part (full run); the whole check stops at TOTAL_S.
BUDGET_S = {"a_training": 75, "b_accumulation": 50, "c_pipeline": 50, "d_features_gmm": 75, "e_torchrun": 55,
            "f_chapters": 45}
TOTAL_S = 355
SIZES = {  # full: the paper's settings; smoke: tiny, seconds on a CPU
    False: dict(backbone="resnet50", estimate_batches=(1, 2), batch=256, size=224, steps=5, warmup=2, tree=2048, loader_batches=8, features=2048,
                gmm=(25_000, 768), sync_steps=3, runs=dict(batch=32, size=64, items=192), f_size=224),
    True: dict(backbone="mobilenet_v2", estimate_batches=(2, 4), batch=8, size=32, steps=1, warmup=1, tree=64, loader_batches=3, features=64, gmm=(500, 16),
               sync_steps=2, runs=dict(batch=4, size=32, items=24), f_size=32)}
NEEDED = ("torch", "torchvision", "numpy", "scipy", "sklearn", "skimage", "PIL", "pandas", "safetensors", "tqdm")


def train_config(s: dict, device, **overrides):
    from aigfd_lite import resolve
    from aigfd_lite.train.loop import TrainConfig

    return TrainConfig.from_profile(resolve("full"), device=device.type, batch_size=s["batch"], init="random",
                                    input_size=s["size"], backbone=s["backbone"],
                                    **{"accumulation_steps": 1, **overrides})


def memory_estimate(s: dict, device, workdir: Path) -> dict:
    """The book's estimate (aigfd_lite.train.gpu_memory on the CPU, as chapter 4 computes it), shared by parts a and b."""
    from aigfd_lite.train.gpu_memory import estimate_training_memory

    path = workdir / "estimate.json"
    if not path.is_file():
        path.write_text(json.dumps(estimate_training_memory(train_config(s, device), batches=s["estimate_batches"])))
    return json.loads(path.read_text())


def part_a_training(s, device, workdir, deadline, record) -> None:
    import torch

    from aigfd_lite.runtime.distributed import Precision
    from aigfd_lite.gpu_check import time_training
    from aigfd_lite.train.gpu_memory import step_bytes

    estimate = memory_estimate(s, device, workdir)
    record("estimate", {k: estimate[k] for k in ("per_image_bytes", "fixed_bytes", "dtype", "device")})
    cases = {"bf16 autocast": Precision(torch.bfloat16), "fp16 + GradScaler": Precision(torch.float16, True)}
    for k, (name, precision) in enumerate(cases.items()):
        share = time.perf_counter() + (deadline - time.perf_counter()) / (len(cases) - k)
        row = time_training(train_config(s, device), device, precision, steps=s["steps"], warmup=s["warmup"],
                            deadline=share)
        record(name, {**row, "estimate_bytes": step_bytes(estimate, s["batch"])})


def part_b_accumulation(s, device, workdir, deadline, record) -> None:
    from aigfd_lite.runtime.distributed import choose_precision
    from aigfd_lite.gpu_check import time_training
    from aigfd_lite.train.gpu_memory import step_bytes

    estimate = memory_estimate(s, device, workdir)
    for k, steps in enumerate((2, 4)):
        share = time.perf_counter() + (deadline - time.perf_counter()) / (2 - k)
        row = time_training(train_config(s, device, accumulation_steps=steps), device, choose_precision(device),
                            steps=s["steps"], warmup=s["warmup"], deadline=share)
        record(f"{steps} micro-batches of {s['batch'] // steps}",
               {**row, "estimate_bytes": step_bytes(estimate, s["batch"] // steps)})


def part_c_pipeline(s, device, workdir, deadline, record) -> None:
    from aigfd_lite.gpu_check import pipeline_rate, synthetic_tree

    tree = synthetic_tree(workdir, s["tree"])
    record("loader", pipeline_rate(tree, input_size=s["size"], batch=s["batch"], workers=os.cpu_count() or 1,
                                   batches=s["loader_batches"], device=device, deadline=deadline))


def part_d_features_gmm(s, device, workdir, deadline, record) -> None:
    from aigfd_lite import resolve
    from aigfd_lite.fdf.scan import LayoutPaths
    from aigfd_lite.gpu_check import gmm_timing, synthetic_tree
    from aigfd_lite.models.image_files import ImageFiles, stream_features
    from aigfd_lite.models.initialisation import build_model
    from aigfd_lite.evaluation.protocol import detector_settings

    tree = synthetic_tree(workdir, s["tree"])
    paths = sorted(LayoutPaths.of(tree / "SSL_training_data").image_dir.iterdir())[:s["features"]]
    model = build_model("random", seed=0, backbone=s["backbone"])
    start = time.perf_counter()
    features = stream_features(model, ImageFiles(paths, 128), input_size=s["size"], batch_size=s["batch"],
                               device=device, num_workers=os.cpu_count() or 1)
    seconds = time.perf_counter() - start
    record("features", {"images": len(features), "input_size": s["size"], "seconds": seconds,
                        "images_per_s": len(features) / seconds, "dim": int(features.shape[1])})
    record("gmm", gmm_timing(*s["gmm"], detector_settings(resolve("full"))))


def _torchrun(workdir: Path, config: Path, phase: str, nproc: int, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(nproc), "-m", "aigfd_lite.gpu_check", str(workdir), str(config), phase],
                          env=env, capture_output=True, text=True, timeout=max(1.0, timeout))


def part_e_torchrun(s, device, workdir, deadline, record) -> None:
    import torch

    from aigfd_lite.gpu_check import kill_resume_runs
    from aigfd_lite.train.loop import train

    out = workdir / "torchrun"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    nproc = max(1, min(2, torch.cuda.device_count())) if device.type == "cuda" else 1
    runs = {**s["runs"], "sync_steps": s["sync_steps"]}
    tcfg = train_config(s, device)
    (out / "config.json").write_text(json.dumps({**tcfg.to_json(), "gpu_check_runs": runs}))
    first = _torchrun(out, out / "config.json", "first", nproc, deadline - time.perf_counter())
    if not (out / "sync.json").is_file():
        raise RuntimeError(f"torchrun wrote no result, exit {first.returncode}:\n{first.stderr[-2500:]}")
    record("ddp_steps", {**json.loads((out / "sync.json").read_text()), "processes": nproc})
    small, data = kill_resume_runs(tcfg, runs)
    if device.type == "cpu":
        torch.set_num_threads(1)  # as the torchrun rank: float sums in another order would differ
    killed = torch.load(out / "b" / "last.pt", map_location="cpu", weights_only=True)["step"]
    train(small, out / "b", dataset=data, progress=False)  # the killed run, resumed in this process
    train(small, out / "a", dataset=data, progress=False)  # the same run, never interrupted
    a, b = (torch.load(out / r / "final.pt", map_location="cpu", weights_only=True)["model"] for r in "ab")
    diffs = [float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point()]
    record("kill_and_resume", {"killed_at_step": int(killed), "torchrun_exit_code": first.returncode,
                               "steps": len(data) // small.batch_size, "device": device.type,
                               "bit_exact": all(bool((a[k] == b[k]).all()) for k in a),
                               "max_abs_difference": max(diffs)})


def part_f_chapters(s, device, workdir, deadline, record) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    from rehearse import N_FACES, N_GENERATED, TINY

    from aigfd_lite import resolve
    from aigfd_lite.detector.gmm import GMMDetector
    from aigfd_lite.fdf.layout import FDFLayout
    from aigfd_lite.gpu_check import stand_in_landmarks
    from aigfd_lite.evaluation.metrics import detector_table
    from aigfd_lite.data.miniature import lite_miniature
    from aigfd_lite.evaluation.protocol import detector_settings, featurize, load_protocol
    from aigfd_lite.train.loop import fetch_or_train

    root = Path(s.get("miniature") or ROOT / "_build" / "rehearsal" / "data" / "paper")
    if not (root / "settings.json").is_file():
        try:
            lite_miniature(resolve("lite"), root, n_faces=N_FACES, n_generated=N_GENERATED)
        except Exception as err:  # noqa: BLE001 (no lite data here: say what to carry)
            raise RuntimeError(f"no miniature at {root}, and it cannot be built here ({err}); build it where the "
                               "lite data is (make rehearsal) and carry _build/rehearsal/data/paper") from err
    os.environ.update(AIGFD_STORE=str(workdir / "store"), AIGFD_BUILD_DIR=str(workdir / "build"))
    cfg = resolve("full", data_root=str(root), **{**TINY, "device": device.type, "init": "random", "backbone": s["backbone"],
                                                   "input_size": s["f_size"], "test_size": s["f_size"]})
    layout = FDFLayout(cfg.data_root, real_fraction=cfg.real_fraction, seed=cfg.seed, require_manipulated=False,
                       progress=False)
    stand_in_landmarks(layout, cfg.landmark_backend, save=True)  # no landmarker needed on the GPU machine
    for run, tasks in (("ours", ("exif", "manipulation")), ("exif-only", ("exif",))):  # chapter 4; chapter 6
        if time.perf_counter() > deadline:
            record(run, "skipped: over budget")
            continue
        start = time.perf_counter()
        model, log = fetch_or_train(cfg, run, tasks=tasks, progress=False)
        trained = time.perf_counter() - start
        feats = featurize(model, load_protocol(cfg), cfg)  # chapter 5
        table = detector_table(GMMDetector(**detector_settings(cfg)).fit(feats["fit"]), feats["sets"])
        record(run, {"train_s": trained, "steps": len(log), "featurize_and_detect_s": time.perf_counter() - start
                     - trained, "mean_auc": float(table.loc["mean", "auc"]), "generators": len(table) - 1})


PARTS = {name: globals()[f"part_{name}"] for name in BUDGET_S}


def child(name: str, smoke: bool, workdir: Path, soft_s: float, miniature: str | None) -> None:
    """Run one part in this process; its results go to workdir/<name>.json as they come."""
    import torch

    deadline, start = time.perf_counter() + soft_s, time.perf_counter()
    path, state = workdir / f"{name}.json", {"status": "running", "results": {}}

    def record(key: str, value) -> None:
        state["results"][key] = value
        path.write_text(json.dumps(state, default=str))

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        PARTS[name]({**SIZES[smoke], "miniature": miniature}, device, workdir, deadline, record)
        state["status"] = "ok"
    except Exception as err:  # noqa: BLE001 (recorded: the other parts still run)
        state.update(status="failed", error=f"{type(err).__name__}: {err}"[-3000:],
                     traceback=traceback.format_exc()[-3000:])
    state["seconds"] = time.perf_counter() - start
    path.write_text(json.dumps(state, default=str))


def run_part(name: str, args, workdir: Path, budget: float) -> dict:
    """One part in a fresh interpreter, killed (with its loader workers and torchrun's ranks) past ``budget``
    seconds; what it recorded until then is kept."""
    if budget < 5:
        return {"status": "skipped: over budget", "budget_s": budget, "wall_s": 0.0, "results": {}}
    start, status = time.perf_counter(), None
    cmd = [sys.executable, __file__, "--child", name, "--workdir", str(workdir), "--soft-s", str(0.8 * budget)]
    cmd += (["--smoke"] if args.smoke else []) + (["--miniature", args.miniature] if args.miniature else [])
    env = dict(os.environ, **({"OMP_NUM_THREADS": "1"} if args.smoke else {}))  # tiny tensors: threads only spin
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        code = proc.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the part and its workers, torchrun's ranks
        code, status = proc.wait(), f"skipped: over budget ({budget:.0f} s)"
    path = workdir / f"{name}.json"
    result = json.loads(path.read_text()) if path.is_file() else {"results": {}}
    if status or result.get("status", "running") == "running":
        result["status"] = status or f"failed: the process ended (exit {code}) before finishing"
    return {**result, "budget_s": budget, "wall_s": time.perf_counter() - start}


def environment(smoke: bool) -> dict:
    import torch

    cuda = torch.cuda.is_available()
    device = {"type": "cuda" if cuda else "cpu", "name": torch.cuda.get_device_name(0) if cuda else platform.processor()
              or platform.machine(), "count": torch.cuda.device_count() if cuda else 0, "cpus": os.cpu_count()}
    if cuda:
        props = torch.cuda.get_device_properties(0)
        device.update(memory_bytes=props.total_memory, capability=f"{props.major}.{props.minor}")
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    versions = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version() if cuda else None}
    for name in ("torchvision", "numpy", "scikit-learn", "scipy", "pandas", "aigfd-lite"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"smoke": smoke, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": git.stdout.strip() or None, "uncommitted_changes": bool(dirty), "device": device,
            "versions": versions, "missing_modules": [m for m in NEEDED if importlib.util.find_spec(m) is None]}


def training_ratio(parts: dict) -> float | None:
    """Images/s the loader delivers over images/s the training step takes, at the trainer's precision."""
    rows = parts["a_training"].get("results", {})
    rate = parts["c_pipeline"].get("results", {}).get("loader", {}).get("images_per_s")
    train = [r["images_per_s"] for k, r in rows.items() if isinstance(r, dict) and "images_per_s" in r]
    return rate / train[0] if rate and train else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="the JSON to write")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on any device (CI)")
    parser.add_argument("--only", nargs="+", choices=list(BUDGET_S), help="run these parts only")
    parser.add_argument("--miniature", default=None, help="part f's data (default _build/rehearsal/data/paper)")
    parser.add_argument("--child", choices=list(BUDGET_S), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--soft-s", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # is_available() without initialising CUDA
    if args.child:
        child(args.child, args.smoke, args.workdir, args.soft_s, args.miniature)
        return 0
    if args.out is None:
        parser.error("--out FILE is required")
    import torch

    if not args.smoke and not torch.cuda.is_available():
        parser.error("no CUDA device here: the measurement needs a GPU (use --smoke to check the script on a CPU)")
    start, report = time.perf_counter(), {"parts": {}}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        for name in args.only or BUDGET_S:
            budget = min(BUDGET_S[name], TOTAL_S - (time.perf_counter() - start))
            report["parts"][name] = run_part(name, args, Path(tmp), budget)
            print(f"{name:16s} {report['parts'][name]['status']:30s} {report['parts'][name]['wall_s']:6.1f} s",
                  flush=True)
    report = {**environment(args.smoke), **report}  # after the parts: the parent never initialises CUDA first
    if report["missing_modules"]:
        print(f"missing modules {report['missing_modules']}: the parts that import them failed (README)")
    if "a_training" in report["parts"] and "c_pipeline" in report["parts"]:
        report["pipeline_over_training"] = training_ratio(report["parts"])
    report["wall_s"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    from aigfd_lite.train.measurements import result_table

    print(result_table(report))
    failed = [name for name, part in report["parts"].items() if part["status"] != "ok"]
    return 1 if args.smoke and failed else 0  # CI: a smoke part that fails fails the build


if __name__ == "__main__":
    sys.exit(main())
