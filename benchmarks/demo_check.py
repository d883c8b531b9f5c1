"""Acceptance check: demo news claims vs the demo release statements (never used for training).

Usage: python benchmarks/demo_check.py [--model PATH] [--json OUT]
Prints, per claim, the best-matching statement, its label after the product's flag threshold (0.5),
the score and the reasons; exits 1 when a claim's label differs from the expected one below.
"""
from __future__ import annotations

import argparse
import html
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import LABELS, extract_claims, load_model, split_statements  # noqa: E402

DEMO = ROOT / "monitor" / "demo"
THRESHOLD = 0.5
# What a press officer expects of each demo claim (best statement over both releases).
EXPECTED = {
    "Cyber police investigated 72 specialized criminal cases in 2019": "contradicts",
    "The ministry's cyber security department investigated 72 specialized criminal cases in 2019, according to "
    "figures presented at a year-end conference in Hanoi.": "contradicts",
    "Cyber crime department reports 27 cases and 121 arrests for 2019": "supports",
    "The Ministry of Public Security said its Department of Cyber Security and Hi-tech Crime Prevention "
    "investigated 27 specialized criminal cases in 2019 and arrested 121 suspects.": "supports",
    "Police deny extraditing 555 foreign criminals last year": "contradicts",
    "City opens new riverside park after two years of works": "unrelated",
    "Cục An ninh mạng điều tra 72 vụ án chuyên đề trong năm 2019": "contradicts",
    "Theo báo cáo tổng kết, năm 2019 Cục An ninh mạng đã điều tra 72 vụ án chuyên đề.": "contradicts",
    "Năm 2019, lực lượng an ninh mạng bắt giữ 121 đối tượng": "supports",
    "Cục An ninh mạng và phòng, chống tội phạm sử dụng công nghệ cao cho biết đã bắt giữ 121 đối tượng phạm tội "
    "trên không gian mạng trong năm 2019.": "supports",
}


def _strip_html(s: str) -> str:
    s = re.sub(r"</p>\s*<p>", "\n", s or "")
    return html.unescape(re.sub(r"<[^>]+>", "", s)).strip()


def demo_claims() -> list[str]:
    root = ET.parse(DEMO / "news.xml").getroot()
    out = []
    for item in root.iter("item"):
        spans = extract_claims(item.findtext("title") or "", _strip_html(item.findtext("description") or ""))
        out += [s.text for s in spans]
    return out


def demo_statements() -> list[str]:
    out = []
    for name in ("release_en.md", "release_vi.md"):
        text = (DEMO / name).read_text(encoding="utf-8")
        text = re.sub(r"(?m)^#+\s*", "", text)
        out += [s.text for s in split_statements(text)]
    return out


def decide(j) -> tuple[str, float]:
    if j.label != "contradicts" or j.score >= THRESHOLD:
        return j.label, j.score
    others = {k: v for k, v in j.probabilities.items() if k != "contradicts"}
    best = max(others, key=others.__getitem__)
    return best, others[best]


def run(model) -> list[dict]:
    claims, stmts = demo_claims(), demo_statements()
    rows = []
    for claim, judged in zip(claims, model.check(claims, stmts, top_k=3)):
        # the judgement the product would show first: a flag if any, else the most relevant related one
        decided = [(decide(j), j) for j in judged]
        flags = [d for d in decided if d[0][0] == "contradicts"]
        related = [d for d in decided if d[0][0] != "unrelated"]
        (label, score), j = (flags or related or decided)[0]
        rows.append({
            "claim": claim, "label": label, "score": round(score, 3), "expected": EXPECTED.get(claim),
            "statement": stmts[j.statement_index],
            "probabilities": {k: round(v, 3) for k, v in j.probabilities.items()},
            "reasons": [f"{r.kind}: {r.text}" for r in j.reasons],
        })
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    rows = run(load_model(a.model))
    bad = 0
    for r in rows:
        ok = r["expected"] is None or r["expected"] == r["label"]
        bad += not ok
        print(f"[{'ok ' if ok else 'BAD'}] {r['label']:<11} {r['score']:.2f}  (expected {r['expected']})  {r['claim'][:90]}")
        print(f"        vs {r['statement'][:100]}")
        for reason in r["reasons"]:
            print(f"        - {reason}")
    print(f"{len(rows) - bad}/{len(rows)} demo claims as expected")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
