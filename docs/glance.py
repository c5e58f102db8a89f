"""Results at a glance, rendered from the saved JSON: README's section and the
top of docs/results.md.

    python docs/glance.py          # rewrites both blocks in place
    python docs/glance.py --check  # exits 1 where a block differs from the JSON

Each block sits between the markers `START` and `END`; nothing outside them is
touched. Every number comes from a JSON file an example script wrote next to
its table in docs/, or from docs/published.json (the source's figures and the
goals, as the issues quote them). tests/test_docs.py checks the committed
blocks equal what this script renders. Needs only the standard library.
"""

import argparse
import json
import math
import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
START = "<!-- glance:start (written by `python docs/glance.py` from docs/*.json: edit that, not this) -->"
END = "<!-- glance:end -->"

MNIST_TABLE = "mnist_cpu_table"
MNIST_PICTURE = "mnist_cpu_all.png"  # composed by docs/pictures.py
UCF = "ucf101_cpu"
UCF_PICTURE = "ucf101_cpu.png"
UCF_CURVE = "ucf101_levels.png"  # drawn by docs/pictures.py
ONLINE = ("online_memory_t16", "online_memory_t32", "online_memory_t64")
MOVING = "moving_mnist_cpu"  # with moving_mnist_cpu.png and moving_mnist_cpu_levels.png
PREDICTION = "moving_mnist_prediction_cpu"  # with moving_mnist_prediction_cpu.png
VARIANTS = {"tree": "the tree trained with the update",
            "tree-frozen": "the adapted tree held fixed, only the update trained"}
PREDICTORS = {"tree": "tree predictor (IMFN, ours)",
              "tree-frozen": "tree predictor, tree fixed (IMFN, ours)", "convlstm": "ConvLSTM",
              "gru": "GRU", "transformer": "Transformer", "copy_last": "copy last frame (reference)"}
BASELINES = {"transformer": "Transformer", "mamba": "Mamba", "gru": "GRU"}
REFERENCES = {"pca": "PCA, same size (reference)", "mean_image": "mean image (reference)"}
STUDENT_PREFIX = "student: "


def load(name):
    with open(DOCS / f"{name}.json") as f:
        return json.load(f)


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def command(results):
    backend = f" (backend {results['backend']})" if "backend" in results else ""
    return f"`{results['command']}`{backend}"


def psnr_of(mse):
    """10 log10(1 / MSE): how every table here turns an MSE into PSNR."""
    return 10 * math.log10(1 / mse)


def _mean_std(row, key, digits):
    """`mean ± std` over seeds; the mean alone for rows that do not vary (references)."""
    if row[key]["std"] == 0:
        return f"{row[key]['mean']:.{digits}f}"
    return f"{row[key]['mean']:.{digits}f} ± {row[key]['std']:.{digits}f}"


def _gap(db, what):
    """`1.19 dB above the published figure` / `... below ...`."""
    return f"{abs(db):.2f} dB {'above' if db >= 0 else 'below'} {what}"


def _level_with(gaps, within=0.25):
    """How a row of per-level gaps (ours minus a reference, dB) reads in words."""
    if max(abs(gap) for gap in gaps) <= within:
        return "level with"
    return "above" if min(gaps) > 0 else "below" if max(gaps) < 0 else "mixed against"


# --- MNIST ------------------------------------------------------------------


def mnist_numbers():
    """The MNIST table's headline rows: ours, the best baseline, PCA."""
    results, published = load(MNIST_TABLE), load("published")["mnist"]
    models = results["models"]
    best = min(BASELINES, key=lambda name: models[name]["mse"]["mean"])
    return dict(config=results["config"], models=models, ours=models["imfn"], best=best,
                published=published)


STEP_COST = ("step_cost_before_cpu_jax", "step_cost_after_cpu_jax")  # benchmarks/results/


def training_flops():
    """MFLOP per sequence of one training step at the cpu shape, by (model, phase),
    from `benchmarks/step_cost.py`'s saved JSON (the later file wins: IMFN's after
    the one-pass step; the baselines' code did not change)."""
    flops = {}
    for name in STEP_COST:
        with open(DOCS.parent / "benchmarks" / "results" / f"{name}.json") as f:
            for row in json.load(f)["rows"]:
                flops[row["model"], row["phase"]] = row["flops_per_sequence"] / 1e6
    return flops


