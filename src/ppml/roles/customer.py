"""The customer: turns its rows into encrypted model inputs, and decrypts the predictions.

The customer holds the private key and the raw rows; it needs only the
server's public feature spec, never the model. Rows are processed in blocks
(one block fills the slots of one packed plaintext), so files of any length
are encrypted and decrypted in constant memory, on every core.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ppml.crypto import KeyPolicy, PrivateKey, PublicKey
from ppml.crypto.hazmat import encrypt_with_mask
from ppml.crypto.randomness import OwnerMasks, PublicMasks, owner_masks, public_masks
from ppml.encoding.masking import unmask
from ppml.encoding.packing import PackingLayout
from ppml.errors import (
    DataError,
    FileFormatError,
    InvalidCiphertextError,
    PlaintextOverflowError,
    SettingError,
    SpecMismatchError,
)
from ppml.features.outputs import PredictionCell
from ppml.features.spec import EncodingReport, FeatureSpec
from ppml.features.table import CsvOptions, CsvTable
from ppml.fileio import atomic_text_writer
from ppml.roles.parallel import (
    Executor,
    ProgressReporter,
    batched,
    default_jobs,
    ordered_map,
)
from ppml.wire.messages import (
    BlockFileWriter,
    QueryHeader,
    QueryRecord,
    ciphertext_width,
    encode_ciphertext_value,
    open_result,
    read_query_record,
)

BLOCKS_PER_TASK = 4
# Scores become predictions this many rows at a time (vectorised, in bounded memory).
PREDICTION_CHUNK_ROWS = 4096


def read_inputs(spec: FeatureSpec, path: str | Path) -> NDArray[np.float64]:
    """Model inputs of every row of a CSV file (in memory; for comparisons and small files)."""
    vectors = list(spec.transform_table(spec.open_table(path)))
    if not vectors:
        raise DataError("no data rows", path=path)
    return np.vstack(vectors)


def query_layout(spec: FeatureSpec, key_bits: int, *, pack: bool = True) -> PackingLayout:
    """How many rows share a ciphertext for this spec and key size."""
    if spec.slot_bits is None:
        raise SpecMismatchError(
            f"feature spec {spec.spec_id} declares no slot width; the server must re-run ppml train"
        )
    return PackingLayout.for_key(key_bits, spec.slot_bits, pack=pack)


def precompute_randomness(
    key: PublicKey | PrivateKey, count: int, *, standard_randomness: bool = False
) -> None:
    """Offline phase: compute ``count`` encryption masks now, in this process.

    The next ``count`` ciphertexts encrypted here (one per feature per block)
    then cost a multiplication each. Worker processes never inherit them.
    """
    masks = _masks_for(key, standard_randomness)
    masks.prepare(count)
    masks.fill(count)


def _masks_for(key: PublicKey | PrivateKey, standard_randomness: bool) -> PublicMasks | OwnerMasks:
    """The randomness source of a key: the owner's (CRT) one when the private key is given."""
    public_key = key.public_key if isinstance(key, PrivateKey) else key
    h_s = None if standard_randomness else public_key.h_s
    if isinstance(key, PrivateKey):
        return owner_masks(key.p, key.q, h_s)
    return public_masks(public_key.n, h_s)


@dataclass(frozen=True)
class EncryptContext:
    """What every encryption task of a query shares. ``masks`` holds the key owner's CRT
    tables when the private key encrypts (:attr:`holds_private_key`)."""

    public_key: PublicKey
    masks: PublicMasks | OwnerMasks
    width: int
    layout: PackingLayout

    @property
    def holds_private_key(self) -> bool:
        """Whether shipping this context sends the key's factors."""
        return isinstance(self.masks, OwnerMasks)


def _encrypt_blocks(
    context: EncryptContext, task: tuple[list[list[list[int]]], list[Any]]
) -> list[tuple[int, list[bytes]]]:
    blocks, precomputed = task
    public_key, masks = context.public_key, context.masks
    width, layout = context.width, context.layout
    masks.add(precomputed)  # taken from the parent's pool for this task: used here, once
    out = []
    for rows in blocks:
        texts = []
        for column in zip(*rows, strict=True):
            packed = layout.pack(column) % public_key.n
            ciphertext = encrypt_with_mask(public_key, packed, masks.mask())
            texts.append(encode_ciphertext_value(ciphertext.value, width))
        out.append((len(rows), texts))
    return out


