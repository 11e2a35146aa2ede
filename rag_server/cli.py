"""rag-server: run the REST service with uvicorn on RAG_HOST:RAG_PORT."""

from __future__ import annotations

import argparse
import logging
import math
import sys

from rag_server.errors import RagError
from rag_server.settings import load_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rag-server", description=__doc__)
    parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings()
    except RagError as exc:
        print(f"rag-server: {exc.detail}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.log_level != "debug":
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per Chroma/generator call
    import uvicorn

    from rag_server.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
    )


if __name__ == "__main__":
    main()