def flops_sentence(flops):
    """Which model's training step costs more, here and at the paper shape."""
    baselines = {name: flops[name, "train"] for name in BASELINES if (name, "train") in flops}
    ours = flops["imfn", "end_to_end"]
    cheaper = [BASELINES[name] for name, value in baselines.items() if value < ours]
    here = ("IMFN's end-to-end step is the cheapest per sequence" if not cheaper else
            f"IMFN's end-to-end step costs more per sequence than the {', '.join(cheaper)}'s")
    ratio = {}
    for when, name in (("before", "step_cost_after_paper_batch4_jax"),
                       ("now", "step_cost_levels_paper_batch4_jax")):
        with open(DOCS.parent / "benchmarks" / "results" / f"{name}.json") as f:
            paper = {row["model"]: row for row in json.load(f)["rows"]
                     if row["phase"] in ("end_to_end", "train")}
        ratio[when] = paper["imfn"]["flops_per_sequence"] / paper["transformer"]["flops_per_sequence"]
    return (f"{here} at this shape; at the source's shape (T=128, d=1024) the tree sized by "
            f"its levels' work ({paper['imfn']['params'] / 1e6:.1f}M parameters) costs "
            f"{ratio['now']:.2f} times the Transformer's ({paper['transformer']['params'] / 1e6:.1f}M), "
            f"down from {ratio['before']:.1f} times with one shared sweeper "
            "([benchmarks](benchmarks.md)).")


def mnist_block(link):
    numbers = mnist_numbers()
    flops = training_flops()
    models, ours, published, config = (numbers[k] for k in ("models", "ours", "published", "config"))
    rows = [["**IMFN (ours)**", _mean_std(ours, "mse", 4), _mean_std(ours, "psnr", 2),
             _mean_std(ours, "ssim", 3), f"{ours['params']:,}",
             f"{flops['imfn', 'end_to_end']:,.0f} ({flops['imfn', 'local']:,.0f} local)"],
            ["IMFN, published (source's own setting)", f"{published['imfn_mse']:.4f}",
             f"{psnr_of(published['imfn_mse']):.2f}", "–", "–", "–"]]
    rows += [[label, _mean_std(models[name], "mse", 4), _mean_std(models[name], "psnr", 2),
              _mean_std(models[name], "ssim", 3), f"{models[name]['params']:,}",
              f"{flops[name, 'train']:,.0f}" if (name, "train") in flops else "–"]
             for name, label in {**BASELINES, **REFERENCES}.items()]
    trained = [name for name in models if name in BASELINES or name in REFERENCES]
    best_mse = all(ours["mse"]["mean"] < models[name]["mse"]["mean"] for name in trained)
    best_ssim = all(ours["ssim"]["mean"] > models[name]["ssim"]["mean"] for name in trained)
    smaller = all(ours["params"] <= models[name]["params"] for name in BASELINES)
    goal = published["goal"]
    met = ours["mse"]["mean"] <= goal["mse_at_most"] and ours["ssim"]["mean"] >= goal["ssim_at_least"]
    best = numbers["best"]
    if best_mse and best_ssim:
        verdict = ("IMFN has the lowest MSE and the highest SSIM of every model and reference"
                   + (", with fewer parameters than any baseline" if smaller else ""))
    else:
        verdict = "IMFN does not lead on both MSE and SSIM"
    sentence = (
        f"Sequences of {config['sequence_length']} test digits, each compressed into "
        f"{config['memory_dim']} numbers; {config['steps']:,} steps of batch "
        f"{config['batch_size']} for every model, "
        f"mean ± std over {config['seeds']} seeds. {verdict}; the closest baseline, the "
        f"{BASELINES[best]}, has {models[best]['mse']['mean']:.4f} MSE and "
        f"{models[best]['ssim']['mean']:.3f} SSIM. The goal of MSE <= {goal['mse_at_most']:.3f} "
        f"with SSIM >= {goal['ssim_at_least']:.2f} ({goal['set_in']}) is "
        f"{'met' if met else 'not met'} on the mean. The published row is the source's IMFN "
        f"at its own setting: {published['setting']}."
    )
    results = load(MNIST_TABLE)
    return "\n\n".join([
        "## MNIST sequences: IMFN against Transformer, Mamba and GRU compressors",
        table(["model", "MSE ± std", "PSNR (dB) ± std", "SSIM ± std", "parameters",
               "training MFLOP / sequence"], rows),
        "Parameters are matched, as the source does; the last column is the other budget, "
        "the FLOPs of one training step per sequence at this shape (XLA's count, "
        "`benchmarks/step_cost.py`, IMFN end to end and in its local phase). " + flops_sentence(flops),
        f"![The first test sequence: the original digits, then each model's reconstruction]"
        f"({MNIST_PICTURE})",
        "Every model on the first test sequence, composed by `python docs/pictures.py` from "
        "the picture each run saved (rows cropped, pixels unchanged; labels from the JSON).",
        sentence,
        f"{command(results)}, combining one run per model ({len(results['runs'])} runs; their "
        f"commands and the whole story: {link('mnist')}).",
    ])


