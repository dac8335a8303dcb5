"""Models trained elsewhere, read into ppml's linear model and a feature spec to serve it.

A model file is recognised by its content: a zip archive is a skops file, a
protobuf message with a graph is an ONNX model. Pickle files, joblib files
among them, are refused unread: loading one runs whatever code it holds.

- **skops**: the archive's schema is read first, as JSON, and every type it
  names must be on :func:`allowed_skops_types` (the supported estimators of
  :mod:`ppml.model.estimators`, :class:`~sklearn.pipeline.Pipeline`, three
  scalers, the helper objects those estimators keep, and numpy and builtin
  values). Anything else is refused, named, before a single object is built;
  the archive is then loaded with ``trusted=`` set to the allowed types that
  skops does not trust by itself. The object is a supported estimator, or a
  pipeline of ``StandardScaler``, ``MinMaxScaler`` (without ``clip``) and
  ``MaxAbsScaler`` steps followed by one.
- **ONNX**: the graph is one input tensor, an optional chain of ``Scaler``
  nodes (and the ``Mul``/``Add`` by a constant with which skl2onnx writes a
  ``MinMaxScaler``), one ``LinearRegressor`` or ``LinearClassifier``, and
  after it only ``Normalizer`` (L1), ``ZipMap``, ``ArrayFeatureExtractor``,
  ``Cast`` and ``Identity`` nodes, which shape the outputs without changing
  what they say. Any other operator is refused, named.

Every scaler is an affine map of each input, ``x' = a * x + c``, so it is
folded into the weights: ``W x' + b = (W * a) x + (W c + b)``. The result is
exact up to float64 rounding of that product; an ONNX model's weights are
the float32 numbers its file holds.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from ppml.errors import FileFormatError, SettingError, SpecMismatchError
from ppml.features.outputs import Output
from ppml.features.spec import FeatureSpec
from ppml.model.estimators import ESTIMATORS, LinearForm, kind_of, linear_form, supported
from ppml.model.linear import LinearModel

if TYPE_CHECKING:
    from onnx import GraphProto, NodeProto, TensorProto

ModelFormat = Literal["skops", "onnx"]

MAX_MODEL_FILE_BYTES = 64 << 20
"""The largest model file read (a 1024-class model of 8000 inputs takes 64 MiB as float64)."""
MAX_UNPACKED_BYTES = 256 << 20
"""The most a skops archive may hold once uncompressed (its members' declared sizes)."""
MAX_SCHEMA_BYTES = 16 << 20
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib"})
# Pickle protocols 2 and later start with the PROTO opcode; joblib files are pickles.
_PICKLE_MAGIC = b"\x80"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
# An ONNX model's first field is normally ir_version: field 1, varint (tag 0x08).
_ONNX_FIRST_TAG = 0x08

SCALERS = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler")

# skops node kinds that only rebuild data or an allowed object; functions,
# methods, ``functools.partial`` and generic ``__reduce__`` calls are not among them.
_SKOPS_LOADERS = frozenset(
    {
        "ObjectNode",
        "DictNode",
        "ListNode",
        "TupleNode",
        "JsonNode",
        "NdArrayNode",
        "DTypeNode",
        "TypeNode",
        "LossNode",
        "RandomStateNode",
        "CachedNode",
    }
)
_BUILTIN_TYPES = ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType")
_NUMPY_TYPES = (
    "ndarray",
    "dtype",
    "bool_",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "str_",
)
# Objects the supported estimators keep among their fitted attributes: the
# label binarizer of the ridge classifiers, the losses and links of the GLMs
# and of SGD, and a random state given as one.
_HELPER_TYPES = (
    ("sklearn.preprocessing._label", ("LabelBinarizer",)),
    (
        "sklearn._loss.loss",
        (
            "HalfSquaredError",
            "HalfBinomialLoss",
            "HalfMultinomialLoss",
            "HalfPoissonLoss",
            "HalfGammaLoss",
            "HalfTweedieLoss",
            "HalfTweedieLossIdentity",
        ),
    ),
    (
        "sklearn._loss._loss",
        (
            "CyHalfSquaredError",
            "CyHalfBinomialLoss",
            "CyHalfMultinomialLoss",
            "CyHalfPoissonLoss",
            "CyHalfGammaLoss",
            "CyHalfTweedieLoss",
            "CyHalfTweedieLossIdentity",
        ),
    ),
    ("sklearn._loss.link", ("Interval", "IdentityLink", "LogLink", "LogitLink")),
    (
        "sklearn.linear_model._sgd_fast",
        (
            "Hinge",
            "SquaredHinge",
            "ModifiedHuber",
            "Log",
            "SquaredLoss",
            "Huber",
            "EpsilonInsensitive",
            "SquaredEpsilonInsensitive",
        ),
    ),
    ("numpy.random.mtrand", ("RandomState",)),
)

_ML_DOMAIN = "ai.onnx.ml"
_ONNX_FLOAT, _ONNX_DOUBLE = 1, 11
_ONNX_BEFORE = frozenset({"Scaler", "Cast", "Identity", "Mul", "Add"})
_ONNX_MODELS = frozenset({"LinearRegressor", "LinearClassifier"})
_ONNX_AFTER = frozenset({"Normalizer", "ZipMap", "ArrayFeatureExtractor", "Cast", "Identity"})
# Operators of the ai.onnx.ml domain; the others are of the default domain.
_ONNX_ML_OPS = frozenset(
    {
        "Scaler",
        "LinearRegressor",
        "LinearClassifier",
        "Normalizer",
        "ZipMap",
        "ArrayFeatureExtractor",
    }
)
_ONNX_BEFORE_TEXT = "Scaler, Mul or Add by a constant, Cast and Identity nodes"
_ONNX_ACCEPTED = (
    "Scaler (and Mul or Add by a constant), then LinearRegressor or LinearClassifier, "
    "then Normalizer (L1), ZipMap, ArrayFeatureExtractor, Cast or Identity"
)


@dataclass(frozen=True)
class ImportedModel:
    """A model read from a file, as ppml serves it.

    ``spec`` is the given spec with the imported model's output and the slot
    width its weights need (and the ``spec_id`` of that content); ``model``
    holds the weights on the spec's model inputs, every scaler folded in.
    """

    spec: FeatureSpec
    model: LinearModel
    source_format: ModelFormat
    folded: tuple[str, ...]
    """The preprocessing steps folded into the weights, in order."""
    notes: tuple[str, ...]
    """What a user should know about the import (float32 weights, a changed output)."""

    @property
    def estimator(self) -> str:
        """The estimator's name, as the model file records it."""
        return self.model.estimator


@dataclass(frozen=True)
class _Read:
    """What a model file says: its scores on raw inputs, and the inputs' names if it knows."""

    form: LinearForm
    folded: tuple[str, ...]
    input_names: tuple[str, ...] | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Affine:
    """``x' = scale * x + shift`` for every input (arrays of one value, or one per input)."""

    scale: NDArray[np.float64]
    shift: NDArray[np.float64]

    def then(self, scale: NDArray[np.float64], shift: NDArray[np.float64]) -> _Affine:
        """This map followed by ``x'' = scale * x' + shift``."""
        return _Affine(self.scale * scale, self.shift * scale + shift)


_NO_SCALING = _Affine(np.ones(1), np.zeros(1))


def import_model(
    path: str | Path,
    spec: FeatureSpec,
    *,
    targets: Sequence[str] | None = None,
    log_target: bool = False,
) -> ImportedModel:
    """Read a skops or ONNX model made for ``spec``'s model inputs.

    ``targets`` names the predicted column(s) (default: the spec's);
    ``log_target`` says a regressor was fitted on the logarithm of its
    target, so that customers apply ``exp`` to its scores. The
    model must read exactly the spec's model inputs, in order; a refusal
    raises :class:`FileFormatError` (an unreadable, pickled or oversized
    file), :class:`SettingError` (a model or operator ppml cannot compute
    exactly) or :class:`SpecMismatchError` (a model of other inputs).
    """
    data = _read_capped(path)
    source = detect_format(path, data)
    read = _read_skops(path, data) if source == "skops" else _read_onnx(path, data)
    return _imported(path, read, spec, source, targets, log_target)


def detect_format(path: str | Path, data: bytes) -> ModelFormat:
    """skops or ONNX, from the bytes of a model file; pickles and anything else are refused."""
    if data[:1] == _PICKLE_MAGIC or Path(path).suffix.lower() in PICKLE_SUFFIXES:
        raise FileFormatError(
            path,
            "a pickle (or joblib) file, which ppml does not load: loading a pickle can run "
            "any code it holds; save the model with skops (skops.io.dump(model, "
            "'model.skops')) or convert it to ONNX (skl2onnx.to_onnx), and import that file",
        )
    if data.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
        return "skops"
    if Path(path).suffix.lower() == ".onnx" or data[:1] == bytes([_ONNX_FIRST_TAG]):
        return "onnx"
    raise FileFormatError(path, "not a skops (.skops) or ONNX (.onnx) model file")


def _read_capped(path: str | Path) -> bytes:
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_MODEL_FILE_BYTES:
            raise FileFormatError(path, f"{size} bytes, more than a model file may hold (64 MiB)")
        data = handle.read(MAX_MODEL_FILE_BYTES + 1)
    if len(data) > MAX_MODEL_FILE_BYTES:
        raise FileFormatError(path, "more than a model file may hold (64 MiB)")
    if not data:
        raise FileFormatError(path, "empty file")
    return data


# --- skops -------------------------------------------------------------------------------


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def allowed_skops_types() -> frozenset[str]:
    """Every type a skops file may name: what ppml imports, and the values inside them."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

    names = {_qualified(kind.cls) for kind in ESTIMATORS.values()}
    names |= {_qualified(cls) for cls in (Pipeline, StandardScaler, MinMaxScaler, MaxAbsScaler)}
    names |= {f"builtins.{name}" for name in _BUILTIN_TYPES}
    names |= {f"numpy.{name}" for name in _NUMPY_TYPES}
    names |= {f"{module}.{name}" for module, members in _HELPER_TYPES for name in members}
    return frozenset(names)


def _skops_nodes(schema: Any) -> Iterator[tuple[str, str]]:
    """``(module.class, loader)`` of every node of a skops schema, the root first."""
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__loader__" in item or "__class__" in item:
                module, name = item.get("__module__"), item.get("__class__")
                loader = item.get("__loader__")
                if not (
                    isinstance(module, str) and isinstance(name, str) and isinstance(loader, str)
                ):
                    yield "", repr(loader)
                else:
                    yield f"{module}.{name}", loader
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _skops_schema(path: str | Path, data: bytes) -> Any:
    """The parsed ``schema.json`` of a skops archive, its sizes checked before it is read."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            problem = _archive_problem(members)
            text = b"" if problem else archive.read("schema.json")
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as error:
        raise FileFormatError(path, f"not a readable zip archive ({_brief(error)})") from None
    if problem:
        raise FileFormatError(path, problem)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise FileFormatError(path, "the skops schema is not valid JSON") from None


def _archive_problem(members: Sequence[zipfile.ZipInfo]) -> str | None:
    schema = [member for member in members if member.filename == "schema.json"]
    if len(schema) != 1:
        return "a zip archive without one schema.json: not a skops file"
    if sum(member.file_size for member in members) > MAX_UNPACKED_BYTES:
        return "a skops archive of more than 256 MiB once unpacked"
    if schema[0].file_size > MAX_SCHEMA_BYTES:
        return "the skops schema is larger than 16 MiB"
    return None


def _read_skops(path: str | Path, data: bytes) -> _Read:
    """Check every type a skops file names against the allow-list, then load it."""
    import skops.io

    schema = _skops_schema(path, data)
    allowed = allowed_skops_types()
    for name, loader in _skops_nodes(schema):
        if loader not in _SKOPS_LOADERS:
            raise SettingError(
                f"{path}: holds a {loader} node ({name or 'malformed'}), which ppml does not load"
            )
        if name not in allowed:
            raise SettingError(
                f"{path}: holds {name}, which ppml does not load: it is not a linear model ppml "
                f"can compute exactly, nor one of the scalers {', '.join(SCALERS)}; "
                f"supported: {', '.join(supported())}"
            )
    try:
        untrusted = skops.io.get_untrusted_types(data=data)
    except Exception as error:  # skops raises many kinds of error on a damaged archive
        raise FileFormatError(path, f"not a readable skops file ({_brief(error)})") from None
    outside = [name for name in untrusted if name not in allowed]
    if outside:
        raise SettingError(f"{path}: holds {outside[0]}, which ppml does not load")
    try:
        loaded = skops.io.load(io.BytesIO(data), trusted=list(untrusted))
    except Exception as error:  # as above: a damaged array, a missing member, ...
        raise FileFormatError(path, f"not a readable skops file ({_brief(error)})") from None
    return _from_estimator(path, loaded)


def _steps(path: str | Path, estimator: Any) -> list[Any]:
    """The steps of a pipeline (nested pipelines flattened, ``passthrough`` left out)."""
    from sklearn.pipeline import Pipeline

    if type(estimator) is not Pipeline:
        return [estimator]
    flat = []
    for step in estimator.steps:
        if not (isinstance(step, tuple) and len(step) == 2):
            raise FileFormatError(path, "a pipeline step is not a (name, estimator) pair")
        if step[1] is None or (isinstance(step[1], str) and step[1] == "passthrough"):
            continue
        flat.extend(_steps(path, step[1]))
    return flat


def _from_estimator(path: str | Path, loaded: Any) -> _Read:
    """The linear form of a supported estimator, or of a pipeline of scalers ending in one."""
    steps = _steps(path, loaded)
    if not steps:
        raise SettingError(f"{path}: the pipeline has no estimator")
    *scalers, last = steps
    try:
        form = linear_form(last)
    except SettingError as error:
        raise SettingError(f"{path}: {error}") from None
    names = getattr(steps[0], "feature_names_in_", None)
    input_names = None if names is None else tuple(str(name) for name in names)
    affine = _NO_SCALING
    for scaler in scalers:
        affine = affine.then(*_scaler_map(path, scaler))
    return _Read(
        _folded(path, form, affine),
        tuple(type(s).__name__ for s in scalers),
        input_names,
    )


def _scaler_map(path: str | Path, scaler: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(scale, shift)`` with ``scaler.transform(x) == scale * x + shift``."""
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

    kind = type(scaler)
    name = kind.__name__
    if kind not in (StandardScaler, MinMaxScaler, MaxAbsScaler):
        try:
            kind_of(scaler)
        except SettingError:
            raise SettingError(
                f"{path}: a pipeline step is {name}; ppml folds only {', '.join(SCALERS)} "
                "into the weights, before one linear estimator"
            ) from None
        raise SettingError(f"{path}: {name} is not the last step; ppml serves one estimator")
    if not hasattr(scaler, "scale_"):
        raise SettingError(f"{path}: {name} is not fitted")
    params = scaler.get_params()

    def vector(value: Any) -> NDArray[np.float64]:
        return np.ravel(np.asarray(value, dtype=np.float64))

    if kind is StandardScaler:
        mean = vector(scaler.mean_) if params["with_mean"] else np.zeros(1)
        spread = vector(scaler.scale_) if params["with_std"] else np.ones(1)
        return 1.0 / spread, -mean / spread
    if kind is MinMaxScaler:
        if params["clip"]:
            raise SettingError(
                f"{path}: MinMaxScaler(clip=True) is not linear; ppml cannot fold it"
            )
        return vector(scaler.scale_), vector(scaler.min_)
    return 1.0 / vector(scaler.scale_), np.zeros(1)


def _folded(path: str | Path, form: LinearForm, affine: _Affine) -> LinearForm:
    """``form`` on the inputs before ``affine``: ``(W * a) x + (W c + b)``."""
    width = form.coefficients.shape[1]
    for values in (affine.scale, affine.shift):
        if values.size not in (1, width):
            raise SettingError(
                f"{path}: a scaler of {values.size} inputs before a model of {width} inputs"
            )
    scale = np.broadcast_to(affine.scale, (width,))
    shift = np.broadcast_to(affine.shift, (width,))
    if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(shift))):
        raise SettingError(f"{path}: a scaler's scale or offset is not finite")
    coefficients = form.coefficients * scale
    intercepts = form.intercepts + form.coefficients @ shift
    return dataclasses.replace(form, coefficients=coefficients, intercepts=intercepts)


# --- ONNX --------------------------------------------------------------------------------


def _attributes(node: NodeProto) -> dict[str, Any]:
    from onnx import helper

    return {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _floats(values: Any) -> NDArray[np.float64]:
    return np.asarray(list(values or ()), dtype=np.float64)


def _constant(path: str | Path, tensor: TensorProto) -> NDArray[np.float64]:
    from onnx import TensorProto, numpy_helper

    if tensor.data_location == TensorProto.EXTERNAL:
        raise SettingError(f"{path}: constant {tensor.name!r} is stored in another file")
    if tensor.data_type not in (TensorProto.FLOAT, TensorProto.DOUBLE):
        raise SettingError(f"{path}: constant {tensor.name!r} is not a float tensor")
    if any(size != 1 for size in tensor.dims[:-1]):
        raise SettingError(f"{path}: constant {tensor.name!r} is not one value per input")
    return np.ravel(np.asarray(numpy_helper.to_array(tensor), dtype=np.float64))


def _domain(node: NodeProto) -> str:
    """The node's operator domain ("" for the default one, however it is spelled)."""
    return "" if node.domain in ("", "ai.onnx") else node.domain


def _op(node: NodeProto) -> str:
    """The operator as messages name it, with its domain where that is not the usual one."""
    usual = _ML_DOMAIN if node.op_type in _ONNX_ML_OPS else ""
    domain = _domain(node)
    return node.op_type if domain == usual else f"{node.op_type} (domain {domain or 'ai.onnx'!r})"


def _read_onnx(path: str | Path, data: bytes) -> _Read:
    """The linear form of an ONNX graph: optional scalers, a linear model, output formatting."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as error:  # protobuf's DecodeError, or anything a damaged file provokes
        raise FileFormatError(path, f"not a readable ONNX model ({_brief(error)})") from None
    graph = model.graph
    if not graph.node:
        raise FileFormatError(path, "not an ONNX model: its graph has no nodes")
    for node in graph.node:
        expected = _ML_DOMAIN if node.op_type in _ONNX_ML_OPS else ""
        known = node.op_type in _ONNX_BEFORE | _ONNX_MODELS | _ONNX_AFTER
        if not known or _domain(node) != expected:
            raise SettingError(
                f"{path}: the ONNX operator {_op(node)} is not one ppml can compute exactly; "
                f"it reads {_ONNX_ACCEPTED}"
            )
    models = [node for node in graph.node if node.op_type in _ONNX_MODELS]
    if len(models) != 1:
        raise SettingError(f"{path}: the graph holds {len(models)} linear models; ppml serves one")
    linear = models[0]
    constants = {tensor.name: tensor for tensor in graph.initializer}
    feeds = [value for value in graph.input if value.name not in constants]
    if len(feeds) != 1:
        raise SettingError(
            f"{path}: the graph has {len(feeds)} inputs; ppml gives a model one tensor of its "
            "model inputs"
        )
    feed = feeds[0]
    elem_type = feed.type.tensor_type.elem_type
    if elem_type not in (_ONNX_FLOAT, _ONNX_DOUBLE):
        raise SettingError(f"{path}: the graph's input is not a float tensor")
    dims = feed.type.tensor_type.shape.dim
    declared = dims[1].dim_value if len(dims) == 2 and dims[1].dim_value > 0 else None
    chain = _onnx_chain(path, graph, linear, feed.name)
    after = _onnx_after(path, graph, linear, {id(node) for node in chain})
    normalizers = [node for node in after if node.op_type == "Normalizer"]
    if linear.op_type == "LinearRegressor":
        form = _onnx_regressor(path, linear, declared)
        if any(node.op_type not in ("Cast", "Identity") for node in after):
            extra = next(node for node in after if node.op_type not in ("Cast", "Identity"))
            raise SettingError(f"{path}: {extra.op_type} after a LinearRegressor is not supported")
    else:
        form = _onnx_classifier(path, linear, declared, normalizers)
    affine = _NO_SCALING
    folded = []
    for node in chain:
        if node.op_type == "Scaler":
            attributes = _attributes(node)
            offset, scale = _floats(attributes.get("offset")), _floats(attributes.get("scale"))
            if offset.size == 0 or scale.size == 0:
                raise SettingError(f"{path}: a Scaler without offset or scale")
            affine = affine.then(scale, -offset * scale)
            folded.append("Scaler")
        elif node.op_type in ("Mul", "Add"):
            operand = next(name for name in node.input if name in constants)
            value = _constant(path, constants[operand])
            if node.op_type == "Mul":
                affine = affine.then(value, np.zeros(1))
            else:
                affine = affine.then(np.ones(1), value)
            folded.append(node.op_type)
    notes = (
        "an ONNX file holds float32 weights: ppml serves exactly those, which are the "
        "original weights rounded to about 7 significant digits",
    )
    return _Read(_folded(path, form, affine), tuple(folded), None, notes)


def _onnx_chain(
    path: str | Path, graph: GraphProto, linear: NodeProto, feed: str
) -> list[NodeProto]:
    """The nodes from the graph's input to the linear model's input, in order."""
    producers = {name: node for node in graph.node for name in node.output}
    constants = {tensor.name for tensor in graph.initializer}
    chain: list[NodeProto] = []
    current = linear.input[0] if linear.input else ""
    while current != feed:
        node = producers.get(current)
        if node is None or node.op_type not in _ONNX_BEFORE or len(chain) > len(graph.node):
            source = "" if node is None else f" (it comes from a {node.op_type} node)"
            raise SettingError(
                f"{path}: the linear model's input is not the graph's input, through "
                f"{_ONNX_BEFORE_TEXT} only{source}"
            )
        if node.op_type == "Cast":
            if _attributes(node).get("to") not in (_ONNX_FLOAT, _ONNX_DOUBLE):
                raise SettingError(f"{path}: a Cast of the inputs to a non-float type")
            current = node.input[0]
        elif node.op_type in ("Mul", "Add"):
            variables = [name for name in node.input if name not in constants]
            if len(node.input) != 2 or len(variables) != 1:
                raise SettingError(
                    f"{path}: {node.op_type} must combine the inputs with one constant"
                )
            current = variables[0]
        else:
            current = node.input[0] if node.input else ""
        chain.append(node)
    chain.reverse()
    return chain


def _onnx_after(
    path: str | Path, graph: GraphProto, linear: NodeProto, chain: set[int]
) -> list[NodeProto]:
    """The nodes downstream of the linear model; every node is upstream, it, or downstream."""
    consumers: dict[str, list[NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    after: list[NodeProto] = []
    seen = {id(linear)}
    pending = list(linear.output)
    while pending:
        for node in consumers.get(pending.pop(), []):
            if id(node) in seen:
                continue
            if node.op_type not in _ONNX_AFTER or id(node) in chain:
                raise SettingError(
                    f"{path}: {node.op_type} after the linear model is not supported; ppml "
                    f"reads {_ONNX_ACCEPTED}"
                )
            seen.add(id(node))
            after.append(node)
            pending.extend(node.output)
    for node in graph.node:
        if id(node) not in seen and id(node) not in chain:
            raise SettingError(
                f"{path}: a {node.op_type} node outside the path from the input to the linear "
                "model's outputs"
            )
    return after


def _rows(
    path: str | Path,
    op: str,
    coefficients: NDArray[np.float64],
    count: int,
    declared: int | None,
) -> NDArray[np.float64]:
    """Coefficients as ``count`` rows, with as many columns as the input declares if it does."""
    if count < 1 or coefficients.size == 0 or coefficients.size % count:
        raise FileFormatError(path, f"{op}: {coefficients.size} coefficients for {count} scores")
    rows = coefficients.reshape(count, -1)
    if declared is not None and rows.shape[1] != declared:
        raise FileFormatError(
            path,
            f"{op}: {rows.shape[1]} coefficients per score, for an input of {declared} columns",
        )
    return rows


def _onnx_regressor(path: str | Path, node: NodeProto, declared: int | None) -> LinearForm:
    attributes = _attributes(node)
    transform = _text(attributes.get("post_transform", b"NONE"))
    if transform != "NONE":
        raise SettingError(f"{path}: LinearRegressor with post_transform {transform}")
    targets = int(attributes.get("targets", 1))
    intercepts = _floats(attributes.get("intercepts"))
    if intercepts.size == 0:
        intercepts = np.zeros(max(targets, 1))
    if intercepts.size != targets:
        raise FileFormatError(
            path, f"LinearRegressor: {intercepts.size} intercepts, {targets} targets"
        )
    rows = _rows(
        path, "LinearRegressor", _floats(attributes.get("coefficients")), targets, declared
    )
    return LinearForm(rows, intercepts, "regression", "identity", (), "ONNX LinearRegressor")


def _onnx_classifier(
    path: str | Path, node: NodeProto, declared: int | None, normalizers: list[NodeProto]
) -> LinearForm:
    attributes = _attributes(node)
    if "classlabels_strings" in attributes:
        classes = tuple(_text(label) for label in attributes["classlabels_strings"])
    elif "classlabels_ints" in attributes:
        classes = tuple(str(int(label)) for label in attributes["classlabels_ints"])
    else:
        raise FileFormatError(path, "LinearClassifier without class labels")
    if len(classes) < 2:
        raise SettingError(f"{path}: a LinearClassifier of {len(classes)} class")
    coefficients = _floats(attributes.get("coefficients"))
    intercepts = _floats(attributes.get("intercepts"))
    if intercepts.size:
        count = intercepts.size
    elif declared is not None and coefficients.size == declared:
        count = 1
    else:
        count = len(classes)
    rows = _rows(path, "LinearClassifier", coefficients, count, declared)
    if not intercepts.size:
        intercepts = np.zeros(count)
    transform = _text(attributes.get("post_transform", b"NONE"))
    for normalizer in normalizers:
        norm = _text(_attributes(normalizer).get("norm", b"MAX"))
        if norm != "L1":
            raise SettingError(f"{path}: a Normalizer of norm {norm}; ppml reads L1 only")
        if transform == "NONE":
            raise SettingError(f"{path}: an L1 Normalizer of raw scores is not supported")
    # skl2onnx writes a binary model as two rows, the second class's and its negation.
    if (
        transform in ("NONE", "LOGISTIC")
        and len(classes) == 2
        and count == 2
        and np.array_equal(rows[0], -rows[1])
        and intercepts[0] == -intercepts[1]
    ):
        rows, intercepts = rows[1:], intercepts[1:]
    scores = rows.shape[0]
    if scores not in (1, len(classes)) or (scores == 1 and len(classes) != 2):
        raise SettingError(
            f"{path}: LinearClassifier of {scores} scores for {len(classes)} classes"
        )
    if transform == "NONE":
        if scores == 2:
            raise SettingError(
                f"{path}: two independent decision scores for two classes; ppml's binary "
                "decision is one score"
            )
        function = "decision"
    elif transform == "LOGISTIC":
        if scores == 1:
            function = "sigmoid"
        elif normalizers:
            function = "ovr"
        else:
            raise SettingError(
                f"{path}: LOGISTIC scores of several classes without an L1 Normalizer are not "
                "probabilities"
            )
    elif transform == "SOFTMAX":
        if scores == 1:
            raise SettingError(f"{path}: SOFTMAX of a single score")
        function = "softmax"
    else:
        raise SettingError(f"{path}: LinearClassifier with post_transform {transform}")
    return LinearForm(
        rows, intercepts, "classification", function, classes, "ONNX LinearClassifier"
    )


# --- the spec and the model ----------------------------------------------------------------


def _imported(
    path: str | Path,
    read: _Read,
    spec: FeatureSpec,
    source: ModelFormat,
    targets: Sequence[str] | None,
    log_target: bool,
) -> ImportedModel:
    form = read.form
    inputs = spec.feature_names
    width = form.coefficients.shape[1]
    if width != len(inputs):
        raise SpecMismatchError(
            f"{path}: the model reads {width} inputs, but the feature spec defines "
            f"{len(inputs)} model inputs"
        )
    if read.input_names is not None and read.input_names != inputs:
        index = next(
            i
            for i, pair in enumerate(zip(read.input_names, inputs, strict=True))
            if len(set(pair)) == 2
        )
        raise SpecMismatchError(
            f"{path}: the model's input {index + 1} is {read.input_names[index]!r}, the spec's "
            f"model input {index + 1} is {inputs[index]!r}"
        )
    if not (np.all(np.isfinite(form.coefficients)) and np.all(np.isfinite(form.intercepts))):
        raise SettingError(f"{path}: the model's weights are not all finite")
    output = _output(form, spec.output, targets, log_target)
    if output.scores != form.coefficients.shape[0]:
        raise SettingError(
            f"{path}: {form.coefficients.shape[0]} scores where the output needs {output.scores}"
        )
    notes = list(read.notes)
    if output != spec.output:
        notes.append(f"the output was {spec.output.describe()}; it is now {output.describe()}")
    weights, intercepts = form.coefficients, form.intercepts
    # As training does: the slot width follows the declared bounds and these weights.
    with_output = dataclasses.replace(spec, output=output)
    served = dataclasses.replace(
        with_output,
        slot_bits=with_output.required_slot_bits(weights.tolist(), intercepts.tolist()),
    )
    model = LinearModel.from_arrays(
        served.spec_id, served.feature_names, weights, intercepts, form.estimator
    )
    return ImportedModel(served, model, source, read.folded, tuple(notes))


def _output(
    form: LinearForm, current: Output, targets: Sequence[str] | None, log_target: bool
) -> Output:
    names = tuple(targets) if targets else current.targets
    if log_target and (form.task, form.function) != ("regression", "identity"):
        raise SettingError(
            f"--log-target applies to a regressor of identity link, not to {form.estimator} "
            f"({form.task}, output {form.function})"
        )
    try:
        if form.task == "classification":
            if len(names) != 1:
                raise SettingError(
                    f"a classifier predicts one label column; the spec names {len(names)} "
                    "targets: choose one with --target"
                )
            return Output.classification(names[0], form.classes, form.function)
        scores = form.coefficients.shape[0]
        if len(names) != scores:
            raise SettingError(
                f"the model predicts {scores} target(s), the spec names {len(names)}: "
                "name them with --target, once per target"
            )
        return Output.regression(names, "exp" if log_target else form.function)
    except ValueError as error:
        if isinstance(error, SettingError):
            raise
        raise SettingError(f"cannot describe the model's output: {error}") from None


def _brief(error: BaseException) -> str:
    """An exception as a short clause of one line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:160]}" if text else type(error).__name__