def encrypt_file(
    key: PublicKey | PrivateKey,
    spec: FeatureSpec,
    input_path: str | Path | CsvTable,
    output_path: str | Path,
    *,
    pack: bool = True,
    jobs: int | None = None,
    standard_randomness: bool = False,
    progress: ProgressReporter | None = None,
    executor: Executor | None = None,
    rows: range | None = None,
    csv_options: CsvOptions | None = None,
    report: EncodingReport | None = None,
    strict: bool = False,
    binary: bool = False,
) -> QueryHeader:
    """Validate every row of a CSV table, then encrypt it block by block into a query file.

    ``input_path`` is a file (``-``: standard input) or an open :class:`CsvTable`;
    ``rows`` selects data rows by 0-based index (default: all). Missing cells
    are filled in as the spec says; unusual cells and unseen categories are
    counted in ``report`` (once, on the validating pass), or refused with
    ``strict``. ``binary`` writes the binary container instead of JSON
    Lines (docs/wire-format.md). With the
    private key, encryption uses the key owner's faster randomness (same
    distribution). ``standard_randomness`` ignores the key's DJN base.
    Nothing is written if any row is invalid.
    """
    public_key = key.public_key if isinstance(key, PrivateKey) else key
    table = (
        input_path if isinstance(input_path, CsvTable) else spec.open_table(input_path, csv_options)
    )

    def selected(counted: EncodingReport | None = None) -> Iterator[NDArray[np.float64]]:
        # Rows outside the range are skipped before any conversion: a long file sent in
        # many requests costs one cheap CSV pass per request, not a full re-encoding.
        source = table.rows()
        if rows is not None:
            source = itertools.islice(source, rows.start, rows.stop, rows.step)
        for row in source:
            yield spec.transform_row(row, table.path, counted, strict=strict)

    count = sum(1 for _ in selected(report))  # validate everything first
    if count == 0:
        raise DataError("no data rows to encrypt", path=table.path)
    if progress is not None:
        progress.start(count)
    layout = query_layout(spec, public_key.bits, pack=pack)
    header = QueryHeader(
        public_key, spec.spec_id, spec.frac_bits, len(spec.feature_names), count, layout
    )
    masks = _masks_for(key, standard_randomness)
    masks.prepare(header.blocks * header.features)  # before workers fork, so they share it
    context = EncryptContext(public_key, masks, ciphertext_width(public_key), layout)
    fmt = spec.fixed_point

    def encoded_rows() -> Iterator[list[int]]:
        for vector in selected():
            yield [fmt.encode(float(value)) for value in vector]

    # Masks precomputed in this process (the offline phase) travel with the tasks:
    # forked workers start with empty pools, so that no mask is ever used twice.
    tasks = (
        (blocks, masks.take(len(blocks) * header.features))
        for blocks in batched(batched(encoded_rows(), layout.slots), BLOCKS_PER_TASK)
    )
    task_count = -(-header.blocks // BLOCKS_PER_TASK)
    with BlockFileWriter(output_path, header.to_document(), binary=binary) as writer:
        for results in ordered_map(
            _encrypt_blocks,
            context,
            tasks,
            jobs=jobs or default_jobs(),
            task_count=task_count,
            executor=executor,
        ):
            for count, texts in results:
                writer.write_block(count, texts)
                if progress is not None:
                    progress.advance(count)
    return header


@dataclass(frozen=True)
class DecryptContext:
    """What every decryption task of a result shares: the private key's factors.

    A :class:`PrivateKey` refuses to be pickled; a worker of another process gets
    the factors here, explicitly, and rebuilds (and checks) the key once.
    """

    public_key: PublicKey
    p: int
    q: int
    layout: PackingLayout
    bound: int

    @classmethod
    def of(cls, key: PrivateKey, layout: PackingLayout, bound: int) -> DecryptContext:
        """The context of ``key``'s decryptions in ``layout``."""
        return cls(key.public_key, int(key.p), int(key.q), layout, bound)

    @property
    def holds_private_key(self) -> bool:
        """Always: decryption needs the factors."""
        return True

    @property
    def key(self) -> PrivateKey:
        """The private key, built once per process."""
        cached = _rebuilt_keys.get(self.public_key.n)
        if cached is None or (cached.p, cached.q) != (self.p, self.q):
            cached = PrivateKey(self.public_key, self.p, self.q)
            _rebuilt_keys[self.public_key.n] = cached
        return cached


_rebuilt_keys: dict[int, PrivateKey] = {}


def _decrypt_blocks(
    context: DecryptContext, blocks: list[tuple[int, int, list[int]]]
) -> list[list[list[int]]]:
    """Per block, the encoded scores of each row (rows x k)."""
    key, layout, bound = context.key, context.layout, context.bound
    out = []
    for index, count, values in blocks:
        per_score = []
        for value in values:
            masked = key.raw_decrypt(key.public_key.ciphertext(value))
            try:
                per_score.append(layout.unpack(unmask(masked, layout, count), count, bound))
            except PlaintextOverflowError:
                raise InvalidCiphertextError(
                    f"block {index + 1} decrypts outside the scores' bound: "
                    "a ciphertext was altered"
                ) from None
        out.append([list(row) for row in zip(*per_score, strict=True)])
    return out


def decrypt_scores(
    private_key: PrivateKey,
    input_path: str | Path,
    *,
    query: QueryRecord | str | Path,
    spec: FeatureSpec,
    jobs: int | None = None,
    progress: ProgressReporter | None = None,
    executor: Executor | None = None,
) -> Iterator[NDArray[np.float64]]:
    """The model's k raw scores of every row of a result file, in query row order.

    ``query`` is the customer's own record of the query (or its file) and
    ``spec`` the feature spec it was encrypted with: the scale, bound, layout
    and number of scores come from them, and a result whose header disagrees,
    or that answers another query, is refused before the first score.
    """
    own_size = private_key.public_key.bits
    # The record's key must be the private key's own: no other size can be right.
    record = (
        query
        if isinstance(query, QueryRecord)
        else read_query_record(query, policy=KeyPolicy(min_bits=own_size, max_bits=own_size))
    )
    _check_record(private_key, record, spec)
    header, blocks = open_result(input_path, record)
    expected_frac_bits = spec.prediction_fixed_point.frac_bits
    if header.frac_bits != expected_frac_bits or header.scores != spec.output.scores:
        raise SpecMismatchError(
            f"{input_path}: the result's scale or scores disagree with feature spec "
            f"{spec.spec_id} (frac_bits {header.frac_bits} for {expected_frac_bits}, "
            f"{header.scores} score(s) per row for {spec.output.scores})"
        )
    if progress is not None:
        progress.start(header.rows)
    layout = record.header.layout
    # The server's bound_bits can only tighten the check the slot width implies.
    bound = min(layout.slot_limit, 1 << header.bound_bits) - 1
    scale = 1 << expected_frac_bits
    tasks = batched(
        (
            (index, count, [c.value for c in answers])
            for index, (count, answers) in enumerate(blocks)
        ),
        BLOCKS_PER_TASK,
    )
    decrypted = ordered_map(
        _decrypt_blocks,
        DecryptContext.of(private_key, layout, bound),
        tasks,
        jobs=jobs or default_jobs(),
        task_count=-(-header.rows // (layout.slots * BLOCKS_PER_TASK)),
        executor=executor,
    )
    row_number = 0
    try:
        for results in decrypted:
            for rows in results:
                for row in rows:
                    row_number += 1
                    yield _decoded(row, scale, input_path, row_number)
                if progress is not None:
                    progress.advance(len(rows))
    except InvalidCiphertextError as error:
        raise InvalidCiphertextError(f"{input_path}: {error}") from None


def _decoded(row: list[int], scale: int, path: str | Path, row_number: int) -> NDArray[np.float64]:
    """A row's encoded scores as floats; a score no float holds (a hostile spec's slots
    can be that wide) is refused."""
    try:
        return np.array([v / scale for v in row], dtype=np.float64)
    except OverflowError:
        raise FileFormatError(
            path, f"row {row_number}: a score beyond the range of a floating-point number"
        ) from None


def decrypt_predictions(
    private_key: PrivateKey,
    input_path: str | Path,
    *,
    query: QueryRecord | str | Path,
    spec: FeatureSpec,
    jobs: int | None = None,
    progress: ProgressReporter | None = None,
    executor: Executor | None = None,
) -> Iterator[tuple[PredictionCell, ...]]:
    """The predictions of a result file, one row of cells per query row, in order.

    The cells are those ``spec.output.columns`` names: a value per target in
    target units for a regressor; the label, then the probability (or score)
    of each class for a classifier. See :func:`decrypt_scores` for the checks.
    """
    output = spec.output
    done = 0
    for chunk in batched(
        decrypt_scores(
            private_key,
            input_path,
            query=query,
            spec=spec,
            jobs=jobs,
            progress=progress,
            executor=executor,
        ),
        PREDICTION_CHUNK_ROWS,
    ):
        rows = output.predictions(np.vstack(chunk))
        for offset, cells in enumerate(rows):
            if not all(isinstance(c, str) or math.isfinite(c) for c in cells):
                # exp() of a score the spec's bounds allow, but no float holds.
                raise FileFormatError(
                    input_path,
                    f"row {done + offset + 1}: the prediction is beyond the range of a "
                    "floating-point number",
                )
        done += len(rows)
        yield from rows


def write_predictions(
    output_path: str | Path,
    predictions: Iterable[Sequence[PredictionCell]],
    *,
    columns: Sequence[str] = ("prediction",),
    ids: Iterable[Sequence[str]] | None = None,
    id_columns: Sequence[str] = (),
    expected: int | None = None,
) -> int:
    """Write a CSV with the ``id_columns`` (from ``ids``, row by row) and the prediction
    ``columns``, one row of cells per prediction (numbers written exactly, as ``repr``).

    ``-`` is standard output. Nothing appears unless every prediction was
    written and, with ``expected``, there were exactly that many; return the count.
    """
    clashing = sorted(set(id_columns) & set(columns))
    if clashing:
        raise SettingError(
            f"id column(s) {', '.join(map(repr, clashing))} have the name of a prediction "
            f"column ({', '.join(columns)}): choose other id columns"
        )
    written = 0
    with atomic_text_writer(output_path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*id_columns, *columns])
        id_rows = iter(ids) if ids is not None else None
        for cells in predictions:
            prefix = list(next(id_rows, ())) if id_rows is not None else []
            if len(prefix) != len(id_columns):
                raise DataError("the id columns have fewer rows than there are predictions")
            writer.writerow([*prefix, *(_cell_text(cell) for cell in cells)])
            written += 1
        if id_rows is not None and next(id_rows, None) is not None:
            raise DataError("the id columns have more rows than there are predictions")
        if expected is not None and written != expected:
            raise DataError(f"expected {expected} predictions, decrypted {written}")
    return written


def _cell_text(cell: PredictionCell) -> str:
    return cell if isinstance(cell, str) else repr(cell)


def decrypt_file(
    private_key: PrivateKey,
    input_path: str | Path,
    output_path: str | Path,
    *,
    query: QueryRecord | str | Path,
    spec: FeatureSpec,
    jobs: int | None = None,
    progress: ProgressReporter | None = None,
    executor: Executor | None = None,
    ids: Iterable[Sequence[str]] | None = None,
    id_columns: Sequence[str] = (),
) -> int:
    """Decrypt a result file into a CSV with one row of predictions per query row; return the
    count.

    See :func:`decrypt_predictions` for the checks; ``ids`` (one tuple of
    ``id_columns`` values per query row, kept by the customer and never
    sent) are joined back in input order. ``-`` writes to standard output.
    """
    predictions = decrypt_predictions(
        private_key,
        input_path,
        query=query,
        spec=spec,
        jobs=jobs,
        progress=progress,
        executor=executor,
    )
    return write_predictions(
        output_path, predictions, columns=spec.output.columns, ids=ids, id_columns=id_columns
    )


def read_ids(table: CsvTable, id_columns: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """The ``id_columns`` of every row of ``table``, in order (they never leave the customer)."""
    for row in table.rows():
        yield tuple(row.cells[name] for name in id_columns)


def _check_record(private_key: PrivateKey, record: QueryRecord, spec: FeatureSpec) -> None:
    """Refuse to decrypt against a query made under another key or for another spec."""
    query = record.header
    name = record.path or "the query"
    if query.public_key != private_key.public_key:
        raise SpecMismatchError(
            f"{name}: the query was encrypted under key {query.public_key.key_id}, "
            f"not under this private key ({private_key.key_id})"
        )
    if query.spec_id != spec.spec_id:
        raise SpecMismatchError(
            f"{name}: the query was made for feature spec {query.spec_id}, "
            f"not for the given spec {spec.spec_id}"
        )