# --- UCF-101 ----------------------------------------------------------------


def ucf_numbers():
    results, published = load(UCF), load("published")["ucf101"]
    levels = results["levels"]
    return dict(results=results, levels=levels, published=published,
                tree=[level["psnr"]["mean"] for level in levels],
                pca=[level["pca_psnr"] for level in levels])


def ucf_block(link):
    numbers = ucf_numbers()
    results, levels, published = numbers["results"], numbers["levels"], numbers["published"]
    rows = [[f"L{level['level']}", f"{level['compression']}-to-1",
             f"**{level['psnr']['mean']:.2f} ± {level['psnr']['std']:.2f}**",
             f"{psnr:.2f}", f"{level['pca_psnr']:.2f}", f"{level['mean_frame_psnr']:.2f}"]
            for level, psnr in zip(levels, published["psnr"])]
    pca_gap = [tree - pca for tree, pca in zip(numbers["tree"], numbers["pca"])]
    published_gap = [tree - psnr for tree, psnr in zip(numbers["tree"], published["psnr"])]
    goal = published["goal"]
    config, validation = results["config"], results["data"]["validation"]
    chosen = ("the untrained hierarchical-PCA start: every epoch of training scored lower on "
              "the held-out clips" if validation["selected"]["phase"] == "start" else
              f"those of {validation['selected']['phase']} epoch {validation['selected']['epoch']}")
    sentence = (
        f"{config['size']}x{config['size']} clips of {config['frames']} frames from the "
        f"UCF-101-layout mini tree; PSNR ± std over {results['data']['test']['clips']} test "
        f"clips. The tree is {_level_with(pca_gap)} PCA of the same size (within "
        f"{max(abs(gap) for gap in pca_gap):.2f} dB at every level); it is "
        f"{_gap(published_gap[0], 'the published figure')} at L0 and "
        f"{_gap(published_gap[-1], 'it')} at L{levels[-1]['level']} (goals, {goal['set_in']}: "
        f"L0 >= {goal['l0_psnr_at_least']} dB "
        f"{'met' if numbers['tree'][0] >= goal['l0_psnr_at_least'] else 'not met'}, "
        f"L3 >= {goal['l3_psnr_at_least']} dB "
        f"{'met' if numbers['tree'][-1] >= goal['l3_psnr_at_least'] else 'not met'}). "
        f"The weights chosen on held-out clips are {chosen}."
    )
    return "\n\n".join([
        "## UCF-101 video: reconstruction from every level of the tree",
        table(["level", "compression", "IMFN tree (ours), PSNR (dB)", "published",
               "PCA, same size", "group mean frame"], rows),
        f"![PSNR against compression: the tree, PCA of the same size, the group mean frame "
        f"and the published figures]({UCF_CURVE})",
        f"![The first test clip: the original frames, then the reconstruction from L0 to L3]"
        f"({UCF_PICTURE})",
        sentence,
        f"{command(results)}; the whole story: {link('ucf101')}.",
    ])


