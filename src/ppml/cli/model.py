"""Model commands: bring a model trained elsewhere to ppml."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from ppml.cli.console import info, stderr
from ppml.errors import SettingError
from ppml.features.spec import FeatureSpec

FEATURES_FILENAME = "features.json"
MODEL_FILENAME = "model.json"
CARD_FILENAMES = ("card.md", "card.json")

app = typer.Typer(
    help="Serve a model trained elsewhere: import a skops or ONNX file.",
    no_args_is_help=True,
)


@app.command("import")
def import_model(
    model_file: Annotated[
        Path,
        typer.Argument(
            help="A skops (.skops) or ONNX (.onnx) file; pickle and joblib files are refused.",
        ),
    ],
    spec: Annotated[
        Path,
        typer.Option(
            "--spec", help="The features.json whose model inputs the model reads, in order."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory for features.json and model.json.")],
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            metavar="NAME",
            help="The predicted column (repeat it for a regressor of several targets; "
            "default: the spec's).",
        ),
    ] = None,
    log_target: Annotated[
        bool,
        typer.Option(
            "--log-target",
            help="The regressor was fitted on the logarithm of the target: customers get "
            "exp of its scores.",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a model already in OUT.")
    ] = False,
) -> None:
    """Server: import a linear model trained elsewhere, for the model inputs of a spec.

    Scalers in the model are folded into its weights. OUT/features.json is the
    spec with the model's output and slot width: publish it when its id
    changed, as queries made with the old spec are then refused.
    OUT/model.json (mode 0600) stays on the server. See docs/model-import.md.
    """
    existing = [name for name in (FEATURES_FILENAME, MODEL_FILENAME) if (out / name).exists()]
    if existing and not force:
        raise SettingError(
            f"{out} already holds {' and '.join(existing)}; pass --force to overwrite"
        )
    source_spec = FeatureSpec.load(spec)
    # scikit-learn, skops and onnx load slowly: only here.
    from ppml.model.imports import import_model as read_model

    with stderr.status("reading the model..."):
        imported = read_model(
            model_file, source_spec, targets=target or None, log_target=log_target
        )
    out.mkdir(parents=True, exist_ok=True)
    model_path, spec_path = out / MODEL_FILENAME, out / FEATURES_FILENAME
    model_existed = model_path.exists()
    imported.model.save(model_path)
    try:
        imported.spec.save(spec_path)
    except BaseException:
        # A new model is not left behind without its spec.
        if not model_existed:
            with contextlib.suppress(FileNotFoundError):
                model_path.unlink()
        raise

    served = imported.spec
    steps = f"; folded into the weights: {', '.join(imported.folded)}" if imported.folded else ""
    info(f"imported {imported.estimator} from {model_file} ({imported.source_format}){steps}")
    info(f"predicts {served.output.describe()}")
    changed = served.spec_id != source_spec.spec_id
    info(
        f"{served.output.scores} score(s) per row on {len(served.feature_names)} model inputs; "
        f"spec {served.spec_id} " + (f"(was {source_spec.spec_id})" if changed else "(unchanged)")
    )
    for note in imported.notes:
        info(f"note: {note}")
    stale = [name for name in CARD_FILENAMES if (out / name).exists()]
    if stale:
        info(f"warning: {' and '.join(stale)} in {out} describe another model")
    publish = (
        "publish this: give it to customers; queries made with the old spec are refused"
        if changed
        else "give this to customers"
    )
    info(f"public spec   {spec_path}  ({publish})")
    info(f"private model {model_path}  (keep this: mode 0600)")
