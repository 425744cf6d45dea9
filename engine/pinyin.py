"""Pinyin: the syllable inventory and a parser from raw keys to a ranked lattice of segmentations.

The parser never guesses ambiguity away. ``parse("xian")`` keeps both ``xian`` and ``xi'an``; ``parse("fangan")``
keeps ``fan'gan`` and ``fang'an``; the decoder downstream lets the model choose. What the parser does decide is
an order, by a small cost per token:

* a full syllable costs 1; one that starts with a vowel (a/o/e) right after another syllable costs more,
  because ``xian`` is far more often 先/现 than 西安 (an explicit ``'`` removes that extra cost);
* an initial typed alone (``zgr``, ``bjdx``) is an abbreviation: it costs more in the middle of the input than
  at its end, where it is simply the syllable the user is still typing. As in the major IMEs, ``z``/``c``/``s``
  alone also stand for zh/ch/sh (``zgr`` → 中国人); ``zh``/``ch``/``sh`` alone only for themselves;
* the last token may also be any unfinished syllable (``zhon`` → zhong…), as the user has not finished typing.

Keys are lowercase a–z; ``'`` and space are explicit syllable boundaries. ``v`` stands for ü (``lv``, ``nve``);
``lue``/``nue`` are accepted spellings of lve/nve. Anything else makes ``ParseResult.ok`` false with the position
and a message the caller can show; the parser never raises on user input.

Fuzzy pairs (z=zh, c=ch, s=sh, l=n, an=ang, en=eng, in=ing, ian=iang, uan=uang) are off by default and chosen
per parse with ``FuzzyOptions``, as is typo tolerance (``FuzzyOptions(typos=True)``): a run of keys that is no
spelling at all but one slip away from a syllable — two letters swapped (``zhogn``), one typed twice
(``guuo``), one left out (``zhng``) or a neighbouring key hit (``xhong``) — also stands for that syllable, at
a cost (``COST_TYPO``) above every exact reading's, so a typo reading never replaces a valid one; it only
wins where the exact readings are strained chains of abbreviations (``nihoa`` = ni'h'o'a) or there is none.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Iterator, NamedTuple

# ---------------------------------------------------------------------------------------------------------------
# Inventory
# ---------------------------------------------------------------------------------------------------------------

# Every toneless syllable that a character in pypinyin's dictionary is read with (ü written v), grouped by initial.
_SYLLABLE_TABLE = """
    a ai an ang ao e ei en eng er o ou
    m n ng hm hng
    ba bai ban bang bao bei ben beng bi bian biang biao bie bin bing bo bong bu
    pa pai pan pang pao pei pen peng pi pian piao pie pin ping po pou pu
    ma mai man mang mao me mei men meng mi mian miao mie min ming miu mo mou mu
    fa fan fang fei fen feng fiao fo fou fu
    da dai dan dang dao de dei den deng di dia dian diao die din ding diu dong dou du duan dui dun duo
    ta tai tan tang tao te tei teng ti tian tiao tie ting tong tou tu tuan tui tun tuo
    na nai nan nang nao ne nei nen neng ni nia nian niang niao nie nin ning niu nong nou nu nuan nun nuo nv nve
    la lai lan lang lao le lei len leng li lia lian liang liao lie lin ling liu lo long lou lu luan lun luo lv lve
    ga gai gan gang gao ge gei gen geng gong gou gu gua guai guan guang gui gun guo
    ka kai kan kang kao ke kei ken keng kong kou ku kua kuai kuan kuang kui kun kuo
    ha hai han hang hao he hei hen heng hong hou hu hua huai huan huang hui hun huo
    ji jia jian jiang jiao jie jin jing jiong jiu ju juan jue jun
    qi qia qian qiang qiao qie qin qing qiong qiu qu quan que qun
    xi xia xian xiang xiao xie xin xing xiong xiu xu xuan xue xun
    zha zhai zhan zhang zhao zhe zhei zhen zheng zhi zhong zhou zhu zhua zhuai zhuan zhuang zhui zhun zhuo
    cha chai chan chang chao che chen cheng chi chong chou chu chua chuai chuan chuang chui chun chuo
    sha shai shan shang shao she shei shen sheng shi shou shu shua shuai shuan shuang shui shun shuo
    ran rang rao re ren reng ri rong rou ru rua ruan rui run ruo
    za zai zan zang zao ze zei zen zeng zi zong zou zu zuan zui zun zuo
    ca cai can cang cao ce cei cen ceng ci cong cou cu cuan cui cun cuo
    sa sai san sang sao se sen seng si song sou su suan sui sun suo
    ya yan yang yao ye yi yin ying yo yong you yu yuan yue yun
    wa wai wan wang wei wen weng wo wong wu