# --- online memory ----------------------------------------------------------


def online_numbers():
    runs = {}
    for name in ONLINE:
        results = load(name)
        for length, rows in results["lengths"].items():
            runs[int(length)] = dict(rows=rows, command=command(results),
                                     steps=(results["config"]["teacher_steps"],
                                            results["config"]["student_steps"]))
    # The chosen student of the smallest state (d + 1 numbers), and the chosen
    # wider ones (segmented), each chosen on validation among its state size.
    picked = {length: sorted((row["state_numbers"], name) for name, row in run["rows"].items()
                             if row.get("chosen_on_validation"))
              for length, run in runs.items()}
    chosen = {length: names[0][1] for length, names in picked.items()}
    wider = {length: [name for _, name in names[1:]] for length, names in picked.items()}
    return dict(runs=runs, chosen=chosen, wider=wider,
                goal=load("published")["online_memory"]["goal"])


def online_block(link):
    numbers = online_numbers()
    runs, chosen, wider, goal = (numbers[k] for k in ("runs", "chosen", "wider", "goal"))
    lengths = sorted(runs)
    names = []
    for length in lengths:
        names += [name for name in runs[length]["rows"] if name not in names]
    names.sort(key=lambda name: name in REFERENCES)  # the references last

    def label(name):
        tag = " (chosen on validation)" if any(
            chosen[t] == name or name in wider[t] for t in lengths) else ""
        return {"mean_image": REFERENCES["mean_image"],
                "pca": REFERENCES["pca"]}.get(name, name + tag)

    rows = []
    for name in names:
        row = [label(name)]
        for length in lengths:
            entry = runs[length]["rows"].get(name)
            if entry is None:
                row += ["not run", "–", "–"]
                continue
            ratio = f"{entry['test']['ratio']:.3f}"
            picked = name == chosen[length] or name in wider[length]
            row += [f"{entry['test']['mse']:.4f}", f"**{ratio}**" if picked else ratio,
                    "–" if entry["state_numbers"] is None else f"{entry['state_numbers']:,}"]
        rows.append(row)
    headers = ["model"]
    for length in lengths:
        headers += [f"T={length}: MSE", "/ teacher", "state (numbers)"]
    first = lengths[0]
    cell = {length: runs[length]["rows"]["exact cell"] for length in lengths}
    student = {length: runs[length]["rows"][chosen[length]] for length in lengths}
    ratios = " and ".join(f"{student[length]['test']['ratio']:.3f} times"
                          + (" the teacher's MSE" if length == first else "") + f" at T={length}"
                          + f" ({chosen[length].removeprefix('student: ')})"
                          for length in lengths)
    met = [length for length in lengths if student[length]["test"]["ratio"] <= goal["student_over_teacher_at_most"]]
    sentence = (
        f"Each stream of digits read online, its memory decoded by the teacher. The exact cell "
        f"is the teacher (ratio {cell[first]['test']['ratio']:.3f}) with a state of "
        f"{cell[first]['state_numbers']:,} numbers at T={first}; the chosen student keeps "
        f"{student[first]['state_numbers']:,} and its decoded memory has "
        f"{ratios} (goal <= {goal['student_over_teacher_at_most']}, {goal['set_in']}: "
        + (f"met at T={', '.join(str(t) for t in met)} only" if met and met != lengths else
           "met" if met else "not met") + ")."
    )
    segmented = [f"{runs[t]['rows'][name]['test']['ratio']:.3f} at T={t} with "
                 f"{runs[t]['rows'][name]['state_numbers']:,} numbers "
                 f"({name.removeprefix('student: ')})"
                 for t in lengths for name in wider[t]]
    if segmented:
        wide_met = sorted({t for t in lengths for name in wider[t] if runs[t]["rows"][name]
                           ["test"]["ratio"] <= goal["student_over_teacher_at_most"]})
        sentence += (" Students of a wider state (`SegmentedCell`: the stream cut into "
                     "segments, a student per segment, the teacher's top levels over them), "
                     "the best of each state size on validation: " + "; ".join(segmented)
                     + (f" (within the goal at T={', '.join(map(str, wide_met))})"
                        if wide_met else " (none within the goal)") + ".")
    by_steps = {}
    for length in lengths:
        by_steps.setdefault(runs[length]["steps"], []).append(f"T={length}")
    sentence += " Training steps, teacher / each student: " + "; ".join(
        f"{teacher:,} / {student:,} at {' and '.join(at)}"
        for (teacher, student), at in by_steps.items()) + "."
    pictures = [f"![T={length}: original, teacher, exact cell, each student, the references]"
                f"({name}.png)" for length, name in zip(lengths, ONLINE)]
    return "\n\n".join([
        "## Online memory: the exact streaming cell and the distilled students",
        table(headers, rows),
        *pictures,
        sentence,
        "; ".join(runs[length]["command"] for length in lengths)
        + f"; the whole story: {link('online')}.",
    ])


