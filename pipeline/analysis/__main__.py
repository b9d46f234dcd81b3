"""Command line for the analysis package: ``python -m pipeline.analysis retrain`` retrains the
classifier from every reviewer correction now (it also retrains by itself when corrections change).

Re-analysis of record files is ``python -m pipeline reanalyse``, of stored calls ``python -m batch
run INPUT --reanalyse`` or ``POST /calls/{id}/reanalyse``; a reviewer's correction is ``python -m
pipeline correct RECORD_ID ...`` (it is stored on the call through the one save path, ``pipeline.save``,
which this package does not import).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pipeline.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("retrain", help="retrain the classifier from all corrections now")
    parser.parse_args(argv)  # only "retrain" is left: parsing gives --help and refuses the rest
    settings = Settings()

    from pipeline.analysis.classifier import CallClassifier
    from pipeline.analysis.taxonomy import Taxonomy
    from pipeline.store.corrections import close_corrections, open_corrections

    classifier = CallClassifier.from_settings(settings.home, Taxonomy.load(settings.analysis.taxonomy_file),
                                           settings.analysis)
    store = open_corrections(settings)
    try:
        model = classifier.train(store.all())
    finally:
        close_corrections(store)
    print(f"trained on {model.n_seed} seed examples and {model.n_corrections} corrections: {model.labels}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
