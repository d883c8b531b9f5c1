"""FactCC-style synthetic (claim, statement, label) pairs, EN (from real sentences) and VI (templates)."""
from __future__ import annotations

import random
import re
from typing import Iterable, Sequence

from .facts import extract_facts
from .reversals import FACTUAL_OPPOSITES
from .text import split_sentences

__all__ = ["perturb_sentences", "vietnamese_pairs", "english_template_pairs", "add_context"]

_AUX_RE = re.compile(r"(?<!\w)(is|are|was|were|has|have|had|will|can|did|does|could|would|should)(?!\w)")
_ACTORS_EN = ["Officials", "The ministry", "Police", "The government", "A spokesperson", "Authorities", "The agency"]


# ----------------------------------------------------------------------------- context clauses
# News claims rarely restate a release sentence alone: they add attributions, venues and times. These
# wrappers are applied to every label alike, so they carry no label signal, only the distribution shift.
_SOURCES_EN = ["officials", "the ministry", "police", "the agency", "a spokesperson", "the authorities",
               "the inspectorate", "local media", "the department", "a government report"]
_CITIES_EN = ["Da Nang", "Hue", "Can Tho", "Hai Phong", "the capital", "Ho Chi Minh City", "Nha Trang", "Vinh"]
_EVENTS_EN = ["an annual review meeting", "a press briefing", "a conference", "a national meeting",
              "a mid-year review", "a parliamentary hearing", "a news conference"]
_PREFIX_EN = [
    "According to {src}, {c}", "{Src} said that {c}", "A report released on {day} shows that {c}",
    "At {event} in {city}, {src} said that {c}", "Figures presented at {event} show that {c}",
    "In a statement on {day}, {src} said {c}", "The report shows that {c}", "Speaking at {event}, {src} said {c}",
]
_SUFFIX_EN = [
    "{c}, according to {src}.", "{c}, {src} said on {day}.", "{c}, according to figures presented at {event} in {city}.",
    "{c}, the report shows.", "{c}, {src} told reporters in {city}.", "{c}, {src} said.",
    "{c}, according to data released at {event}.", "{c}, as announced at {event} in {city}.",
]
_DAYS_EN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the weekend", "Sunday"]
_SOURCES_VI = ["lãnh đạo Bộ", "cơ quan chức năng", "đại diện cơ quan công an", "báo cáo tổng kết", "người phát ngôn",
               "Sở Tư pháp", "ban chỉ đạo"]
_CITIES_VI = ["Đà Nẵng", "Huế", "Cần Thơ", "Hải Phòng", "Nha Trang", "TP.HCM", "Vinh"]
_PREFIX_VI = [
    "Theo {src}, {c}", "Tại hội nghị ở {city}, {src} cho biết {c}", "Báo cáo cho thấy {c}",
    "Phát biểu tại buổi họp báo, {src} cho hay {c}", "Số liệu công bố tại hội nghị cho thấy {c}",
]
_SUFFIX_VI = [
    "{c}, theo {src}.", "{c}, {src} cho biết.", "{c}, theo số liệu công bố tại hội nghị ở {city}.",
    "{c}, theo báo cáo được trình bày tại {city}.", "{c}, {src} thông tin tại buổi họp báo.",
]


def add_context(claim: str, rng: random.Random, vietnamese: bool = False) -> str:
    """``claim`` with an attribution / venue / time clause added before or after it."""
    c = claim.strip().rstrip(".")
    if not c:
        return claim
    src = rng.choice(_SOURCES_VI if vietnamese else _SOURCES_EN)
    if vietnamese:
        tpl = rng.choice(_PREFIX_VI + _SUFFIX_VI)
        city, event, day = rng.choice(_CITIES_VI), "", ""
    else:
        tpl = rng.choice(_PREFIX_EN + _SUFFIX_EN)
        city, event, day = rng.choice(_CITIES_EN), rng.choice(_EVENTS_EN), rng.choice(_DAYS_EN)
    if tpl.startswith("{c}"):
        body = c
    else:
        # lower-case the claim's first letter unless it starts a name ("Police" stays, "In" goes)
        first = c.split(" ", 1)[0]
        body = c[0].lower() + c[1:] if first in ("In", "The", "During", "Last", "Năm", "Trong", "Từ") else c
    out = tpl.format(c=body, src=src, Src=src[0].upper() + src[1:], city=city, event=event, day=day)
    if not out.endswith("."):
        out += "."
    return out[0].upper() + out[1:]