# --- Moving MNIST -------------------------------------------------------------


def moving_numbers():
    results, prediction = load(MOVING), load(PREDICTION)
    goal = load("published")["moving_mnist"]
    levels = results["levels"]
    gaps = [level["psnr"]["mean"] - level["pca_psnr"] for level in levels]
    rows = prediction["rows"]
    trees = [name for name in rows if name.startswith("tree")]
    baselines = [name for name in rows if name not in trees + ["copy_last"]]
    best = min(baselines, key=lambda name: rows[name]["mse_per_frame"])
    # The tree predictor of the headline: the variant that scored best on validation.
    tree = max(trees, key=lambda name: rows[name]["validation"]["score"])
    return dict(results=results, prediction=prediction, goal=goal, levels=levels, gaps=gaps,
                rows=rows, best=best, tree=tree, baselines=baselines)


def moving_block(link):
    numbers = moving_numbers()
    results, levels, gaps, goal = (numbers[k] for k in ("results", "levels", "gaps", "goal"))
    level_rows = [[f"L{level['level']}", f"{level['compression']}-to-1",
                   f"**{level['psnr']['mean']:.2f} ± {level['psnr']['std']:.2f}**",
                   f"{level['untrained_psnr']:.2f}", f"{level['pca_psnr']:.2f}",
                   f"{gap:+.2f}", f"{level['mean_frame_psnr']:.2f}"]
                  for level, gap in zip(levels, gaps)]
    config, data = results["config"], results["data"]
    ratio = results["mse_ratio_last_to_first"]
    need = goal["goal"]
    met = [min(gaps) >= need["pca_gap_db_at_least"],
           ratio <= need["mse_ratio_last_to_first_at_most"]]
    steps = config["steps_per_epoch"] * (config["local_epochs"] + config["end_to_end_epochs"])
    reconstruction = (
        f"{config['size']}x{config['size']} clips of {config['frames']} frames; PSNR ± std over "
        f"{data['test']['clips']} fixed test clips of the test digits; {steps:,} training steps "
        f"of {config['batch_size']} fresh clips. The learned tree is {_level_with(gaps)} PCA of "
        f"the same size, {min(gaps):+.2f} to {max(gaps):+.2f} dB across the levels, and the "
        f"MSE ratio L{levels[-1]['level']}/L0 is {ratio:.2f} (goals, {need['set_in']}: "
        f">= {need['pca_gap_db_at_least']} dB above PCA at every level "
        f"{'met' if met[0] else 'not met'}; ratio <= {need['mse_ratio_last_to_first_at_most']} "
        f"{'met' if met[1] else 'not met'})."
    )
    prediction, rows, best = numbers["prediction"], numbers["rows"], numbers["best"]
    chosen = numbers["tree"]
    pconfig = prediction["config"]
    order = sorted(rows, key=lambda name: rows[name]["mse_per_frame"])
    def label(name):
        return f"**{PREDICTORS[name]}** (chosen on validation)" if name == chosen else PREDICTORS[name]

    table_rows = [[label(name), f"{rows[name]['mse_per_frame']:.1f}",
                   f"{rows[name]['mae_per_frame']:.1f}", f"{rows[name]['ssim']:.3f}",
                   f"{rows[name]['params']:,}" if rows[name]["params"] else "–",
                   f"{rows[name]['steps']:,} x {rows[name]['batch_size']}"
                   if rows[name]["steps"] else "–"] for name in order]
    anchors = goal["openstl"]
    table_rows += [[f"{row['model']}, OpenSTL ({anchors['budget']})", f"{row['mse_per_frame']:.2f}",
                    "–", f"{row['ssim']:.3f}" if "ssim" in row else "–", "–", "–"]
                   for row in anchors["rows"]]
    tree, other = rows[chosen]["mse_per_frame"], rows[best]["mse_per_frame"]
    ahead = tree < other
    predicting = (
        f"{pconfig['future']} frames predicted from {pconfig['context']}, "
        f"{prediction['data']['test']['clips']} fixed test clips; MSE and MAE summed over the "
        f"pixels of a frame, averaged over frames and clips, as OpenSTL reports them. Every "
        f"model trained for the same steps on the same fresh clips, each baseline at the width "
        f"whose parameter count is nearest the tree predictor's. The tree predictor (the "
        f"variant chosen on validation: {VARIANTS[chosen]}) has {tree:.1f} MSE per frame, "
        f"{tree / other:.2f} times the best baseline's ({PREDICTORS[best]}, {other:.1f}; goal, "
        f"{need['set_in']}: {need['prediction']}: {'met' if ahead else 'not met'}). "
        f"All are far from the OpenSTL anchors, trained for 200 epochs on a GPU."
    )
    return "\n\n".join([
        "## Moving MNIST: reconstruction from every level, and prediction",
        table(["level", "compression", "IMFN tree (ours), PSNR (dB)", "untrained tree",
               "PCA, same size", "tree - PCA (dB)", "group mean frame"], level_rows),
        f"![PSNR against compression: the tree, PCA of the same size and the group mean "
        f"frame]({MOVING}_levels.png)",
        f"![The first test clip: the original frames, then the reconstruction from L0 to "
        f"L{levels[-1]['level']}]({MOVING}.png)",
        reconstruction,
        command(results) + ".",
        table(["model", "MSE / frame", "MAE / frame", "SSIM", "parameters", "steps x batch"],
              table_rows),
        f"![The first test clip: the context, the true future, then each model's prediction]"
        f"({PREDICTION}.png)",
        predicting,
        f"{command(prediction)}; the whole story: {link('moving')}.",
    ])


