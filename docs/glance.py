"""Results at a glance, rendered from the saved JSON: README's section, the
same bullets on the site's home page (docs/index.md) and the top of
docs/results.md.

    python docs/glance.py          # rewrites the three blocks in place
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
sys.path.insert(0, str(ROOT / "examples"))  # the drivers' presets (experiments/)
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


def picture(alt, path):
    """An image that opens full size when clicked (the site scales it to the page)."""
    return f"[![{alt}]({path})]({path})"


def seeds_text(count):
    """`one seed` / `3 seeds`: a JSON without a `seeds` field is one training run."""
    return "one seed" if count == 1 else f"{count} seeds"


def backend_of(results):
    """The Keras backend a JSON's rows ran on: its own field, else its runs' fields."""
    if "backend" in results:
        return results["backend"]
    found = sorted({run["backend"] for run in results.get("runs", []) if run.get("backend")})
    return " and ".join(found) if found else "not recorded"


def _and(items):
    """`a`, `a and b`, `a, b and c`."""
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


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
                published=published, backend=backend_of(results), start=mnist_start(results))


def mnist_start(results):
    """The config of the run that gave the table's `imfn_local` row (None without one):
    the combined table keeps only the settings every run shares."""
    for run in results["runs"]:
        if "imfn_local" in run["models"]:
            output = run["command"].split("--output ")[1].split()[0]
            return load(pathlib.Path(output).stem)["config"]
    return None


def start_note(numbers, short=False):
    """What the `imfn_local` row of the T=16 table and its picture is, in words."""
    config, models = numbers["start"], numbers["models"]
    if config is None:
        return ""
    start, mean = models["imfn_local"]["mse"]["mean"], models["mean_image"]["mse"]["mean"]
    if config["local_steps"]:
        what = (f"the tree after its local phase only ({config['local_steps']:,} steps on the "
                "per-level losses), decoded from the root, before its end-to-end phase")
    elif config.get("imfn_fit_leaves"):
        what = ("the tree before any training step: `adapt`'s closed-form start, decoded "
                "from the root")
    else:
        what = ("the tree before any training step, decoded from the root: `adapt`'s "
                "closed-form start, a hierarchical PCA of the features of a leaf encoder not "
                "yet trained (this run does not fit the leaves, so its leaf decoder is "
                "untrained too)")
    if short:
        what = (f"IMFN after its local phase only ({config['local_steps']:,} steps)"
                if config["local_steps"] else
                "IMFN's closed-form start (`adapt`) before any training step" + (
                    "" if config.get("imfn_fit_leaves") else
                    ", its leaf encoder and decoder not yet trained"))
        return (f"Its `imfn_local` row is not a trained model: it is {what}, decoded from the "
                f"root (MSE {start:.4f}, {'worse' if start > mean else 'better'} than the mean "
                f"image's {mean:.4f}); the `imfn` row is the same tree after training.")
    return (f"The picture's `imfn_local` row (IMFN at its start in the table) is {what}: not a "
            f"trained model. Its MSE, {start:.4f}, is {'worse' if start > mean else 'better'} "
            f"than the mean image's, {mean:.4f}; the `imfn` row is the same tree after "
            f"{config['end_to_end_steps']:,} end-to-end steps.")


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
    if "imfn_local" in models:
        start = models["imfn_local"]
        rows.append([
            "IMFN at its start (`imfn_local`: " + ("local phase only)" if numbers["start"]
                                                   ["local_steps"] else "untrained)"),
            _mean_std(start, "mse", 4), _mean_std(start, "psnr", 2), _mean_std(start, "ssim", 3),
            f"{start['params']:,}", "–"])
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
        f"mean ± std over {config['seeds']} seeds, backend {numbers['backend']}. {verdict}; the closest baseline, the "
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
        picture("The first test sequence: the original digits, then each model's "
                "reconstruction", MNIST_PICTURE),
        "Every model on the first test sequence, composed by `python docs/pictures.py` from "
        "the picture each run saved (rows cropped, pixels unchanged; labels from the JSON; "
        "click for full size). " + start_note(numbers),
        sentence,
        f"{command(results)}, combining one run per model ({len(results['runs'])} runs; their "
        f"commands and the whole story: {link('mnist')}).",
    ])


# --- UCF-101 ----------------------------------------------------------------


def ucf_numbers():
    results, published = load(UCF), load("published")["ucf101"]
    levels = results["levels"]
    config, data = results["config"], results["data"]
    epochs = config["local_epochs"] + config["end_to_end_epochs"]
    clips = data["train"]["clips_trained_on"]
    budget = dict(epochs=epochs, local=config["local_epochs"],
                  end_to_end=config["end_to_end_epochs"],
                  clips=clips, batch=config["batch_size"],
                  steps=epochs * math.ceil(clips / config["batch_size"]),
                  seeds=config.get("seeds", 1), backend=backend_of(results))
    selected = data["validation"]["selected"]
    return dict(results=results, levels=levels, published=published, budget=budget,
                untrained=selected["phase"] == "start", selected=selected,
                tree=[level["psnr"]["mean"] for level in levels],
                pca=[level["pca_psnr"] for level in levels])


def ucf_budget(numbers):
    """`36 epochs (24 local, 12 end to end) of 104 training clips, 936 steps x batch 4, ...`."""
    b = numbers["budget"]
    return (f"{b['epochs']} epochs ({b['local']} local, {b['end_to_end']} end to end) of "
            f"{b['clips']:,} training clips, {b['steps']:,} steps x batch {b['batch']}, "
            f"{seeds_text(b['seeds'])}, backend {b['backend']}")


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
        f"The weights chosen on held-out clips are {chosen}"
        + (", so the tree column reports that start, not a trained tree. " if numbers["untrained"]
           else ". ")
        + f"Training budget: {ucf_budget(numbers)}."
    )
    return "\n\n".join([
        "## UCF-101 video: reconstruction from every level of the tree",
        table(["level", "compression", "IMFN tree (ours" + (", its untrained start" if
               numbers["untrained"] else "") + "), PSNR (dB)", "published", "PCA, same size",
               "group mean frame"], rows),
        picture("PSNR against compression: the tree, PCA of the same size, the group mean "
                "frame and the published figures", UCF_CURVE),
        picture("The first test clip: the original frames, then the reconstruction from L0 to "
                f"L{levels[-1]['level']}", UCF_PICTURE),
        sentence,
        f"{command(results)}; the whole story: {link('ucf101')}.",
    ])


# --- online memory ----------------------------------------------------------


def online_numbers():
    from experiments.online_memory import sized, teacher_config

    runs = {}
    for name in ONLINE:
        results = load(name)
        config = results["config"]
        for key, rows in results["lengths"].items():
            length = int(key)
            runs[length] = dict(rows=rows, command=f"`{results['command']}`", name=name,
                                steps=(config["teacher_steps"], config["student_steps"]),
                                batch=config["batch_size"], seeds=config.get("seeds", 1),
                                teacher_batch=teacher_config(config, length)["batch_size"],
                                sized=sized(config, length),
                                backend=backend_of(results),
                                per_step=config.get("numbers_per_step"))
    # The chosen student of the smallest state (d + 1 numbers), and the chosen
    # wider ones (segmented), each chosen on validation among its state size.
    picked = {length: sorted((row["state_numbers"], name) for name, row in run["rows"].items()
                             if row.get("chosen_on_validation"))
              for length, run in runs.items()}
    chosen = {length: names[0][1] for length, names in picked.items()}
    wider = {length: [name for _, name in names[1:]] for length, names in picked.items()}
    return dict(runs=runs, chosen=chosen, wider=wider,
                goal=load("published")["online_memory"]["goal"])


def chosen_students(runs, chosen):
    """Per T, the one-vector student chosen on validation: its name, its test
    ratio to the teacher, its state, whether it trains (an untrained student
    has no training seconds) and whether it decodes worse than the mean image."""
    picked = {}
    for t, run in sorted(runs.items()):
        row = run["rows"][chosen[t]]
        mean = run["rows"].get("mean_image")
        worse = mean is not None and row["test"]["mse"] > mean["test"]["mse"]
        # The trained students of the same state that decode no better than it.
        no_better = [name.removeprefix(STUDENT_PREFIX) for name, other in run["rows"].items()
                     if name.startswith(STUDENT_PREFIX) and other["train_seconds"] > 0
                     and other["state_numbers"] == row["state_numbers"]
                     and other["test"]["mse"] >= row["test"]["mse"]]
        picked[t] = dict(name=chosen[t].removeprefix(STUDENT_PREFIX), ratio=row["test"]["ratio"],
                         state=row["state_numbers"], trained=row["train_seconds"] > 0,
                         failed=worse, no_better=no_better)
    return picked


def student_phrase(t, student, first=False):
    """`1.117 times the teacher's MSE at T=16 (learned-path+g, 129 numbers)`,
    with a failure said as such."""
    text = (f"{student['ratio']:.3f}" + (" times the teacher's MSE" if first else "")
            + f" at T={t} ({student['name']}, {student['state']:,} numbers")
    if student["failed"]:
        text += ", worse than the mean image: a failure"
        if not student["trained"] and student["no_better"]:
            text += (f"; the untrained student, the trained {_and(student['no_better'])} "
                     "decoding no better")
    return text + ")"


def online_budget(run):
    """`teacher 3,000 steps x batch 64 (a sweeper of width 2d per level), each
    student 1,200 x batch 32`."""
    (teacher_steps, student_steps), batch = run["steps"], run["batch"]
    tree = "the tree sized by its levels' work" if run["sized"] else "a sweeper of width 2d per level"
    return (f"teacher {teacher_steps:,} steps x batch {run['teacher_batch']} ({tree}), "
            f"each student {student_steps:,} x batch {batch}")


def online_stale(run, length):
    """A note where the preset now trains another teacher than the table's."""
    from experiments.online_memory import PRESETS, sized

    if run["sized"] == sized(PRESETS["cpu"], length):
        return ""
    return (" This table's teacher predates the `cpu` preset's `sized_from`: its command now "
            "trains the tree sized by its levels' work (the table is being trained again).")


