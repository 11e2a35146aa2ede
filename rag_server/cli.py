"""rag-server: run the REST service with uvicorn on RAG_HOST:RAG_PORT, or manage its API keys.

rag-server                                       serve
rag-server keys add --role reader --groups hr    create a key; it is printed once, only its hash is kept
rag-server keys list | keys revoke ID
rag-server models prepare                        make the embedder's export and the default GGUF
                                                 in RAG_MODELS_DIR now (the image does this at build)
"""

from __future__ import annotations

import argparse
import logging
import math
import sys

from rag_core.access import parse_groups
from rag_core.cli_args import arg
from rag_core.errors import RagError
from rag_core.settings import Settings, load_settings, validate_collection_name
from rag_server.auth import ROLES, fresh_id, new_key, read_keys, write_keys


def _collections(value: str) -> frozenset[str]:
    return frozenset(validate_collection_name(c.strip()) for c in value.split(",") if c.strip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag-server", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command")
    keys = commands.add_parser("keys", help="manage API keys (the file RAG_AUTH__KEYS_FILE)")
    verbs = keys.add_subparsers(dest="verb", required=True)
    add = verbs.add_parser("add", help="create a key and print it (once)")
    add.add_argument("--id", help="a name for the key, e.g. hr-portal (default: random)")
    add.add_argument("--role", choices=ROLES, default="reader")
    add.add_argument(
        "--groups",
        type=arg(parse_groups),
        default=frozenset(),
        metavar="G1,G2",
        help="document groups it may read besides public documents ('*': all)",
    )
    add.add_argument(
        "--collections",
        type=arg(_collections),
        default=None,
        metavar="C1,C2",
        help="collections it may use (default: all)",
    )
    add.add_argument(
        "--if-none", action="store_true", help="do nothing if the file already holds a key"
    )
    verbs.add_parser("list", help="list keys (ids, roles, groups; never secrets)")
    models = commands.add_parser("models", help="the model files under RAG_MODELS_DIR")
    models.add_subparsers(dest="verb", required=True).add_parser(
        "prepare",
        help="export the embedder to ONNX and assemble the default GGUF now, not at first start",
    )
    revoke = verbs.add_parser("revoke", help="delete a key")
    revoke.add_argument("id")
    return parser


def keys_command(args: argparse.Namespace, settings: Settings) -> int:
    path = settings.keys_file
    keys = read_keys(path)
    if args.verb == "list":
        for key in keys.values():
            collections = ",".join(sorted(key.collections)) if key.collections else "*"
            groups = ",".join(sorted(key.groups)) or "-"
            print(
                f"{key.id}\t{key.role}\tgroups={groups}\tcollections={collections}\t{key.created}"
            )
        return 0
    if args.verb == "revoke":
        if keys.pop(args.id, None) is None:
            print(f"rag-server: no key '{args.id}' in {path}", file=sys.stderr)
            return 1
        write_keys(path, keys.values())
        print(f"revoked {args.id}", file=sys.stderr)
        return 0
    if args.if_none and keys:
        # Keys are stored hashed, so a lost secret cannot be shown again: say how to get a new one.
        print(
            f"{path} already holds {len(keys)} key(s); none added. Lost the admin key? Make "
            "another: rag-server keys add --role admin --groups '*' (and `rag-server keys revoke "
            "ID` the lost one; `rag-server keys list` shows the ids).",
            file=sys.stderr,
        )
        return 0
    key_id = args.id or fresh_id()
    if key_id in keys:
        print(f"rag-server: a key '{key_id}' exists already in {path}", file=sys.stderr)
        return 1
    try:
        token, record = new_key(key_id, args.role, args.groups, args.collections)
    except ValueError as exc:
        print(f"rag-server: {exc}", file=sys.stderr)
        return 2
    write_keys(path, [*keys.values(), record])
    print(f"created {args.role} key '{key_id}' in {path}; it is shown only now:", file=sys.stderr)
    print(token)
    return 0


def prepare_models(settings: Settings) -> int:
    """What a first start would write under RAG_MODELS_DIR, made ahead of time: the image runs
    this at build, so its containers start on a read-only root without export work."""
    from rag_core.embedding import load_embedder
    from rag_server.generation import default_model_path

    embedder = load_embedder(settings.embedder, settings.models_home)
    print(f"embedder {embedder.identity.describe()} ready in {settings.models_home}")
    if settings.generator.backend == "llama_cpp" and settings.generator.model_path is None:
        print(f"generator {default_model_path(settings.models_home)} ready")
    return 0


def configure_logging(settings: Settings) -> None:
    """Text for people, or one JSON object per line for a log pipeline (RAG_LOG_FORMAT=json).
    Nothing we log carries an API key; questions appear only in the audit log."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
    # bm25s sets its own logger to DEBUG when first imported, which put its DEBUG lines in an
    # INFO log: import it now, then let the root level decide.
    import bm25s  # noqa: F401

    logging.getLogger("bm25s").setLevel(logging.NOTSET)
    if settings.log_level != "debug":
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per Chroma/generator call


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings()
        if args.command == "keys":
            sys.exit(keys_command(args, settings))
        if args.command == "models":
            sys.exit(prepare_models(settings))
    except RagError as exc:
        print(f"rag-server: {exc.detail}", file=sys.stderr)
        sys.exit(2)
    configure_logging(settings)
    import uvicorn

    from rag_server.app import create_app

    try:
        app = create_app(settings)
    except RagError as exc:
        print(f"rag-server: {exc.detail}", file=sys.stderr)
        sys.exit(2)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # JSON: uvicorn's own loggers (access lines included) go through the root handler.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
    )


if __name__ == "__main__":
    main()
