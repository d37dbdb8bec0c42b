#!/usr/bin/env python3
"""tritune against llama.cpp on this CPU: the same synthetic BitNet b1.58 weights, the same run.

Writes a random-weight model of one shape twice with `tritune make-model` (same seed, so the
same ternary weights and scales): as I2_S for tritune and as TQ2_0 (and/or TQ1_0), under
llama.cpp's architecture name `bitnet`, for llama.cpp's `llama-bench`. Then runs the two
engines in alternating rounds (tritune first in odd rounds, llama.cpp first in even ones),
each run once per round (`-r 1`: ppP and tgN), with a stream-bandwidth probe
(`tritune bench roofline`, 2 x 256 MiB reads) before and after every run, and reports:

  * tg and pp tokens/s per engine (median over rounds, min..max);
  * tg time per token against the bandwidth bound: bytes a token reads / the better of the two
    probes around that run (median over rounds). Bytes per token are counted the same way for
    both files from their tensor tables (`tritune inspect --json`): every layer tensor, the
    output head, one embedding row, and the f16 KV cache at the mean tg context;
  * the speed-up of tritune over each peer, paired within rounds (median, min..max).

Nothing is downloaded: build llama.cpp's llama-bench yourself and pass its path. (llama.cpp
names the architecture `bitnet` and evaluates the FFN with SiLU instead of ReLU^2: a known
difference that changes no byte read and no operation count, so it does not matter for speed.)

With --tritune-model and --peer-model it compares files you bring instead (say a real 2B4T
in bitnet.cpp's I2_S GGUF for tritune and its TQ2_0 conversion for llama.cpp).

Writes a Markdown report (--out), all rounds as JSON (--json) and a plot (--plot).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_FORMATS = ("tq2_0", "tq1_0")


class Failure(Exception):
    """An error to print as one line and exit with status 1."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, what):
    """Runs cmd; returns its stdout. A failure names the command and the end of its stderr."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise Failure(f"{what}: cannot run {cmd[0]}: {e}")
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-5:]
        raise Failure(f"{what} failed (exit {p.returncode}): {' '.join(cmd)}\n  " +
                      "\n  ".join(tail))
    return p.stdout


def run_json(cmd, what):
    out = run(cmd, what)
    try:
        return json.loads(out)
    except json.JSONDecodeError as e:
        raise Failure(f"{what} did not print JSON ({e}): {' '.join(cmd)}\n  output began: "
                      f"{out[:200]!r}")


def check_executable(path, flag, fix):
    if not path:
        raise Failure(f"{flag} is required: {fix}")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise Failure(f"{flag} {path}: not an executable file ({fix})")


def bytes_per_token(tables, n_gen, where="model"):
    """Bytes a decode step reads from a GGUF file's tensor table (tritune inspect --json):
    every blk.* tensor, the output head (output.weight, else the tied token_embd.weight), one
    embedding row, the output norm, and the f16 KV cache at the mean context of a tgN run."""
    try:
        return _bytes_per_token(tables, n_gen)
    except (KeyError, TypeError, IndexError) as e:
        raise Failure(f"{where}: cannot count bytes per token, missing or odd entry {e}")


def _bytes_per_token(tables, n_gen):
    md = tables["metadata"]
    arch = md["general.architecture"]
    ts = {t["name"]: t for t in tables["tensors"]}
    layers = sum(t["bytes"] for n, t in ts.items() if n.startswith("blk."))
    linear = sum(t["bytes"] for n, t in ts.items()
                 if n.startswith("blk.") and len(t["shape"]) == 2)
    embd = ts["token_embd.weight"]
    head = ts.get("output.weight", embd)["bytes"]
    vocab = embd["shape"][1]
    row = embd["bytes"] // max(vocab, 1)
    norm = ts.get("output_norm.weight", {"bytes": 0})["bytes"]
    n_layer = md[f"{arch}.block_count"]
    hidden = md[f"{arch}.embedding_length"]
    heads = md[f"{arch}.attention.head_count"]
    kv_heads = md.get(f"{arch}.attention.head_count_kv", heads)
    kv_dim = hidden // heads * kv_heads
    mean_ctx = (n_gen + 1) / 2.0
    kv = 2 * n_layer * kv_dim * 2 * mean_ctx  # K and V, f16
    return {"total": layers + head + row + norm + kv, "linear": linear, "head": head,
            "kv": kv, "layer_tensors": layers}


class Prober:
    def __init__(self, tritune, threads):
        self.tritune, self.threads, self.samples = tritune, threads, []

    def __call__(self):
        d = run_json([self.tritune, "bench", "roofline", "-t", str(self.threads), "-r", "1",
                      "--mib", "256", "--json"], "stream probe")
        gbs = d["rows"][0]["stream_gbs"][0]
        self.samples.append(gbs)
        return gbs


def tritune_run(a, model):
    d = run_json([a.tritune, "bench", "e2e", "-m", model, "-p", str(a.p), "-n", str(a.n),
                  "-t", str(a.threads), "-r", "1", "--no-roofline", "--no-energy",
                  "--paired", "0", "--json"], "tritune bench e2e")
    return {"pp_tps": d["pp_tps_mean"] if a.p else None,
            "tg_tps": d["tg_tps_mean"] if a.n else None}


def llama_run(a, model):
    d = run_json([a.llama_bench, "-m", model, "-p", str(a.p), "-n", str(a.n),
                  "-t", str(a.threads), "-r", "1", "-o", "json"], "llama-bench")
    if not isinstance(d, list):
        raise Failure("llama-bench -o json printed no list of tests")
    out = {"pp_tps": None, "tg_tps": None, "build": None}
    for t in d:
        try:
            if t["n_prompt"] > 0 and t["n_gen"] == 0:
                out["pp_tps"] = float(t["avg_ts"])
            elif t["n_gen"] > 0 and t["n_prompt"] == 0:
                out["tg_tps"] = float(t["avg_ts"])
            out["build"] = t.get("build_commit")
        except (KeyError, TypeError, ValueError) as e:
            raise Failure(f"llama-bench -o json: a test lacks n_prompt/n_gen/avg_ts ({e})")
    if (a.n and out["tg_tps"] is None) or (a.p and out["pp_tps"] is None):
        raise Failure("llama-bench -o json: the pp/tg results are missing")
    return out


def linear_type(tables):
    """The type most of a file's layer matrices are stored in ("TQ2_0", "I2_S", ...)."""
    counts = {}
    for t in tables["tensors"]:
        if t["name"].startswith("blk.") and len(t["shape"]) == 2:
            counts[t["type"]] = counts.get(t["type"], 0) + 1
    return max(counts, key=counts.get) if counts else "?"


