#!/usr/bin/env python3
"""Scores another tool could write for `lrgd eval --method external` (docs/eval.md, "Any
recommender in the table"): popularity in the training part of the data, for the candidates
of prepared splits (`lrgd data prepare`, one file per trial).

    python3 scripts/external_scores_example.py --data DIR -o scores.tsv split-t0.jsonl [split-t1.jsonl ...]

--data is an LC-Rec folder (X.inter.json, optional X.item.json) or its .inter.json file.
A prepared split names items by index (docs/formats.md): this script rebuilds lrgd's item
order for LC-Rec data (the ids of X.item.json, or of the sequences without one, canonical
integers below 10^9 by value first, then the others by their bytes) to write item ids.
Popularity counts each user's sequence (a repeated item once, users with fewer than 3 items
left out, as lrgd loads them) without its last two items, exactly as lrgd's `pop` baseline
fits it, so `--method external` on these scores reproduces `--method pop`.

Output: TSV `user<TAB>trial<TAB>item<TAB>score` with a header (default), or JSON Lines
`{"user": ..., "trial": ..., "scores": {...}}` with --format jsonl. Standard library only.
"""

import argparse
import json
import sys
from pathlib import Path


def id_key(s):
    """lrgd's id order: canonical non-negative integers below 10^9 by value, then bytes."""
    small = 0 < len(s) <= 9 and s.isascii() and s.isdigit() and (s == "0" or s[0] != "0")
    return (0, int(s), b"") if small else (1, 0, s.encode("utf-8"))


def load_lcrec(data):
    path = Path(data)
    if path.is_dir():
        inters = sorted(path.glob("*.inter.json"))
        if len(inters) != 1:
            sys.exit(f"{data}: expected one *.inter.json file, found {len(inters)}")
        inter = inters[0]
    else:
        inter = path
    item_file = inter.with_name(inter.name[: -len(".inter.json")] + ".item.json")
    with open(inter, encoding="utf-8") as f:
        raw = json.load(f)
    known = None
    if item_file.is_file():
        with open(item_file, encoding="utf-8") as f:
            known = set(json.load(f).keys())
    sequences = []
    met = set()
    for items in raw.values():
        seq, seen = [], set()
        for i in map(str, items):
            if (known is not None and i not in known) or i in seen:
                continue
            seen.add(i)
            seq.append(i)
        met.update(seq)
        if len(seq) >= 3:
            sequences.append(seq)
    ids = sorted(known if known is not None else met, key=id_key)
    return ids, sequences


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="LC-Rec folder or .inter.json file (the one prepared)")
    ap.add_argument("-o", "--out", required=True, help="score file to write")
    ap.add_argument("--format", choices=["tsv", "jsonl"], default="tsv")
    ap.add_argument("--holdout", type=int, default=2, help="trailing items per user not counted (lrgd's pop: 2)")
    ap.add_argument("splits", nargs="+", help="prepared splits (lrgd data prepare), one per trial")
    args = ap.parse_args()

    ids, sequences = load_lcrec(args.data)
    popularity = {}
    for seq in sequences:
        for i in seq[: max(0, len(seq) - args.holdout)]:
            popularity[i] = popularity.get(i, 0) + 1

    with open(args.out, "w", encoding="utf-8", newline="\n") as out:
        if args.format == "tsv":
            out.write("user\ttrial\titem\tscore\n")
        for split in args.splits:
            with open(split, encoding="utf-8") as f:
                header = json.loads(f.readline())
                if header.get("format") != "lrgd-prepared-split":
                    sys.exit(f"{split}: not a prepared split (lrgd data prepare)")
                if header["n_items"] != len(ids):
                    sys.exit(f"{split}: prepared from {header['n_items']} items, {args.data} has {len(ids)}")
                trial = header["trial"]
                for line in f:
                    user = json.loads(line)
                    candidates = [ids[c] for c in user["test_candidates"]]
                    scores = {c: popularity.get(c, 0) for c in candidates}
                    if args.format == "tsv":
                        for c in candidates:
                            out.write(f"{user['user_id']}\t{trial}\t{c}\t{scores[c]}\n")
                    else:
                        out.write(json.dumps({"user": user["user_id"], "trial": trial, "scores": scores}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