"""

SYLLABLES: tuple[str, ...] = tuple(sorted(set(_SYLLABLE_TABLE.split())))
SYLLABLE_SET: frozenset[str] = frozenset(SYLLABLES)
INITIALS: tuple[str, ...] = (
    "zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r", "z", "c", "s",
    "y", "w",
)
# Interjection syllables (嗯 ng, 呣 m, 哼 hng …): real, but almost never what a key sequence means mid-sentence.
RARE_SYLLABLES = frozenset({"m", "n", "ng", "hm", "hng"})
# Alternative spellings users type for the same syllable.
ALT_SPELLINGS = {"lue": "lve", "nue": "nve"}
MAX_SPELLING_LEN = 6  # zhuang, chuang, shuang
SEPARATORS = frozenset("' ")
VALID_KEYS = frozenset("abcdefghijklmnopqrstuvwxyz' ")


def initial_of(syllable: str) -> str:
    """The initial of a syllable ('' for a/o/e-initial ones): zhong → zh, an → ''."""
    if syllable[:2] in ("zh", "ch", "sh"):
        return syllable[:2]
    if syllable[0] in "aoe" or syllable in RARE_SYLLABLES and syllable[0] != "h":
        return ""
    return syllable[0]


# ---------------------------------------------------------------------------------------------------------------
# Fuzzy options and the spelling tables derived from them
# ---------------------------------------------------------------------------------------------------------------

FUZZY_INITIAL_PAIRS = (("z", "zh"), ("c", "ch"), ("s", "sh"), ("l", "n"))
FUZZY_FINAL_PAIRS = (("an", "ang"), ("en", "eng"), ("in", "ing"), ("ian", "iang"), ("uan", "uang"))
FUZZY_NAMES = tuple(f"{a}={b}" for a, b in FUZZY_INITIAL_PAIRS + FUZZY_FINAL_PAIRS)


@dataclass(frozen=True)
class FuzzyOptions:
    """How loosely keys are read: which fuzzy pairs are on (``FuzzyOptions.of("z=zh", "in=ing")``) and whether
    one-slip typos are read as the syllable meant (``typos``). All off by default."""

    pairs: frozenset[str] = frozenset()
    typos: bool = False

    @classmethod
    def of(cls, *names: str, typos: bool = False) -> "FuzzyOptions":
        unknown = [n for n in names if n not in FUZZY_NAMES]
        if unknown:
            raise ValueError(f"unknown fuzzy pair(s) {unknown}; choose from {', '.join(FUZZY_NAMES)}")
        return cls(frozenset(names), typos)

    @classmethod
    def all(cls) -> "FuzzyOptions":
        return cls(frozenset(FUZZY_NAMES))


NO_FUZZY = FuzzyOptions()


def _fuzzy_variants(syllable: str, fuzzy: FuzzyOptions) -> set[str]:
    """Spellings a user may type for ``syllable`` under the fuzzy pairs (the syllable itself included)."""
    out = {syllable}
    initial = initial_of(syllable)
    final = syllable[len(initial):]
    initials = {initial}
    finals = {final}
    for a, b in FUZZY_INITIAL_PAIRS:
        if f"{a}={b}" in fuzzy.pairs and initial in (a, b):
            initials |= {a, b}
    for a, b in FUZZY_FINAL_PAIRS:
        if f"{a}={b}" in fuzzy.pairs:
            for f in list(finals):
                if a == "an" and f.endswith(("ian", "uan", "iang", "uang")):
                    continue  # those have pairs of their own (ian=iang, uan=uang)
                if f.endswith(a) and not f.endswith(b):
                    finals.add(f[: -len(a)] + b)
                elif f.endswith(b):
                    finals.add(f[: -len(b)] + a)
    if syllable not in RARE_SYLLABLES:
        out |= {i + f for i in initials for f in finals}
    return out


class _Tables(NamedTuple):
    full: dict[str, tuple[str, ...]]  # typed spelling → syllables it may stand for
    initial: dict[str, tuple[str, ...]]  # initial typed alone → syllables with that initial
    prefix: dict[str, tuple[str, ...]]  # unfinished spelling → syllables it may become
    abbreviable: frozenset[str]


@lru_cache(maxsize=16)
def _tables(fuzzy: FuzzyOptions) -> _Tables:
    full: dict[str, set[str]] = {}
    for syl in SYLLABLES:
        for spelling in _fuzzy_variants(syl, fuzzy):
            full.setdefault(spelling, set()).add(syl)
    for spelling, syls in list(full.items()):
        if spelling in ("lve", "nve"):  # ü after l/n may also be typed as u: lue, nue
            full.setdefault(spelling[0] + "ue", set()).update(syls)

    def matches_initial(syl: str, initial: str) -> bool:
        own = initial_of(syl) or syl[0]
        if own == initial or (syl in RARE_SYLLABLES and syl.startswith(initial)):
            return True
        if own == initial + "h":  # abbreviations z/c/s also stand for zh/ch/sh, as in every major IME (zgr 中国人)
            return True
        return any(f"{a}={b}" in fuzzy.pairs and {own, initial} == {a, b} for a, b in FUZZY_INITIAL_PAIRS)

    initial = {i: tuple(s for s in SYLLABLES if matches_initial(s, i)) for i in INITIALS}

    prefix: dict[str, set[str]] = {}
    for spelling, syls in full.items():
        for n in range(1, len(spelling)):
            p = spelling[:n]
            prefix.setdefault(p, set()).update(syls)
    for i, syls in initial.items():
        prefix.setdefault(i, set()).update(syls)
    return _Tables(
        full={k: tuple(sorted(v)) for k, v in full.items()},
        initial=initial,
        prefix={k: tuple(sorted(v)) for k, v in prefix.items()},
        abbreviable=frozenset(initial),
    )


# Keys that touch each other on a QWERTY keyboard: same row, and the rows above and below.
_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _qwerty_neighbours() -> dict[str, str]:
    where = {ch: (r, c + 0.5 * r) for r, row in enumerate(_QWERTY_ROWS) for c, ch in enumerate(row)}  # rows staggered
    return {a: "".join(b for b, (r2, x2) in where.items() if b != a and abs(r2 - r) <= 1 and abs(x2 - x) <= 1)
            for a, (r, x) in where.items()}


QWERTY_NEIGHBOURS = _qwerty_neighbours()
_VOWELS = frozenset("aeiouv")


@lru_cache(maxsize=1)
def _typo_table() -> dict[str, tuple[tuple[str, ...], float]]:
    """Every key run one slip away from a syllable's spelling (swap, double, drop, neighbouring key) → (the
    syllables it may be a slip of, what reading it as a slip costs on top of ``COST_FULL``). The cost grows
    when the run has no vowel (``zhng`` could be abbreviations) and when it also reads as several syllables as
    it is: ``kaan`` = ka'an, more so with a lone a/e/o syllable (``maa`` = ma'a 嘛啊: the interjection
    reading is common, and drops a character, which the scores favour). Spellings themselves are left out,
    and so are runs of fewer than two keys and two-key runs without a vowel: ``bj`` is the abbreviation of
    two syllables, not a slip of ``bu``."""
    spellings = set(_tables(NO_FUZZY).full)
    plain = spellings - RARE_SYLLABLES  # a reading through m, n, ng (呣 嗯) is no rival to a slip

    @lru_cache(maxsize=None)
    def reads(keys: str) -> int:
        """0: not as syllables; 1: as syllables (kaan = ka'an); 2: only with a lone a/e/o (maa = ma'a)."""
        if keys in plain:
            return 2 if keys in ("a", "e", "o") else 1
        best = 0
        for k in range(1, len(keys)):
            if keys[:k] in plain and (rest := reads(keys[k:])):
                here = max(2 if keys[:k] in ("a", "e", "o") else 1, rest)
                best = here if best == 0 else min(best, here)
        return best

    out: dict[str, set[str]] = {}
    for syl in SYLLABLES:
        if syl in RARE_SYLLABLES:
            continue
        n = len(syl)
        variants = set()
        for i in range(n - 1):
            if syl[i] != syl[i + 1]:
                variants.add(syl[:i] + syl[i + 1] + syl[i] + syl[i + 2:])  # swapped
        for i in range(n):
            variants.add(syl[:i + 1] + syl[i:])  # doubled
            if n >= 2:
                variants.add(syl[:i] + syl[i + 1:])  # dropped
            for k in QWERTY_NEIGHBOURS.get(syl[i], ""):
                variants.add(syl[:i] + k + syl[i + 1:])  # neighbouring key
        for v in variants:
            if v in spellings or len(v) < 2 or len(v) == 2 and not _VOWELS & set(v):
                continue
            out.setdefault(v, set()).add(syl)

    def extra_cost(keys: str) -> float:
        return (COST_TYPO + (0.0 if _VOWELS & set(keys) else COST_TYPO_NO_VOWEL)
                + (0.0, COST_TYPO_SPLITS, COST_TYPO_LONE_VOWEL)[reads(keys)])

    return {k: (tuple(sorted(v)), extra_cost(k)) for k, v in out.items()}


def syllables_with_prefix(prefix: str, fuzzy: FuzzyOptions = NO_FUZZY) -> tuple[str, ...]:
    """Syllables an unfinished spelling can become (``zho`` → zhong, zhou; ``z`` → zi, zhi …)."""
    t = _tables(fuzzy)
    return tuple(sorted(set(t.prefix.get(prefix, ())) | set(t.full.get(prefix, ()))))


# ---------------------------------------------------------------------------------------------------------------
# Lattice
# ---------------------------------------------------------------------------------------------------------------

FULL, INITIAL, PREFIX = "full", "initial", "prefix"

COST_FULL = 1.0
COST_VOWEL_JOIN = 0.45  # a/o/e-initial syllable glued to the previous one without '
COST_RARE = 1.5  # interjection syllables like ng, hm
COST_ABBREV_MID = 2.2  # an initial typed alone, not at the end
COST_ABBREV_END = 1.5  # the last, still-being-typed syllable given only by its initial
COST_PREFIX_END = 1.4  # the last syllable unfinished (zhon…)
COST_TYPO = 1.5  # added to a syllable's cost when its keys are one slip away from its spelling
COST_TYPO_NO_VOWEL = 1.0  # more again when the keys have no vowel (zhng): they could be abbreviations
COST_TYPO_SPLITS = 0.45  # more again when the keys also read as syllables as typed (kaan = ka'an)
COST_TYPO_LONE_VOWEL = 0.8  # …and more when that reading has a lone a/e/o in it (maa = ma'a 嘛啊)


class Token(NamedTuple):
    """One edge of the lattice: keys[start:end] read as ``kind`` standing for any of ``syllables``."""

    start: int
    end: int
    keys: str
    kind: str  # FULL, INITIAL or PREFIX
    syllables: tuple[str, ...]
    cost: float
    typo: bool = False  # keys one slip away from the syllable's spelling (only with FuzzyOptions.typos)

    @property
    def text(self) -> str:
        """How the token shows in a preedit: the syllable when it is certain, else the keys typed."""
        return self.syllables[0] if self.kind == FULL and len(self.syllables) == 1 else self.keys


@dataclass(frozen=True)
class Segmentation:
    tokens: tuple[Token, ...]
    cost: float

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(t.keys for t in self.tokens)

    @property
    def syllables(self) -> tuple[str, ...]:
        """The canonical syllable of each token where it is a full one, else the keys typed (``zg`` → z, g)."""
        return tuple(t.text for t in self.tokens)

    @property
    def has_typo(self) -> bool:
        return any(t.typo for t in self.tokens)

    @property
    def is_complete(self) -> bool:
        """Every token a full syllable (no abbreviation, nothing unfinished)."""
        return all(t.kind == FULL for t in self.tokens)

    @cached_property
    def label(self) -> str:
        """``zhong'guo``: how candidates name the segmentation they came from."""
        return "'".join(self.syllables)

    def __str__(self) -> str:
        return self.label


