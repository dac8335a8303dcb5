"""What a model's scores mean, and how the customer turns them into predictions.

A linear model computes k scores per row, ``s_k = w_k . x + b_k``; the server
does only that, on ciphertexts. Everything after it happens at the customer,
on decrypted scores, as the public :class:`Output` of the feature spec says:

- regression: one score per target column; ``identity`` keeps it, ``exp``
  undoes a log target or the log link of a Poisson, Gamma or Tweedie model;
- classification: ``sigmoid`` (binary logistic: one score, the log-odds of
  the second class), ``softmax`` (multinomial logistic: one score per class),
  ``ovr`` (one-vs-rest logistic: one sigmoid per class, normalised to sum to
  one), ``modified_huber`` (scikit-learn's SGD loss of that name), or
  ``decision`` (no probabilities: hinge losses, ridge classifiers). The label
  is the class of the largest score (binary: the second class where the
  score is positive), as scikit-learn's ``predict`` decides.

The formulas are scikit-learn's, so decrypted predictions equal the plaintext
estimator's; docs/feature-spec.md defines each one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

Task = Literal["regression", "classification"]
RegressionFunction = Literal["identity", "exp"]
ClassificationFunction = Literal["sigmoid", "softmax", "ovr", "modified_huber", "decision"]

REGRESSION_FUNCTIONS: tuple[str, ...] = get_args(RegressionFunction)
CLASSIFICATION_FUNCTIONS: tuple[str, ...] = get_args(ClassificationFunction)
# Functions whose binary form is one score (of the second class), as scikit-learn's
# binary classifiers have one row of coefficients.
_ONE_SCORE_BINARY = frozenset({"sigmoid", "modified_huber", "decision"})
MAX_SCORES = 1024
MAX_CLASSES = 1024
# Training reads an integer target with at most this many distinct values as classes.
MAX_INTEGER_CLASSES = 10

# Class and target names reach the customer's CSV files and terminal.
MAX_NAME_CHARS = 256

PredictionCell = str | float
"""A cell of a prediction row: a label, or a number in target units."""


@dataclass(frozen=True, slots=True)
class Output:
    """The task, the target column(s), the classes and the output function of a model.

    ``targets`` holds one column name per score for regression, and the one
    label column for classification. ``classes`` are the labels in the order
    of the model's scores (scikit-learn's ``classes_``).
    """

    task: Task
    targets: tuple[str, ...]
    function: str
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.targets or len(set(self.targets)) != len(self.targets):
            raise ValueError("an output names its target column(s), each once")
        for name in self.targets:
            check_name("target", name)
        for name in self.classes:
            check_name("class", name)
        if self.task == "regression":
            if self.function not in REGRESSION_FUNCTIONS:
                raise ValueError(f"a regression output is one of {', '.join(REGRESSION_FUNCTIONS)}")
            if self.classes:
                raise ValueError("a regression output has no classes")
            if len(self.targets) > MAX_SCORES:
                raise ValueError(f"at most {MAX_SCORES} targets")
        elif self.task == "classification":
            if self.function not in CLASSIFICATION_FUNCTIONS:
                raise ValueError(
                    f"a classification output is one of {', '.join(CLASSIFICATION_FUNCTIONS)}"
                )
            if len(self.targets) != 1:
                raise ValueError("a classifier predicts one label column")
            if not 2 <= len(self.classes) <= MAX_CLASSES:
                raise ValueError(f"a classifier has 2 to {MAX_CLASSES} classes")
            if len(set(self.classes)) != len(self.classes):
                raise ValueError("repeated classes")
            if self.function == "sigmoid" and len(self.classes) != 2:
                raise ValueError("sigmoid is for two classes; softmax or ovr for more")
        else:
            raise ValueError("the task is regression or classification")

    @classmethod
    def regression(cls, target: str | Sequence[str], function: str = "identity") -> Output:
        """The output of a regressor of one target (a name) or several (a sequence)."""
        targets = (target,) if isinstance(target, str) else tuple(target)
        return cls("regression", targets, function)

    @classmethod
    def classification(cls, target: str, classes: Sequence[str], function: str) -> Output:
        """The output of a classifier of ``target`` with ``classes`` in score order."""
        return cls("classification", (target,), function, tuple(classes))

    @property
    def target(self) -> str:
        """The target column (the first one for multi-target regression)."""
        return self.targets[0]

    @property
    def scores(self) -> int:
        """k, the number of scores the server computes per row."""
        if self.task == "regression":
            return len(self.targets)
        if len(self.classes) == 2 and self.function in _ONE_SCORE_BINARY:
            return 1
        return len(self.classes)

    @property
    def has_probabilities(self) -> bool:
        """Whether the predictions include class probabilities."""
        return self.task == "classification" and self.function != "decision"

    @property
    def columns(self) -> tuple[str, ...]:
        """The header of a predictions table (after any id columns).

        Regression: ``prediction`` for one target, ``prediction_<target>`` for
        several. Classification: ``prediction`` (the label), then
        ``proba_<class>`` per class, or ``score_<class>`` per score when the
        model has no probabilities (a binary one scores its second class).
        """
        if self.task == "regression":
            if len(self.targets) == 1:
                return ("prediction",)
            return tuple(f"prediction_{name}" for name in self.targets)
        if self.has_probabilities:
            return ("prediction", *(f"proba_{c}" for c in self.classes))
        scored = self.classes[1:] if self.scores == 1 else self.classes
        return ("prediction", *(f"score_{c}" for c in scored))

    def inverse_link(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """Regression: scores (rows x k) in target units."""
        if self.function != "exp":
            return scores
        with np.errstate(over="ignore"):  # beyond a float: inf, which callers refuse
            return np.exp(scores)

    def probabilities(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """Classification with probabilities: (rows x classes) from scores (rows x k)."""
        if self.function == "softmax":
            shifted = scores - scores.max(axis=1, keepdims=True)
            exponentials = np.exp(shifted)
            return np.asarray(exponentials / exponentials.sum(axis=1, keepdims=True))
        if self.function in ("sigmoid", "ovr"):
            positive = _sigmoid(scores)
        elif self.function == "modified_huber":
            positive = (np.clip(scores, -1.0, 1.0) + 1.0) / 2.0
        else:
            raise ValueError(f"{self.function} gives no probabilities")
        if scores.shape[1] == 1:
            return np.hstack([1.0 - positive, positive])
        total = positive.sum(axis=1, keepdims=True)
        # modified_huber can give every class 0; scikit-learn then says 1/k each.
        uniform = np.full_like(positive, 1.0 / positive.shape[1])
        safe_total = np.where(total == 0.0, 1.0, total)
        return np.where(total == 0.0, uniform, positive / safe_total)

    def labels(self, scores: NDArray[np.float64]) -> list[str]:
        """Classification: the label of each row (rows x k scores)."""
        if scores.shape[1] == 1:
            return [self.classes[int(s > 0)] for s in scores[:, 0]]
        return [self.classes[int(i)] for i in np.argmax(scores, axis=1)]

    def predictions(self, scores: NDArray[np.float64]) -> list[tuple[PredictionCell, ...]]:
        """Rows of cells, as :attr:`columns` names them, from scores (rows x k)."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1, self.scores)
        if self.task == "regression":
            return [tuple(float(v) for v in row) for row in self.inverse_link(scores)]
        numbers = self.probabilities(scores) if self.has_probabilities else scores
        return [
            (label, *(float(v) for v in row))
            for label, row in zip(self.labels(scores), numbers, strict=True)
        ]

    def describe(self) -> str:
        """One line for people: what the model predicts."""
        if self.task == "regression":
            names = ", ".join(self.targets)
            return names + (" (fitted on the log scale)" if self.function == "exp" else "")
        kind = "probabilities" if self.has_probabilities else "decision scores"
        return (
            f"{self.target}: {len(self.classes)} classes ({', '.join(self.classes)}), "
            f"{kind} by {self.function}"
        )

    def to_document(self) -> dict[str, Any]:
        """The spec's ``output`` member."""
        document: dict[str, Any] = {
            "task": self.task,
            "targets": list(self.targets),
            "function": self.function,
        }
        if self.task == "classification":
            document["classes"] = list(self.classes)
        document["scores"] = self.scores
        return document

    @classmethod
    def from_document(cls, members: Any) -> Output:
        """Parse the spec's ``output`` member (``ValueError`` names the problem)."""
        if not isinstance(members, dict):
            raise ValueError("output must be an object")
        expected = {"task", "targets", "function", "scores"}
        if members.get("task") == "classification":
            expected.add("classes")
        if set(members) != expected:
            raise ValueError(f"output has exactly the members {', '.join(sorted(expected))}")
        targets, classes = members["targets"], members.get("classes", [])
        if not (
            isinstance(targets, list)
            and all(isinstance(t, str) for t in targets)
            and isinstance(classes, list)
            and all(isinstance(c, str) for c in classes)
            and isinstance(members["function"], str)
            and isinstance(members["task"], str)
        ):
            raise ValueError("output: wrongly typed members")
        task: Task = "classification" if members["task"] == "classification" else "regression"
        if members["task"] != task:
            raise ValueError("the task is regression or classification")
        output = cls(task, tuple(targets), members["function"], tuple(classes))
        scores = members["scores"]
        if not isinstance(scores, int) or isinstance(scores, bool) or scores != output.scores:
            raise ValueError(f"output: scores must be {output.scores} for this output")
        return output


