"""`gradwise evaluate`, `predict`, `recipes`, `lr-find` and `explain` on real run folders."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from cli.cli_helpers import TOP3_LINE, gradwise, module_available, run_info
from gradwise.cli import main
from gradwise.recipes import RECIPES


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A small digits classifier (scikit-learn's digits need no files)."""
    run_dir = tmp_path_factory.mktemp("cli-predict") / "digits"
    assert main(["train", "digits-mlp", "--epochs", "4", "--out", str(run_dir), "--quiet",
                 "--no-doctor"]) == 0
    return run_dir


def test_evaluate_reports_accuracy_and_confusions(capsys, digits_run) -> None:
    result = gradwise(capsys, "evaluate", digits_run)
    assert result.code == 0, result.err
    info = run_info(digits_run)
    assert f"Test accuracy: {info['test_accuracy']:.2%}" in result.out
    assert "digits test set, 359 samples" in result.out
    assert "Accuracy per class:" in result.out
    assert "Most confused (true -> predicted):" in result.out


def draw_digit_pictures(folder):
    """A '1' as black ink on white paper (PNG) and a '0' as white chalk on black (JPG)."""
    one = Image.new("L", (90, 160), 255)
    ImageDraw.Draw(one).line([(45, 15), (45, 145)], fill=0, width=14)
    zero = Image.new("RGB", (300, 240), (0, 0, 0))
    ImageDraw.Draw(zero).ellipse([100, 30, 200, 210], outline=(250, 250, 250), width=22)
    paths = [folder / "one.png", folder / "zero.jpg"]
    one.save(paths[0])
    zero.save(paths[1])
    return paths


def test_predict_prints_top3_classes_per_picture(capsys, digits_run, tmp_path) -> None:
    paths = draw_digit_pictures(tmp_path)
    result = gradwise(capsys, "predict", digits_run, *paths)
    assert result.code == 0, result.err
    lines = result.out.strip().splitlines()
    assert len(lines) == len(paths)
    for line, path in zip(lines, paths, strict=True):
        match = TOP3_LINE.match(line)
        assert match, line
        assert match["path"] == str(path)
        ranked = [item.rsplit(" ", 1) for item in match["ranked"].split(", ")]
        probabilities = [float(p.rstrip("%")) / 100 for _, p in ranked]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) <= 1.0 + 1e-3
        assert {name for name, _ in ranked} <= {str(digit) for digit in range(10)}
    assert lines[1].split(": ", 1)[1].startswith("0 ")  # a ring is a zero


def test_predict_refuses_a_blank_picture(capsys, digits_run, tmp_path) -> None:
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    result = gradwise(capsys, "predict", digits_run, tmp_path / "blank.png")
    assert result.code == 2
    assert "blank.png: no digit found" in result.err


def test_recipes_lists_every_recipe_with_a_description(capsys) -> None:
    result = gradwise(capsys, "recipes")
    assert result.code == 0
    lines = result.out.splitlines()
    for name, recipe in RECIPES.items():
        assert any(line.startswith(f"{name} ") and recipe.description in line for line in lines)


def test_lr_find_suggests_a_rate_and_writes_the_plot(capsys, tmp_path) -> None:
    if not (module_available("gradwise.doctor") and module_available("gradwise.viz.plots")):
        pytest.skip("needs gradwise.doctor.lr_find and gradwise.viz.plots")
    plot = tmp_path / "lr.png"
    result = gradwise(capsys, "lr-find", "spiral", "--out", plot)
    assert result.code == 0, result.err
    assert ("Suggested learning rate for spiral with adam:" in result.out
            or "No suggestion" in result.out)
    assert plot.is_file()


@pytest.mark.parametrize("topic", ["neuron", "mlp"])
def test_explain_prints_a_worked_example(capsys, topic) -> None:
    if not module_available("gradwise.viz.explain"):
        pytest.skip("gradwise.viz.explain is not part of this build yet")
    result = gradwise(capsys, "explain", topic)
    assert result.code == 0, result.err
    assert len(result.out.splitlines()) > 3