def _maybe_context(claim: str, rng: random.Random, p: float, vietnamese: bool = False) -> str:
    return add_context(claim, rng, vietnamese) if rng.random() < p else claim


def _change_number(v: float, rng: random.Random) -> float:
    iv = int(v)
    s = str(iv)
    opts = []
    if v == iv and len(s) >= 2 and len(set(s)) > 1:
        opts.append(float(s[::-1].lstrip("0") or "1"))
        t = list(s)
        i = rng.randrange(len(t) - 1)
        t[i], t[i + 1] = t[i + 1], t[i]
        if t[0] != "0":
            opts.append(float("".join(t)))
    opts += [v * 10, max(1.0, round(v * rng.choice([0.5, 0.7, 1.3, 1.5, 2.0, 3.0]))), v + rng.randint(1, 9)]
    opts = [o for o in opts if o != v]
    return rng.choice(opts)


def _fmt(v: float, like: str) -> str:
    if v == int(v):
        iv = int(v)
        if "," in like and len(str(iv)) > 3:
            return f"{iv:,}"
        if "." in like and len(str(iv)) > 3:
            return f"{iv:,}".replace(",", ".")
        return str(iv)
    return f"{v:g}"


def _clause(sent: str, keep: tuple[int, int], rng: random.Random) -> str:
    """A sub-span of ``sent`` containing ``keep`` (cut at commas / 'and'), or the sentence."""
    cuts = [0] + [m.end() for m in re.finditer(r",\s|;\s|\s(?:and|but|while|và|nhưng)\s", sent)] + [len(sent)]
    starts = [c for c in cuts if c <= keep[0]]
    ends = [c for c in cuts if c >= keep[1]]
    if not starts or not ends or rng.random() < 0.3:
        return sent
    s, e = rng.choice(starts[-2:]), rng.choice(ends[:2])
    piece = sent[s:e].strip(" ,;.")
    return piece[0].upper() + piece[1:] if len(piece) > 15 else sent


def perturb_sentences(sentences: Sequence[str], others: Sequence[str], rng: random.Random,
                      n_per: int = 1, p_context: float = 0.0) -> list[tuple[str, str, str]]:
    """Make (claim, statement, label) pairs from real sentences carrying figures/years.

    figure changed / negation / denial / year shifted / a fact reversed ("rose" -> "fell") -> contradicts; faithful sub-clause or
    attributed paraphrase with the same figures -> supports; a random other sentence -> unrelated.
    """
    out: list[tuple[str, str, str]] = []
    for sent in sentences:
        facts = extract_facts(sent)
        nums = [f for f in facts if f.kind in ("quantity", "percent", "money") and f.value_span]
        years = [f for f in facts if f.kind == "year"]
        for _ in range(n_per):
            # supports: clause subset or attribution, same figures
            anchor = rng.choice(nums or years) if (nums or years) else None
            keep = anchor.value_span if anchor else (0, min(len(sent), 20))
            sup = _clause(sent, keep, rng)
            out.append((_maybe_context(sup, rng, p_context), sent, "supports"))
            # contradicts
            flips = _reversible(sent)
            kinds = (["negation", "denial"] + (["figure"] * 3 if nums else []) + (["year"] * 2 if years else [])
                     + (["reversal"] * 2 if flips else []))
            k = rng.choice(kinds)
            if k == "reversal":
                a, b, opposite = rng.choice(flips)
                word = rng.choice(sorted(opposite))
                if sent[a].isupper():
                    word = word[0].upper() + word[1:]
                con = _clause(sent[:a] + word + sent[b:], (a, a + len(word)), rng)
            elif k == "figure":
                f = rng.choice(nums)
                a, b = f.value_span
                raw = sent[a:b]
                if not re.fullmatch(r"[\d.,]+", raw):
                    continue
                new = _fmt(_change_number(float(f.value) / _scale(f, raw), rng), raw)
                changed = sent[:a] + new + sent[b:]
                con = _clause(changed, (a, a + len(new)), rng)
            elif k == "year":
                f = rng.choice(years)
                a, b = f.value_span
                new = str(int(f.value) + rng.choice([-3, -2, -1, 1, 2, 3]))
                con = _clause(sent[:a] + new + sent[b:], (a, a + len(new)), rng)
            elif k == "negation":
                m = _AUX_RE.search(sent)
                if m:
                    con = sent[:m.end()] + " not" + sent[m.end():]
                else:
                    con = "It is not true that " + sent[0].lower() + sent[1:]
            else:
                verb = rng.choice(["denied that", "denies that", "rejected claims that", "said it is false that"])
                con = f"{rng.choice(_ACTORS_EN)} {verb} " + sent[0].lower() + sent[1:]
            out.append((_maybe_context(con, rng, p_context), sent, "contradicts"))
            # unrelated
            out.append((_maybe_context(rng.choice(others), rng, p_context), sent, "unrelated"))
    return out