@dataclass
class ParseResult:
    """The lattice over ``keys``; ``ok`` is false when no segmentation covers them all."""

    keys: str
    fuzzy: FuzzyOptions
    edges: list[list[Token]]  # edges[i]: tokens starting at position i
    ok: bool
    error: str = ""
    error_pos: int = -1  # first key that cannot be read as pinyin
    _best_to_end: list[float] = field(default_factory=list, repr=False)
    _found: tuple[list, bool] = field(default_factory=lambda: ([], False), repr=False, compare=False)  # see ``segmentations``

    @property
    def tokens(self) -> Iterator[Token]:
        for out in self.edges:
            yield from out

    def best(self) -> Segmentation | None:
        return next(self.segmentations(1), None)

    def segmentations(self, limit: int | None = 32) -> Iterator[Segmentation]:
        """Segmentations of the whole input, cheapest first (A* over the lattice with exact remaining costs).
        The stages of one keystroke each ask for the first few: those found are kept and handed out again."""
        found, done = self._found
        if done or (limit is not None and limit <= len(found)):
            yield from found[:limit]
            return
        fresh = []
        for seg in self._search(limit):
            fresh.append(seg)
            yield seg
        else:  # the search ran to its end: keep what it found (a consumer that stopped early keeps nothing)
            if len(fresh) > len(found):
                self._found = (fresh, limit is None or len(fresh) < limit)

    def _search(self, limit: int | None) -> Iterator[Segmentation]:
        if not self.ok:
            return
        n = len(self.keys)
        h = self._best_to_end
        # Heap items: (cost so far + remaining, tie-break, position, cost so far, path as nested tuples).
        # Ties go depth-first (newest first): with an exact heuristic that finishes paths without detours.
        heap: list[tuple[float, int, int, float, tuple | None]] = [(h[0], 0, 0, 0.0, None)]
        counter = 0
        produced = 0
        while heap and (limit is None or produced < limit):
            _, _, pos, g, path = heapq.heappop(heap)
            while pos < n and self.keys[pos] in SEPARATORS:
                pos += 1
            if pos == n:
                tokens: list[Token] = []
                while path is not None:
                    path, tok = path
                    tokens.append(tok)
                produced += 1
                yield Segmentation(tuple(reversed(tokens)), round(g, 6))
                continue
            for tok in self.edges[pos]:
                end_h = h[tok.end]
                if end_h == _INF:
                    continue
                g2 = g + tok.cost
                counter -= 1
                heapq.heappush(heap, (round(g2 + end_h, 9), counter, tok.end, g2, (path, tok)))

    def contains(self, syllables: tuple[str, ...] | list[str]) -> bool:
        """Whether some path through the lattice reads as exactly these full syllables."""
        target = tuple(syllables)
        n = len(self.keys)
        frontier = {(0, 0)}
        while frontier:
            nxt = set()
            for pos, k in frontier:
                while pos < n and self.keys[pos] in SEPARATORS:
                    pos += 1
                if pos == n:
                    if k == len(target):
                        return True
                    continue
                if k == len(target):
                    continue
                for tok in self.edges[pos]:
                    # m and n are both initials and (interjection) syllables: typed alone they are one token.
                    if target[k] in tok.syllables and (tok.kind == FULL or tok.keys == target[k]):
                        nxt.add((tok.end, k + 1))
            frontier = nxt
        return False


