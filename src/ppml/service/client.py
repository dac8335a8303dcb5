"""The customer's side of the service: one private round trip over HTTP.

Only the encrypted query leaves the customer's process; the raw rows, the
private key and the decrypted predictions never do.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import httpx

from ppml.crypto import PrivateKey
from ppml.errors import FileFormatError, ServiceError
from ppml.features.spec import FeatureSpec
from ppml.roles import customer
from ppml.roles.parallel import ProgressReporter
from ppml.wire.document import MAX_DOCUMENT_BYTES, load_json
from ppml.wire.messages import QueryHeader, QueryRecord, ciphertext_width

QUERY_MEDIA_TYPE = "application/x-ndjson"


def _one_line(text: object, limit: int = 300) -> str:
    """A peer's text made safe for a one-line message: whitespace folded, length capped."""
    folded = " ".join(str(text).split())
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


def _read_bounded(response: httpx.Response, limit: int, url: str) -> bytes:
    """The body of a streamed response, refusing one longer than ``limit`` bytes."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise ServiceError(f"{url}: the answer is longer than the {limit} bytes expected")
        chunks.append(chunk)
    return b"".join(chunks)


def _send(
    client: httpx.Client, method: str, path: str, url: str, limit: int, **options: object
) -> bytes:
    """One request; a 4xx/5xx becomes a one-line :class:`ServiceError`, a huge body is refused."""
    with client.stream(method, path, **options) as response:  # type: ignore[arg-type]
        body = _read_bounded(response, limit, url)
        if response.is_success:
            return body
        try:
            error = load_json(body, max_bytes=MAX_DOCUMENT_BYTES)["error"]
            detail = f"{_one_line(error['code'], 40)}: {_one_line(error['message'])}"
        except (ValueError, KeyError, TypeError):
            detail = _one_line(response.reason_phrase)
        raise ServiceError(f"{url}: HTTP {response.status_code} {detail}")


def fetch_spec(client: httpx.Client, url: str) -> FeatureSpec:
    """The service's public feature spec, with its content hash checked."""
    body = _send(client, "GET", "/v1/features", url, MAX_DOCUMENT_BYTES)
    try:
        return FeatureSpec.parse(body, f"{url}/v1/features")
    except FileFormatError as error:
        raise ServiceError(str(error)) from None


def _result_limit(header: QueryHeader) -> int:
    """Generous upper bound on the size of an honest result for ``header``'s query."""
    ciphertext_text = 4 * -(-ciphertext_width(header.public_key) // 3)
    return (1 << 20) + 2 * header.blocks * (ciphertext_text + 128)


def query_service(
    url: str,
    private_key: PrivateKey,
    input_csv: str | Path,
    output_csv: str | Path,
    *,
    token: str | None = None,
    jobs: int | None = None,
    timeout: float = 600.0,
    progress: ProgressReporter | None = None,
    spec: FeatureSpec | None = None,
) -> int:
    """Encrypt ``input_csv`` locally, have the service predict, decrypt into ``output_csv``.

    With ``spec`` (the feature spec the customer has reviewed and pinned),
    every row is validated and encrypted before the service is contacted, and
    the service must still serve that spec. Without it, the service's spec is
    fetched and used: a dishonest service could then choose bounds or
    categories and learn, from whether a query follows, whether the rows fit
    them (docs/threat-model.md).
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = url.rstrip("/")
    try:
        with (
            httpx.Client(base_url=base, headers=headers, timeout=timeout) as client,
            tempfile.TemporaryDirectory(prefix="ppml-query-") as scratch,
        ):
            query, result = Path(scratch) / "query.jsonl", Path(scratch) / "result.jsonl"
            pinned = spec is not None
            if spec is None:
                spec = fetch_spec(client, base)
            header = customer.encrypt_file(private_key, spec, input_csv, query, jobs=jobs)
            if pinned:
                served = fetch_spec(client, base)
                if served.spec_id != spec.spec_id:
                    raise ServiceError(
                        f"{base}: the service serves feature spec {served.spec_id}, "
                        f"not the pinned spec {spec.spec_id}; nothing was sent"
                    )
            body = query.read_bytes()
            record = QueryRecord(header, hashlib.sha256(body).hexdigest())
            answer = _send(
                client,
                "POST",
                "/v1/predict",
                base,
                _result_limit(header),
                content=body,
                headers={"Content-Type": QUERY_MEDIA_TYPE},
            )
            result.write_bytes(answer)
            try:
                return customer.decrypt_file(
                    private_key,
                    result,
                    output_csv,
                    query=record,
                    spec=spec,
                    jobs=jobs,
                    progress=progress,
                )
            except FileFormatError as error:
                # The answer came from the service, not from a file the user named.
                raise ServiceError(
                    f"{base}: the answer is not a valid result ({error.problem})"
                ) from None

    except httpx.HTTPError as error:
        raise ServiceError(f"{base}: {error}") from None
