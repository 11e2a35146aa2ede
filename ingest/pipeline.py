"""Files -> chunks -> embeddings -> upserts. Idempotent, incremental and safe to kill at any moment.

The store is the only record of what was ingested: every chunk carries its document's content hash,
the pipeline fingerprint and the document's chunk count, so a re-run can tell a complete document
from one a crash left half-written, and finish the job. New chunks are written before a document's
stale ones are deleted, so a document is never left without chunks; then the writer keeps the
newest version it finds, so writers racing over one document (API replicas sharing a Chroma
server, which takes no lock) leave exactly one version, not both.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ingest.chunking import Chunker, chunk_id
from ingest.loaders import LoadError, load, loader_for
from ingest.sphinx_tree import one_walk_per_tree
from rag_core.access import ALL_GROUPS, parse_groups
from rag_core.embedding import Embedder
from rag_core.errors import StoreWriteError
from rag_core.records import content_hash as file_hash
from rag_core.store import Chunk, ChunkStore, DocumentState

# A file of group names in a folder stamps every document below it (nearest one wins over
# `--groups`); an empty sidecar makes that subtree public.
SIDECAR = ".rag-groups"
# Documents uploaded over HTTP live under this id prefix; `--sync` of a folder never removes them.
UPLOAD_PREFIX = "uploads/"


@dataclass(frozen=True)
class SourceFile:
    path: Path
    document_id: str  # the path relative to its ingested root, '/'-separated
    groups: tuple[str, ...] = ()  # sorted; empty: public


@dataclass
class Problem:
    path: str
    error: str


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)
    chunks: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "failed": [{"path": p.path, "error": p.error} for p in self.failed],
            "skipped": [{"path": p.path, "reason": p.error} for p in self.skipped],
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
        }


class Progress:
    """Callbacks the CLI turns into a progress bar; the default does nothing."""

    def start(self, files: int) -> None: ...
    def file_done(self, chunks: int) -> None: ...
    def close(self) -> None: ...


def document_groups(groups: Iterable[str]) -> tuple[str, ...]:
    """Validated, sorted, without duplicates. '*' is a key's wildcard, never a document's stamp."""
    stamped = tuple(sorted(set(groups)))
    if ALL_GROUPS in stamped:
        raise ValueError("'*' may be given to keys, not to documents")
    return stamped


class _Sidecars:
    """The groups for each folder: its own sidecar file, else its parent's, else the default."""

    def __init__(self, root: Path, default: tuple[str, ...]) -> None:
        self.root = root
        self.default = default
        self._cache: dict[Path, tuple[str, ...]] = {}

    def groups(self, folder: Path) -> tuple[str, ...]:
        if folder not in self._cache:
            sidecar = folder / SIDECAR
            if sidecar.is_file() and not sidecar.is_symlink():
                text = sidecar.read_text(encoding="utf-8", errors="strict")
                found = document_groups(parse_groups(text))
            elif folder == self.root or self.root not in folder.parents:
                found = self.default
            else:
                found = self.groups(folder.parent)
            self._cache[folder] = found
        return self._cache[folder]


def discover(
    paths: Iterable[Path], groups: Iterable[str] = ()
) -> tuple[list[SourceFile], list[Problem]]:
    """Walk the roots. A file named directly is its own root. Hidden entries are passed over;
    unknown types and links leaving their root are reported. `groups` stamps documents that no
    sidecar file covers."""
    default = document_groups(groups)
    found: dict[str, SourceFile] = {}
    skipped: list[Problem] = []
    for given in paths:
        root = given if given.is_dir() else given.parent
        root_real = root.resolve()
        sidecars = _Sidecars(root, default)
        candidates = sorted(_walk(given)) if given.is_dir() else [given]
        for path in candidates:
            rel = path.relative_to(root).as_posix()
            if not _usable_name(rel):
                skipped.append(Problem(_shown(path), _BAD_NAME))
                continue
            if loader_for(path) is None:
                skipped.append(Problem(str(path), f"unsupported file type '{path.suffix}'"))
                continue
            if not path.resolve().is_relative_to(root_real):
                skipped.append(Problem(str(path), "link points outside the ingested root"))
                continue
            if rel in found and found[rel].path != path:
                skipped.append(
                    Problem(str(path), f"document id '{rel}' already taken by another root")
                )
                continue
            try:
                stamp = sidecars.groups(path.parent)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                skipped.append(Problem(str(path), f"unreadable {SIDECAR} file: {exc}"))
                continue
            found[rel] = SourceFile(path, rel, stamp)
    return list(found.values()), skipped