def make_models(a):
    """The model file of each engine: the ones given (--tritune-model, --peer-model), else
    synthetic ones written here (kept in --models for the next run)."""
    if a.tritune_model or a.peer_model:
        if not (a.tritune_model and a.peer_model):
            raise Failure("--tritune-model and --peer-model go together (or neither: synthetic "
                          "models are written)")
        files = {"tritune": a.tritune_model}
        for i, path in enumerate(a.peer_model):
            files[f"peer{i + 1}"] = path
        for path in files.values():
            if not os.path.isfile(path):
                raise Failure(f"{path}: no such model file")
        return files
    os.makedirs(a.models, exist_ok=True)
    stem = f"{a.shape}_s{a.seed}_{a.embd_type}"
    files = {"tritune": (os.path.join(a.models, f"{stem}_i2_s.gguf"),
                         ["--format", "i2_s"])}
    for f in a.peer_formats:
        files[f] = (os.path.join(a.models, f"{stem}_{f}_bitnet.gguf"),
                    ["--format", f, "--arch", "bitnet"])
    for key, (path, extra) in files.items():
        if os.path.exists(path) and not a.remake:
            continue
        log(f"writing {path}")
        tmp = path + ".part"
        run([a.tritune, "make-model", "--shape", a.shape, "--seed", str(a.seed),
             "--embd-type", a.embd_type, "-o", tmp] + extra, "tritune make-model")
        os.replace(tmp, path)
    return {k: v[0] for k, v in files.items()}