# --- the two blocks -----------------------------------------------------------

JOURNAL_SECTIONS = {
    "paper": "mnist-at-the-sources-shape-128-digits-in-1024-numbers",
    "mnist": "mnist-sequences-imfn-vs-transformer-mamba-and-gru-compressors",
    "ucf101": "ucf-101-video-reconstruction-from-every-level-of-a-token-grid-tree",
    "online": "online-memory-the-exact-cell-and-the-students",
    "moving": "moving-mnist-reconstruction-and-prediction",
}


PAPER_TABLE = "mnist_paper_cpu"  # docs/, written by the paper-cpu preset (partial while it runs)
PAPER_ROWS = {"imfn": "**IMFN (ours)**", "imfn_local": "IMFN at its start (`adapt`, untrained)",
              "transformer": "Transformer", "mamba": "Mamba", "gru": "GRU",
              "pca": "PCA, same size (reference)", "mean_image": "mean image (reference)"}


def paper_block(link):
    """The MNIST table at the source's own shape, beside the published rows."""
    results, published = load(PAPER_TABLE), load("published")["mnist_paper"]
    config, models = results["config"], results["models"]
    with open(DOCS.parent / "benchmarks" / "results" /
              "step_cost_levels_paper_batch4_jax.json") as f:
        flops = {row["model"]: row["flops_per_sequence"] / 1e9 for row in json.load(f)["rows"]
                 if row["phase"] in ("end_to_end", "train")}

    def spread(row, metric, digits):
        return (f"{row[metric]['mean']:.{digits}f} ± "
                f"{row['per_sequence_std'][metric]:.{digits}f}")

    rows = []
    for name, label in PAPER_ROWS.items():
        if name in models:
            row = models[name]
            rows.append([label, spread(row, "mse", 4), spread(row, "psnr", 2),
                         spread(row, "ssim", 3), f"{row['params']:,}",
                         f"{flops[name]:.2f}" if name in flops else "–",
                         f"{row['train_seconds'] / 3600:.1f}" if row["train_seconds"] else "–"])
        if name in published["rows"]:
            source = published["rows"][name]
            rows.append([f"{BASELINES.get(name, 'IMFN')}, published", f"{source['mse']:.4f} ± {source['mse_std']:.4f}",
                         f"{source['psnr']:.2f} ± {source['psnr_std']:.2f}",
                         f"{source['ssim']:.3f} ± {source['ssim_std']:.3f}", source["params"], "–", "–"])
    pending = results.get("pending") or []
    goal = published["goal"]
    ours = models.get("imfn")
    if ours:
        met = (ours["mse"]["mean"] <= goal["mse_at_most"]
               and ours["ssim"]["mean"] >= goal["ssim_at_least"])
        verdict = (f"IMFN's part of the goal, MSE <= {goal['mse_at_most']:.3f} with SSIM >= "
                   f"{goal['ssim_at_least']:.2f} ({goal['set_in']}), is {'met' if met else 'not met'}"
                   + ("; whether it is ahead of the baselines at the same budget waits for their "
                      "rows." if pending else "."))
    else:
        verdict = "IMFN has not finished yet."
    status = (f"**Partial: the run goes on** (not finished yet: {', '.join(pending)}); "
              "its run directory resumes across sessions." if pending else "")
    return "\n\n".join(part for part in [
        "## MNIST sequences at the source's shape: 128 digits in 1,024 numbers",
        status,
        table(["model", "MSE ± std", "PSNR (dB) ± std", "SSIM ± std", "parameters",
               "training GFLOP / sequence", "train hours"], rows),
        f"Our rows: {config['test_sequences']} fixed sequences of {config['sequence_length']} "
        f"test digits, ± the std over those sequences (one seed); every model trains "
        f"{config['end_to_end_steps']:,} steps of batch {config['batch_size']} on the pixel MSE "
        f"(backend {results.get('backend', '?')}, 2 CPU cores), on training digits disjoint from "
        f"the {config['validation_digits']:,} held out for choices and from the test digits. "
        "The published rows are the source's, ± over its seeds, at its own budget. FLOPs: "
        "XLA's count of one training step (`benchmarks/step_cost.py`). " + verdict,
        f"![The first test sequence at T=128: the original digits and each model's "
        f"reconstruction, 32 digits a row]({PAPER_TABLE}.png)",
        f"{command(results)}: the run trains with the same command less `--report-only` "
        f"(and resumes with it); with it, the table of what has finished (the story: "
        f"{link('paper')}).",
    ] if part)