_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_FULL = 1024 * 1024  # less free than this after a failed write: the disk filled up
# Chroma's bytes on disk per chunk: about 4x (text + float32 vector + metadata), measured on
# 1,500 chunks of 1.2 kB (19 MB). Used only to stop before the disk fills.
_CHUNK_OVERHEAD = 384 * 4 + 512
_WRITE_FACTOR = 4


def _free_bytes(data_dir: Path | None) -> float:
    if data_dir is None or not data_dir.exists():
        return math.inf
    return shutil.disk_usage(data_dir).free


def store_failure(exc: BaseException, data_dir: Path | None) -> str:
    """What went wrong with the store, in words an operator can act on (a full disk, mostly:
    Chroma reports it as 'database or disk is full' or as a failed compaction)."""
    text = str(exc)
    full = (isinstance(exc, OSError) and exc.errno in _NO_SPACE) or any(
        sign in text for sign in ("disk is full", "No space left", "Disk quota")
    )
    if full or _free_bytes(data_dir) < _FULL:
        return f"the disk holding {data_dir} is full ({text}); free space first"
    return text


_BAD_NAME = "file name is not valid UTF-8 or contains control characters"


def _usable_name(rel: str) -> bool:
    """A document id must be storable (UTF-8) and print as one line in logs and summaries."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates
        return False
    return not any(unicodedata.category(ch) == "Cc" for ch in rel)


def _shown(path: Path) -> str:
    """A printable form of a name we refuse: raw bytes as \\xNN, control characters escaped."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                yield Path(dirpath) / name


@dataclass
class _Pending:
    source: SourceFile
    chunks: list[Chunk]
    existed: bool