def _reversible(sent: str) -> list[tuple[int, int, frozenset[str]]]:
    """Spans of words that reverse a reported fact ("rose", "arrested", "tăng") with their opposites."""
    return [(m.start(), m.end(), FACTUAL_OPPOSITES[m.group(0).lower()])
            for m in _FACTUAL_RE.finditer(sent)]


_FACTUAL_RE = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(f) for f in sorted(FACTUAL_OPPOSITES, key=len, reverse=True))
                         + r")(?!\w)", re.IGNORECASE | re.UNICODE)


def _scale(f, raw: str) -> float:
    from .facts import parse_number
    base = parse_number(raw, False) or parse_number(raw, True) or float(f.value)
    return float(f.value) / base if base else 1.0


# ----------------------------------------------------------------------------- Vietnamese templates
_VI_ORGS = [
    "Bộ Công an", "Công an thành phố Hà Nội", "Công an TP.HCM", "Cục Cảnh sát giao thông", "Tổng cục Hải quan",
    "Cục Quản lý thị trường", "Bộ Y tế", "Sở Y tế Đà Nẵng", "Công an tỉnh Quảng Ninh", "Bộ Tài chính",
    "Viện Kiểm sát nhân dân tối cao", "Cục Cảnh sát kinh tế", "Bộ đội Biên phòng", "Thanh tra Chính phủ",
]
_VI_ACTIONS = [
    ("phát hiện", ["vụ vi phạm", "vụ buôn lậu", "trường hợp", "cơ sở vi phạm"]),
    ("khởi tố", ["vụ án", "bị can", "vụ án hình sự"]),
    ("bắt giữ", ["đối tượng", "người", "đối tượng truy nã"]),
    ("xử phạt", ["trường hợp", "doanh nghiệp", "phương tiện"]),
    ("thu giữ", ["tấn hàng hóa", "kg ma túy", "chiếc điện thoại"]),
    ("kiểm tra", ["cơ sở", "doanh nghiệp", "phương tiện"]),
    ("triệt phá", ["đường dây", "ổ nhóm tội phạm"]),
    ("hỗ trợ", ["hộ dân", "người", "học sinh"]),
]
_VI_TIMES = ["Năm {y}", "Trong năm {y}", "Từ đầu năm {y}", "Trong tháng {m}/{y}", "Trong quý {q} năm {y}"]
_VI_UNRELATED = [
    "Đội tuyển bóng đá Việt Nam giành chiến thắng trong trận đấu tối Chủ nhật.",
    "Thời tiết Hà Nội hôm nay có mưa rào và dông vài nơi.",
    "Giá vàng trong nước tăng mạnh vào phiên giao dịch sáng nay.",
    "Ca sĩ nổi tiếng vừa ra mắt album mới tại TP.HCM.",
    "Lễ hội hoa xuân thu hút hàng nghìn du khách đến tham quan.",
    "Nhiều trường đại học công bố điểm chuẩn tuyển sinh năm nay.",
    "Giải chạy marathon quốc tế diễn ra tại Đà Nẵng với hơn 5.000 vận động viên.",
    "Bộ phim mới của đạo diễn trẻ đạt doanh thu cao trong tuần đầu ra mắt.",
]


_VI_STMT_TAILS = ["", "", " trên không gian mạng", " trên địa bàn", " liên quan đến tội phạm công nghệ cao",
                  " trên các tuyến biên giới", " tại các tỉnh phía Bắc"]