_INF = float("inf")


def parse(keys: str, fuzzy: FuzzyOptions = NO_FUZZY) -> ParseResult:
    """Build the lattice of every plausible reading of ``keys``; see the module docstring for the rules.

    A keystroke asks for the same parse more than once (the pipeline, the preedit's syllable splits, a long
    input's head), so the last few answers are kept: treat the result as read-only."""
    return _parse_cached(keys, fuzzy)


@lru_cache(maxsize=32)
def _parse_cached(keys: str, fuzzy: FuzzyOptions) -> ParseResult:
    return _parse(keys, fuzzy)


def _parse(keys: str, fuzzy: FuzzyOptions) -> ParseResult:
    tables = _tables(fuzzy)
    n = len(keys)
    bad = next((i for i, ch in enumerate(keys) if ch not in VALID_KEYS), -1)
    if bad >= 0:
        ch = keys[bad]
        what = "an upper-case letter" if ch.isupper() else f"{ch!r}"
        return ParseResult(keys, fuzzy, [[] for _ in range(n)], False,
                           f"{what} at position {bad + 1} is not pinyin: type lower-case a–z, with ' between "
                           f"syllables if needed", bad)
    # The last position that holds a key (trailing separators do not make the last syllable "finished").
    last_key = max((i for i, ch in enumerate(keys) if ch not in SEPARATORS), default=-1)
    edges: list[list[Token]] = [[] for _ in range(n + 1)]
    typos = _typo_table() if fuzzy.typos else None
    for i in range(n):
        if keys[i] in SEPARATORS:
            continue
        after_syllable = i > 0 and keys[i - 1] not in SEPARATORS
        out = edges[i]
        for length in range(1, min(MAX_SPELLING_LEN + 1 if typos else MAX_SPELLING_LEN, n - i) + 1):
            s = keys[i:i + length]
            if s[-1] in SEPARATORS:
                break
            j = i + length
            at_end = j == last_key + 1
            join = COST_VOWEL_JOIN if after_syllable and s[0] in "aoe" else 0.0
            syls = tables.full.get(s)
            if s in tables.abbreviable:
                cost = COST_ABBREV_END if at_end else COST_ABBREV_MID
                out.append(Token(i, j, s, INITIAL, tables.initial[s], cost))
            elif syls:
                cost = (COST_RARE if s in RARE_SYLLABLES else COST_FULL) + join
                out.append(Token(i, j, s, FULL, syls, cost))
            elif at_end and s in tables.prefix:
                out.append(Token(i, j, s, PREFIX, tables.prefix[s], COST_PREFIX_END + join))
            if typos is not None and not syls and s in typos:
                meant, extra = typos[s]
                cost = COST_FULL + extra
                for syl in meant:  # one token per syllable meant: each is a model input of its own
                    # the vowel-join cost goes by the syllable meant: em for me is no a/o/e syllable glued on
                    glued = COST_VOWEL_JOIN if after_syllable and syl[0] in "aoe" else 0.0
                    out.append(Token(i, j, s, FULL, (syl,), cost + glued, True))
    # Exact cheapest cost from each position to the end: the A* heuristic, and reachability.
    best = [_INF] * (n + 1)
    best[n] = 0.0
    for i in range(n - 1, -1, -1):
        if keys[i] in SEPARATORS:
            best[i] = best[i + 1]
            continue
        for tok in edges[i]:
            c = tok.cost + best[tok.end]
            if c < best[i]:
                best[i] = c
    if n == 0 or last_key < 0:
        return ParseResult(keys, fuzzy, edges, False, "no keys to convert", 0, best)
    if best[0] == _INF:
        pos = _first_unreadable(keys, edges)
        return ParseResult(keys, fuzzy, edges, False,
                           f"'{keys[pos:]}' (from position {pos + 1}) cannot be read as pinyin", pos, best)
    return ParseResult(keys, fuzzy, edges, True, "", -1, best)


def _first_unreadable(keys: str, edges: list[list[Token]]) -> int:
    """The furthest position reachable from the start: where reading the keys as pinyin breaks down."""
    n = len(keys)
    reach = [False] * (n + 1)
    reach[0] = True
    furthest = 0
    for i in range(n):
        if not reach[i]:
            continue
        furthest = i
        if keys[i] in SEPARATORS:
            reach[i + 1] = True
        for tok in edges[i]:
            reach[tok.end] = True
    return furthest


def split_syllables(text: str) -> list[str]:
    """Split space/'-separated pinyin into syllables, mapping lue/nue to lve/nve; raises ValueError on others."""
    out = []
    for part in text.replace("'", " ").split():
        syl = ALT_SPELLINGS.get(part, part)
        if syl not in SYLLABLE_SET:
            raise ValueError(f"{part!r} is not a pinyin syllable")
        out.append(syl)
    return out
