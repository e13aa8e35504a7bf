"""Fake but plausible personal data (names, e-mail, phone, address), generated in bulk.

All e-mail domains are the reserved ``example.*`` domains; phone numbers and addresses are random.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt
import polars as pl

from radar.simulate.batch import BoolArray, FloatArray, IntArray, day_dates, pick
from radar.simulate.sampling import choice

FIRST = (
    "Anna", "Bram", "Daan", "Emma", "Eva", "Femke", "Floor", "Hugo", "Iris", "Jan", "Jesse",
    "Julia", "Lars", "Lieke", "Lotte", "Lucas", "Maud", "Milan", "Noah", "Noor", "Pieter",
    "Roos", "Ruben", "Sanne", "Sem", "Sophie", "Thijs", "Tim", "Vera", "Wouter", "Yara", "Zoe",
    "Ahmed", "Fatima", "Mohamed", "Sara", "Luca", "Marie", "Jonas", "Lea",
)  # fmt: skip
LAST = (
    "de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser",
    "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks",
    "van Leeuwen", "Dekker", "Brouwer", "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer",
    "Peeters", "Maes", "Jacobs", "Willems", "Claes", "Schmidt", "Schneider", "Fischer", "Weber",
    "Yilmaz", "El Amrani", "Kaya", "Nguyen", "Silva", "Rossi",
)  # fmt: skip
STREETS = (
    "Kerkstraat", "Dorpsstraat", "Schoolstraat", "Molenweg", "Stationsweg", "Beukenlaan",
    "Eikenlaan", "Julianastraat", "Wilhelminastraat", "Nieuwstraat", "Marktstraat", "Parklaan",
    "Kastanjelaan", "Lindenlaan", "Prinsengracht", "Havenweg", "Zuiderweg", "Hoofdstraat",
)  # fmt: skip
COMPANY_SUFFIX = ("B.V.", "Holding B.V.", "& Zn.", "Groep", "Services", "NV")
COUNTRIES = ("NL", "BE", "DE")
COUNTRY_SHARES = (0.8, 0.12, 0.08)
CITIES: dict[str, tuple[str, ...]] = {
    "NL": (
        "Amsterdam", "Rotterdam", "Den Haag", "Utrecht", "Eindhoven", "Groningen", "Tilburg",
        "Almere", "Breda", "Nijmegen", "Haarlem", "Arnhem", "Zwolle", "Leiden", "Maastricht",
    ),
    "BE": ("Antwerpen", "Gent", "Brussel", "Leuven", "Brugge"),
    "DE": ("Aachen", "Köln", "Düsseldorf", "Münster"),
}  # fmt: skip
#: every city, indexed country by country
ALL_CITIES: tuple[str, ...] = tuple(c for cc in COUNTRIES for c in CITIES[cc])
_CITY_OFFSET = np.cumsum([0] + [len(CITIES[c]) for c in COUNTRIES])[:-1]
_CITY_COUNT = np.array([len(CITIES[c]) for c in COUNTRIES])
_LETTERS = tuple("ABCDEFGHJKLMNPRSTVWXZ")


def _digits(rng: np.random.Generator, n: int, width: int) -> pl.Series:
    return pl.Series(rng.integers(0, 10**width, n)).cast(pl.String).str.zfill(width)


def _slug(s: pl.Series) -> pl.Series:
    return s.str.to_lowercase().str.replace_all(r"[^a-z]", "")


def draw_countries(rng: np.random.Generator, n: int) -> IntArray:
    """Country code index (into :data:`COUNTRIES`) per customer."""
    return choice(rng, n, COUNTRY_SHARES)


def draw_cities(rng: np.random.Generator, country: IntArray) -> IntArray:
    """A city index (into :data:`ALL_CITIES`) in each customer's country, big cities likelier."""
    u = rng.random(len(country)) ** 1.6  # skew towards the first (largest) cities
    return (_CITY_OFFSET[country] + np.floor(u * _CITY_COUNT[country])).astype(np.int64)


def address(rng: np.random.Generator, country: IntArray) -> dict[str, pl.Series]:
    """Street address and postal code per customer, formatted for the country."""
    n = len(country)
    street = pick(STREETS, rng.integers(0, len(STREETS), n))
    number = pl.Series(rng.integers(1, 250, n)).cast(pl.String)
    addr = pl.select(street + " " + number).to_series()
    nl = pl.select(
        _digits(rng, n, 4).str.replace(r"^0", "1")
        + " "
        + pick(_LETTERS, rng.integers(0, len(_LETTERS), n))
        + pick(_LETTERS, rng.integers(0, len(_LETTERS), n))
    ).to_series()
    be = pl.Series(rng.integers(1000, 9999, n)).cast(pl.String)
    de = pl.Series(rng.integers(10000, 99999, n)).cast(pl.String)
    c = pl.Series(country)
    postal = pl.select(pl.when(c == 0).then(nl).when(c == 1).then(be).otherwise(de)).to_series()
    return {"address": addr, "postal_code": postal}


def profiles(
    rng: np.random.Generator,
    start: date,
    reg_t: FloatArray,
    business: BoolArray,
    country: IntArray,
    city: IntArray,
) -> dict[str, pl.Series]:
    """Registration profile fields per customer (``birth_date`` is null for businesses)."""
    n = len(reg_t)
    first = pick(FIRST, rng.integers(0, len(FIRST), n))
    last = pick(LAST, rng.integers(0, len(LAST), n))
    suffix = pick(COMPANY_SUFFIX, rng.integers(0, len(COMPANY_SUFFIX), n))
    biz = pl.Series(business)
    name = pl.select(
        pl.when(biz).then(last + " " + suffix).otherwise(first + " " + last)
    ).to_series()
    domain = pick(("example.com", "example.net", "example.org"), rng.integers(0, 3, n))
    num = pl.Series(rng.integers(1, 999, n)).cast(pl.String)
    local = pl.select(
        pl.when(biz)
        .then(pl.lit("info.") + _slug(last))
        .otherwise(_slug(first) + "." + _slug(last) + num)
    ).to_series()
    email = pl.select(local + "@" + domain).to_series()
    c = pl.Series(country)
    phone = pl.select(
        pl.when(c == 0)
        .then(pl.lit("+31 6 ") + _digits(rng, n, 8))
        .when(c == 1)
        .then(pl.lit("+32 4") + _digits(rng, n, 8))
        .otherwise(pl.lit("+49 15") + _digits(rng, n, 9))
    ).to_series()
    age_days = rng.uniform(18 * 365.25, 85 * 365.25, n)
    birth = day_dates(start, reg_t - age_days)
    birth = pl.select(pl.when(biz).then(None).otherwise(birth)).to_series()
    lang_be = pick(("nl", "fr"), (rng.random(n) < 0.4).astype(np.int64))
    lang_nl = pick(("nl", "en"), (rng.random(n) < 0.05).astype(np.int64))
    language = pl.select(
        pl.when(c == 0).then(lang_nl).when(c == 1).then(lang_be).otherwise(pl.lit("de"))
    ).to_series()
    return {
        "name": name,
        "email": email,
        "phone": phone,
        **address(rng, country),
        "birth_date": birth,
        "city": pick(ALL_CITIES, city),
        "country": pick(COUNTRIES, country),
        "language": language,
    }


def city_country(city: npt.NDArray[np.integer]) -> IntArray:
    """The country index of each city index."""
    return (np.searchsorted(_CITY_OFFSET, city, side="right") - 1).astype(np.int64)
