"""UCUM unit expressions checked against the UCUM table of atoms and prefixes (no I/O).

A unit is accepted only if it parses by the grammar of The Unified Code for Units of Measure
(https://ucum.org/ucum, §§1-7, the case-sensitive "c/s" codes) and every symbol in it is one of
UCUM's atoms, with a prefix only on the atoms UCUM marks metric. So ``mg/dL``, ``10*3/uL``,
``mm[Hg]`` and ``mL/min/{1.73_m2}`` pass; ``MG/DL`` (case matters), ``mcg`` (not UCUM: ``ug``),
``kcup`` and ``foo/L`` do not.

The atoms are those of the UCUM essence (version 2.2, ``ucum-essence.xml``), transcribed here
because no UCUM validator is installed: ``ucumvert`` on PyPI (lark based) would replace this
table if it is ever added as a dependency. Nothing here converts; conversions are the explicit
table in ``domain/quantities.py``.
"""

from __future__ import annotations

import functools
import re


def _symbols(listing: str) -> frozenset[str]:
    return frozenset(listing.split())


PREFIXES = _symbols("Q R Y Z E P T G M k h da d c m u n p f a z y r q Ki Mi Gi Ti")
"""UCUM §2.3 prefixes (decimal, UCUM 2.2's ronna/quetta/ronto/quecto, and binary)."""

METRIC = _symbols(
    """
    m s g rad K C cd
    mol sr Hz N Pa J W A V F Ohm S Wb Cel T H lm lx Bq Gy Sv
    l L ar t bar u eV pc [c] [h] [k] [eps_0] [mu_0] [e] [m_e] [m_p] [G] [g] [ly] gf
    Ky Gal dyn erg P St Mx G Oe Gb sb Lmb ph Ci R RAD REM
    cal_[15] cal_[20] cal_m cal_IT cal_th cal tex m[H2O] m[Hg] eq osm g% kat U [iU] [IU]
    Np B B[SPL] B[V] B[mV] B[uV] B[10.nV] B[W] B[kW] st mho bit By Bd
    """
)
"""Atoms UCUM marks ``isMetric="yes"``: these, and only these, take a prefix."""

NON_METRIC = _symbols(
    """
    10* 10^ [pi] % [ppth] [ppm] [ppb] [pptr]
    gon deg ' '' min h d a_t a_j a_g a wk mo_s mo_j mo_g mo AU atm [lbf_av]
    [in_i] [ft_i] [yd_i] [mi_i] [fth_i] [nmi_i] [kn_i] [sin_i] [sft_i] [syd_i] [cin_i] [cft_i]
    [cyd_i] [bf_i] [cr_i] [mil_i] [cml_i] [hd_i]
    [ft_us] [yd_us] [in_us] [rd_us] [ch_us] [lk_us] [rch_us] [rlk_us] [fth_us] [fur_us] [mi_us]
    [acr_us] [srd_us] [smi_us] [sct] [twp] [mil_us]
    [in_br] [ft_br] [rd_br] [ch_br] [lk_br] [fth_br] [pc_br] [yd_br] [mi_br] [nmi_br] [kn_br]
    [acr_br]
    [gal_us] [bbl_us] [qt_us] [pt_us] [gil_us] [foz_us] [fdr_us] [min_us] [crd_us] [bu_us]
    [gal_wi] [pk_us] [dqt_us] [dpt_us] [tbs_us] [tsp_us] [cup_us] [foz_m] [cup_m] [tsp_m] [tbs_m]
    [gal_br] [pk_br] [bu_br] [qt_br] [pt_br] [gil_br] [foz_br] [fdr_br] [min_br]
    [gr] [lb_av] [oz_av] [dr_av] [scwt_av] [lcwt_av] [ston_av] [lton_av] [stone_av]
    [pwt_tr] [oz_tr] [lb_tr] [sc_ap] [dr_ap] [oz_ap] [lb_ap] [oz_m]
    [lne] [pnt] [pca] [pnt_pr] [pca_pr] [pied] [pouce] [ligne] [didot] [cicero]
    [degF] [degR] [degRe] [Cal] [Btu_39] [Btu_59] [Btu_60] [Btu_m] [Btu_IT] [Btu_th] [Btu] [HP]
    [den] [in_i'H2O] [in_i'Hg] [PRU] [wood'U] [diop] [p'diop] %[slope] [mesh_i] [Ch] [drp]
    [hnsf'U] [MET] [hp'_X] [hp'_C] [hp'_M] [hp'_Q] [hp_X] [hp_C] [hp_M] [hp_Q]
    [kp_X] [kp_C] [kp_M] [kp_Q] [pH] [S] [HPF] [LPF] [arb'U] [USP'U] [GPL'U] [MPL'U] [APL'U]
    [beth'U] [anti'Xa'U] [todd'U] [dye'U] [smgy'U] [bdsk'U] [ka'U] [knk'U] [mclg'U] [tb'U]
    [CCID_50] [TCID_50] [EID_50] [PFU] [FFU] [CFU] [IR] [BAU] [AU] [Amb'a'1'U] [PNU] [Lf]
    [D'ag'U] [FEU] [ELU] [EU] Ao b att [psi] circ sph [car_m] [car_Au] [smoot]
    [m/s2/Hz^(1/2)] [NTU] [FNU] bit_s
    """
)
"""Atoms UCUM marks ``isMetric="no"`` (and the special 10* and 10^): never prefixed."""

