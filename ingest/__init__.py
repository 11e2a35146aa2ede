"""Bulk ingestion: files -> chunks -> embeddings -> the same store the server reads."""

import rag_core  # noqa: F401  (forces the offline environment before any model library loads)
