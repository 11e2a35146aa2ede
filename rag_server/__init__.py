"""Private RAG question-answering server.

Importing it imports `rag_core` first, which forces the Hugging Face stack offline before any of
it loads.
"""

import rag_core  # noqa: F401  (the offline environment, before any model library)

__version__ = "0.1.0"