ATOMS = METRIC | NON_METRIC
_PREFIXES_LONGEST_FIRST = sorted(PREFIXES, key=len, reverse=True)
_EXPONENT = re.compile(r"[+-]?[0-9]+\Z", re.ASCII)
_DIGITS = re.compile(r"[0-9]+\Z", re.ASCII)


class NotUcum(ValueError):
    """The text is not a UCUM unit expression; the message says which rule, never the text."""


def is_symbol(symbol: str) -> bool:
    """``symbol`` is an atom, or a prefix followed by a metric atom (``mg``, ``uL``, ``kcal``)."""
    if symbol in ATOMS:
        return True
    return any(symbol.startswith(p) and symbol[len(p) :] in METRIC for p in _PREFIXES_LONGEST_FIRST)


# A lab sends the same few units over and over: a 20,000-result import checked "mg/dL" 100,000
# times, a quarter of its time. Only units that pass are remembered (a refusal raises).
@functools.lru_cache(maxsize=4096)
def check(unit: str) -> None:
    """Raise :class:`NotUcum` unless ``unit`` is a UCUM expression of known symbols.

    Grammar (UCUM §§1-7): ``main = ["/"] term``; ``term = component {("." | "/") component}``;
    ``component = "(" term ")" | annotation | factor | symbol [exponent] [annotation]``.
    """
    parser = _Parser(unit)
    if parser.peek() == "/":
        parser.take()
    parser.term()
    if not parser.done():
        raise NotUcum("has text after the end of the unit expression")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def done(self) -> bool:
        return self.at >= len(self.text)

    def peek(self) -> str:
        return self.text[self.at] if not self.done() else ""

    def take(self) -> str:
        ch = self.text[self.at]
        self.at += 1
        return ch

    def term(self) -> None:
        self.component()
        while self.peek() in (".", "/") and not self.done():
            self.take()
            self.component()

    def component(self) -> None:
        ch = self.peek()
        if ch == "(":
            self.take()
            self.term()
            if self.peek() != ")":
                raise NotUcum("has a parenthesis that is never closed")
            self.take()
        elif ch == "{":
            self.annotation()
        elif ch in ("", ".", "/", ")"):
            raise NotUcum("has an operator where a unit symbol should be")
        else:
            self.simple_unit()

    def annotation(self) -> None:
        self.take()
        while self.peek() != "}":
            if self.done() or self.peek() == "{":
                raise NotUcum("has an annotation that is never closed")
            self.take()
        self.take()

    def simple_unit(self) -> None:
        start = self.at
        while not self.done() and self.peek() not in "./(){}":
            if self.take() == "[":
                while self.peek() != "]":
                    if self.done():
                        raise NotUcum("has a square bracket that is never closed")
                    self.take()
                self.take()
        run = self.text[start : self.at]
        if _DIGITS.match(run):
            return  # a factor (UCUM §3.2.3)
        exponent = _EXPONENT.search(run)
        symbol = run[: exponent.start()] if exponent else run
        if not symbol or not is_symbol(symbol):
            raise NotUcum("has a symbol not in UCUM's table of units (case matters: mg, not MG)")
        if self.peek() == "{":
            self.annotation()
