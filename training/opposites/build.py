"""Write rag_server/models/opposites.txt: the one-word antonym pairs of WordNet 3.0.

Why: an adversarial question swaps one attribute of a stated fact for its opposite ("a public
clinic" against "a private clinic", "the best movie" against "the worst"), and the answer model, reading the two nearly identical texts,
scores such a sentence as an answer (docs/evaluation.md, "A sentence that states the opposite").
WordNet's lexical antonym pointers ("!") name those opposites for English words; nobody here
chose them. The database comes from Debian's `wordnet-base` package (`apt-get download
wordnet-base`, then `dpkg -x`), under the WordNet 3.0 licence, whose notice the output carries.

    python training/opposites/build.py /usr/share/wordnet > rag_server/models/opposites.txt
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_MARKER = re.compile(r"\(.*\)$")  # an adjective's syntactic marker: "galore(ip)"
NOTICE = """\
# One-word antonym pairs from WordNet 3.0 (lexical "!" pointers of its noun, verb, adjective and
# adverb synsets), written by training/opposites/build.py from Debian's wordnet-base package.
#
# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.
# THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO
# REPRESENTATIONS OR WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT LIMITATION,
# PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANTABILITY OR FITNESS FOR ANY
# PARTICULAR PURPOSE OR THAT THE USE OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT
# INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR OTHER RIGHTS.
# The name of Princeton University or Princeton may not be used in advertising or publicity
# pertaining to distribution of the software and/or database. Title to copyright in this
# software, database and any associated documentation shall at all times remain with Princeton
# University and LICENSEE agrees to preserve same.
# (Permission to use, copy, modify and distribute it for any purpose and without fee or royalty is
# granted on these terms: https://wordnet.princeton.edu/license-and-commercial-use)
"""


def antonyms(root: Path) -> set[tuple[str, str]]:
    """Every antonym pair of one-word lemmas, each pair sorted, lower case."""
    pairs: set[tuple[str, str]] = set()
    for pos in ("noun", "verb", "adj", "adv"):
        synsets: dict[str, list[str]] = {}
        pointers: list[tuple[str, str, int, int]] = []
        for line in (root / f"data.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):  # the licence at the head of the file
                continue
            parts = line.split(" ")
            count = int(parts[3], 16)
            synsets[parts[0]] = [_MARKER.sub("", parts[4 + 2 * i]).lower() for i in range(count)]
            k = 4 + 2 * count
            for _ in range(int(parts[k])):
                symbol, target, _pos, source_target = parts[k + 1 : k + 5]
                k += 4
                if symbol == "!":
                    pointers.append(
                        (parts[0], target, int(source_target[:2], 16), int(source_target[2:], 16))
                    )
        for offset, target, source_word, target_word in pointers:
            a = synsets[offset][source_word - 1]
            b = synsets[target][target_word - 1]
            if a.isalpha() and b.isalpha() and a != b:
                pairs.add((min(a, b), max(a, b)))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wordnet", type=Path, help="the folder of WordNet's data.* files")
    args = parser.parse_args()
    sys.stdout.write(NOTICE)
    for a, b in sorted(antonyms(args.wordnet)):
        sys.stdout.write(f"{a} {b}\n")


if __name__ == "__main__":
    main()
