"""The layer under both the server and ingestion: settings, errors, who may read what, the
embedder, the Chroma store and its writer lock.

`ingest` and `rag_server` import from here, `rag_server` may import `ingest` (uploads run the
ingestion pipeline), and nothing here imports either of them: dependencies point one way
(tests/test_layers.py).

Importing the package forces the Hugging Face stack offline before any of it is imported: no
model may ever be fetched from a hub, whatever the caller's environment says. Both packages above
import this one first, so the rule holds for the server, ingestion and every tool.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