def results_block():
    """The top of docs/results.md: every headline table with its picture and command."""
    def link(key):
        return f"[journal.md](journal.md#{JOURNAL_SECTIONS[key]})"

    return "\n\n".join([paper_block(link), mnist_block(link), ucf_block(link),
                        online_block(link), moving_block(link)])


def readme_block():
    """README's "Results at a glance": the headline numbers and the picture."""
    mnist, ucf, online = mnist_numbers(), ucf_numbers(), online_numbers()
    moving = moving_numbers()
    ours, models, best = mnist["ours"], mnist["models"], mnist["best"]
    first = min(online["runs"])
    rows = online["runs"][first]["rows"]
    student, cell = rows[online["chosen"][first]], rows["exact cell"]
    # The same student at the longer T, where it was run.
    longer = ", ".join(
        f"{online['runs'][t]['rows'][online['chosen'][first]]['test']['ratio']:.3f} at T={t}"
        if online["chosen"][t] == online["chosen"][first] else f"not run at T={t}"
        for t in sorted(online["runs"]) if t != first)
    # The wider (segmented) student of each longer T, the best on validation.
    wide = []
    for t in sorted(online["runs"]):
        names = online["wider"][t]
        if names:
            rows_t = online["runs"][t]["rows"]
            pick = rows_t[min(names, key=lambda name: rows_t[name]["validation"]["mse"])]
            wide.append(f"{pick['test']['ratio']:.3f} at T={t} with "
                        f"{pick['state_numbers']:,} numbers")
    wide_sentence = (f"; a student of a wider state (the stream cut into segments) "
                     f"decodes to {' and '.join(wide)}" if wide else "")
    levels = ucf["levels"]
    config = mnist["config"]
    return "\n".join([
        f"- **MNIST sequences** ({config['sequence_length']} digits in "
        f"{config['memory_dim']} numbers, {config['seeds']} seeds): IMFN reconstructs with MSE "
        f"{ours['mse']['mean']:.4f} and SSIM {ours['ssim']['mean']:.3f}; the best baseline, the "
        f"{BASELINES[best]}, {models[best]['mse']['mean']:.4f} and "
        f"{models[best]['ssim']['mean']:.3f}; PCA of the same size "
        f"{models['pca']['mse']['mean']:.4f} and {models['pca']['ssim']['mean']:.3f}.",
        f"- **UCF-101 video** (a mini data set of a few videos): PSNR "
        f"{ucf['tree'][0]:.2f} dB from L0 ({levels[0]['compression']}-to-1) and "
        f"{ucf['tree'][-1]:.2f} dB from L{levels[-1]['level']} "
        f"({levels[-1]['compression']}-to-1), "
        f"{_level_with([t - p for t, p in zip(ucf['tree'], ucf['pca'])])} PCA of the same size "
        f"({ucf['pca'][0]:.2f} and {ucf['pca'][-1]:.2f}); published "
        f"{ucf['published']['psnr'][0]:.2f} and {ucf['published']['psnr'][-1]:.2f}.",
        f"- **Online memory** (T={first}): the exact streaming cell equals the teacher "
        f"({cell['state_numbers']:,} numbers of state); the distilled student keeps "
        f"{student['state_numbers']:,} and decodes to {student['test']['ratio']:.3f} times the "
        f"teacher's MSE" + (f" ({longer})" if longer else "") + wide_sentence + ".",
        f"- **Moving MNIST** (fresh clips every step): the learned tree is "
        f"{moving['gaps'][0]:+.2f} dB against PCA of the same size at L0 and "
        f"{moving['gaps'][-1]:+.2f} dB at L{moving['levels'][-1]['level']}; predicting "
        f"{moving['prediction']['config']['future']} frames from "
        f"{moving['prediction']['config']['context']}, the tree predictor has "
        f"{moving['rows'][moving['tree']]['mse_per_frame']:.1f} MSE per frame, the best baseline of "
        f"the same size and steps ({PREDICTORS[moving['best']]}) "
        f"{moving['rows'][moving['best']]['mse_per_frame']:.1f}.",
        "",
        f"![MNIST, the first test sequence: the original digits, then each model's "
        f"reconstruction](docs/{MNIST_PICTURE})",
        "",
        "Tables, pictures and commands: [docs/results.md](docs/results.md); how each was "
        "reached: [docs/journal.md](docs/journal.md). `python docs/glance.py` writes this "
        "section from the saved JSON.",
    ])


TARGETS = {ROOT / "README.md": readme_block, DOCS / "results.md": results_block}


def replace_block(text, block, path="the file"):
    """`text` with what lies between `START` and `END` replaced by `block`."""
    if text.count(START) != 1 or text.count(END) != 1:
        raise ValueError(f"{path} needs exactly one pair of glance markers:\n{START}\n{END}")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a block differs from the JSON")
    args = parser.parse_args(argv)
    stale = []
    for path, render in TARGETS.items():
        text = path.read_text()
        new = replace_block(text, render(), path)
        if new != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"out of date: {', '.join(map(str, stale))}; run python docs/glance.py")
        return 1
    print(("rewrote: " + ", ".join(map(str, stale))) if stale and not args.check else "up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
