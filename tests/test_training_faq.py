"""FAQ pairs for the answer scorer (training/answer_scorer/faq.py) and the shipped model read back
into a trainable checkpoint (training/answer_scorer/dequantize.py).

FAQ headings are questions as users ask them; these tests pin which sentences become positives and
negatives, and that POD (Perl's FAQ) reads like the HTML and Markdown the ingestion loader takes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rag_server.answer_scorer import PACKAGED, AnswerScorer
from tests.training_scripts import load_script

faq = load_script("faq")

POD = """=head1 NAME

perlfaq9 - Networking

=head2 How do I fetch an HTML file?
X<fetch> X<HTML, fetching>

(contributed by brian d foy)

Use the C<LWP::Simple> module from CPAN, as L<the LWP docs|LWP> describe. It returns
the page as one string, E<lt>htmlE<gt> and all.

Later sentences of the answer may or may not answer the question.

=head2 Which module sends mail?

The C<Email::Sender> module sends mail through your local mail server.
"""

HTML = """<html><head><title>Debian FAQ</title></head><body>
<h2>7.1. What is a Debian package?</h2>
<p>Packages generally contain all of the files necessary to implement a set of related
commands or features. There are two types of Debian packages.</p>
<h2>7.2. What is the format of a Debian binary package?</h2>
<p>A Debian binary package is an ar archive of three members. The archive keeps the control
files apart from the data files.</p>
<h2>See also</h2><p>The Debian Policy Manual describes packages in more detail.</p>
</body></html>"""


def test_pod_reads_as_markdown_without_its_codes() -> None:
    text = faq.pod_to_markdown(POD)
    assert "## How do I fetch an HTML file?" in text
    assert "Use the LWP::Simple module from CPAN, as the LWP docs describe." in text
    assert "<html> and all" in text
    assert "X<" not in text and "fetching" not in text  # index entries say nothing


def test_entries_are_question_headings_with_their_statements(tmp_path: Path) -> None:
    (tmp_path / "perlfaq9.pod").write_text(POD)
    (tmp_path / "pkg-basics.html").write_text(HTML)
    found = {e.question: e for p in sorted(tmp_path.iterdir()) for e in faq.entries(p)}
    assert set(found) == {
        "How do I fetch an HTML file?",
        "Which module sends mail?",
        "What is a Debian package?",  # "7.1." numbering dropped; "See also" is no question
        "What is the format of a Debian binary package?",
    }
    fetch = found["How do I fetch an HTML file?"].statements
    assert fetch[0].startswith("Use the LWP::Simple module")  # the credit line is no answer
    assert fetch[-1] == "Later sentences of the answer may or may not answer the question."


def test_pairs_label_the_first_statements_and_other_answers(tmp_path: Path) -> None:
    (tmp_path / "perlfaq9.pod").write_text(POD)
    (tmp_path / "pkg-basics.html").write_text(HTML)
    entries = [e for p in sorted(tmp_path.iterdir()) for e in faq.entries(p)]
    rows = list(faq.pairs(entries, positives=1, hard=1, seed=1))
    asked = [r for r in rows if r["question"] == "What is a Debian package?"]
    assert [r["label"] for r in asked] == [1, 0, 0]
    assert asked[0]["sentence"].startswith("Packages generally contain")
    # The hard negative: another answer of the same file, sharing the most words.
    assert asked[1]["sentence"] == "A Debian binary package is an ar archive of three members."
    assert asked[2]["sentence"] in {s for e in entries[:2] for s in e.statements}  # another file
    own = set(entries[2].statements[1:])
    assert not any(r["sentence"] in own for r in asked)  # the rest of its answer is left out
    assert all(r["impossible"] is False for r in rows)


def test_dequantized_shipped_model_reads_like_the_server(tmp_path: Path) -> None:
    """The float checkpoint made from the shipped ONNX gives the server's logits, up to the
    int8 activations' rounding, so training can continue from what actually ships."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    dequantize = load_script("dequantize")
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "architectures": ["BertForSequenceClassification"],
                "model_type": "bert",
                "hidden_size": 384,
                "intermediate_size": 1536,
                "num_attention_heads": 12,
                "num_hidden_layers": 6,
                "max_position_embeddings": 512,
                "type_vocab_size": 2,
                "vocab_size": 30522,
                "num_labels": 1,
            }
        )
    )
    dequantize.dequantize(PACKAGED, config, tmp_path / "model")
    question = "How much life insurance does the company provide?"
    sentences = [
        "The company offers a $400,000 life insurance policy to all staff.",
        "Staff may bring a dog to the office on Fridays.",
        "Life insurance is a contract between a policyholder and an insurer.",
    ]
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model").eval()
    encoded = tokenizer([question] * 3, sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = model(**encoded).logits.view(-1).tolist()
    server = AnswerScorer.load().logits(question, sentences)
    assert all(math.isclose(a, b, abs_tol=0.5) for a, b in zip(ours, server, strict=True))
    assert ours.index(max(ours)) == server.index(max(server)) == 0