class Pipeline:
    """Ingest into one store with one embedder; both are loaded by the caller and passed in."""

    def __init__(
        self,
        store: ChunkStore,
        embedder: Embedder,
        chunker: Chunker,
        max_file_bytes: int,
        batch_chunks: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        data_dir: Path | None = None,
        min_free_bytes: int = 0,
    ) -> None:
        self.store = store
        self.data_dir = data_dir
        self.min_free_bytes = min_free_bytes
        self.embedder = embedder
        self.chunker = chunker
        self.max_file_bytes = max_file_bytes
        self.batch_chunks = batch_chunks
        self.clock = clock
        self._wrote = False

    def run(
        self,
        paths: Sequence[Path],
        *,
        sync: bool = False,
        progress: Progress | None = None,
        groups: Iterable[str] = (),
    ) -> IngestReport:
        """Ingest files and folders. With `sync`, documents whose files are gone are removed
        (uploaded documents excepted: they have no folder to be missing from)."""
        sources, skipped = discover(paths, groups)
        report = self.ingest(sources, progress=progress, sync=sync)
        report.skipped = skipped + report.skipped
        return report

    def ingest(
        self, sources: Sequence[SourceFile], *, progress: Progress | None = None, sync: bool = False
    ) -> IngestReport:
        """Raises StoreWriteError when the store fails (a full disk, say): the documents written
        before stay complete and served, and a re-run finishes the job."""
        from chromadb.errors import ChromaError

        report = IngestReport()
        try:
            return self._run(sources, sync, progress or Progress(), report)
        except (ChromaError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno not in _NO_SPACE:
                raise
            done = report.added + report.updated + report.deleted
            raise StoreWriteError(
                f"the vector store at {self.data_dir} failed after {done} document(s) were written: "
                f"{store_failure(exc, self.data_dir)}. The documents written before are "
                "complete; re-run rag-ingest to finish"
            ) from exc

    def _free_bytes(self) -> float:
        return _free_bytes(self.data_dir)

    def _check_space(self, chunks: Sequence[Chunk]) -> None:
        """Stop before a write could fill the disk: a full disk leaves Chroma unreadable (the
        server too) until space is freed, while stopping early leaves the store serving."""
        if not self.min_free_bytes:
            return
        need = sum(len(c.text.encode()) + _CHUNK_OVERHEAD for c in chunks) * _WRITE_FACTOR
        free = self._free_bytes()
        if free - need < self.min_free_bytes:
            raise StoreWriteError(
                f"only {free / 2**20:.1f} MiB free on the disk holding {self.data_dir}; the next "
                f"batch needs about {need / 2**20:.1f} MiB and {self.min_free_bytes / 2**20:.0f} "
                "MiB are kept free (RAG_INGEST__MIN_FREE_MB) so the store keeps serving. "
                "Nothing of that batch was written; the documents written before are complete. "
                "Free space, then re-run rag-ingest to finish"
            )

    def _run(
        self, sources: Sequence[SourceFile], sync: bool, progress: Progress, report: IngestReport
    ) -> IngestReport:
        began = time.perf_counter()
        self._wrote = False
        states = self.store.document_states()
        progress.start(len(sources))
        pending: list[_Pending] = []
        pending_chunks = 0
        with one_walk_per_tree():  # a Sphinx source tree's titles, read once for the run
            for source in sources:
                try:
                    item = self._prepare(source, states.get(source.document_id))
                except LoadError as exc:
                    report.failed.append(Problem(str(source.path), str(exc)))
                    progress.file_done(0)
                    continue
                if item is None:
                    report.unchanged += 1
                    progress.file_done(0)
                    continue
                pending.append(item)
                pending_chunks += len(item.chunks)
                if pending_chunks >= self.batch_chunks:
                    self._flush(pending, states, report, progress)
                    pending, pending_chunks = [], 0
        self._flush(pending, states, report, progress)
        if sync:
            seen = {s.document_id for s in sources}
            for document_id, state in states.items():
                if document_id not in seen and not document_id.startswith(UPLOAD_PREFIX):
                    self._before_write()
                    self.store.delete_ids(sorted(state.chunk_ids))
                    report.deleted += 1
        if self._wrote:
            self.store.bump_revision()  # after the last write too: readers rebuild on what landed
        progress.close()
        report.seconds = time.perf_counter() - began
        return report

    def _before_write(self) -> None:
        """Bump the revision before the first write of a run, so even a run killed midway
        makes readers (the server's keyword index) rebuild from what is actually stored."""
        if not self._wrote:
            self.store.bump_revision()
            self._wrote = True

    def _prepare(self, source: SourceFile, state: DocumentState | None) -> _Pending | None:
        """Read, hash and (if changed) split one file. None means the store already has it."""
        try:
            size = source.path.stat().st_size
            if size > self.max_file_bytes:
                raise LoadError(f"file too large ({size} bytes; limit {self.max_file_bytes})")
            data = source.path.read_bytes()
        except OSError as exc:
            raise LoadError(f"cannot read file: {exc.strerror or exc}") from None
        content_hash = file_hash(data)
        if state is not None and state.is_complete(
            content_hash, self.chunker.fingerprint, source.groups
        ):
            return None
        document = load(source.path, data)
        spans = self.chunker.split(document)
        now = self._stamp(state)
        chunks = [
            Chunk(
                chunk_id=chunk_id(source.document_id, span.index, span.text, content_hash),
                document_id=source.document_id,
                source=source.document_id,
                title=document.title,
                text=span.text,
                start=span.start,
                end=span.end,
                chunk_index=span.index,
                chunk_count=len(spans),
                content_hash=content_hash,
                pipeline=self.chunker.fingerprint,
                ingested_at=now,
                page=span.page,
                section=span.section,
                groups=source.groups,
                headings=span.headings,
                code=span.code,
            )
            for span in spans
        ]
        return _Pending(source, chunks, existed=state is not None)

    def _stamp(self, state: DocumentState | None) -> str:
        """This write's `ingested_at`: now, but always after the version it replaces, so a
        re-ingest is the newer version even when this machine's clock is behind the one that
        wrote the last (`_settle` keeps the newest)."""
        now = self.clock().replace(microsecond=0)
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
        if state is not None:
            now = max(now, state.latest.replace(microsecond=0) + timedelta(seconds=1))
        return now.isoformat(timespec="seconds")

    def _settle(self, document_id: str) -> None:
        """Keep one version of the document: the newest stored, by (ingested_at, content hash).
        It is this write's unless another writer (an API replica taking an upload of the same
        name) wrote a newer one meanwhile. Every writer settles after its write, and the last
        to read sees every version written, so racing writers leave exactly the newest; alone,
        this removes the version just replaced, and any chunks a crash left."""
        versions = self.store.document_versions(document_id)
        if not versions:
            return
        newest = max(versions.values())
        stale = sorted(cid for cid, v in versions.items() if v != newest)
        if stale:
            self.store.delete_ids(stale)

    def _flush(
        self,
        pending: list[_Pending],
        states: dict[str, DocumentState],
        report: IngestReport,
        progress: Progress,
    ) -> None:
        """Embed a batch of documents together, upsert, then settle each document's version."""
        if not pending:
            return
        chunks = [c for item in pending for c in item.chunks]
        revoked = {
            group
            for item in pending
            for stamp in states.get(item.source.document_id, DocumentState()).groups
            for group in stamp.split(",")
            if group
        }
        self._check_space(chunks)
        self._before_write()
        self.store.upsert(chunks, self.embedder.embed_texts([c.text for c in chunks]), revoked)
        for item in pending:
            self._settle(item.source.document_id)
            if item.existed:
                report.updated += 1
            else:
                report.added += 1
            report.chunks += len(item.chunks)
            progress.file_done(len(item.chunks))