def online_block(link):
    numbers = online_numbers()
    runs, chosen, wider, goal = (numbers[k] for k in ("runs", "chosen", "wider", "goal"))
    lengths = sorted(runs)

    def label(name, length):
        tag = " (chosen on validation)" if name == chosen[length] or name in wider[length] else ""
        return {"mean_image": REFERENCES["mean_image"],
                "pca": REFERENCES["pca"]}.get(name, name + tag)

    # One table per T (a single table of every T is too wide to read).
    parts = []
    for length, name in zip(lengths, ONLINE):
        run = runs[length]
        names = sorted(run["rows"], key=lambda row: row in REFERENCES)  # the references last
        rows = []
        for row in names:
            entry = run["rows"][row]
            ratio = f"{entry['test']['ratio']:.3f}"
            picked = row == chosen[length] or row in wider[length]
            rows.append([label(row, length), f"{entry['test']['mse']:.4f}",
                         f"**{ratio}**" if picked else ratio,
                         "–" if entry["state_numbers"] is None else f"{entry['state_numbers']:,}"])
        parts += [
            f"**T={length}**: {online_budget(run)}; {seeds_text(run['seeds'])}; backend "
            f"{run['backend']}; {run['command']}.{online_stale(run, length)}",
            table(["model", "MSE", "MSE / teacher's", "state (numbers)"], rows),
            picture(f"T={length}: original, teacher, exact cell, each student, the references",
                    f"{name}.png"),
            f"T={length}, the first test stream: the original digits, then each row of the "
            "table above, top to bottom, with its test MSE (click for full size).",
        ]
    first = lengths[0]
    cell = {length: runs[length]["rows"]["exact cell"] for length in lengths}
    picked = chosen_students(runs, chosen)
    ratios = " and ".join(student_phrase(t, picked[t], t == first) for t in lengths)
    met = [t for t in lengths if picked[t]["ratio"] <= goal["student_over_teacher_at_most"]]
    sentence = (
        f"Each stream of digits read online, its memory decoded by the teacher. The exact cell "
        f"is the teacher (ratio {cell[first]['test']['ratio']:.3f}) with a state of "
        f"{cell[first]['state_numbers']:,} numbers at T={first}; the student of one memory "
        f"vector (d + 1 numbers, d = {runs[first]['per_step']} numbers per digit x T) chosen on "
        f"validation at each T has {ratios} (goal <= {goal['student_over_teacher_at_most']}, "
        f"{goal['set_in']}: "
        + (f"met at T={', '.join(str(t) for t in met)} only" if met and met != lengths else
           "met" if met else "not met") + ")."
    )
    segmented = [f"{runs[t]['rows'][name]['test']['ratio']:.3f} at T={t} with "
                 f"{runs[t]['rows'][name]['state_numbers']:,} numbers "
                 f"({name.removeprefix(STUDENT_PREFIX)})"
                 for t in lengths for name in wider[t]]
    if segmented:
        wide_met = sorted({t for t in lengths for name in wider[t] if runs[t]["rows"][name]
                           ["test"]["ratio"] <= goal["student_over_teacher_at_most"]})
        sentence += (" Students of a wider state (`SegmentedCell`: the stream cut into "
                     "segments, a student per segment, the teacher's top levels over them), "
                     "the best of each state size on validation: " + "; ".join(segmented)
                     + (f" (within the goal at T={', '.join(map(str, wide_met))})"
                        if wide_met else " (none within the goal)") + ".")
    return "\n\n".join([
        "## Online memory: the exact streaming cell and the distilled students",
        "Each T has its own table (the student's state grows with T); the bold ratios are "
        "the students chosen on validation, one per state size.",
        *parts,
        sentence + f" The whole story: {link('online')}.",
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
    config = results["config"]
    budget = dict(steps=config["steps_per_epoch"] * (config["local_epochs"]
                                                    + config["end_to_end_epochs"]),
                  batch=config["batch_size"], seeds=config.get("seeds", 1),
                  backend=backend_of(results))
    trained = {(rows[name]["steps"], rows[name]["batch_size"])
               for name in rows if rows[name]["steps"]}
    predicting = dict(steps=", ".join(f"{steps:,} steps x batch {batch}"
                                      for steps, batch in sorted(trained)),
                      every=len(trained) == 1, seeds=prediction["config"].get("seeds", 1),
                      backend=backend_of(prediction))
    return dict(results=results, prediction=prediction, goal=goal, levels=levels, gaps=gaps,
                rows=rows, best=best, tree=tree, baselines=baselines, budget=budget,
                predicting=predicting)


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
    budget = numbers["budget"]
    reconstruction = (
        f"{config['size']}x{config['size']} clips of {config['frames']} frames; PSNR ± std over "
        f"{data['test']['clips']} fixed test clips of the test digits; {budget['steps']:,} "
        f"training steps x batch {budget['batch']} of fresh clips, "
        f"{seeds_text(budget['seeds'])}, backend {budget['backend']}. The learned tree is {_level_with(gaps)} PCA of "
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
    spent = numbers["predicting"]
    predicting = (
        f"{pconfig['future']} frames predicted from {pconfig['context']}, "
        f"{prediction['data']['test']['clips']} fixed test clips; MSE and MAE summed over the "
        f"pixels of a frame, averaged over frames and clips, as OpenSTL reports them. Every "
        f"model trained for the same steps on the same fresh clips ({spent['steps']}"
        f"{' for every model' if spent['every'] else ''}, {seeds_text(spent['seeds'])}, "
        f"backend {spent['backend']}), each baseline at the width "
        f"whose parameter count is nearest the tree predictor's. The tree predictor (the "
        f"variant chosen on validation: {VARIANTS[chosen]}) has {tree:.1f} MSE per frame, "
        f"{tree / other:.2f} times the best baseline's ({PREDICTORS[best]}, {other:.1f}; goal, "
        f"{need['set_in']}: {need['prediction']}: {'met' if ahead else 'not met'}). "
        f"All are far from the OpenSTL anchors ({anchors['budget']})."
    )
    return "\n\n".join([
        "## Moving MNIST: reconstruction from every level, and prediction",
        table(["level", "compression", "IMFN tree (ours), PSNR (dB)", "untrained tree",
               "PCA, same size", "tree - PCA (dB)", "group mean frame"], level_rows),
        picture("PSNR against compression: the tree, PCA of the same size and the group mean "
                "frame", f"{MOVING}_levels.png"),
        picture("The first test clip: the original frames, then the reconstruction from L0 to "
                f"L{levels[-1]['level']}", f"{MOVING}.png"),
        reconstruction,
        command(results) + ".",
        table(["model", "MSE / frame", "MAE / frame", "SSIM", "parameters", "steps x batch"],
              table_rows),
        picture("The first test clip: the context, the true future, then each model's "
                "prediction", f"{PREDICTION}.png"),
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


PAPER_STEP_COSTS = ("step_cost_levels_paper_batch4_jax.json",
                    "step_cost_levels_paper_mamba_batch4_jax.json")


def paper_block(link):
    """The MNIST table at the source's own shape, beside the published rows."""
    results, published = load(PAPER_TABLE), load("published")["mnist_paper"]
    config, models = results["config"], results["models"]
    flops = {}
    for name in PAPER_STEP_COSTS:  # IMFN and the Transformer in one run, Mamba in another
        with open(DOCS.parent / "benchmarks" / "results" / name) as f:
            flops.update({row["model"]: row["flops_per_sequence"] / 1e9
                          for row in json.load(f)["rows"]
                          if row["phase"] in ("end_to_end", "train")})

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
                      "rows." if pending else ". " + ranking(models)))
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
        f"test digits, ± the std over those sequences ({seeds_text(config['seeds'])}); every "
        f"model trains {config['local_steps'] + config['end_to_end_steps']:,} steps of batch "
        f"{config['batch_size']} on the pixel MSE "
        f"(backend {results.get('backend', '?')}, 2 CPU cores), on training digits disjoint from "
        f"the {config['validation_digits']:,} held out for choices and from the test digits. "
        "The published rows are the source's, ± over its seeds, at its own budget. FLOPs: "
        "XLA's count of one training step (`benchmarks/step_cost.py`). "
        + learning_rates(config, models) + " " + verdict
        + "".join(f" The {name} {COLLAPSED} (its reconstructions are one saturated image, "
                  f"the same for every digit: {link('paper')})."
                  for name in below_mean_image(models))
        + "".join(f" The {name}'s {BARELY.format(gain=gain)} (its loss per epoch: "
                  f"{link('paper')})."
                  for name, gain in near_mean_image(models)),
        picture(f"The first test sequence at T={config['sequence_length']}: the original "
                "digits and each model's reconstruction", f"{PAPER_TABLE}.png"),
        f"The first test sequence at T={config['sequence_length']}, wrapped over several rows "
        "labelled with their steps: the original digits, then "
        + _and(f"{PAPER_ROWS.get(name, name).replace('**', '')} (`{name}`)" for name in models)
        + " (click for full size).",
        f"{command(results)}: the run trains with the same command less `--report-only` "
        f"(and resumes with it); with it, the table of what has finished (the story: "
        f"{link('paper')}).",
        gpu_preset_line(config),
    ] if part)


def ranking(models):
    """Whether IMFN is ahead of every baseline and reference row of a
    finished table, on MSE and on SSIM."""
    ours = models["imfn"]
    others = {name: PAPER_ROWS[name].replace(" (reference)", "") for name in models
              if name in BASELINES or name in REFERENCES}
    parts = []
    for metric, better in (("MSE", lambda a, b: a < b), ("SSIM", lambda a, b: a > b)):
        key = metric.lower()
        ahead_of_us = [label for name, label in others.items()
                       if not better(ours[key]["mean"], models[name][key]["mean"])]
        parts.append(f"on {metric} it is ahead of every other row" if not ahead_of_us else
                     f"on {metric} {_and(ahead_of_us)} {'is' if len(ahead_of_us) == 1 else 'are'}"
                     " level with or ahead of it")
    return f"IMFN against the baselines and references at the same budget: {'; '.join(parts)}."


def gpu_preset_line(cpu_config):
    """The `paper` preset (the source's budget, for a GPU) beside `paper-cpu`."""
    from experiments.mnist_sequence import PRESETS

    paper = PRESETS["paper"]
    steps = paper["local_steps"] + paper["end_to_end_steps"]
    cpu_steps = cpu_config["local_steps"] + cpu_config["end_to_end_steps"]
    share = steps * paper["batch_size"] * paper["seeds"] / (
        cpu_steps * cpu_config["batch_size"] * cpu_config["seeds"])
    return (f"The `paper` preset, for a GPU, trains the same models at the source's budget: "
            f"{paper['local_steps']:,} local then {paper['end_to_end_steps']:,} end-to-end "
            f"steps of batch {paper['batch_size']}, {seeds_text(paper['seeds'])}, "
            f"{paper['test_sequences']:,} test sequences: {share:.0f} times this table's "
            "sequences. Its GPU time is not measured yet, as no GPU has been lent to these "
            "sessions; `benchmarks/preset_steps.py` times its steps on one and projects the "
            "hours.")


def results_block():
    """The top of docs/results.md: every headline table with its picture and command."""
    def link(key):
        return f"[journal.md](journal.md#{JOURNAL_SECTIONS[key]})"

    return "\n\n".join([paper_block(link), mnist_block(link), ucf_block(link),
                        online_block(link), moving_block(link)])


def below_mean_image(models):
    """The trained baselines of a table whose MSE is above the mean image's."""
    floor = models["mean_image"]["mse"]["mean"]
    return [BASELINES[name] for name in BASELINES
            if name in models and models[name]["mse"]["mean"] > floor]


def near_mean_image(models, within=0.10):
    """`(label, how far below)` for each trained baseline whose MSE is below
    the mean image's by less than `within` of it: one that barely learned."""
    floor = models["mean_image"]["mse"]["mean"]
    return [(BASELINES[name], 1 - models[name]["mse"]["mean"] / floor) for name in BASELINES
            if name in models and 1 - within < models[name]["mse"]["mean"] / floor <= 1]


BARELY = ("MSE is only {gain:.0%} below the mean image's: at this budget it had barely "
          "begun to learn")
COLLAPSED = ("ended worse than the mean image, which a constant output reaches: its "
             "training failed at this budget and learning rate, so its row says nothing yet "
             "of the architecture")


def learning_rates(config, models):
    """How a table's baselines in `models` were optimised: Adam at a learning
    rate chosen for the table (`<name>_learning_rate`, with its warm-up) or
    the drivers' one default."""
    from experiments.mnist_sequence import LEARNING_RATE

    parts = []
    for name in BASELINES:
        if name in models:
            warmup = config.get(f"{name}_warmup_steps", 0)
            chosen = f"{name}_learning_rate" in config
            parts.append(f"the {BASELINES[name]} at "
                         f"{config.get(f'{name}_learning_rate', LEARNING_RATE):g}"
                         + (f" after a linear warm-up of {warmup:,} steps" if warmup else "")
                         + (" (chosen on the validation digits)" if chosen
                            else " (the drivers' default, not chosen for this shape)"))
    return f"Adam: {_and(parts)}." if parts else ""


def paper_numbers():
    """The T=128 table (partial while it runs) beside the published rows."""
    results = load(PAPER_TABLE)
    config = results["config"]
    pending = []
    for entry in results.get("pending") or []:  # `model/seed`
        name = entry.split("/")[0]
        label = BASELINES.get(name, "IMFN" if name.startswith("imfn") else name)
        if label not in pending:
            pending.append(label)
    return dict(config=config, models=results["models"], pending=pending,
                published=load("published")["mnist_paper"]["rows"], backend=backend_of(results),
                steps=config["local_steps"] + config["end_to_end_steps"])


def glance_bullets():
    """The headline bullets of README and of the site's home page."""
    mnist, ucf, online = mnist_numbers(), ucf_numbers(), online_numbers()
    moving, paper = moving_numbers(), paper_numbers()
    ours, models, best = mnist["ours"], mnist["models"], mnist["best"]
    config = mnist["config"]

    # MNIST at the source's own setting first: ours beside the published rows.
    pconfig, pmodels, published = paper["config"], paper["models"], paper["published"]
    if "imfn" in pmodels:
        theirs = [f"its {'IMFN' if name == 'imfn' else BASELINES[name]} "
                  f"{row['mse']:.4f} and {row['ssim']:.3f}" for name, row in published.items()]
        mine = [f"our {BASELINES[name]} {pmodels[name]['mse']['mean']:.4f} and "
                f"{pmodels[name]['ssim']['mean']:.3f}" for name in BASELINES if name in pmodels]
        paper_result = (
            f"IMFN reconstructs with MSE {pmodels['imfn']['mse']['mean']:.4f} and SSIM "
            f"{pmodels['imfn']['ssim']['mean']:.3f}" + (f", {_and(mine)}" if mine else "")
            + f"; the source's published table (its own budget, over its seeds): "
            f"{_and(theirs)}")
    else:
        paper_result = "IMFN has not finished yet"
    status = (f" This table is partial: our {_and(paper['pending'])} "
              f"{'are' if len(paper['pending']) > 1 else 'is'} still training."
              if paper["pending"] else "")
    failed = below_mean_image(pmodels)
    collapsed = (f" Our {_and(failed)} {COLLAPSED}." if failed else "")
    collapsed += "".join(f" Our {name}'s {BARELY.format(gain=gain)}."
                         for name, gain in near_mean_image(pmodels))
    paper_bullet = (
        f"- **MNIST at the source's setting** ({pconfig['sequence_length']} digits in "
        f"{pconfig['memory_dim']:,} numbers; {paper['steps']:,} steps x batch "
        f"{pconfig['batch_size']}, {seeds_text(pconfig['seeds'])}, backend {paper['backend']}): "
        f"{paper_result}.{collapsed}{status}")
    mnist_bullet = (
        f"- **MNIST sequences, every baseline** ({config['sequence_length']} digits in "
        f"{config['memory_dim']} numbers; {config['steps']:,} steps x batch "
        f"{config['batch_size']} for every model, {seeds_text(config['seeds'])}, backend "
        f"{mnist['backend']}): IMFN reconstructs with MSE "
        f"{ours['mse']['mean']:.4f} and SSIM {ours['ssim']['mean']:.3f}; the best baseline, the "
        f"{BASELINES[best]}, {models[best]['mse']['mean']:.4f} and "
        f"{models[best]['ssim']['mean']:.3f}; PCA of the same size "
        f"{models['pca']['mse']['mean']:.4f} and {models['pca']['ssim']['mean']:.3f}.")

    levels, results = ucf["levels"], ucf["results"]
    start = ("the weights chosen on held-out clips are the untrained hierarchical-PCA start "
             "(no epoch of training scored higher), so the tree reported is that start: "
             if ucf["untrained"] else "")
    ucf_bullet = (
        f"- **UCF-101 video** (a mini data set of {results['data']['train']['videos_read']} "
        f"training and {results['data']['test']['videos_read']} test videos; {ucf_budget(ucf)}): "
        f"{start}PSNR {ucf['tree'][0]:.2f} dB from L0 ({levels[0]['compression']}-to-1) and "
        f"{ucf['tree'][-1]:.2f} dB from L{levels[-1]['level']} "
        f"({levels[-1]['compression']}-to-1), "
        f"{_level_with([t - p for t, p in zip(ucf['tree'], ucf['pca'])])} PCA of the same size "
        f"({ucf['pca'][0]:.2f} and {ucf['pca'][-1]:.2f}); published "
        f"{ucf['published']['psnr'][0]:.2f} and {ucf['published']['psnr'][-1]:.2f}.")

    runs, chosen, wider = online["runs"], online["chosen"], online["wider"]
    lengths = sorted(runs)
    first = lengths[0]
    # The budget of each T, grouped where the runs agree.
    by_budget = {}
    for t in lengths:
        by_budget.setdefault((online_budget(runs[t]), runs[t]["seeds"], runs[t]["backend"]),
                             []).append(f"T={t}")
    budgets = "; ".join(f"{_and(at)}: {budget}" for (budget, _, _), at in by_budget.items())
    seeds = {seeds for _, seeds, _ in by_budget}
    backends = sorted({backend for _, _, backend in by_budget})
    cell = runs[first]["rows"]["exact cell"]
    picked = chosen_students(runs, chosen)
    student = [student_phrase(t, picked[t], t == first) for t in lengths]
    wide = []
    for t in lengths:
        if wider[t]:
            rows_t = runs[t]["rows"]
            pick = rows_t[min(wider[t], key=lambda n: rows_t[n]["validation"]["mse"])]
            wide.append(f"{pick['test']['ratio']:.3f} at T={t} with "
                        f"{pick['state_numbers']:,} numbers")
    online_bullet = (
        f"- **Online memory** ({budgets}; {_and(seeds_text(n) for n in sorted(seeds))}; backend "
        f"{_and(backends)}): the exact streaming cell equals the teacher "
        f"({cell['state_numbers']:,} numbers of state at T={first}); the student of one memory "
        f"vector (d + 1 numbers, d = {runs[first]['per_step']} per digit) chosen on validation "
        f"at each T decodes to {_and(student)}"
        + (f"; a student of a wider state (the stream cut into segments) decodes to "
           f"{' and '.join(wide)}" if wide else "") + ".")

    budget, spent = moving["budget"], moving["predicting"]
    moving_bullet = (
        f"- **Moving MNIST** (fresh clips every step; the tree {budget['steps']:,} steps x batch "
        f"{budget['batch']}, {seeds_text(budget['seeds'])}, backend {budget['backend']}; the "
        f"predictors {spent['steps']}{' each' if spent['every'] else ''}, "
        f"{seeds_text(spent['seeds'])}, backend {spent['backend']}): the learned tree is "
        f"{moving['gaps'][0]:+.2f} dB against PCA of the same size at L0 and "
        f"{moving['gaps'][-1]:+.2f} dB at L{moving['levels'][-1]['level']}; predicting "
        f"{moving['prediction']['config']['future']} frames from "
        f"{moving['prediction']['config']['context']}, the tree predictor has "
        f"{moving['rows'][moving['tree']]['mse_per_frame']:.1f} MSE per frame, the best baseline of "
        f"the same size and steps ({PREDICTORS[moving['best']]}) "
        f"{moving['rows'][moving['best']]['mse_per_frame']:.1f}.")
    return [paper_bullet, mnist_bullet, ucf_bullet, online_bullet, moving_bullet]


def glance_block(docs, results_link, journal_link):
    """The bullets, the hero picture and where to read on; `docs` prefixes the picture."""
    return "\n".join(glance_bullets() + [
        "",
        picture("MNIST, T=16, the first test sequence: the original digits, then each model's "
                "reconstruction", f"{docs}{MNIST_PICTURE}"),
        "",
        "The picture: the T=16 comparison, every model on the first test sequence, its MSE "
        "beside it (click for full size). " + start_note(mnist_numbers(), short=True),
        "",
        f"Tables, pictures and commands: {results_link}; how each was reached: "
        f"{journal_link}. `python docs/glance.py` writes this section from the saved JSON.",
    ])


def readme_block():
    """README's "Results at a glance": the headline numbers and the picture."""
    return glance_block("docs/", "[docs/results.md](docs/results.md)",
                        "[docs/journal.md](docs/journal.md)")


def index_block():
    """The same on the site's home page, docs/index.md (links inside the site)."""
    return glance_block("", "[Results](results.md)", "[the journal](journal.md)")


TARGETS = {ROOT / "README.md": readme_block, DOCS / "index.md": index_block,
           DOCS / "results.md": results_block}


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