def _vi_sentence(rng: random.Random) -> tuple[str, dict]:
    org = rng.choice(_VI_ORGS)
    y = rng.randint(2010, 2024)
    t = rng.choice(_VI_TIMES).format(y=y, m=rng.randint(1, 12), q=rng.randint(1, 4))
    (v1, u1s), (v2, u2s) = rng.sample(_VI_ACTIONS, 2)
    n1, n2 = rng.randint(2, 999), rng.randint(2, 2500)
    u1, u2 = rng.choice(u1s), rng.choice(u2s)
    n2s = f"{n2:,}".replace(",", ".")
    sent = f"{t}, {org} đã {v1} {n1} {u1}, {v2} {n2s} {u2}{rng.choice(_VI_STMT_TAILS)}."
    return sent, dict(org=org, y=y, t=t, v1=v1, v2=v2, n1=n1, n2=n2, u1=u1, u2=u2, n2s=n2s)


def vietnamese_pairs(n: int, rng: random.Random, p_context: float = 0.0) -> list[tuple[str, str, str]]:
    """Template Vietnamese (claim, statement, label) pairs (press-release style).

    With ``p_context`` > 0 claims get attribution/venue clauses (:func:`add_context`) for every label.
    """
    out: list[tuple[str, str, str]] = []
    for _ in range(n):
        sent, d = _vi_sentence(rng)
        short_org = d["org"].split(" thành phố")[0]
        # supports
        r = rng.random()
        if r < 0.4:
            sup = f"{short_org} {d['v1']} {d['n1']} {d['u1']} trong năm {d['y']}"
        elif r < 0.7:
            sup = f"Theo {d['org']}, {d['n2s']} {d['u2']} đã bị {d['v2']} trong năm {d['y']}."
        else:
            sup = f"{d['org']} {d['v1']} {d['n1']} {d['u1']} và {d['v2']} {d['n2s']} {d['u2']}"
        out.append((_maybe_context(sup, rng, p_context, True), sent, "supports"))
        # contradicts
        k = rng.choice(["figure", "figure", "figure", "figure2", "year", "neg", "deny"])
        if k == "figure":
            new = int(_change_number(float(d["n1"]), rng))
            con = f"{short_org} {d['v1']} {new} {d['u1']} trong năm {d['y']}"
        elif k == "figure2":
            new = int(_change_number(float(d["n2"]), rng))
            con = f"Năm {d['y']}, {short_org} đã {d['v2']} {new:,} {d['u2']}".replace(",", ".")
        elif k == "year":
            con = f"{short_org} {d['v1']} {d['n1']} {d['u1']} trong năm {d['y'] + rng.choice([-2, -1, 1, 2])}"
        elif k == "neg":
            con = f"{short_org} không {d['v1']} {d['u1'].split()[-1]} nào trong năm {d['y']}"
        else:
            con = f"{short_org} {rng.choice(['bác bỏ', 'phủ nhận'])} thông tin đã {d['v1']} {d['n1']} {d['u1']}"
        out.append((_maybe_context(con, rng, p_context, True), sent, "contradicts"))
        # unrelated (other topic or other template sentence)
        other = rng.choice(_VI_UNRELATED) if rng.random() < 0.6 else _vi_sentence(rng)[0]
        out.append((_maybe_context(other, rng, p_context, True), sent, "unrelated"))
    return out


_EN_ORGS = [
    "the Ministry of Health", "the national police", "the customs department", "the Ministry of Finance",
    "the city council", "the environmental agency", "the border guard", "the anti-corruption office",
    "the Ministry of Transport", "the market surveillance agency",
]
_GERUND = {"investigated": "investigating", "arrested": "arresting", "fined": "fining", "inspected": "inspecting",
           "seized": "seizing", "recalled": "recalling", "vaccinated": "vaccinating", "rescued": "rescuing",
           "issued": "issuing", "closed": "closing"}
_BASE = {"investigated": "investigate", "arrested": "arrest", "fined": "fine", "inspected": "inspect",
         "seized": "seize", "recalled": "recall", "vaccinated": "vaccinate", "rescued": "rescue", "issued": "issue",
         "closed": "close"}