def check_name(kind: str, name: str) -> None:
    """Refuse a class or target name that a customer's CSV file or terminal could misread.

    Names come from the server's spec and are written into every prediction
    row: control and format characters (line breaks, escapes, bidirectional
    overrides) are refused, and so is text a spreadsheet runs as a formula
    (``=``, ``@``, or ``+``/``-`` before anything but a number).
    """
    shown = repr(name[:40]) + ("..." if len(name) > 40 else "")
    if not name or name != name.strip() or len(name) > MAX_NAME_CHARS:
        raise ValueError(
            f"{kind} {shown}: a name has 1 to {MAX_NAME_CHARS} characters and no surrounding spaces"
        )
    if any(unicodedata.category(c) in _UNPRINTABLE for c in name):
        raise ValueError(f"{kind} {shown}: control or format characters are not allowed")
    if name[0] in "=@" or (name[0] in "+-" and len(name) > 1 and not _is_number(name)):
        raise ValueError(f"{kind} {shown}: a spreadsheet would read it as a formula")


_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _is_number(text: str) -> bool:
    return _DECIMAL.fullmatch(text) is not None


def _sigmoid(values: NDArray[np.float64]) -> NDArray[np.float64]:
    # The two branches keep exp() from overflowing on either side.
    positive = values >= 0
    result = np.empty_like(values)
    result[positive] = 1.0 / (1.0 + np.exp(-values[positive]))
    exponential = np.exp(values[~positive])
    result[~positive] = exponential / (1.0 + exponential)
    return result
