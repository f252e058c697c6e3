#!/usr/bin/env python3
"""Measures an embedding intent matcher against the appliance's classifier on corpus turns.

Issue 12 asked to measure both routes before choosing: the node's classification prompt kept
in the LLM's KV cache (what ships), or an embedding matcher with the LLM only for ambiguous
turns. The embedding model is WordLlama (`pip install wordllama`: its weights and tokenizer
ship inside the wheel, so it runs offline), nearest example by cosine similarity over the
same labels the LLM sees: the node's intents, the FAQs, `call_later`.

    RUST_LOG=warn,telemarketer::call::agent=debug \
        telemarketer rehearse --suite scripts/corpus > corpus.log
    python3 scripts/intent_embeddings.py corpus.log scripts/corpus/intent-labels.tsv

The log gives every caller turn as the appliance heard it, its node, the label chosen and by
what (`rule` or `llm`). Turns the LLM labelled are scored against hand labels (the TSV: node,
heard words, right label); turns the rules labelled are scored against the rules (they are
deterministic and carry the law, so an embedding route would have to agree with them).
`--extract` writes the LLM turns of a log as an unlabelled TSV to start from.
"""

import argparse
import re
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def turns(log: Path):
    """(node, heard, label, by) per caller turn, in order."""
    said = None
    out = []
    for line in log.read_text(errors="replace").splitlines():
        line = ANSI.sub("", line)
        if "caller said" in line:
            m = re.search(r"caller said caller=(.*)$", line)
            said = m.group(1).strip() if m else None
        elif "caller turn classified" in line and said is not None:
            rest = line.split("caller turn classified", 1)[1]
            f = {k: v.strip('"') for k, v in re.findall(r"(\w+)=(\S+)", rest)}
            out.append((f.get("node"), said, f.get("intent"), f.get("by")))
            said = None
    return out


def labels(script_path: Path):
    """{node: {label: [examples]}} as the LLM's prompt offers them (FAQs, call_later, intents)."""
    script = tomllib.loads(script_path.read_text())
    builtin = (ROOT / "src/script/format/builtin.rs").read_text()
    faqs = {}
    for m in re.finditer(r'\(\s*"(\w+)",\s*&\[(.*?)\],', builtin, re.S):
        faqs[m.group(1)] = re.findall(r'"([^"]*)"', m.group(2))
    for f in script.get("faq", []):
        faqs.setdefault(f["id"], []).extend(f.get("examples", []))
    phrases = (ROOT / "src/script/classify/phrases.rs").read_text()
    later = re.search(r"CALL_LATER: &\[&str\] = &\[(.*?)\];", phrases, re.S)
    shared = dict(faqs, call_later=re.findall(r'"([^"]*)"', later.group(1)))
    return {
        n["id"]: dict(shared, **{i["name"]: i["examples"] for i in n.get("intent", [])})
        for n in script["node"]
    }


class Matcher:
    def __init__(self, by_node):
        from wordllama import WordLlama

        self.wl = WordLlama.load(disable_download=True)
        self.tables = {}
        for node, table in by_node.items():
            names = [k for k, ex in table.items() for _ in ex]
            texts = [e for ex in table.values() for e in ex]
            self.tables[node] = (names, self.wl.embed(texts, norm=True))

    def top2(self, node, text):
        """(best label, its similarity, margin over the best other label)."""
        names, emb = self.tables[node]
        sims = emb @ self.wl.embed([text], norm=True)[0]
        best = {}
        for name, s in zip(names, sims):
            best[name] = max(best.get(name, -1.0), float(s))
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        (label, s1), (_, s2) = ranked[0], ranked[1]
        return label, s1, s1 - s2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log")
    ap.add_argument("labels", nargs="?")
    ap.add_argument("--script", default=str(ROOT / "scripts/campaigns/solar.toml"))
    ap.add_argument("--extract", action="store_true")
    args = ap.parse_args()
    seen = turns(Path(args.log))
    if args.extract:
        for node, heard, label, by in seen:
            if by == "llm":
                print(f"{node}\t{heard}\t{label}")
        return
    truth = {}
    if args.labels:
        for row in Path(args.labels).read_text().splitlines():
            if row.strip() and not row.startswith("#"):
                node, heard, label = row.split("\t")
                truth[(node, heard)] = label
    m = Matcher(labels(Path(args.script)))
    llm = [(n, h, lab) for n, h, lab, by in seen if by == "llm" and n in m.tables]
    # Rule turns the matcher could have labelled (not opt-outs, declines, repeats: rules only).
    rule = [
        (n, h, lab)
        for n, h, lab, by in seen
        if by == "rule" and n in m.tables and lab in set(m.tables[n][0])
    ]
    missing = [(n, h) for n, h, _ in llm if (n, h) not in truth]
    if missing:
        sys.exit(f"{len(missing)} LLM turns have no hand label, e.g. {missing[0]} (--extract)")

    started = time.perf_counter()
    a = [(m.top2(n, h), lab, truth[(n, h)]) for n, h, lab in llm]
    b = [(m.top2(n, h), lab) for n, h, lab in rule]
    per_turn_ms = 1000 * (time.perf_counter() - started) / max(len(a) + len(b), 1)
    print(f"turns: {len(llm)} labelled by the LLM, {len(rule)} by the rules (labels both offer)")
    print(f"embedding: {per_turn_ms:.2f} ms a turn (WordLlama 256-d, nearest example)")
    llm_ok = sum(lab == right for _, lab, right in a)
    print(f"shipped route (KV-cached LLM) on the LLM's turns: {llm_ok}/{len(a)} right")
    print("similarity floor | LLM's turns: right with embedding (+ LLM below the floor), LLM calls"
          " | rule turns: embedding agrees, of decided")
    for tau in (0.0, 0.3, 0.4, 0.5, 0.6, 0.7):
        mixed = [(top if s >= tau else lab) == right for (top, s, _), lab, right in a]
        calls = sum(s < tau for (_, s, _), _, _ in a)
        decided = [(top, lab) for (top, s, _), lab in b if s >= tau]
        print(
            f"  {tau:.1f}            | {sum(mixed)}/{len(a)} right, {calls} LLM calls"
            f" | {sum(t == r for t, r in decided)}/{len(decided)}"
        )
    print("the LLM's turns, one by one (node | heard | right | LLM | embedding, similarity, margin):")
    for (n, h, lab), ((top, s, margin), _, right) in zip(llm, a):
        print(f"  {n} | {h} | {right} | {lab} | {top} {s:.2f} +{margin:.2f}")


if __name__ == "__main__":
    main()
