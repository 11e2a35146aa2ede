"""rag-ingest: bulk-ingest folders or files into a collection.

Exit codes: 0 all ingested, 1 some file failed (the rest was ingested), 2 usage or configuration error,
3 the store could not be written (e.g. a full disk; what was written is kept, a re-run finishes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ingest.pipeline import SIDECAR, IngestReport, Progress, document_groups
from rag_core.access import parse_groups
from rag_core.cli_args import arg
from rag_core.errors import RagError, StoreWriteError
from rag_core.settings import Settings, load_settings, validate_collection_name


class _Bar(Progress):
    """tqdm on a terminal; silent otherwise so logs and pipes stay clean."""

    def __init__(self) -> None:
        self._bar: object | None = None
        self._chunks = 0

    def start(self, files: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=files, unit="file", desc="ingest", file=sys.stderr, leave=False)

    def file_done(self, chunks: int) -> None:
        self._chunks += chunks
        bar = self._bar
        if bar is not None:
            bar.update(1)  # type: ignore[attr-defined]
            bar.set_postfix(chunks=self._chunks, refresh=False)  # type: ignore[attr-defined]

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()  # type: ignore[attr-defined]


def _groups(value: str) -> frozenset[str]:
    return frozenset(document_groups(parse_groups(value)))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag-ingest",
        description="Ingest PDF, DOCX, HTML, Markdown and text files into the local vector store.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="folders or files")
    parser.add_argument(
        "--collection",
        type=arg(validate_collection_name),
        help="collection to write (default: RAG_COLLECTION)",
    )
    parser.add_argument(
        "--sync", action="store_true", help="remove documents whose files are gone from PATHs"
    )
    parser.add_argument(
        "--groups",
        type=arg(_groups),
        default=frozenset(),
        metavar="G1,G2",
        help=f"only keys with one of these groups may read the documents (default: public); "
        f"a {SIDECAR} file in a folder overrides this for its subtree",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument(
        "--if-empty", action="store_true", help="do nothing when the collection already has chunks"
    )
    return parser


def _print_summary(report: IngestReport) -> None:
    print(
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"deleted {report.deleted}, failed {len(report.failed)}; "
        f"{report.chunks} chunks written in {report.seconds:.1f}s"
    )
    for problem in report.failed:
        print(f"  failed: {problem.path}: {problem.error}")
    for problem in report.skipped:
        print(f"  skipped: {problem.path}: {problem.error}")


def run(argv: list[str] | None, settings: Settings | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        parser.error(f"no such file or directory: {', '.join(missing)}")
    try:
        settings = settings or load_settings()
        if args.collection:
            settings = settings.model_copy(update={"collection": args.collection})
        from ingest.build import build_pipeline
        from rag_core.writelock import store_writer

        # Taken before the models load, so a second writer is refused at once.
        with store_writer(settings, "rag-ingest"):
            pipeline = build_pipeline(settings)
            if args.if_empty and pipeline.store.count() > 0:
                report = IngestReport()
            else:
                progress = _Bar() if sys.stderr.isatty() and not args.json else None
                report = pipeline.run(
                    args.paths, sync=args.sync, progress=progress, groups=args.groups
                )
    except StoreWriteError as exc:
        print(f"rag-ingest: error: {exc.detail}", file=sys.stderr)
        return 3
    except RagError as exc:
        print(f"rag-ingest: error: {exc.detail}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        _print_summary(report)
    return 1 if report.failed else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
