"""Spec files as the CLI reads them: numbers in YAML are numbers, as the service wants them."""

from pathlib import Path

from cli.spec_input import read_document


def test_yaml_numbers_in_exponent_form_are_floats(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "regularization: {l2: 1e-4, l1: 5E-5, dropout: 0.2}\ntraining: {epochs: 3, seed: 1_000}\nname: 1e\n"
    )
    document = read_document(spec)
    assert document["regularization"] == {"l2": 1e-4, "l1": 5e-5, "dropout": 0.2}
    assert document["training"] == {"epochs": 3, "seed": 1000}
    assert document["name"] == "1e", "not a number: stays a string"
