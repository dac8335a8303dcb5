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
from ppml.wire.messages import QueryRecord

QUERY_MEDIA_TYPE = "application/x-ndjson"


def _raise_for(response: httpx.Response, url: str) -> None:
    if response.is_success:
        return
    try:
        error = load_json(response.content, max_bytes=MAX_DOCUMENT_BYTES)["error"]
        detail = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        detail = response.reason_phrase
    raise ServiceError(f"{url}: HTTP {response.status_code} {detail}")


def fetch_spec(client: httpx.Client, url: str) -> FeatureSpec:
    """The service's public feature spec, with its content hash checked."""
    response = client.get("/v1/features")
    _raise_for(response, url)
    try:
        return FeatureSpec.parse(response.content, f"{url}/v1/features")
    except FileFormatError as error:
        raise ServiceError(str(error)) from None


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
) -> int:
    """Encrypt ``input_csv`` locally, have the service predict, decrypt into ``output_csv``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = url.rstrip("/")
    try:
        with (
            httpx.Client(base_url=base, headers=headers, timeout=timeout) as client,
            tempfile.TemporaryDirectory(prefix="ppml-query-") as scratch,
        ):
            spec = fetch_spec(client, base)
            query, result = Path(scratch) / "query.jsonl", Path(scratch) / "result.jsonl"
            header = customer.encrypt_file(private_key, spec, input_csv, query, jobs=jobs)
            body = query.read_bytes()
            record = QueryRecord(header, hashlib.sha256(body).hexdigest())
            response = client.post(
                "/v1/predict", content=body, headers={"Content-Type": QUERY_MEDIA_TYPE}
            )
            _raise_for(response, base)
            result.write_bytes(response.content)
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
