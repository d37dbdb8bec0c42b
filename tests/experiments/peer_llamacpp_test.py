"""experiments/peer_llamacpp.py against a stand-in llama-bench (nothing is downloaded): the
files it writes, the rounds it pairs, the bytes it counts, and its errors.

Run by ctest (tests/CMakeLists.txt) with TRITUNE_CLI_BINARY set to the built tritune."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "experiments"))
import peer_llamacpp  # noqa: E402

TRITUNE = os.environ.get("TRITUNE_CLI_BINARY", os.path.join(ROOT, "build", "cli", "tritune"))

# A llama-bench stand-in: checks its arguments like llama-bench would need them (a GGUF file of
# llama.cpp's architecture name) and prints llama-bench's -o json shape with fixed speeds.
FAKE = r'''#!{python}
import json, sys
args = sys.argv[1:]
opt = dict(zip(args[::2], args[1::2]))
mode = {mode!r}
if mode == "fail":
    print("error: failed to load model: boom", file=sys.stderr); sys.exit(1)
if mode == "garbage":
    print("not json at all"); sys.exit(0)
with open(opt["-m"], "rb") as f:
    head = f.read(1 << 16)
assert head[:4] == b"GGUF", "not a GGUF file"
assert b"general.architecture" in head and b"bitnet.block_count" in head, "wrong architecture"
assert opt["-o"] == "json" and opt["-r"] == "1", opt
out = []
if int(opt["-p"]) > 0:
    out.append(dict(build_commit="fake123", n_prompt=int(opt["-p"]), n_gen=0, avg_ts=100.0))
if int(opt["-n"]) > 0:
    out.append(dict(build_commit="fake123", n_prompt=0, n_gen=int(opt["-n"]), avg_ts=10.0))
print(json.dumps(out))
'''


def fake_bench(d, mode="ok"):
    path = os.path.join(d, f"llama-bench-{mode}")
    with open(path, "w") as f:
        f.write(FAKE.format(python=sys.executable, mode=mode))
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="module")
def work():
    if not os.access(TRITUNE, os.X_OK):
        pytest.skip(f"tritune not built at {TRITUNE}")
    base = os.environ.get("TRITUNE_TEST_TMP")
    if base:
        os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix="peer-", dir=base)


def run_script(work, *extra):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "experiments", "peer_llamacpp.py"),
         "--tritune", TRITUNE, "--shape", "tiny", "-p", "8", "-n", "4", "-t", "1",
         "--models", os.path.join(work, "models")] + list(extra),
        capture_output=True, text=True)


def test_rounds_are_paired_and_counted(work):
    out_md, out_json = os.path.join(work, "r.md"), os.path.join(work, "r.json")
    out_png = os.path.join(work, "r.png")
    p = run_script(work, "--llama-bench", fake_bench(work), "-r", "3",
                   "--peer-format", "tq2_0,tq1_0", "--out", out_md, "--json", out_json,
                   "--plot", out_png)
    assert p.returncode == 0, p.stderr
    d = json.load(open(out_json))
    assert len(d["rounds"]) == 3
    assert set(d["engines"]) == {"tritune", "tq2_0", "tq1_0"}
    # Odd rounds run tritune first, even rounds last (dicts keep the order they ran in).
    assert list(d["rounds"][0])[0] == "tritune" and list(d["rounds"][1])[-1] == "tritune"
    for r in d["rounds"]:
        assert r["tq2_0"]["tg_tps"] == 10.0 and r["tq2_0"]["pp_tps"] == 100.0
        assert r["tritune"]["tg_tps"] > 0 and r["tritune"]["pp_tps"] > 0
        for name in r:
            lo, hi = r[name]["probe_gbs"]
            assert lo > 0 and hi > 0
            bound = d["engines"][name]["bytes"]["total"] / (max(lo, hi) * 1e9)
            assert r[name]["tg_bound_ratio"] == pytest.approx((1 / r[name]["tg_tps"]) / bound)
    s = d["summary"]["tq2_0"]
    speedups = sorted(r["tritune"]["tg_tps"] / 10.0 for r in d["rounds"])
    assert s["tg_speedup"] == pytest.approx(speedups[1])
    assert s["tg_speedup_range"] == pytest.approx([speedups[0], speedups[2]])
    # Bytes from the tensor tables: the tiny shape's 2 x 589824 linear weights are 66 bytes per
    # 256 in TQ2_0 and 54 per 256 in TQ1_0; the I2_S file holds 2 bits per weight plus a 32-byte
    # tail per tensor.
    e = d["engines"]
    assert e["tq2_0"]["bytes"]["linear"] == 2 * 589824 // 256 * 66
    assert e["tq1_0"]["bytes"]["linear"] == 2 * 589824 // 256 * 54
    assert e["tritune"]["bytes"]["linear"] == 2 * 589824 // 4 + 14 * 32
    for k in e:
        b = e[k]["bytes"]
        assert b["total"] > b["linear"] + b["head"] and b["kv"] > 0
    md = open(out_md).read()
    assert "| llama.cpp | TQ2_0 |" in md and "| tritune | I2_S |" in md
    assert "fake123" in md
    with open(out_png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert md.count("| llama.cpp TQ1_0 |") == 3 and md.count("| tritune I2_S |") == 3
    # The models are kept and reused.
    p2 = run_script(work, "--llama-bench", fake_bench(work), "-r", "1", "-n", "0")
    assert p2.returncode == 0, p2.stderr
    assert "writing" not in p2.stderr
    assert "tg time vs" in p2.stdout


def test_prompt_only_runs_keep_the_prompt_speed(work):
    # -n 0: no tg figures, but tritune's pp tokens/s and the paired pp speed-up over the stand-in
    # (fixed at 100 t/s) are still there.
    out_json = os.path.join(work, "pp_only.json")
    p = run_script(work, "--llama-bench", fake_bench(work), "-r", "1", "-n", "0",
                   "--json", out_json)
    assert p.returncode == 0, p.stderr
    d = json.load(open(out_json))
    r = d["rounds"][0]
    assert r["tritune"]["tg_tps"] is None and r["tq2_0"]["tg_tps"] is None
    assert r["tritune"]["pp_tps"] > 0 and r["tq2_0"]["pp_tps"] == 100.0
    s = d["summary"]["tq2_0"]
    assert s["pp_speedup"] == pytest.approx(r["tritune"]["pp_tps"] / 100.0)
    assert s["tg_speedup"] is None


def test_files_brought_by_the_user(work):
    # The synthetic files of the first test, passed in by name: nothing is written, the labels
    # come from the files' tensor types.
    models = os.path.join(work, "models")
    t = os.path.join(models, "tiny_s1_q6_k_i2_s.gguf")
    p2 = os.path.join(models, "tiny_s1_q6_k_tq2_0_bitnet.gguf")
    if not (os.path.exists(t) and os.path.exists(p2)):
        subprocess.run([TRITUNE, "make-model", "--shape", "tiny", "--embd-type", "q6_k", "-o", t],
                       check=True, capture_output=True)
        subprocess.run([TRITUNE, "make-model", "--shape", "tiny", "--embd-type", "q6_k",
                        "--format", "tq2_0", "--arch", "bitnet", "-o", p2],
                       check=True, capture_output=True)
    out_json = os.path.join(work, "own.json")
    p = run_script(work, "--llama-bench", fake_bench(work), "-r", "1", "--models",
                   os.path.join(work, "unused"), "--tritune-model", t, "--peer-model", p2,
                   "--json", out_json)
    assert p.returncode == 0, p.stderr
    d = json.load(open(out_json))
    assert d["engines"]["tritune"]["format"] == "I2_S"
    assert d["engines"]["peer1"]["format"] == "TQ2_0"
    assert d["engines"]["peer1"]["file"] == p2
    assert not os.path.exists(os.path.join(work, "unused"))
    p = run_script(work, "--llama-bench", fake_bench(work), "--tritune-model", t)
    assert p.returncode == 1 and "go together" in p.stderr
    p = run_script(work, "--llama-bench", fake_bench(work), "--tritune-model", t,
                   "--peer-model", os.path.join(work, "missing.gguf"))
    assert p.returncode == 1 and "missing.gguf: no such model file" in p.stderr


def test_errors_name_the_problem(work):
    p = run_script(work)
    assert p.returncode == 1 and "--llama-bench is required" in p.stderr
    p = run_script(work, "--llama-bench", os.path.join(work, "nope"))
    assert p.returncode == 1 and "nope: not an executable file" in p.stderr
    p = run_script(work, "--llama-bench", fake_bench(work, "fail"), "-r", "1")
    assert p.returncode == 1
    assert "llama-bench failed (exit 1)" in p.stderr and "boom" in p.stderr
    p = run_script(work, "--llama-bench", fake_bench(work, "garbage"), "-r", "1")
    assert p.returncode == 1 and "llama-bench did not print JSON" in p.stderr
    p = run_script(work, "--llama-bench", fake_bench(work), "--peer-format", "q4_0")
    assert p.returncode == 1 and "--peer-format q4_0" in p.stderr
    assert "Traceback" not in p.stderr
    # An output path that cannot be written: one line, no traceback.
    p = run_script(work, "--llama-bench", fake_bench(work), "-r", "1", "-n", "0",
                   "--out", os.path.join(work, "no", "such", "dir", "r.md"))
    assert p.returncode == 1 and "no/such/dir/r.md" in p.stderr
    assert "does not exist" in p.stderr and "round" not in p.stderr  # refused before any run
    assert "Traceback" not in p.stderr


def test_bytes_per_token_counts_a_tied_head_once():
    tables = {
        "metadata": {"general.architecture": "bitnet", "bitnet.block_count": 1,
                     "bitnet.embedding_length": 8, "bitnet.attention.head_count": 2,
                     "bitnet.attention.head_count_kv": 1},
        "tensors": [
            {"name": "token_embd.weight", "shape": [8, 10], "bytes": 800},
            {"name": "output_norm.weight", "shape": [8], "bytes": 32},
            {"name": "blk.0.attn_q.weight", "shape": [8, 8], "bytes": 100},
            {"name": "blk.0.attn_norm.weight", "shape": [8], "bytes": 32},
        ]}
    b = peer_llamacpp.bytes_per_token(tables, n_gen=3)
    # KV: K and V, 1 layer, kv_dim 4, f16, mean context (3 + 1) / 2 = 2.
    assert b["kv"] == 2 * 1 * 4 * 2 * 2
    assert b["linear"] == 100 and b["head"] == 800
    assert b["total"] == 132 + 800 + 80 + 32 + b["kv"]
    tables["tensors"].append({"name": "output.weight", "shape": [8, 10], "bytes": 400})
    assert peer_llamacpp.bytes_per_token(tables, n_gen=3)["head"] == 400
    del tables["metadata"]["bitnet.block_count"]
    with pytest.raises(peer_llamacpp.Failure, match="x.gguf: .*bitnet.block_count"):
        peer_llamacpp.bytes_per_token(tables, n_gen=3, where="x.gguf")
