"""Claims compliance: ad-law absolute terms, cosmetics efficacy claims and a product's banned claims, found in any
text an ad says or shows, so the planner can rewrite, drop or mute them before render.

The term lists are data (prompts/claims/absolute.yaml, efficacy.yaml, with their legal sources). Matching runs on
the folded text (agent.rules.fold: width, case, no spaces between Chinese characters):
- a Chinese term matches as a substring, unless the occurrence lies inside one of its exception words
  (最 in 最近 is time, not a superlative);
- a Latin term matches as whole words, case-insensitive ("best" is not in "bestow", "cure" not in "manicure"),
  unless inside an exception phrase ("best before", "money-back guarantee");
- an occurrence inside one of the product's own names or aliases is no claim (a registered name is a fact).

Absolute and banned terms are never allowed. An efficacy term is allowed only when the product facts name the
evidence for it (`Product.claim_evidence`); the hit then carries that evidence. Text from footage, briefs and
generated frames is data: it is only ever matched here, never followed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from agent.rules import CJK, fold
from cutpilot.errors import InputError

if TYPE_CHECKING:
    from agent.runrecord import RunRecord
    from cutpilot.storyboard import Storyboard

Kind = Literal["absolute", "efficacy", "banned"]
Action = Literal["rewritten", "dropped", "muted", "allowed-with-evidence"]
_CLAUSE = re.compile(r"(\s*[·|/]\s*|[，,、；;：:。！!？?…]+|(?<=[.!?])\s+)")
_NEGATED = re.compile(r"(不要|不准|不能|不许|别|避免|禁止|切勿|勿|don't|do not|never|avoid|without|no)\W{0,3}"
                      r"(说|写|用|提|出现|say|use|claim|write|mention)?\W{0,3}$")


class ClaimsError(InputError):
    """A strict run found claims it may not make (the run fails instead of rewriting, dropping or muting)."""


class ClaimHit(BaseModel):
    """One claim found in one text: which term, of which kind, where, and what the planner did about it."""

    model_config = ConfigDict(extra="forbid")
    term: str
    kind: Kind
    where: str = ""
    text: str = ""  # the words matched (folded)
    evidence: str | None = None  # the product facts' evidence for an efficacy claim
    action: Action | None = None

    @property
    def allowed(self) -> bool:
        """An efficacy claim backed by named evidence; every other hit must not reach the ad."""
        return self.kind == "efficacy" and bool(self.evidence)

    def brief(self) -> str:
        """'slot 0 line: 全网最好 (absolute)' — one item of a one-line error."""
        return f"{self.where}: {self.text or self.term} ({self.kind})".strip(": ")


@dataclass(frozen=True)
class Term:
    """A term with its other forms and the innocent words it may sit inside."""

    term: str
    kind: Kind
    forms: tuple[str, ...] = ()
    excepts: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = field(default=(), compare=False)

    @classmethod
    def make(cls, term: str, kind: Kind, forms: Iterable[str] = (), excepts: Iterable[str] = ()) -> Term:
        words = tuple(dict.fromkeys(fold(w) for w in (term, *forms) if w and w.strip()))
        return cls(term=term, kind=kind, forms=words, excepts=tuple(fold(e) for e in excepts if e.strip()),
                   patterns=tuple(_pattern(w) for w in words))

    def spans(self, folded: str) -> list[tuple[int, int]]:
        """Where the term (any form) occurs in folded text, exception words left out."""
        out: list[tuple[int, int]] = []
        for p in self.patterns:
            for m in p.finditer(folded):
                if not _inside_any(folded, m.start(), m.end(), self.excepts):
                    out.append((m.start(), m.end()))
        return out


def _pattern(word: str) -> re.Pattern[str]:
    """CJK: a plain substring; Latin: whole words (spaces and hyphens flexible, '%' may follow a space)."""
    if CJK.search(word):
        return re.compile(re.escape(word).replace("%", r"\s*%"))
    body = ""
    for ch in word:
        if ch == " ":
            body += r"[\s-]+"
        elif ch == "-":
            body += r"[\s-]?"
        elif ch == "%":
            body += r"\s*%"
        else:
            body += re.escape(ch)
    before = r"(?<![a-z0-9])" if word[:1].isalnum() else r"(?<![a-z0-9#])"
    after = r"(?![0-9])" if word[-1:].isdigit() else r"(?![a-z0-9])" if word[-1:].isalnum() else ""
    return re.compile(before + body + after)


def _inside_any(folded: str, a: int, b: int, words: Iterable[str]) -> bool:
    for w in words:
        start = folded.find(w, max(0, b - len(w)))
        while start != -1 and start <= a:
            if start + len(w) >= b:
                return True
            start = folded.find(w, start + 1)
    return False


@dataclass(frozen=True)
class ClaimRules:
    """The ad-law absolute terms and the efficacy terms (both languages), as loaded from prompts/claims/."""

    absolute: tuple[Term, ...]
    efficacy: tuple[Term, ...]

    def excepts_for(self, word: str) -> tuple[str, ...]:
        """A product's banned term that is also an ad-law term keeps that term's exceptions (最 ≠ 最近)."""
        w = fold(word)
        return next((t.excepts for t in (*self.absolute, *self.efficacy) if w in t.forms), ())


def _load_terms(data: Any, kind: Kind, source: str) -> tuple[Term, ...]:
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping with zh and en term lists")
    out: list[Term] = []
    for lang in ("zh", "en"):
        for i, item in enumerate(data.get(lang) or [], 1):
            if isinstance(item, str):
                item = {"term": item}
            if not isinstance(item, dict) or not str(item.get("term", "")).strip():
                raise InputError(f"{source}: {lang} item {i} needs a term")
            out.append(Term.make(str(item["term"]), kind, [str(f) for f in item.get("forms") or []],
                                 [str(e) for e in item.get("except") or []]))
    return tuple(out)


@lru_cache(maxsize=4)
def load_rules(directory: str | None = None) -> ClaimRules:
    """The term lists (cached): prompts/claims/ by default, or another folder holding the two files."""
    import yaml

    def read(name: str) -> tuple[str, Any]:
        if directory is None:
            import prompts

            return f"prompts/claims/{name}", yaml.safe_load(prompts.read(f"claims/{name}"))
        path = Path(directory) / name
        return str(path), yaml.safe_load(path.read_text(encoding="utf-8"))

    src_a, absolute = read("absolute.yaml")
    src_e, efficacy = read("efficacy.yaml")
    return ClaimRules(absolute=_load_terms(absolute, "absolute", src_a),
                      efficacy=_load_terms(efficacy, "efficacy", src_e))


_RANK: dict[str, int] = {"absolute": 0, "banned": 1, "efficacy": 2}


@dataclass
class Policy:
    """What one ad may claim: the global rules, the product's banned claims, its evidence and its names."""

    rules: ClaimRules
    banned: tuple[Term, ...] = ()
    evidence: Mapping[str, str] = field(default_factory=dict)  # folded claim → evidence
    names: tuple[str, ...] = ()  # folded product names and aliases

    @classmethod
    def of(cls, product: Any = None, *, banned: Sequence[str] = (), evidence: Mapping[str, str] | None = None,
           names: Sequence[str] = (), rules: ClaimRules | None = None) -> Policy:
        """From a cutpilot.products.Product (or None), plus any extra banned terms / evidence / names."""
        r = rules or load_rules()
        b = [*(getattr(product, "banned_claims", None) or []), *banned]
        ev = {**(getattr(product, "claim_evidence", None) or {}), **(evidence or {})}
        nm = [*(product.names() if product is not None and hasattr(product, "names") else []), *names]
        folded = [fold(n) for n in nm if n.strip()]
        # a line trimmed to its budget may end inside the name ("欧莱雅紫熨斗全脸淡纹"): its longer prefixes count too
        prefixes = [n[:k] for n in folded for k in range(max(4, (len(n) + 1) // 2), len(n))]
        return cls(rules=r, banned=tuple(Term.make(w, "banned", excepts=r.excepts_for(w)) for w in b if w.strip()),
                   evidence={fold(k): str(v).strip() for k, v in ev.items() if str(v).strip()},
                   names=tuple(dict.fromkeys([*folded, *prefixes])))

    def _evidence(self, term: Term, matched: str) -> str | None:
        for key in (*term.forms, matched):
            if key in self.evidence:
                return self.evidence[key]
        return None

    def check(self, text: str, where: str = "") -> list[ClaimHit]:
        """Every claim in the text, one hit per stretch of words (never-allowed kinds and longer terms first)."""
        folded = fold(text)
        if not folded:
            return []
        found: list[tuple[int, int, int, int, Term]] = []
        for t in (*self.rules.absolute, *self.banned, *self.rules.efficacy):
            for a, b in t.spans(folded):
                if _inside_any(folded, a, b, self.names):
                    continue
                found.append((int(t.kind == "efficacy"), -(b - a), _RANK[t.kind], a, t))
        taken: list[tuple[int, int]] = []
        hits: list[tuple[int, ClaimHit]] = []
        for _, neg_len, _, a, t in sorted(found, key=lambda x: x[:4]):
            b = a - neg_len
            if any(a < y and x < b for x, y in taken):
                continue
            taken.append((a, b))
            matched = folded[a:b]
            ev = self._evidence(t, matched) if t.kind == "efficacy" else None
            hits.append((a, ClaimHit(term=t.term, kind=t.kind, where=where, text=matched, evidence=ev)))
        return [h for _, h in sorted(hits, key=lambda x: x[0])]

    def violations(self, text: str, where: str = "") -> list[ClaimHit]:
        """The hits that must not reach the ad (all but evidence-backed efficacy claims)."""
        return [h for h in self.check(text, where) if not h.allowed]

    def ok(self, text: str) -> bool:
        return not self.violations(text)

    def clean(self, text: str) -> str:
        """The text without its offending clauses ("" when nothing compliant is left): a clause that makes a
        forbidden claim goes whole, since a sentence with the word cut out still implies it."""
        if self.ok(text):
            return text
        parts = _CLAUSE.split(text)
        kept = ""
        for k in range(0, len(parts), 2):
            clause, sep = parts[k], parts[k + 1] if k + 1 < len(parts) else ""
            if clause.strip() and self.ok(clause):
                kept += clause + sep
        kept = kept.strip().strip("，,、；;：:·|/ ").strip()
        if not any(ch.isalnum() for ch in kept) or not self.ok(kept):
            return ""
        return kept


def policy_for(sb: Storyboard, product: Any = None) -> Policy:
    """One ad's policy: the product's facts, and the brief's product label as a name (a library label such as
    欧莱雅紫熨斗全脸淡纹眼霜 is the product's name even when no facts were imported)."""
    return Policy.of(product, names=[sb.brief.product] if sb.brief.product else [])


def check_text(text: str, where: str = "", *, product: Any = None, banned: Sequence[str] = (),
               evidence: Mapping[str, str] | None = None, names: Sequence[str] = ()) -> list[ClaimHit]:
    """Every claim in one text (the packaged rules plus the product's banned claims, evidence and names)."""
    return Policy.of(product, banned=banned, evidence=evidence, names=names).check(text, where)


def brief_hits(text: str, policy: Policy) -> list[ClaimHit]:
    """Forbidden claims a request asks for ("说全网最好"); a clause that asks to avoid one ("不要说最好") does not."""
    folded = fold(text)
    out = []
    for h in policy.violations(text, "brief"):
        at = folded.find(h.text)
        if at >= 0 and _NEGATED.search(folded[max(0, at - 12):at]):
            continue
        out.append(h)
    return out


def record(run: RunRecord, hits: Iterable[ClaimHit], action: Action | None = None) -> None:
    """Add hits to run.json's `claims` (an evidence-backed one as allowed-with-evidence), once each."""
    for h in hits:
        act = "allowed-with-evidence" if h.allowed else (action or h.action)
        row = h.model_copy(update={"action": act}).model_dump(mode="json", exclude_none=True)
        if row not in run.claims:
            run.claims.append(row)


def settle(line: str, alternatives: Sequence[str], policy: Policy, where: str, run: RunRecord) -> str:
    """A written line that makes no forbidden claim: the line, else it without the offending clauses, else the
    first compliant alternative (the copywriter's next candidate), else nothing (dropped)."""
    hits = policy.check(line, where)
    record(run, [h for h in hits if h.allowed])
    bad = [h for h in hits if not h.allowed]
    if not bad:
        return line
    cleaned = policy.clean(line)
    if cleaned:
        record(run, bad, "rewritten")
        run.warn(f"{where}: {', '.join(h.text for h in bad)} may not be claimed; rewritten as {cleaned!r}")
        return cleaned
    alt = next((a for a in alternatives if a and policy.ok(a)), "")
    record(run, bad, "rewritten" if alt else "dropped")
    run.warn(f"{where}: {', '.join(h.text for h in bad)} may not be claimed; "
             + (f"the line {alt!r} instead" if alt else "the line is dropped"))
    return alt


def speech_violations(transcript: str, policy: Policy, where: str, run: RunRecord) -> list[ClaimHit]:
    """The forbidden claims in a clip's own words (to mute it); its evidence-backed claims are recorded."""
    hits = policy.check(transcript, where)
    bad = [h for h in hits if not h.allowed]
    if not bad:  # played as is: its evidence-backed claims are on record
        record(run, hits)
    return bad


def enforce(sb: Storyboard, run: RunRecord, product: Any = None) -> tuple[Storyboard, list[int]]:
    """The last check before anything is voiced or drawn: every line, played clip speech, overlay (offer plate)
    and card text; what fails is rewritten, replaced, muted or dropped and recorded in run.json. Returns the
    storyboard and the slots whose voiced line changed. A strict run raises ClaimsError listing every hit."""
    from agent.brain.offline import write_lines

    policy = policy_for(sb, product)
    record(run, brief_hits(sb.brief.text, policy), "dropped")
    slots = list(sb.slots)
    changed: list[int] = []
    for i, s in enumerate(slots):
        upd: dict[str, Any] = {}
        if s.line_source == "clip_audio" and s.chosen is not None:
            bad = speech_violations(s.chosen.transcript, policy, f"slot {i} speech", run)
            if bad:
                record(run, bad, "muted")
                run.warn(f"slot {i}: clip {s.chosen.clip_id} says {', '.join(h.text for h in bad)}, which may not "
                         "be claimed; muted, a written line instead")
                alt = write_lines(sb, [i], product).get(i, "")
                upd = {"line_source": "voiceover", "line": alt if policy.ok(alt) else ""}
        heard = s.line_source == "clip_audio" and s.chosen is not None and fold(s.line) == fold(s.chosen.transcript)
        if s.line and "line_source" not in upd and not heard:
            line = settle(s.line, [write_lines(sb, [i], product).get(i, "")] if not policy.ok(s.line) else [],
                          policy, f"slot {i} line", run)
            if line != s.line:
                upd["line"] = line
        if s.overlay:
            ov = settle(s.overlay, [], policy, f"slot {i} overlay", run)
            if ov != s.overlay:
                upd["overlay"] = ov
        if s.asset is not None and s.asset.params:
            params = dict(s.asset.params)
            for key in ("text", "subtitle"):
                val = params.get(key)
                if isinstance(val, str) and val:
                    params[key] = settle(val, [], policy, f"slot {i} card {key}", run)
            if params != s.asset.params:
                upd["asset"] = s.asset.model_copy(update={"params": params})
        if upd:
            slots[i] = s.model_copy(update=upd)
            if "line" in upd:
                changed.append(i)
    if run.strict_claims:
        bad_rows = [r for r in run.claims if r.get("action") != "allowed-with-evidence"]
        if bad_rows:
            items = "; ".join(f"{r.get('where')}: {r.get('text') or r.get('term')} ({r.get('kind')})"
                              for r in bad_rows[:8])
            more = f"; +{len(bad_rows) - 8} more" if len(bad_rows) > 8 else ""
            raise ClaimsError(f"{len(bad_rows)} claim(s) the ad may not make (strict): {items}{more}")
    return sb.model_copy(update={"slots": slots}), changed


def check_frames(paths: Iterable[Path | str], product: Any = None, *, policy: Policy | None = None
                 ) -> list[ClaimHit]:
    """Claims in the on-screen text of generated stills (tesseract via index.visual.ocr; no hits when it is not
    installed): gap filling calls it on every frame it makes, before the frame may reach the ad."""
    from index.visual import ocr

    pol = policy or Policy.of(product)
    out: list[ClaimHit] = []
    for p in paths:
        out += pol.check(ocr(Path(p)), f"frame {Path(p).name}")
    return out