_EN_ACTIONS = [
    ("rescued", ["trafficking victims", "stranded fishermen", "flood victims"]),
    ("investigated", ["cases", "corruption cases", "fraud cases", "smuggling cases"]),
    ("arrested", ["suspects", "people", "drug traffickers"]),
    ("fined", ["companies", "drivers", "businesses"]),
    ("inspected", ["facilities", "restaurants", "factories"]),
    ("seized", ["tonnes of goods", "kilograms of drugs", "vehicles"]),
    ("recalled", ["faulty vehicles", "contaminated products"]),
    ("vaccinated", ["children", "residents"]),
    ("issued", ["building permits", "import licences"]),
    ("closed", ["illegal mines", "unlicensed clinics"]),
]
_EN_STMT_TAILS = ["", "", " across the country", " involved in online fraud", " in the northern provinces",
                  " during the campaign", " linked to organised crime"]


def english_template_pairs(n: int, rng: random.Random, p_context: float = 0.0) -> list[tuple[str, str, str]]:
    """Template English press-release pairs, mirroring :func:`vietnamese_pairs`."""
    out: list[tuple[str, str, str]] = []
    for _ in range(n):
        org = rng.choice(_EN_ORGS)
        y = rng.randint(2010, 2024)
        (v1, u1s), (v2, u2s) = rng.sample(_EN_ACTIONS, 2)
        u1, u2 = rng.choice(u1s), rng.choice(u2s)
        n1, n2 = rng.randint(2, 999), rng.randint(2, 5000)
        if rng.random() < 0.5:
            sent = f"In {y}, {org} {v1} {n1} {u1} and {v2} {n2:,} {u2}{rng.choice(_EN_STMT_TAILS)}."
        else:
            sent = f"In {y}, {org} {v1} {n1} {u1}{rng.choice(_EN_STMT_TAILS)}. It also {v2} {n2:,} {u2}."
        Org = org[0].upper() + org[1:]
        r = rng.random()
        if r < 0.4:
            sup = f"{Org} {v1} {n1} {u1} last year"
        elif r < 0.7:
            sup = f"{Org} {v1} {n1} {u1} in {y}"
        else:
            sup = f"{n2:,} {u2} were {v2} by {org} in {y}, officials said"
        out.append((_maybe_context(sup, rng, p_context), sent, "supports"))
        k = rng.choice(["figure", "figure", "figure", "figure2", "year", "neg", "deny", "deny_short", "deny_short"])
        # the same time phrases as the supporting claims, so that "last year" says nothing about the label
        when = rng.choice([" last year", f" in {y}", f" in {y}", ""])
        if k == "figure":
            con = f"{Org} {v1} {int(_change_number(float(n1), rng))} {u1}{when}"
        elif k == "figure2":
            con = f"In {y}, {org} {v2} {int(_change_number(float(n2), rng)):,} {u2}"
        elif k == "year":
            con = f"{Org} {v1} {n1} {u1} in {y + rng.choice([-2, -1, 1, 2])}"
        elif k == "neg":
            con = rng.choice([f"{Org} did not {rng.choice(['report', 'record', 'find'])} any {u1}{when}",
                              f"{Org} did not {_BASE[v1]} {n1} {u1}{when}"])
        elif k == "deny":
            con = f"{Org} {rng.choice(['denies', 'denied', 'rejected reports'])} that it {v1} {n1} {u1}{when}"
        else:
            actor = rng.choice(["Officials", "Authorities", "The ministry", "The government", "Inspectors", Org])
            ger = _GERUND.get(v1, v1)
            con = (f"{actor} {rng.choice(['deny', 'denies', 'denied', 'reject claims of', 'dismiss reports of'])} "
                   f"{ger} {n1} {u1}{when}")
        out.append((_maybe_context(con, rng, p_context), sent, "contradicts"))
        if rng.random() < 0.5:
            other = f"{rng.choice(_EN_ORGS)[0].upper()}{rng.choice(_EN_ORGS)[1:]} {rng.choice(_EN_ACTIONS)[0]} new rules on {rng.choice(['tourism', 'housing', 'schools', 'farming', 'sports'])}"
            out.append((_maybe_context(other, rng, p_context), sent, "unrelated"))
    return out


def numeric_sentences(bodies: Iterable[str], limit: int, rng: random.Random) -> list[str]:
    """Sentences (40-300 chars) from ``bodies`` that carry a figure or a year."""
    out = []
    for b in bodies:
        for s, e in split_sentences(b):
            sent = b[s:e]
            if 40 <= len(sent) <= 300 and any(f.kind in ("quantity", "percent", "money", "year") for f in extract_facts(sent)):
                out.append(sent)
    rng.shuffle(out)
    return out[:limit]
