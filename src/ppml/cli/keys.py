"""Key commands: generate a key pair, inspect key files, move keys to and from python-paillier."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ppml.cli.console import info, status, stdout
from ppml.cli.passphrase import PASSPHRASE_ENV, existing_passphrase, new_passphrase
from ppml.crypto import DEFAULT_KEY_BITS, PrivateKey, PublicKey, generate_keypair
from ppml.crypto.proofs import PROOF_ALPHA, PROOF_ROUNDS, PROOF_SCHEME
from ppml.errors import KeyFileError
from ppml.wire import keyfile, phe_jwk
from ppml.wire.document import MAX_DOCUMENT_BYTES, load_json, read_document_bytes

app = typer.Typer(
    help="Inspect key files and exchange keys with python-paillier (pheutil JWK files).",
    no_args_is_help=True,
)

ProtectOption = Annotated[
    bool,
    typer.Option(
        "--protect",
        help=f"Seal the private key under a passphrase, read from ${PASSPHRASE_ENV} "
        "or asked for in the terminal.",
    ),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace key files that already exist.")]


def keygen(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the two key files into.")],
    bits: Annotated[
        int, typer.Option("--bits", help="Modulus size in bits (2048 to 4096).")
    ] = DEFAULT_KEY_BITS,
    randomness: Annotated[
        str,
        typer.Option(
            "--randomness",
            help="djn: publish a DJN base for fast encryption; standard: plain r^n.",
        ),
    ] = "djn",
    protect: ProtectOption = False,
    force: ForceOption = False,
) -> None:
    """Generate a Paillier key pair: OUT/public_key.json to share, OUT/private_key.json to keep.

    The public key carries a proof that its modulus is sound, which servers
    require. The private key file is created with mode 0600 and never leaves
    the customer.
    """
    if randomness not in ("djn", "standard"):
        raise typer.BadParameter("must be djn or standard", param_hint="--randomness")
    passphrase = new_passphrase() if protect else None
    with status(f"Generating a {bits}-bit key pair"):
        _, private_key = generate_keypair(bits, randomness=randomness)  # type: ignore[arg-type]
    public_path, private_path = keyfile.save_keypair(
        out, private_key, passphrase=passphrase, overwrite=force
    )
    info(f"key id {private_key.key_id}, {randomness} randomness, with a modulus proof")
    info(f"public key  {public_path}  (give this to the server)")
    sealed = ", passphrase-protected" if protect else ""
    info(f"private key {private_path}  (keep this: mode 0600{sealed})")


def _load_any_key(path: Path) -> tuple[str, PublicKey | PrivateKey, str]:
    """Load a ppml key file or a pheutil JWK; return (file kind, key, protection)."""
    data = read_document_bytes(path, KeyFileError)
    members = load_json(data, path=path, error=KeyFileError, max_bytes=MAX_DOCUMENT_BYTES)
    kind = members.get("format") if isinstance(members, dict) else None
    if kind == keyfile.PUBLIC_KEY_FORMAT:
        return "ppml public key", keyfile.parse_public_key(data, path), "-"
    if kind == keyfile.PRIVATE_KEY_FORMAT:
        protected = isinstance(members.get("protection"), dict)
        private_key = keyfile.parse_private_key(data, path, passphrase=existing_passphrase)
        return "ppml private key", private_key, "passphrase" if protected else "none"
    if isinstance(members, dict) and members.get("kty") == "DAJ":
        jwk_key = phe_jwk.parse_jwk(data, path)
        return "python-paillier JWK", jwk_key, "none" if isinstance(jwk_key, PrivateKey) else "-"
    raise KeyFileError(path, "neither a ppml key file nor a python-paillier JWK")


@app.command("show")
def show(
    key_file: Annotated[Path, typer.Argument(help="A ppml key file or a pheutil JWK.")],
) -> None:
    """Print what a key file holds: its kind, key id and size (never the secret values)."""
    kind, key, protection = _load_any_key(key_file)
    public_key = key.public_key if isinstance(key, PrivateKey) else key
    part = "private" if isinstance(key, PrivateKey) else "public"
    stdout.print(f"file        {key_file}", highlight=False, markup=False)
    stdout.print(f"kind        {kind} ({part})", highlight=False, markup=False)
    stdout.print(f"key id      {public_key.key_id}", highlight=False, markup=False)
    stdout.print(f"bits        {public_key.bits}", highlight=False, markup=False)
    stdout.print(f"protection  {protection}", highlight=False, markup=False)
    stdout.print(f"randomness  {public_key.randomness}", highlight=False, markup=False)
    stdout.print(f"proof       {_describe_proof(public_key)}", highlight=False, markup=False)


def _describe_proof(public_key: PublicKey) -> str:
    # A key is loaded only if a proof it carries is valid, so presence means validity.
    if public_key.proof is not None:
        return f"valid ({PROOF_SCHEME}: {PROOF_ROUNDS} rounds, no factor below {PROOF_ALPHA})"
    return "none (servers refuse queries under this key until 'ppml keys prove' adds one)"


@app.command("import-phe")
def import_phe(
    jwk_file: Annotated[
        Path, typer.Argument(help="A pheutil JWK: `pheutil genpkey` or `pheutil extract` output.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory to write ppml key files into.")],
    protect: ProtectOption = False,
    force: ForceOption = False,
) -> None:
    """Import a python-paillier key into ppml key files."""
    key = phe_jwk.load_jwk(jwk_file)
    if isinstance(key, PrivateKey):
        passphrase = new_passphrase() if protect else None
        public_path, private_path = keyfile.save_keypair(
            out, key, passphrase=passphrase, overwrite=force
        )
        info(f"imported key {key.key_id} with a modulus proof: {public_path}, {private_path}")
        return
    out.mkdir(parents=True, exist_ok=True)
    public_path = out / keyfile.PUBLIC_KEY_FILENAME
    keyfile.save_public_key(key, public_path, overwrite=force)
    info(f"imported public key {key.key_id}: {public_path}")
    info(
        "it has no modulus proof (a JWK holds none): servers will refuse queries under it "
        "until its owner runs 'ppml keys prove'"
    )


@app.command("prove")
def prove(
    keys: Annotated[
        Path,
        typer.Option("--keys", help="Directory holding private_key.json (and public_key.json)."),
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace a public_key.json that holds another key or cannot be read."
        ),
    ] = False,
) -> None:
    """Add a modulus proof to a key pair (older or imported keys), which servers require.

    Reads KEYS/private_key.json, makes the proof from its factors and writes
    both files back in the current format: the private key stays mode 0600
    and, if it was protected, sealed under the same passphrase.
    """
    private_key, public_path, private_path = keyfile.prove_keypair(
        keys, passphrase=existing_passphrase, replace_other_public_key=force
    )
    info(f"key id {private_key.key_id}: modulus proof added")
    info(f"public key  {public_path}  (give this to the server)")
    info(f"private key {private_path}  (mode 0600)")


@app.command("export-phe")
def export_phe(
    out: Annotated[Path, typer.Option("--out", help="The JWK file to write.")],
    private_key: Annotated[
        Path | None, typer.Option("--private-key", help="Export this ppml private key file.")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="Export this ppml public key file.")
    ] = None,
    force: ForceOption = False,
) -> None:
    """Export a ppml key as a pheutil JWK file, for use with python-paillier."""
    if (private_key is None) == (public_key is None):
        raise typer.BadParameter("give exactly one of --private-key and --public-key")
    key: PublicKey | PrivateKey
    if private_key is not None:
        key = keyfile.load_private_key(private_key, passphrase=existing_passphrase)
    else:
        assert public_key is not None
        key = keyfile.load_public_key(public_key)
    phe_jwk.save_jwk(key, out, overwrite=force)
    info(f"exported key {key.key_id} to {out}")