def git_describe():
    try:
        p = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                           capture_output=True, text=True)
        return p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else "?"
    except OSError:
        return "?"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def span(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def summarize(engines, rounds):
    out = {}
    for name in engines:
        rs = [r[name] for r in rounds]
        out[name] = {
            "tg_tps": med(r["tg_tps"] for r in rs), "tg_tps_range": span(r["tg_tps"] for r in rs),
            "pp_tps": med(r["pp_tps"] for r in rs), "pp_tps_range": span(r["pp_tps"] for r in rs),
            "tg_bound_ratio": med(r.get("tg_bound_ratio") for r in rs),
            "tg_bound_ratio_range": span(r.get("tg_bound_ratio") for r in rs),
        }
        if name != "tritune":
            for k in ("tg", "pp"):
                xs = [r["tritune"][f"{k}_tps"] / r[name][f"{k}_tps"] for r in rounds
                      if r["tritune"][f"{k}_tps"] and r[name][f"{k}_tps"]]
                out[name][f"{k}_speedup"] = med(xs)
                out[name][f"{k}_speedup_range"] = span(xs)
    return out


def models_text(a, engines):
    if a.tritune_model:
        return "models " + ", ".join(f"`{e['file']}`" for e in engines.values())
    return (f"synthetic `{a.shape}` model (seed {a.seed}, {a.embd_type} embedding and tied "
            f"head)")


def markdown(a, info, engines, summary, probes, rounds):
    lines = [f"# tritune vs llama.cpp on {info['cpu']}", "",
             f"{info['date']}; {a.threads} threads; {models_text(a, engines)}; "
             f"pp{a.p} and tg{a.n}, {a.rounds} rounds "
             f"alternating the engines' order; tritune {info['tritune_version']}, llama.cpp "
             f"build {info['llama_build']}. Stream probe ({a.threads} threads) around every run: "
             f"median {fmt(med(probes))} GB/s, {fmt(span(probes)[0])}..{fmt(span(probes)[1])}.",
             "",
             f"| engine | weights | bytes per token | tg{a.n} t/s (min..max) | "
             f"tg time vs bytes / bandwidth | pp{a.p} t/s (min..max) | tritune speed-up tg / pp |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, e in engines.items():
        s = summary[name]
        lo, hi = s["tg_tps_range"]
        plo, phi = s["pp_tps_range"]
        speed = "-"
        if name != "tritune":
            speed = f"{fmt(s['tg_speedup'])}x / {fmt(s['pp_speedup'])}x"
        lines.append(
            f"| {e['label']} | {e['format']} | {e['bytes']['total'] / 1e6:.1f} MB | "
            f"{fmt(s['tg_tps'])} ({fmt(lo)}..{fmt(hi)}) | {fmt(s['tg_bound_ratio'])}x | "
            f"{fmt(s['pp_tps'])} ({fmt(plo)}..{fmt(phi)}) | {speed} |")
    lines += ["", "tg time vs bytes / bandwidth: the run's seconds per generated token over "
              "(bytes per token / the better of the stream probes just before and just after "
              "that run), median over rounds; 1.00x is the streaming roofline. Speed-ups are "
              "paired within a round (same minute of the machine), median over rounds.", "",
              "Every run, in the order it ran (the probes are the stream reads just before and "
              "just after it; when they differ a lot, the machine changed state during the run "
              "and its ratio to the better probe overstates the gap):", "",
              f"| round | engine | probes GB/s | tg{a.n} t/s | tg vs bound | pp{a.p} t/s |",
              "|---:|---|---:|---:|---:|---:|"]
    for i, r in enumerate(rounds):
        for name, res in r.items():
            e = engines[name]
            lo, hi = res["probe_gbs"]
            lines.append(f"| {i + 1} | {e['label']} {e['format']} | {lo:.1f} / {hi:.1f} | "
                         f"{fmt(res['tg_tps'])} | {fmt(res.get('tg_bound_ratio'))}x | "
                         f"{fmt(res['pp_tps'])} |")
    lines.append("")
    return "\n".join(lines)


def plot(path, a, engines, summary, rounds):
    """Bars of tg and pp tokens/s per engine (medians), whiskers at the rounds' min and max,
    and each run's tg time against the bound (how far from the roofline)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(engines)
    labels = [f"{engines[n]['label']}\n{engines[n]['format']}" for n in names]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, k, title in ((axes[0], "tg", f"tg{a.n}"), (axes[1], "pp", f"pp{a.p}")):
        med_ = [summary[n][f"{k}_tps"] or 0 for n in names]
        lo = [m - (summary[n][f"{k}_tps_range"][0] or m) for n, m in zip(names, med_)]
        hi = [(summary[n][f"{k}_tps_range"][1] or m) - m for n, m in zip(names, med_)]
        ax.bar(range(len(names)), med_, yerr=[lo, hi], capsize=4,
               color=["tab:blue" if n == "tritune" else "tab:gray" for n in names])
        ax.set_xticks(range(len(names)), labels)
        ax.set_title(f"{title}, tokens/s ({a.threads} threads)")
    ax = axes[2]
    for i, n in enumerate(names):
        ys = [r[n].get("tg_bound_ratio") for r in rounds if r[n].get("tg_bound_ratio")]
        ax.scatter([i] * len(ys), ys, color="tab:blue" if n == "tritune" else "tab:gray")
    ax.axhline(1.0, color="k", lw=0.8, label="the bound")
    ax.axhline(1.1, color="tab:red", lw=0.8, ls="--", label="1.1x")
    ax.legend(loc="upper left")
    ax.set_xticks(range(len(names)), labels)
    ax.set_title("tg time / (bytes / stream bandwidth), per run")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-bench", help="path of llama.cpp's llama-bench (required)")
    ap.add_argument("--tritune", default=os.path.join(ROOT, "build", "cli", "tritune"),
                    help="the tritune binary (default: build/cli/tritune)")
    ap.add_argument("--shape", default="2b4t", help="make-model shape (default 2b4t)")
    ap.add_argument("--embd-type", default="q6_k", help="embedding/head type (default q6_k)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--peer-format", default="tq2_0",
                    help="llama.cpp weight formats, comma-separated: tq2_0,tq1_0 (default tq2_0)")
    ap.add_argument("-p", type=int, default=512, help="prompt tokens (0: no pp)")
    ap.add_argument("-n", type=int, default=128, help="generated tokens (0: no tg)")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("--models", default=os.path.join(ROOT, "build", "peer_models"),
                    help="where the model files go (kept between runs; default build/peer_models)")
    ap.add_argument("--remake", action="store_true", help="write the model files again")
    ap.add_argument("--tritune-model", help="run tritune on this GGUF instead of a synthetic "
                    "model (with --peer-model; --shape, --seed, --embd-type, --peer-format "
                    "are then unused)")
    ap.add_argument("--peer-model", action="append", default=[],
                    help="run llama-bench on this GGUF (repeatable), e.g. the same model in "
                    "llama.cpp's TQ2_0 layout and architecture name")
    ap.add_argument("--out", help="Markdown report (default: print it)")
    ap.add_argument("--json", dest="json_out", help="all rounds and the summary as JSON")
    ap.add_argument("--plot", help="PNG: tokens/s per engine and each run's tg ratio to the "
                    "bound (matplotlib)")
    a = ap.parse_args(argv)
    try:
        check_executable(a.llama_bench, "--llama-bench",
                         "build llama.cpp (cmake -B build && cmake --build build -t llama-bench) "
                         "and pass build/bin/llama-bench")
        check_executable(a.tritune, "--tritune", "build tritune first (scripts/test.sh or "
                         "cmake --build build)")
        for flag, path in (("--out", a.out), ("--json", a.json_out), ("--plot", a.plot)):
            # Checked before the rounds: a run of several minutes must not end unwritable.
            d = os.path.dirname(os.path.abspath(path)) if path else None
            if d and not os.path.isdir(d):
                raise Failure(f"{flag} {path}: directory {d} does not exist")
        a.peer_formats = [f for f in a.peer_format.split(",") if f]
        for f in a.peer_formats:
            if f not in PEER_FORMATS:
                raise Failure(f"--peer-format {f}: llama.cpp runs {', '.join(PEER_FORMATS)}")
        if a.rounds < 1 or a.threads < 1 or a.p < 0 or a.n < 0 or a.p + a.n == 0:
            raise Failure("need -r >= 1, -t >= 1, -p/-n >= 0 and not both 0")
        files = make_models(a)
        engines = {}
        for key, path in files.items():
            tables = run_json([a.tritune, "inspect", "-m", path, "--json", "--no-load"],
                              "tritune inspect")["file_tables"]
            engines[key] = {"label": "tritune" if key == "tritune" else "llama.cpp",
                            "format": linear_type(tables),
                            "file": path, "bytes": bytes_per_token(tables, a.n, where=path)}
        probe = Prober(a.tritune, a.threads)
        rounds = []
        for r in range(a.rounds):
            order = list(engines) if r % 2 == 0 else list(reversed(list(engines)))
            row = {}
            before = probe()
            for name in order:
                e = engines[name]
                res = tritune_run(a, e["file"]) if name == "tritune" else llama_run(a, e["file"])
                after = probe()
                res["probe_gbs"] = [before, after]
                if res["tg_tps"]:
                    bound_s = e["bytes"]["total"] / (max(before, after) * 1e9)
                    res["tg_bound_ratio"] = (1.0 / res["tg_tps"]) / bound_s
                row[name] = res
                before = after
                log(f"round {r + 1}/{a.rounds} {name}: tg {fmt(res['tg_tps'])} t/s, pp "
                    f"{fmt(res['pp_tps'])} t/s, probes {before:.1f} GB/s")
            rounds.append(row)
        summary = summarize(engines, rounds)
        builds = {r[n].get("build") for r in rounds for n in r if n != "tritune"}
        info = {"cpu": platform.processor() or platform.machine(),
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "tritune_version": git_describe(),
                "llama_build": ",".join(sorted(b for b in builds if b)) or "?"}
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        info["cpu"] = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        md = markdown(a, info, engines, summary, probe.samples, rounds)
        if a.out:
            with open(a.out, "w") as f:
                f.write(md)
            log(f"wrote {a.out}")
        else:
            print(md)
        if a.json_out:
            with open(a.json_out, "w") as f:
                json.dump({"args": vars(a), "info": info,
                           "engines": engines, "rounds": rounds, "summary": summary,
                           "probes_gbs": probe.samples}, f, indent=1)
            log(f"wrote {a.json_out}")
        if a.plot:
            try:
                plot(a.plot, a, engines, summary, rounds)
                log(f"wrote {a.plot}")
            except ImportError:
                log("matplotlib is missing (pip install -r requirements.txt): no plot")
    except Failure as e:
        log(f"peer_llamacpp: error: {e}")
        return 1
    except OSError as e:  # --models, --out or --json not writable, a disk full
        log(f"peer_llamacpp: error: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
